from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from carbon_callbacks._internal.units import (
    format_distance_span,
    format_kwh_span,
    format_mass_span,
    format_power_span,
)
from carbon_callbacks.intensity.base import IntensityValue
from carbon_callbacks.meters.base import Channel, Unavailable
from carbon_callbacks.reporting.report import build_report
from carbon_callbacks.reporting.text import (
    format_devices,
    format_distance,
    format_energy,
    format_kwh,
    format_kwh_range,
    format_mass,
    format_mass_range,
    format_measurement,
    format_power,
    format_report,
    printable,
)
from carbon_callbacks.tracking.measurement import ChannelEnergy, Measurement

GPU = Channel("gpu:0", "gpu", "NVIDIA H100", "measured", "NVML total energy counter")
CPU = Channel("cpu:estimate", "cpu", "CPU", "estimated", "estimate: 12 W per busy core")


def test_missing_energy_is_never_shown_as_zero() -> None:
    assert format_energy(None) == "not measured"
    assert format_energy(0.0) == "0 Wh"
    assert format_energy(7_200_000.0) == "2 kWh"
    empty = Measurement("run", 0.0, 1.0, (ChannelEnergy(GPU, None, "GPU is lost"),), pue=1.0)
    lines = format_measurement(empty)
    assert lines[1:3] == [
        "energy:   not measured",
        "power:    not measured on average at the devices",
    ]
    assert "not measured" in lines[3] and "[GPU is lost]" in lines[3]


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
        "energy:   3 Wh (2 Wh at the devices x PUE 1.5; includes estimated figures; "
        "partial: some figures are incomplete)"
    )
    assert lines[-2:] == ["CO2e:     0.6 g at 200 gCO2e/kWh", "          (user-supplied constant)"]


def test_devices_list_fixes_under_the_source() -> None:
    lines = format_devices([CPU], [Unavailable("rapl", "permission denied", "chmod o+r x\nudev")])
    assert lines[1].startswith("  cpu:estimate") and "estimated" in lines[1]
    assert lines[-3:] == ["  rapl: permission denied", "    fix: chmod o+r x", "    fix: udev"]


ESCAPES = "\x1b]0;owned\x07\x1b[2J\r\u202e\x9b31m"
"""Terminal control: set the title, clear the screen, return, reverse the text, a C1 CSI."""


def with_escapes(record: dict[str, Any]) -> dict[str, Any]:
    """A committed run log's record with terminal control codes in every text a report shows."""
    if record["type"] == "header":
        record["run_name"] = f"evil{ESCAPES}"
    if record["type"] == "summary":
        record["channels"][0]["fault"] = f"lost{ESCAPES}"
        record["intensity"]["source"] = f"source{ESCAPES}"
        record["intensity"]["fallback"] = f"fallback{ESCAPES}"
    return record


def test_printable_escapes_what_a_terminal_would_act_on_and_keeps_the_rest() -> None:
    assert printable("plain, Ünïcode — ok\ttab\nnew line\u00a0") == (
        "plain, Ünïcode — ok\ttab\nnew line\u00a0"
    )
    assert printable(ESCAPES + "\udc80") == ("\\x1b]0;owned\\x07\\x1b[2J\\r\\u202e\\x9b31m\\udc80")


def test_a_report_shows_control_codes_from_a_log_as_escapes(tmp_path: Path) -> None:
    folder = tmp_path / f"runs{ESCAPES}"
    folder.mkdir()
    source = Path(__file__).parents[1] / "data" / "runs" / "single.jsonl"
    lines = [json.dumps(with_escapes(json.loads(line))) for line in source.read_text().splitlines()]
    (folder / f"single{ESCAPES}.jsonl").write_text("\n".join(lines) + "\n")
    (folder / f"broken{ESCAPES}.jsonl").write_bytes(b"\x1b[2J not a run log\n")
    text = "\n".join(format_report(build_report(folder)))
    assert not [c for c in text if not c.isprintable() and c != "\n"], text
    for shown in ("evil", "single", "lost", "source", "fallback", "broken"):
        assert f"{shown}\\x1b]0;owned\\x07" in text, shown


