"""What lies ahead of a training run: its forecast, and what to say or do about it and the budget.

``Outlook`` is the part of the training monitor that looks forward. It gives this rank's whole-run
forecast as six numbers to sum over the ranks with the totals, turns the summed forecast into the
``predicted_*`` metrics, and judges the summed totals against the budget: it announces the first
forecast once, warns once when the forecast or the totals pass a limit, and raises ``should_stop``
for ``on_budget="stop"`` (from sums, so every rank decides alike).
"""

from __future__ import annotations

import itertools
import math
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence

from carbon_callbacks._internal.warnings import CarbonCallbacksWarning
from carbon_callbacks.reporting.equivalents import car_km
from carbon_callbacks.tracking.measurement import JOULES_PER_KWH, Measurement
from carbon_callbacks.tracking.tracker import Tracker
from carbon_callbacks.training.budget import Budget
from carbon_callbacks.training.prediction import Forecast, Pause, Rates, fit_rates, project

FORECAST_EVERY_S = 10.0
"""Between epoch ends, the forecast's rates are learned again at most this often (reading the
timeline costs milliseconds); in between, every call projects the latest rates from its own
figures, which costs nothing, so a logged forecast is never older than the energy beside it."""
FORECAST_LEN = 6
"""Energy J (low, mid, high), then CO2e kg (low, mid, high)."""
PREDICTION_RECORD_SPAN_FRACTION = 128
"""Forecasts are recorded at epoch ends at most every (run length so far / this): every epoch
in an ordinary run, a few hundred records in a week of short epochs rather than one each."""


class Outlook:
    """The forecast and budget side of a training run.

    Args:
        budget: The limits and what reaching them means.
        warmup_steps: Steps to leave out of the forecast; None detects them.
        prefix: The metric-name prefix.
    """

    def __init__(self, budget: Budget, warmup_steps: int | None, prefix: str) -> None:
        self.budget = budget
        self.prefix = prefix
        self._warmup_steps = warmup_steps
        self.announce: Callable[[str], object] = _to_stderr
        """Shows the one-off lines (the first forecast) on global rank 0."""
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
        self._forecast = [math.nan] * FORECAST_LEN
        self._fitted_at = -math.inf
        self._recorded_at = -math.inf
        self._duration_s: float | None = None
        self._rates: Rates | None = None
        self._ahead_g_per_kwh: float | None = None
        self._pauses: list[Pause] = []
        self._batch_starts: list[float] = []

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

    def unknown(self) -> dict[str, float]:
        """Every ``predicted_*`` metric as NaN (unknown) when the run's length is known, else none.

        For loggers that fix their columns at the first epoch (Keras's ``CSVLogger``, ``History``).
        """
        if self.total_steps is None:
            return {}
        names = ("energy_kwh", "co2e_kg")
        return self._named(
            **{f"predicted_{n}{end}": math.nan for n in names for end in ("", "_low", "_high")},
            predicted_duration_s=math.nan,
        )

    def vector(
        self,
        tracker: Tracker,
        now: Measurement,
        earlier: tuple[float, float, int, float],
        *,
        refresh: bool,
    ) -> list[float]:
        """This rank's whole-run forecast [energy J low, mid, high, CO2e kg low, mid, high].

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
            return [math.nan] * FORECAST_LEN
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
            self._forecast, self._duration_s = [math.nan] * FORECAST_LEN, None
            return self._forecast
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
        self._forecast = [*energy, *co2e]
        first = "forecast" not in self._said
        if fitted and (refresh or first) and self._record_due(now.duration_s):
            self._recorded_at = now.duration_s
            record = _prediction_record(outlook, energy, co2e, earlier)
            tracker.record("prediction", record)
            self.records.append(record | {"t_unix": time.time()})
        return self._forecast

    def _record_due(self, seconds: float) -> bool:
        """Whether a forecast made ``seconds`` into the run is kept (thinned in long runs)."""
        return seconds - self._recorded_at >= seconds / PREDICTION_RECORD_SPAN_FRACTION

    def metrics(self, summed: Sequence[float]) -> dict[str, float]:
        """The ``predicted_*`` metrics from a forecast vector summed over the ranks."""
        e_low, e_mid, e_high, c_low, c_mid, c_high = summed
        if not math.isfinite(e_mid):
            return {}
        metrics = self._named(
            predicted_energy_kwh=e_mid / JOULES_PER_KWH,
            predicted_energy_kwh_low=e_low / JOULES_PER_KWH,
            predicted_energy_kwh_high=e_high / JOULES_PER_KWH,
        )
        if math.isfinite(c_mid):
            metrics |= self._named(
                predicted_co2e_kg=c_mid, predicted_co2e_kg_low=c_low, predicted_co2e_kg_high=c_high
            )
        if self._duration_s is not None:
            metrics |= self._named(predicted_duration_s=self._duration_s)
        return metrics

    def judge(self, metrics: dict[str, float], global_rank: int) -> None:
        """Announce the first forecast; warn when it exceeds a budget; act on a reached budget."""
        energy = metrics.get(f"{self.prefix}energy_kwh")
        co2e = metrics.get(f"{self.prefix}co2e_kg")
        predicted_energy = metrics.get(f"{self.prefix}predicted_energy_kwh")
        predicted_co2e = metrics.get(f"{self.prefix}predicted_co2e_kg")
        if predicted_energy is not None:
            if not self.quiet:
                self._once("forecast", global_rank, lambda: self.announce(self._line(metrics)))
            over = self.budget.predicted_over(predicted_energy, predicted_co2e)
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

    def _line(self, metrics: dict[str, float]) -> str:
        """The one line announcing the forecast."""

        def named(name: str) -> float:
            return metrics[f"{self.prefix}{name}"]

        line = (
            f"carbon-callbacks: predicted for {self.total_steps} steps: "
            f"{named('predicted_energy_kwh'):.3g} kWh "
            f"({named('predicted_energy_kwh_low'):.3g}-{named('predicted_energy_kwh_high'):.3g})"
        )
        has_co2e = f"{self.prefix}predicted_co2e_kg" in metrics
        if has_co2e:
            line += (
                f", {named('predicted_co2e_kg') * 1000:.3g} g CO2e "
                f"({named('predicted_co2e_kg_low') * 1000:.3g}-"
                f"{named('predicted_co2e_kg_high') * 1000:.3g})"
            )
        if f"{self.prefix}predicted_duration_s" in metrics:
            line += f", {named('predicted_duration_s') / 60:.3g} min"
        line += " (80% interval)"
        if has_co2e:
            km = car_km(named("predicted_co2e_kg"))
            line += f"; as much CO2e as an average new car driven {km:.3g} km (EEA 2023)"
        return line

    def _once(self, key: str, global_rank: int, action: Callable[[], object]) -> None:
        """Run ``action`` the first time ``key`` comes up, on global rank 0 only."""
        if key in self._said:
            return
        self._said.add(key)
        if global_rank == 0:
            action()

    def _named(self, **values: float) -> dict[str, float]:
        return {f"{self.prefix}{name}": float(value) for name, value in values.items()}


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


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr)
