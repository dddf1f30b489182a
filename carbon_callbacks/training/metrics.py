"""The metric names the callbacks log, and the conversion of summed figures into them.

Pure conversion: a figure that is unknown (NaN) is left out of the dict, never 0. What to do
about the figures (announce, warn, stop) is decided elsewhere (``Outlook.judge``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Literal

from carbon_callbacks.tracking.measurement import JOULES_PER_KWH
from carbon_callbacks.training.sums import EpochSums, ForecastSums, IntervalSums, RunSums

DEFAULT_PREFIX = "carbon/"

METRICS: dict[str, str] = {
    "energy_kwh": "energy so far, kWh (all ranks, x PUE)",
    "co2e_kg": "CO2e so far, kg",
    "intensity_g_per_kwh": "carbon intensity used so far, gCO2e/kWh (energy-weighted)",
    "power_w": "average power over the logging interval (or epoch), W (x PUE)",
    "energy_per_step_j": "energy per optimizer step over the interval, J",
    "energy_per_sample_j": "energy per training sample over the interval, J (when samples known)",
    "energy_per_token_j": "energy per token over the interval, J (when tokens known)",
    "epoch_energy_kwh": "energy of the epoch just ended, kWh",
    "epoch_co2e_kg": "CO2e of the epoch just ended, kg",
    "train_energy_kwh": "training part of the epoch (epoch minus validation), kWh",
    "val_energy_kwh": "validation inside the epoch, kWh",
    "estimated": "1 when any figure comes from a model (the CPU estimate), else 0",
    "partial": "1 when some figure is incomplete (a channel failed, a device unmeasured), else 0",
    "predicted_energy_kwh": "forecast of the whole run's energy, kWh (after the warm-up)",
    "predicted_energy_kwh_low": "low end of the forecast's 80% interval, kWh",
    "predicted_energy_kwh_high": "high end of the forecast's 80% interval, kWh",
    "predicted_co2e_kg": "forecast of the whole run's CO2e, kg (live intensity forecast if any)",
    "predicted_co2e_kg_low": "low end of the CO2e forecast's interval, kg",
    "predicted_co2e_kg_high": "high end of the CO2e forecast's interval, kg",
    "predicted_duration_s": "forecast of the whole run's duration, s",
}
"""Every metric name (without the prefix) and what it means. A metric that cannot be computed is
left out of the dict (the forecast's are NaN where an adapter asks for every name), never 0."""


WATCHED: tuple[str, ...] = (
    "energy_kwh",
    "co2e_kg",
    "power_w",
    "predicted_energy_kwh",
    "predicted_co2e_kg",
)
"""The metrics a person watches in the console by default: energy and CO2e so far, power, and the
forecast once known. ``metrics="all"`` shows every name of ``METRICS``."""

MetricSet = Literal["default", "all"]
"""Which metrics the console shows: the ``WATCHED`` few, or all."""


def check_metric_set(value: object) -> MetricSet:
    """``value`` as a ``MetricSet``, or a ValueError saying what to write."""
    if value == "default" or value == "all":
        return value
    raise ValueError(
        f"metrics must be 'default' or 'all', got {value!r}; write metrics='all' to show every "
        "carbon metric, or leave it out for energy, CO2e, power and the forecast"
    )


def hidden_names(prefix: str, names: Iterable[str], shown: MetricSet) -> list[str]:
    """Those of ``names`` that are our metrics the console leaves out (none with ``"all"``)."""
    if shown == "all":
        return []
    return [
        name
        for name in names
        if name.startswith(prefix)
        and name[len(prefix) :] in METRICS
        and name[len(prefix) :] not in WATCHED
    ]


def named(prefix: str, **values: float) -> dict[str, float]:
    """``values`` under their metric names (``prefix`` + name), as floats."""
    return {f"{prefix}{name}": float(value) for name, value in values.items()}


def run_metrics(prefix: str, sums: RunSums, predicted_duration_s: float | None) -> dict[str, float]:
    """The totals so far and the forecast; nothing when the energy is unknown."""
    if not math.isfinite(sums.energy_j):
        return {}
    metrics = named(
        prefix,
        energy_kwh=sums.energy_j / JOULES_PER_KWH,
        estimated=min(sums.estimated, 1.0),
        partial=min(sums.partial, 1.0),
    )
    if math.isfinite(sums.co2e_kg):
        metrics |= named(prefix, co2e_kg=sums.co2e_kg)
        if sums.energy_j > 0:
            kwh = sums.energy_j / JOULES_PER_KWH
            metrics |= named(prefix, intensity_g_per_kwh=sums.co2e_kg * 1000 / kwh)
    return metrics | forecast_metrics(prefix, sums.forecast, predicted_duration_s)


def forecast_metrics(
    prefix: str, forecast: ForecastSums, duration_s: float | None
) -> dict[str, float]:
    """The ``predicted_*`` metrics of a forecast summed over the ranks; none while unknown."""
    if not math.isfinite(forecast.energy_j):
        return {}
    metrics = named(
        prefix,
        predicted_energy_kwh=forecast.energy_j / JOULES_PER_KWH,
        predicted_energy_kwh_low=forecast.energy_low_j / JOULES_PER_KWH,
        predicted_energy_kwh_high=forecast.energy_high_j / JOULES_PER_KWH,
    )
    if math.isfinite(forecast.co2e_kg):
        metrics |= named(
            prefix,
            predicted_co2e_kg=forecast.co2e_kg,
            predicted_co2e_kg_low=forecast.co2e_low_kg,
            predicted_co2e_kg_high=forecast.co2e_high_kg,
        )
    if duration_s is not None:
        metrics |= named(prefix, predicted_duration_s=duration_s)
    return metrics


def unknown_forecast_metrics(prefix: str) -> dict[str, float]:
    """Every ``predicted_*`` metric as NaN (unknown).

    For loggers that fix their columns at the first epoch (Keras's ``CSVLogger``, ``History``).
    """
    return {f"{prefix}{name}": math.nan for name in METRICS if name.startswith("predicted_")}


def epoch_metrics(prefix: str, sums: EpochSums, seconds: float) -> dict[str, float]:
    """The epoch's own figures (energy, CO2e, power, validation), ``seconds`` long."""
    epoch_j = sums.epoch_energy_j
    if not math.isfinite(epoch_j):
        return {}
    metrics = named(prefix, epoch_energy_kwh=epoch_j / JOULES_PER_KWH)
    if math.isfinite(sums.epoch_co2e_kg):
        metrics |= named(prefix, epoch_co2e_kg=sums.epoch_co2e_kg)
    if seconds > 0:
        metrics |= named(prefix, power_w=epoch_j / seconds)
    if math.isfinite(sums.val_energy_j):
        metrics |= named(
            prefix,
            val_energy_kwh=sums.val_energy_j / JOULES_PER_KWH,
            train_energy_kwh=(epoch_j - sums.val_energy_j) / JOULES_PER_KWH,
        )
    return metrics


def interval_metrics(prefix: str, sums: IntervalSums) -> dict[str, float]:
    """Power and energy per step, sample and token, each over an interval that resolves it.

    An interval still too short on any rank (``training.intervals``) gives nothing this time.
    """
    metrics: dict[str, float] = {}
    if sums.power_unresolved == 0 and math.isfinite(sums.power_w):
        metrics |= named(prefix, power_w=sums.power_w)
    watts = sums.work_power_w
    if sums.work_unresolved > 0 or not math.isfinite(watts):
        return metrics
    if math.isfinite(sums.energy_per_step_j):
        metrics |= named(prefix, energy_per_step_j=sums.energy_per_step_j)
    if sums.samples_per_s > 0:
        metrics |= named(prefix, energy_per_sample_j=watts / sums.samples_per_s)
    if sums.tokens_per_s > 0:
        metrics |= named(prefix, energy_per_token_j=watts / sums.tokens_per_s)
    return metrics
