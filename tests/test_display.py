from __future__ import annotations

from carbon_callbacks.display import format_devices, format_energy, format_measurement
from carbon_callbacks.intensity.base import IntensityValue
from carbon_callbacks.measurement import ChannelEnergy, Measurement
from carbon_callbacks.meters.base import Channel, Unavailable

GPU = Channel("gpu:0", "gpu", "NVIDIA H100", "measured", "NVML total energy counter")
CPU = Channel("cpu:estimate", "cpu", "CPU", "estimated", "estimate: 12 W per busy core")


def test_missing_energy_is_never_shown_as_zero() -> None:
    assert format_energy(None) == "not measured"
    assert format_energy(0.0) == "0.0 J"
    assert format_energy(7_200_000.0) == "2 kWh"
    empty = Measurement("run", 0.0, 1.0, (ChannelEnergy(GPU, None, "GPU is lost"),), pue=1.0)
    lines = format_measurement(empty)
    assert lines[1] == "energy:   not measured"
    assert "not measured" in lines[2] and "[GPU is lost]" in lines[2]


def test_totals_say_pue_estimate_partial_and_intensity_source() -> None:
    run = Measurement(
        "run",
        0.0,
        10.0,
        (ChannelEnergy(GPU, 3600.0, "GPU is lost"), ChannelEnergy(CPU, 3600.0)),
        pue=1.5,
        intensity=IntensityValue(200.0, "user-supplied constant"),
    )
    lines = format_measurement(run)
    assert lines[1] == (
        "energy:   0.003 kWh (0.002 kWh x PUE 1.5; includes estimated figures; "
        "partial: some figures are incomplete)"
    )
    assert lines[-2:] == ["CO2e:     0.6 g at 200 gCO2e/kWh", "          (user-supplied constant)"]


def test_devices_list_fixes_under_the_source() -> None:
    lines = format_devices([CPU], [Unavailable("rapl", "permission denied", "chmod o+r x\nudev")])
    assert lines[1].startswith("  cpu:estimate") and "estimated" in lines[1]
    assert lines[-3:] == ["  rapl: permission denied", "    fix: chmod o+r x", "    fix: udev"]
