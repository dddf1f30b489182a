"""What lies ahead of a training run: its forecast, and what to say or do about it and the budget.

``Outlook`` is the part of the training monitor that looks forward. It gives this rank's whole-run
forecast (``ForecastSums``) to sum over the ranks with the totals, and judges the summed totals
against the budget: it hands the first forecast's figures to ``announce`` once (the adapters show
them as reporting words them), with a much cleaner start when the live forecast has one (looked
for once, in the slots already fetched), warns once when the forecast or the totals pass a limit,
and raises ``should_stop`` for ``on_budget="stop"`` (from sums, so every rank decides alike).
"""

from __future__ import annotations

import itertools
import math
import statistics
import time
import warnings
from collections.abc import Callable, Sequence

from carbon_callbacks._internal.warnings import CarbonCallbacksWarning
from carbon_callbacks.tracking.measurement import JOULES_PER_KWH, Measurement
from carbon_callbacks.tracking.tracker import Tracker
from carbon_callbacks.training.budget import Budget
from carbon_callbacks.training.outcome import CleanerStart, ForecastFigures
from carbon_callbacks.training.prediction import Forecast, Pause, Rates, fit_rates, project
from carbon_callbacks.training.sums import ForecastSums, RunSums

FORECAST_EVERY_S = 10.0
"""Between epoch ends, the forecast's rates are learned again at most this often (reading the
timeline costs milliseconds); in between, every call projects the latest rates from its own
figures, which costs nothing, so a logged forecast is never older than the energy beside it."""
PREDICTION_RECORD_SPAN_FRACTION = 128
"""Forecasts are recorded at epoch ends at most every (run length so far / this): every epoch
in an ordinary run, a few hundred records in a week of short epochs rather than one each."""
CLEANER_START_WITHIN_S = 24 * 3600.0
"""How much later than the run's own start a cleaner start is looked for."""
CLEANER_START_SAVING = 0.2
"""The least share of CO2e a later start must save to be mentioned with the first forecast."""


