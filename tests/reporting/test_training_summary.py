"""Golden texts of the summary a callback prints at the end of training, from fixed figures.

Whole outputs are compared, so a change of wording shows as a diff here.
"""

from __future__ import annotations

from carbon_callbacks.intensity.base import IntensityValue
from carbon_callbacks.meters.base import Channel
from carbon_callbacks.meters.cpu_estimate import watts_per_core_for
from carbon_callbacks.meters.cpu_models import CpuInfo
from carbon_callbacks.reporting.text import format_forecast_line, format_training_summary
from carbon_callbacks.tracking.measurement import ChannelEnergy, Measurement
from carbon_callbacks.training.outcome import ForecastFigures, TrainingOutcome

GPU = Channel("gpu:0", "gpu", "NVIDIA H100 80GB HBM3", "measured", "NVML total energy counter")
UNNAMED_EPYC = CpuInfo("AMD EPYC", sockets=1, cores=2, threads=2)  # this project's VM
CPU = Channel(
    "cpu:estimate", "cpu", "CPU", "estimated", watts_per_core_for(UNNAMED_EPYC)[1], scope="process"
)
DK = IntensityValue(
    142.8, "Our World in Data (Ember, Energy Institute), 2024", "DK", "lifecycle", 2024
)
WORLD = IntensityValue(
    473.0,
    "Our World in Data (Ember, Energy Institute), 2024",
    "WORLD",
    "lifecycle",
    2024,
    fallback="location unknown (no system time zone); set country=, zone= or cloud= and region=",
)
FORECAST = {
    "type": "prediction",
    "t_unix": 1_700_000_010.0,
    "steps_done": 10,
    "total_steps": 40,
    "energy_kwh": [0.00017, 0.000192, 0.00021],
    "co2e_kg": [0.0000243, 0.0000274, 0.00003],
    "duration_s": [35.0, 40.0, 45.0],
    "interval": 0.8,
}


def outcome(
    channels: tuple[ChannelEnergy, ...],
    intensity: IntensityValue | None,
    *,
    steps: int = 40,
    forecasts: tuple[dict[str, object], ...] = (),
    world_size: int = 1,
) -> TrainingOutcome:
    measurement = Measurement(
        "run", 1_700_000_000.0, 42.5, channels, pue=1.0, steps=steps, intensity=intensity
    )
    return TrainingOutcome(
        status="completed",
        measurement=measurement,
        forecasts=list(forecasts),
        steps_done=steps,
        total_steps=40,
        log_problem=None,
        world_size=world_size,
        resumed=False,
        total_energy_kwh=measurement.energy_kwh,
        total_co2e_kg=measurement.co2e_kg,
    )


CAR = "about {} in a car at 106.4 gCO2/km, average new car registered in the EU in 2023 (WLTP; EEA)"
CPU_HOW = (
    "estimate: CPU time of this process tree (psutil) x 12 W per busy core "
    '(default: "AMD EPYC" is not in the CPU table; set cpu_watts= to your CPU\'s TDP / cores)'
)
OWID = "source: Our World in Data (Ember, Energy Institute), 2024"
LIFECYCLE = "the power plants' whole-life emissions (building, fuel supply, burning)"


def test_each_channel_with_its_figure_and_method_and_the_forecast_beside_the_outcome() -> None:
    run = outcome((ChannelEnergy(GPU, 576.0), ChannelEnergy(CPU, 144.0)), DK, forecasts=(FORECAST,))
    assert format_training_summary(run) == [
        "carbon-callbacks: training completed in 42.5 s, 40 steps",
        "  energy: 0.2 Wh (includes an estimate)",
        "    gpu:0: 0.16 Wh, measured: NVML total energy counter",
        f"    cpu:estimate: 40 mWh, {CPU_HOW}",
        "  CO2e:   28.6 mg at 142.8 gCO2e/kWh",
        f"          {CAR.format('26.8 cm')}",
        f"          {OWID}, DK; {LIFECYCLE}",
        "  forecast: at step 10 of 40, 0.192 Wh (80% range 0.17 Wh to 0.21 Wh): "
        "4% below the outcome, inside the range",
    ]


def test_an_unknown_location_says_the_world_average_was_used_and_what_to_pass() -> None:
    run = outcome((ChannelEnergy(CPU, 144.0),), WORLD)
    assert format_training_summary(run) == [
        "carbon-callbacks: training completed in 42.5 s, 40 steps",
        "  energy: 40 mWh (includes an estimate)",
        f"    cpu:estimate: 40 mWh, {CPU_HOW}",
        "  CO2e:   18.9 mg at 473 gCO2e/kWh",
        f"          {CAR.format('17.8 cm')}",
        f"          {OWID}; {LIFECYCLE}",
        "          World average used: location unknown (no system time zone); set country=, "
        "zone= or cloud= and region=",
    ]


def test_many_gpus_share_a_line_and_a_lost_one_is_named() -> None:
    gpus = tuple(
        ChannelEnergy(Channel(f"gpu:{i}", "gpu", "H100", "measured", "NVML total energy counter"),
                      None if i == 3 else 3.6e6, "GPU is lost" if i == 3 else None)
        for i in range(8)
    )  # fmt: skip
    run = outcome((*gpus, ChannelEnergy(CPU, 3.6e5)), DK, world_size=8)
    assert format_training_summary(run) == [
        "carbon-callbacks: training completed in 42.5 s, 40 steps",
        "  energy: 7.1 kWh (includes an estimate, partial: some figures are incomplete)",
        "    8 x gpu: 7 kWh, measured: NVML total energy counter [gpu:3: GPU is lost]",
        f"    cpu:estimate: 100 Wh, {CPU_HOW}",
        "  CO2e:   1.01 kg at 142.8 gCO2e/kWh",
        f"          {CAR.format('9.53 km')}",
        f"          {OWID}, DK; {LIFECYCLE}",
        "  total (all 8 ranks): 7.1 kWh, 1.01 kg CO2e",
    ]


def test_a_run_stopped_early_gets_no_forecast_check() -> None:
    run = outcome((ChannelEnergy(GPU, 576.0),), None, steps=12, forecasts=(FORECAST,))
    assert format_training_summary(run) == [
        "carbon-callbacks: training completed in 42.5 s, 12 steps of the 40 planned",
        "  energy: 0.16 Wh (measured)",
        "    gpu:0: 0.16 Wh, measured: NVML total energy counter",
        "  CO2e:   not computed: the carbon intensity is unknown",
    ]


def test_the_forecast_line() -> None:
    forecast = ForecastFigures(40, (0.00017, 0.000192, 0.00021), (2.43e-5, 2.74e-5, 3e-5), 40.0)
    assert format_forecast_line(forecast) == (
        "carbon-callbacks: predicted for 40 steps: 0.192 Wh (0.17-0.21 Wh), "
        "27.4 mg (24.3-30 mg) CO2e, 40.0 s (80% interval); " + CAR.format("25.8 cm")
    )


def test_a_forecast_on_the_mark_is_not_said_to_be_0_percent_off() -> None:
    on_the_mark = FORECAST | {"energy_kwh": [0.00017, 0.0002001, 0.00021]}
    run = outcome(
        (ChannelEnergy(GPU, 576.0), ChannelEnergy(CPU, 144.0)), DK, forecasts=(on_the_mark,)
    )
    assert format_training_summary(run)[-1] == (
        "  forecast: at step 10 of 40, 0.2 Wh (80% range 0.17 Wh to 0.21 Wh): "
        "within 1% of the outcome, inside the range"
    )
