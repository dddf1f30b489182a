"""The figures a training run hands over for people to read: the first forecast, the outcome.

The monitor decides when there is something to show (the first forecast, once; the end of
training, on global rank 0); ``carbon_callbacks.reporting.text`` turns these figures into the
lines (``format_forecast_line``, ``format_training_summary``), so training holds no text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from carbon_callbacks.tracking.measurement import Measurement


@dataclass(frozen=True)
class CleanerStart:
    """A later start the live forecast says would have cut the run's CO2e by a fifth or more.

    Information for people, never an action: the run goes on as it started.

    Attributes:
        start_unix: The start, within a day of the run's own, with the lowest forecast mean.
        g_per_kwh: The forecast mean intensity over the run started then.
        run_start_unix: When the run started.
        started_g_per_kwh: The forecast mean intensity over the run as it started.
    """

    start_unix: float
    g_per_kwh: float
    run_start_unix: float
    started_g_per_kwh: float

    @property
    def saving_fraction(self) -> float:
        """The share of CO2e that start would have saved (0.4 = 40% less)."""
        return 1.0 - self.g_per_kwh / self.started_g_per_kwh

    def to_dict(self) -> dict[str, float]:
        """The run-log form: a ``prediction`` record's ``cleaner_start`` field.

        It is in the record made when the hint was judged: the first, unless live data came later.
        """
        return {
            "start_unix": self.start_unix,
            "g_per_kwh": self.g_per_kwh,
            "run_start_unix": self.run_start_unix,
            "started_g_per_kwh": self.started_g_per_kwh,
            "saving_fraction": self.saving_fraction,
        }


@dataclass(frozen=True)
class ForecastFigures:
    """A whole-run forecast, all ranks together, as announced once it is first known.

    Attributes:
        total_steps: The planned run's length in optimizer steps.
        energy_kwh: Facility energy (low, central, high) of the 80% interval.
        co2e_kg: CO2e (low, central, high), or None without an intensity to forecast it.
        duration_s: The run's forecast duration, or None when unknown.
        cleaner_start: A start that would have emitted much less, or None (no live forecast,
            none covering the run, or no start within a day saving a fifth or more).
    """

    total_steps: int | None
    energy_kwh: tuple[float, float, float]
    co2e_kg: tuple[float, float, float] | None
    duration_s: float | None
    cleaner_start: CleanerStart | None = None


@dataclass(frozen=True)
class TrainingOutcome:
    """What a finished training run measured, for the summary global rank 0 shows.

    Attributes:
        status: How the run ended (``"completed"``, ...).
        measurement: This rank's figures, from the stop's own read (the run log's summary).
        forecasts: This run's forecast records, in order, as written to the run log.
        steps_done: Optimizer steps done, the runs it resumed included.
        total_steps: The planned length in steps, or None when unknown.
        log_problem: Why the run log is incomplete, or None.
        world_size: Processes that took part.
        resumed: True when the run continued a checkpointed one.
        total_energy_kwh: All ranks' and resumed runs' facility energy, or None when unknown.
        total_co2e_kg: Their CO2e, or None when unknown.
        log_path: This rank's run log, absolute (a launcher such as Ray may have changed the
            working directory); None when no log is written.
    """

    status: str
    measurement: Measurement
    forecasts: Sequence[Mapping[str, object]]
    steps_done: int
    total_steps: int | None
    log_problem: str | None
    world_size: int
    resumed: bool
    total_energy_kwh: float | None
    total_co2e_kg: float | None
    log_path: Path | None = None

    @property
    def finished(self) -> bool:
        """True when the run did its planned steps (or had no plan): a forecast then applies."""
        return self.total_steps is None or self.steps_done >= self.total_steps