class Outlook:
    """The forecast and budget side of a training run.

    Args:
        budget: The limits and what reaching them means.
        warmup_steps: Steps to leave out of the forecast; None detects them.
    """

    def __init__(self, budget: Budget, warmup_steps: int | None) -> None:
        self.budget = budget
        self._warmup_steps = warmup_steps
        self.announce: Callable[[ForecastFigures], object] = _show_nothing
        """Shows the first forecast on global rank 0 (the adapters: as reporting words it), and
        a later one once more when it brings the cleaner-start hint the first could not."""
        self.quiet = False
        """True announces nothing; the forecast is still logged and recorded."""
        self.total_steps: int | None = None
        self.epoch_steps: int | None = None
        """Steps in the latest whole epoch: forecast chunks then span whole epochs."""
        self.records: list[dict[str, object]] = []
        """This run's forecasts, as written to the run log (with their time)."""
        self.should_stop = False
        self._said: set[str] = set()
        self.reset()

    def reset(self) -> None:
        """Forget the previous run: forecasts, announcements, epoch length, stop decision.

        A new start may train on other data, so the epoch length is learned again.
        """
        self.records = []
        self.epoch_steps = None
        self._said = set()
        self.should_stop = False
        self._fitted_at = -math.inf
        self._recorded_at = -math.inf
        self._duration_s: float | None = None
        self._rates: Rates | None = None
        self._ahead_g_per_kwh: float | None = None
        self._pauses: list[Pause] = []
        self._batch_starts: list[float] = []
        self._cleaner_start: CleanerStart | None = None
        self._looked_for_cleaner_start = False

    def begin_pause(self, seconds: float) -> None:
        """A validation pass begins ``seconds`` into the run: no training step's cost."""
        self._pauses.append(Pause(seconds))
        self._batch_starts = []

    def pause_batch(self, seconds: float) -> None:
        """A batch of the open validation pass begins ``seconds`` into the run."""
        if self._pauses and self._pauses[-1].end_s is None:
            self._batch_starts.append(seconds)

    def end_pause(self, seconds: float, steps: int) -> None:
        """The validation pass begun last ends ``seconds`` into the run, ``steps`` steps in."""
        if self._pauses and self._pauses[-1].end_s is None:
            began = self._pauses[-1].start_s
            self._pauses[-1] = Pause(began, seconds, steps, _typical_s(self._batch_starts, seconds))
        self._batch_starts = []

    @property
    def duration_s(self) -> float | None:
        """The latest forecast of the whole training's duration (not summed: time is shared)."""
        return self._duration_s

    def vector(
        self,
        tracker: Tracker,
        now: Measurement,
        earlier: tuple[float, float, int, float],
        *,
        refresh: bool,
    ) -> ForecastSums:
        """This rank's whole-run forecast: facility joules and kg CO2e (low, central, high).

        Args:
            tracker: The running tracker (its step timeline, its intensity ahead, its run log).
            now: The run's figures so far.
            earlier: Facility joules, kg CO2e, steps and seconds of the runs this one resumes:
                the forecast covers the whole training, every figure over the same span.
            refresh: Learn the rates again now (an epoch end); else at most every
                ``FORECAST_EVERY_S``. Either way the totals are projected from ``now``.

        NaN means no forecast (the monitor gives 0 for a rank that measures nothing by design).
        """
        if self.total_steps is None:
            return ForecastSums.filled(math.nan)
        earlier_j, earlier_kg, earlier_steps, earlier_s = earlier
        planned = self.total_steps - earlier_steps
        fitted = False
        due = refresh or now.duration_s - self._fitted_at >= FORECAST_EVERY_S
        if due and (now.steps or 0) < planned:  # a run that is done has nothing to forecast
            self._fitted_at = now.duration_s
            rates = fit_rates(
                tracker.step_timeline(),
                warmup_steps=self._warmup_steps,
                period_steps=self.epoch_steps,
                # inside an epoch, wait for a tenth of the run; an epoch end is evidence enough
                min_steps=0 if refresh else planned // 10,
                pauses=self._pauses,
            )
            if rates is not None:  # else the rates learned before still hold
                self._rates, fitted = rates, True
        if self._rates is None or now.energy_j is None or now.steps is None:
            self._duration_s = None
            return ForecastSums.filled(math.nan)
        outlook = project(self._rates, planned, now.duration_s, now.energy_j, now.steps)
        if fitted:
            ahead = tracker.intensity_ahead(outlook.remaining_s)
            self._ahead_g_per_kwh = None if ahead is None else ahead.g_per_kwh
        energy = [earlier_j + joules * now.pue for joules in outlook.energy_j]
        co2e = [math.nan] * 3
        if self._ahead_g_per_kwh is not None and now.co2e_kg is not None:
            so_far_j = earlier_j + now.energy_j * now.pue
            so_far_kg = earlier_kg + now.co2e_kg
            co2e = [
                so_far_kg
                + max(total - so_far_j, 0.0) / JOULES_PER_KWH * self._ahead_g_per_kwh / 1000
                for total in energy
            ]
        self._duration_s = earlier_s + outlook.duration_s[1]
        first = "forecast" not in self._said
        if fitted and (refresh or first) and self._record_due(now.duration_s):
            self._recorded_at = now.duration_s
            record = _prediction_record(outlook, energy, co2e, earlier)
            # Judged once, from the first forecast made with the live forecast fetched: a fetch
            # still under way at the first forecast leaves the hint to a later one.
            if not self._looked_for_cleaner_start and tracker.live_forecast_known:
                self._looked_for_cleaner_start = True
                self._cleaner_start = _cleaner_start(tracker, outlook.duration_s[1])
                if self._cleaner_start is not None:
                    record["cleaner_start"] = self._cleaner_start.to_dict()
            tracker.record("prediction", record)
            self.records.append(record | {"t_unix": time.time()})
        return ForecastSums(*energy, *co2e)

    def _record_due(self, seconds: float) -> bool:
        """Whether a forecast made ``seconds`` into the run is kept (thinned in long runs)."""
        return seconds - self._recorded_at >= seconds / PREDICTION_RECORD_SPAN_FRACTION

    def judge(self, sums: RunSums, global_rank: int) -> None:
        """Announce the first forecast; warn when it exceeds a budget; act on a reached budget.

        ``sums`` are summed over the ranks, so every rank decides alike; nothing is judged while
        the energy is unknown.
        """
        if not math.isfinite(sums.energy_j):
            return
        energy = sums.energy_j / JOULES_PER_KWH
        co2e = sums.co2e_kg if math.isfinite(sums.co2e_kg) else None
        forecast = sums.forecast
        if math.isfinite(forecast.energy_j):
            figures = ForecastFigures(
                total_steps=self.total_steps,
                energy_kwh=(
                    forecast.energy_low_j / JOULES_PER_KWH,
                    forecast.energy_j / JOULES_PER_KWH,
                    forecast.energy_high_j / JOULES_PER_KWH,
                ),
                co2e_kg=(
                    (forecast.co2e_low_kg, forecast.co2e_kg, forecast.co2e_high_kg)
                    if math.isfinite(forecast.co2e_kg)
                    else None
                ),
                duration_s=self._duration_s,
                cleaner_start=self._cleaner_start,
            )
            if not self.quiet:
                self._announce_once(figures, global_rank)
            predicted_co2e = None if figures.co2e_kg is None else figures.co2e_kg[1]
            over = self.budget.predicted_over(figures.energy_kwh[1], predicted_co2e)
            if over is not None:
                self._once("budget-forecast", global_rank, _warning(f"this run is {over}"))
        reached = self.budget.reached(energy, co2e)
        if reached is not None:
            stopping = self.budget.on_budget == "stop"
            then = "stopping training" if stopping else "training continues (on_budget='warn')"
            self._once(
                "budget-reached", global_rank, _warning(f"budget reached: {reached}; {then}")
            )
            self.should_stop = self.should_stop or stopping

    def _announce_once(self, figures: ForecastFigures, global_rank: int) -> None:
        """Show the first forecast, with the cleaner-start hint when it is known.

        A hint judged later (live data came after the first forecast) is shown once, with the
        forecast of then.
        """
        if "forecast" not in self._said and figures.cleaner_start is not None:
            self._said.add("cleaner-start")  # the first announcement carries it
        self._once("forecast", global_rank, lambda: self.announce(figures))
        if figures.cleaner_start is not None:
            self._once("cleaner-start", global_rank, lambda: self.announce(figures))

    def _once(self, key: str, global_rank: int, action: Callable[[], object]) -> None:
        """Run ``action`` the first time ``key`` comes up, on global rank 0 only."""
        if key in self._said:
            return
        self._said.add(key)
        if global_rank == 0:
            action()


