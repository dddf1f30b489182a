"""Forecasts made during a run, set beside what the run (or the training) measured.

A run's log holds every forecast it made; a report checks two of them, the first and the latest
made before the run ended, so a reader sees both how early the forecast was right and how close
the last one came.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from carbon_callbacks.reporting.resumed import resumed_from_record
from carbon_callbacks.runlog import decode
from carbon_callbacks.tracking.measurement import JOULES_PER_KWH, Measurement


@dataclass(frozen=True)
class PredictionCheck:
    """A forecast made during a run, set beside what the run measured.

    Attributes:
        which: ``"first"``, ``"latest"`` (the last one before the end) or ``"only"``.
        rank: The global rank whose log holds it; None outside distributed runs.
        t_unix: When it was made.
        steps_done: Steps done when it was made.
        total_steps: Steps the run was expected to take.
        energy_kwh: Predicted facility energy (low, mid, high).
        co2e_kg: Predicted CO2e (low, mid, high), or None.
        duration_s: Predicted duration (low, mid, high).
        interval: The probability the interval was meant to hold, e.g. 0.8.
        actual_energy_kwh: What the log measured (same rank), or None.
        actual_co2e_kg: The measured CO2e, or None.
        actual_duration_s: The measured duration, or None.
        actual_complete: True when the actual figures are a completed run's summary.
    """

    which: str
    rank: int | None
    t_unix: float
    steps_done: int
    total_steps: int
    energy_kwh: tuple[float, float, float]
    co2e_kg: tuple[float, float, float] | None
    duration_s: tuple[float, float, float]
    interval: float | None
    actual_energy_kwh: float | None
    actual_co2e_kg: float | None
    actual_duration_s: float | None
    actual_complete: bool

    @property
    def energy_error(self) -> float | None:
        """(mid - actual) / actual for energy: +0.1 means the forecast was 10% high."""
        return _relative_error(self.energy_kwh[1], self.actual_energy_kwh)

    @property
    def energy_within(self) -> bool | None:
        """Whether the actual energy fell inside the predicted interval; None without an actual."""
        return _within(self.energy_kwh, self.actual_energy_kwh)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "which": self.which,
            "rank": self.rank,
            "t_unix": self.t_unix,
            "steps_done": self.steps_done,
            "total_steps": self.total_steps,
            "predicted": {
                "energy_kwh": list(self.energy_kwh),
                "co2e_kg": None if self.co2e_kg is None else list(self.co2e_kg),
                "duration_s": list(self.duration_s),
                "interval": self.interval,
            },
            "actual": {
                "energy_kwh": self.actual_energy_kwh,
                "co2e_kg": self.actual_co2e_kg,
                "duration_s": self.actual_duration_s,
                "complete": self.actual_complete,
            },
            "energy_error": self.energy_error,
            "energy_within": self.energy_within,
            "co2e_within": None
            if self.co2e_kg is None
            else _within(self.co2e_kg, self.actual_co2e_kg),
            "duration_within": _within(self.duration_s, self.actual_duration_s),
        }


def prediction_checks(
    records: Sequence[Mapping[str, Any]],
    actual: Measurement | None,
    *,
    complete: bool = True,
    rank: int | None = None,
    problems: list[str] | None = None,
) -> list[PredictionCheck]:
    """The first prediction and the latest one made before the run ended, beside the outcome.

    A resumed run's forecasts cover the whole training; here, what the runs before contributed
    is taken out of them, so they are set beside this run's own figures.

    Args:
        records: Prediction records in the order written.
        actual: The figures they are compared with (the same rank's); None when unknown.
        complete: Whether ``actual`` is a completed run's summary.
        rank: The global rank, for distributed runs.
        problems: Where to say that a malformed record was skipped.
    """
    end = None if actual is None else actual.start_unix + actual.duration_s
    figures = (
        None
        if actual is None
        else Actual(actual.energy_kwh, actual.co2e_kg, actual.duration_s, complete)
    )
    return forecast_checks(records, figures, end, rank, problems, segment=True)


@dataclass(frozen=True)
class Actual:
    """What a forecast is set beside: a run's figures, or a training's totals."""

    energy_kwh: float | None
    co2e_kg: float | None
    duration_s: float | None
    complete: bool


def forecast_checks(
    records: Sequence[Mapping[str, Any]],
    actual: Actual | None,
    end: float | None,
    rank: int | None,
    problems: list[str] | None,
    *,
    segment: bool,
) -> list[PredictionCheck]:
    """The first record and the latest made by ``end``, checked (see ``prediction_checks``)."""
    before_end = []
    for index, record in enumerate(records, start=1):
        made = decode.maybe_number(record.get("t_unix"))
        if made is None:
            if problems is not None:
                problems.append(f"prediction record {index} has no time; skipped")
        elif end is None or made <= end:
            before_end.append(record)
    picks: list[tuple[str, Mapping[str, Any]]] = []
    if before_end:
        first, latest = before_end[0], before_end[-1]
        picks = [("only", first)] if first is latest else [("first", first), ("latest", latest)]
    checks = []
    for which, record in picks:
        try:
            checks.append(_check(which, record, actual, rank, segment=segment))
        except (KeyError, TypeError, ValueError, IndexError):
            if problems is not None:
                problems.append(f"{which} prediction record is malformed; skipped")
    return checks


def _check(
    which: str,
    record: Mapping[str, Any],
    actual: Actual | None,
    rank: int | None,
    *,
    segment: bool,
) -> PredictionCheck:
    """One record beside ``actual``; ``segment`` takes out what earlier runs contributed."""
    co2e = record.get("co2e_kg")
    interval = record.get("interval")
    resumed = record.get("resumed")
    before = resumed_from_record(resumed) if segment and resumed is not None else None
    energy = decode.triple(record["energy_kwh"], decode.MAX_ENERGY_J / JOULES_PER_KWH)
    co2e_kg = None if co2e is None else decode.triple(co2e, decode.MAX_CO2E_KG)
    duration = decode.triple(record["duration_s"], decode.MAX_DURATION_S)
    steps_done, total_steps = (
        decode.count(record["steps_done"]),
        decode.count(record["total_steps"]),
    )
    if before is not None:
        energy = _less(energy, before.energy_kwh)
        co2e_kg = None if co2e_kg is None else _less(co2e_kg, before.co2e_kg or 0.0)
        duration = _less(duration, before.duration_s)
        steps_done, total_steps = steps_done - before.steps, total_steps - before.steps
    return PredictionCheck(
        which=which,
        rank=rank,
        t_unix=decode.bounded_number(record["t_unix"], 0.0, decode.MAX_UNIX),
        steps_done=steps_done,
        total_steps=total_steps,
        energy_kwh=energy,
        co2e_kg=co2e_kg,
        duration_s=duration,
        interval=None if interval is None else decode.bounded_number(interval, 0.0, 1.0),
        actual_energy_kwh=None if actual is None else actual.energy_kwh,
        actual_co2e_kg=None if actual is None else actual.co2e_kg,
        actual_duration_s=None if actual is None else actual.duration_s,
        actual_complete=actual is not None and actual.complete,
    )


def _less(triple: tuple[float, float, float], offset: float) -> tuple[float, float, float]:
    low, mid, high = triple
    return low - offset, mid - offset, high - offset


def _within(bounds: tuple[float, float, float], actual: float | None) -> bool | None:
    return None if actual is None else bounds[0] <= actual <= bounds[2]


def _relative_error(predicted: float, actual: float | None) -> float | None:
    return None if not actual else (predicted - actual) / actual