def test_figures_come_in_the_unit_that_fits() -> None:
    """What the issue asks for: "62 Wh", "0.89 Wh", "29 mg CO2e", "28 cm", no exponents."""
    assert [format_kwh(kwh) for kwh in (0.062, 0.00089, 6.2e-05, 1.0, 190_000.0, None)] == [
        "62 Wh",
        "0.89 Wh",
        "62 mWh",
        "1 kWh",
        "190 MWh",
        "not measured",
    ]
    assert format_kwh(0.9997) == "1 kWh"  # not "1000 Wh"
    assert [format_mass(kg) for kg in (29e-6, 0.0006, 0.85, 12.34, 85_000.0, None)] == [
        "29 mg",
        "0.6 g",
        "850 g",
        "12.3 kg",
        "85 t",
        "not computed",
    ]
    assert [format_distance(km) for km in (0.00028, 0.0034, 0.2756, 3.4, 700_000.0)] == [
        "28 cm",
        "3.4 m",
        "276 m",
        "3.4 km",
        "700,000 km",
    ]
    assert [format_power(w) for w in (0.05, 12.0, 2400.0, None)] == [
        "50 mW",
        "12 W",
        "2.4 kW",
        "not measured",
    ]
    assert format_kwh_range(0.055, 0.062, 0.07) == "62 Wh (55-70 Wh)"
    assert format_mass_range(25e-6, 29e-6, 33e-6) == "29 mg (25-33 mg)"


def test_spans_are_in_the_unit_of_their_top() -> None:
    assert format_kwh_span(20.0, 32.0) == "20-32 kWh"
    assert format_kwh_span(0.0999, 0.5) == "99.9-500 Wh"
    assert format_kwh_span(0.3, 0.3) == "300 Wh"  # equal ends are one figure
    assert format_mass_span(8.0, 12.8) == "8-12.8 kg"
    assert format_distance_span(75.19, 120.3) == "75.2-120 km"
    assert format_power_span(250.0, 400.0) == "250-400 W"
    assert format_power_span(750.0, 1350.0) == "0.75-1.35 kW"


def test_str_of_a_measurement_is_the_readable_lines_and_repr_stays_exact() -> None:
    run = Measurement(
        "run",
        0.0,
        4.0,
        (ChannelEnergy(GPU, 900.0), ChannelEnergy(CPU, 100.0)),
        pue=1.0,
        intensity=IntensityValue(100.0, "user-supplied constant"),
    )
    assert str(run) == "\n".join(format_measurement(run))
    assert str(run) == (
        "duration: 4.0 s\n"
        "energy:   0.278 Wh (includes estimated figures)\n"
        "power:    250 W on average at the devices\n"
        "  gpu:0                     0.25 Wh  measured  NVML total energy counter\n"
        "  cpu:estimate             27.8 mWh  estimated 12 W per busy core\n"
        "CO2e:     27.8 mg at 100 gCO2e/kWh\n"
        "          (user-supplied constant)"
    )
    assert repr(run).startswith("Measurement(name='run', start_unix=0.0, duration_s=4.0,")
    assert run.to_dict()["mean_power_w"] == 250.0


def test_the_readme_shows_the_report_of_the_committed_example_run_as_it_is() -> None:
    """Golden text: the README's report example is this function's output, whole."""
    root = Path(__file__).parents[2]
    example = root / "docs" / "images" / "lightning-example.jsonl"
    shown = "\n".join(format_report(build_report(example)))
    shown = shown.replace(str(example), example.name)  # the README runs it from the repository
    readme = (root / "README.md").read_text()
    block = readme.split("$ carbon-callbacks report docs/images/lightning-example.jsonl\n")[1]
    assert block.split("\n```")[0] == shown