def _cleaner_start(tracker: Tracker, duration_s: float) -> CleanerStart | None:
    """A start within a day of the run's that the live forecast says saves a fifth of its CO2e.

    The run is taken at its forecast length (this run's, from its start); the forecast is what the
    live source has already fetched. None without one covering such a run, or below the saving.
    """
    choice = tracker.cleanest_start(duration_s, CLEANER_START_WITHIN_S)
    if choice is None or choice.now_g_per_kwh is None:
        return None
    saving = choice.saving_fraction
    if saving is None or saving < CLEANER_START_SAVING - 1e-9:  # float rounding: 20% is 20%
        return None
    return CleanerStart(choice.start_unix, choice.g_per_kwh, choice.now_unix, choice.now_g_per_kwh)


def _typical_s(batch_starts: Sequence[float], end_s: float) -> float | None:
    """A pass's length at the pace of its median batch (from three batches on), else None."""
    lengths = [b - a for a, b in itertools.pairwise([*batch_starts, end_s])]
    if len(lengths) < 3:
        return None
    return statistics.median(lengths) * len(lengths)


def _warning(message: str) -> Callable[[], None]:
    def warn() -> None:
        warnings.warn(f"carbon-callbacks: {message}", CarbonCallbacksWarning, stacklevel=6)

    return warn


def _prediction_record(
    outlook: Forecast,
    energy_j: Sequence[float],
    co2e_kg: Sequence[float],
    earlier: tuple[float, float, int, float],
) -> dict[str, object]:
    """The run-log record of a forecast: this rank's figures for the whole training.

    In a resumed run, ``resumed`` holds what the earlier runs contributed to each figure, so a
    reader compares the forecast with the whole training, or the rest with this run alone.
    """
    earlier_j, earlier_kg, earlier_steps, earlier_s = earlier
    record: dict[str, object] = {
        "steps_done": earlier_steps + outlook.steps_done,
        "total_steps": earlier_steps + outlook.total_steps,
        "warmup_steps": outlook.warmup_steps,
        "energy_kwh": [joules / JOULES_PER_KWH for joules in energy_j],
        "co2e_kg": None if any(math.isnan(kg) for kg in co2e_kg) else list(co2e_kg),
        "duration_s": [earlier_s + seconds for seconds in outlook.duration_s],
        "interval": outlook.interval,
    }
    if earlier_steps > 0:
        record["resumed"] = {
            "steps": earlier_steps,
            "energy_kwh": earlier_j / JOULES_PER_KWH,
            "co2e_kg": earlier_kg,
            "duration_s": earlier_s,
        }
    return record


def _show_nothing(forecast: ForecastFigures) -> None:
    """The default ``announce``: a loop of your own sets one (``reporting.text`` words it)."""
