"""The framework-neutral training monitor the three callbacks share: metrics, epochs, ranks, resume.

An adapter maps its framework's hooks onto ``TrainingMonitor`` and hands the returned metric dicts
to the framework's own logger; everything else lives here once:

- the metric names (one table, ``METRICS`` in ``metrics``), all prefixed (default ``carbon/``);
- epochs as exact windows, phases inside them (validation inside a Lightning training epoch);
- step-level metrics over an interval ending at the latest sample, every figure of it from the
  same two points, widened until the counters' resolution cannot move it by 10% (``intervals``);
- the devices: the accelerators the trainer uses (none for a CPU run), not every visible one;
- distributed runs: each rank measures its own accelerator and its own process tree (the CPU
  estimate), one rank per node the host-level channels (RAPL: the whole socket); the ranks share
  rank 0's run id (``ranks``); totals are summed across ranks by a ``Reducer`` the adapter
  supplies (the framework's collective), as the named figures of ``sums``;
- resume: ``state_dict`` / ``load_state_dict`` carry the totals of the runs before this one and
  the id of the run that saved them; the resumed run's log gets a ``resume`` record naming it, so
  a report links the segments of one training, and forecasts cover the whole training (energy,
  CO2e, steps and duration alike) with the earlier part stated, so each is compared like with like.

The per-step path (``step``) is two additions and a timestamp; nothing in it reads a meter.
At the end, ``finish`` hands over the figures (``TrainingOutcome``); ``reporting.text`` words them.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from carbon_callbacks.tracking.measurement import Measurement
from carbon_callbacks.tracking.tracker import RunStatus, Tracker
from carbon_callbacks.training.budget import Budget, OnBudget
from carbon_callbacks.training.intervals import Point, span
from carbon_callbacks.training.metrics import (
    DEFAULT_PREFIX,
    METRICS,
    WATCHED,
    MetricSet,
    check_metric_set,
    epoch_metrics,
    hidden_names,
    interval_metrics,
    run_metrics,
    unknown_forecast_metrics,
)
from carbon_callbacks.training.outcome import ForecastFigures, TrainingOutcome
from carbon_callbacks.training.outlook import Outlook
from carbon_callbacks.training.ranks import RankInfo, agree_on_run
from carbon_callbacks.training.resume import Earlier
from carbon_callbacks.training.sums import (
    EpochSums,
    ForecastSums,
    IntervalSums,
    Reducer,
    RunSums,
)

__all__ = ["DEFAULT_PREFIX", "METRICS", "WATCHED", "RankInfo", "Reducer", "TrainingMonitor"]

EPOCH_WINDOW = "epoch"
"""The name of the run-log window of each epoch."""

_Sums = TypeVar("_Sums", bound=RunSums)


def _identity(values: Sequence[float]) -> Sequence[float]:
    return values


class TrainingMonitor:
    """Measures a training run for a framework callback.

    Args:
        prefix: Prepended to every metric name (default ``"carbon/"``).
        quiet: Announce nothing (the one-line forecast); the forecast is still logged and
            recorded. The callbacks pass their ``summary=False`` here.
        metrics: What the console shows: ``"default"``, the few a person watches
            (``metrics.WATCHED``: energy and CO2e so far, power, the forecast once known), or
            ``"all"``. Loggers that store may get all either way, where the framework allows.
        tracker_options: Passed to ``Tracker`` (location, ``pue``, ``output_dir``, ...). They are
            checked now, so a mistake fails when the callback is built, not when training starts.

    Raises:
        ValueError, TypeError: An option is invalid; the message says what to write instead.
    """

    def __init__(
        self,
        *,
        prefix: str = DEFAULT_PREFIX,
        max_energy_kwh: float | None = None,
        max_co2e_kg: float | None = None,
        on_budget: OnBudget = "warn",
        warmup_steps: int | None = None,
        quiet: bool = False,
        metrics: MetricSet = "default",
        **tracker_options: Any,
    ) -> None:
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a string, got {prefix!r}; write prefix='carbon/'")
        if warmup_steps is not None and (
            isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 0
        ):
            raise ValueError(
                f"warmup_steps must be an int >= 0 or None (detect), got {warmup_steps!r}; "
                "write e.g. warmup_steps=20"
            )
        self.prefix = prefix
        self.metric_set = check_metric_set(metrics)
        """Which metrics the console shows: ``"default"`` (``metrics.WATCHED``) or ``"all"``."""
        self._options = dict(tracker_options)
        # validate now, to fail at construction rather than at fit; building a Tracker opens
        # nothing (meters, threads and HTTP sessions open at start, and close at stop); the
        # framework says the rank at start, so the launcher's environment is not read here
        Tracker(**(self._options | {"rank": RankInfo()}))
        self.outlook = Outlook(Budget(max_energy_kwh, max_co2e_kg, on_budget), warmup_steps)
        """The forecast, its announcement and the budget decisions."""
        self.outlook.quiet = quiet
        self._epoch_begin_steps: int | None = None
        self.tracker: Tracker | None = None
        self.rank = RankInfo()
        self._reduce: Reducer = _identity
        self._previous = Earlier()
        self._resume_recorded = False
        self._last_reduced: tuple[float, float] | None = None
        """All ranks' facility J and kg CO2e at the latest collective, for a checkpoint."""
        self._epoch_start: Measurement | None = None
        self._phase_start: dict[str, Measurement] = {}
        self._phase_joules: dict[str, float] = {}
        self._power_from: Point | None = None
        """Where the power's interval starts (carried on while too short)."""
        self._work_from: Point | None = None
        """Where the interval of the figures per step, sample and token starts."""
        self._latest: Point | None = None
        """The latest logging step's point."""
        self.final_metrics: dict[str, float] = {}
        """The totals summed over the ranks when ``finish`` ran; empty before."""

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, rank: RankInfo | None = None, reduce: Reducer | None = None) -> None:
        """Start measuring (idempotent): the devices in use, this process tree, the host (rank 0).

        The host-level channels (RAPL) are measured on local rank 0 only. In a distributed run
        every rank must call it: one collective gives every rank global rank 0's run id and the
        process ids of the other ranks (which the CPU estimate leaves out, should a launcher have
        started them as children of this process).
        """
        if self.tracker is not None and self.tracker.is_running:
            return
        self.rank = rank or RankInfo()
        self._reduce = reduce or _identity
        options = dict(self._options)
        if "gpu_ids" in options:  # the user's choice (None: every visible GPU) stands
            options["rank"] = dataclasses.replace(self.rank, devices=None)
        else:
            options["rank"] = self.rank  # the framework's word, not the environment's
            if self.rank.devices is not None:
                options["gpu_ids"] = list(self.rank.devices)
        if self.rank.distributed:
            run_id, other_ranks = agree_on_run(self.rank, self._reduce_vector)
            options["measure_host"] = self.rank.measures_host
            options["exclude_pids"] = other_ranks
            options["run_id"] = run_id
            options["context"] = {"distributed": self.rank.to_dict() | {"run_id": run_id}}
        self.tracker = Tracker(**options).start()
        if self.rank.global_rank != 0 and self._previous.scope == "all ranks":
            self._previous = Earlier()  # global rank 0 carries the checkpoint's all-ranks totals
        self._resume_recorded = False
        self._record_resume()
        self.final_metrics = {}
        self.outlook.reset()
        self._last_reduced = None  # a previous run's all-ranks totals are not this run's
        self._epoch_begin_steps = None
        self._epoch_start = None
        self._phase_start, self._phase_joules = {}, {}
        self._restart_intervals(self.tracker.so_far(exact=False))  # the start's exact read

    def stop(self, status: RunStatus = "completed") -> Measurement | None:
        """Stop measuring and return this rank's figures; idempotent, safe before ``start``.

        Runs no collective, so it is the call for exception paths, where other ranks may be gone.
        """
        return None if self.tracker is None else self.tracker.stop(status)

    def totals(self, *, collective: bool = True) -> dict[str, float]:
        """The run's totals now (energy, CO2e, intensity, flags), from an exact read.

        Args:
            collective: Sum over the ranks (every rank must then call it at the same point);
                False gives this rank's figures without waiting on others (exception paths).
        """
        local = self._run_sums(self._exact(), ForecastSums.filled(math.nan))
        return self._conclude(self._sum(local) if collective else local)

    def finish(self, status: RunStatus = "completed") -> TrainingOutcome | None:
        """Stop at the normal end of training and hand over what global rank 0 shows.

        Every rank must call it (it sums the totals over the ranks); the totals are kept in
        ``final_metrics`` for the adapter to log. Other ranks, and a second call, get None.
        ``reporting.text.format_training_summary`` words the outcome.
        """
        if not self.is_running:
            return None
        # the totals come from the stop's own read, so the logged figures equal the run log's
        # summary (two reads a moment apart differ wherever energy goes on being counted)
        measurement = self.stop(status)
        local = self._run_sums(measurement, ForecastSums.filled(math.nan))
        self.final_metrics = self._conclude(self._sum(local))
        if measurement is None or self.rank.global_rank != 0:
            return None
        return TrainingOutcome(
            status=status,
            measurement=measurement,
            forecasts=list(self.outlook.records),
            steps_done=self._previous.steps + (measurement.steps or 0),
            total_steps=self.outlook.total_steps,
            log_problem=None if self.tracker is None else self.tracker.log_problem,
            world_size=self.rank.world_size,
            resumed=self._previous.steps > 0,
            total_energy_kwh=self.final_metrics.get(f"{self.prefix}energy_kwh"),
            total_co2e_kg=self.final_metrics.get(f"{self.prefix}co2e_kg"),
            log_path=None if self.tracker is None else self.tracker.log_path,
        )

    @property
    def is_running(self) -> bool:
        """True between ``start`` and ``stop``."""
        return self.tracker is not None and self.tracker.is_running

    def set_total_steps(self, total_steps: int | None) -> None:
        """The run's configured length in optimizer steps (all epochs), for the forecast."""
        self.outlook.total_steps = total_steps if total_steps and total_steps > 0 else None

    @property
    def should_stop(self) -> bool:
        """True once a budget with ``on_budget="stop"`` is reached (the same on every rank)."""
        return self.outlook.should_stop

    @property
    def announce(self) -> Callable[[ForecastFigures], object]:
        """Shows the first forecast on global rank 0, once; by default nothing is shown.

        The callbacks show it as ``reporting.text.format_forecast_line`` words it.
        """
        return self.outlook.announce

    @announce.setter
    def announce(self, show: Callable[[ForecastFigures], object]) -> None:
        self.outlook.announce = show

    def shown(self, metrics: Mapping[str, float]) -> dict[str, float]:
        """Those of ``metrics`` the console shows (``metric_set``); other names pass through."""
        hidden = set(hidden_names(self.prefix, metrics, self.metric_set))
        return {name: value for name, value in metrics.items() if name not in hidden}

    def hidden(self, names: Iterable[str]) -> list[str]:
        """Those of ``names`` that are our metrics the console leaves out."""
        return hidden_names(self.prefix, names, self.metric_set)

    # -- hot path ----------------------------------------------------------------------------

    def step(self, samples: int | None = None, tokens: int | None = None, count: int = 1) -> None:
        """Record ``count`` optimizer steps and the samples and tokens they processed here."""
        tracker = self.tracker
        if tracker is None:
            return
        tracker.step(count, samples=samples or 0, tokens=tokens or 0)

    # -- epochs and phases -------------------------------------------------------------------

    def begin_epoch(self) -> None:
        """Mark the start of an epoch with an exact read (and open its run-log window)."""
        self._epoch_start = self._exact()
        self._epoch_begin_steps = None if self.tracker is None else self.tracker.steps
        self._phase_joules = {}
        if self.tracker is not None:
            self.tracker.begin_window(EPOCH_WINDOW)

    def end_epoch(self, *, every_forecast_name: bool = False) -> dict[str, float]:
        """Metrics at the end of an epoch: totals so far, the epoch's own figures, its phases.

        Every rank must call it at the same point (it may run a collective).

        Args:
            every_forecast_name: Give every ``predicted_*`` metric from the first epoch on, NaN
                while unknown, for loggers whose columns are fixed at the first epoch (Keras's
                ``CSVLogger``) or that list values by epoch (``History``).
        """
        now = self._exact()
        start, self._epoch_start = self._epoch_start, None
        if self.tracker is not None and self._epoch_begin_steps is not None:
            epoch_steps = self.tracker.steps - self._epoch_begin_steps
            if epoch_steps > 0:
                self.outlook.epoch_steps = epoch_steps
        if start is not None and self.tracker is not None:
            self.tracker.end_window(EPOCH_WINDOW)  # the epoch's record in the run log
        epoch_j, epoch_co2e = self._delta(start, now)
        val_j = self._phase_joules.get("val")
        summed = self._sum(
            EpochSums.extended(
                self._run_sums(now, self._forecast_sums(now, refresh=True)),
                epoch_energy_j=_nan(epoch_j),
                epoch_co2e_kg=_nan(epoch_co2e),
                val_energy_j=_nan(val_j),
            )
        )
        metrics = self._conclude(summed)
        if every_forecast_name and self.outlook.total_steps is not None:
            metrics = unknown_forecast_metrics(self.prefix) | metrics
        if start is not None and now is not None:
            metrics |= epoch_metrics(self.prefix, summed, now.duration_s - start.duration_s)
        self._restart_intervals(now)
        return metrics

    def begin_phase(self, name: str) -> None:
        """Open a phase inside the epoch (``"val"`` for validation) with an exact read.

        A phase is no training step's cost: the forecast leaves it out of the steps' cost and
        adds it back as often as phases came so far (once an epoch, or every so many steps).
        """
        start = self._exact()
        if start is not None:
            self._phase_start[name] = start
            self.outlook.begin_pause(start.duration_s)

    def phase_batch(self, name: str) -> None:
        """A batch (or a run of batches) of the open phase ``name`` begins: a timestamp, a count.

        The forecast then takes the first pass, which carries compilation (JAX compiles for
        each new batch shape), at its median batch's pace for the passes to come. Outside the
        phase it does nothing.
        """
        tracker = self.tracker
        if tracker is None or tracker.started_ns is None or name not in self._phase_start:
            return
        self.outlook.pause_batch((time.monotonic_ns() - tracker.started_ns) / 1e9)

    def end_phase(self, name: str) -> None:
        """Close the phase ``name``; its energy is added to the epoch's figure for that phase."""
        start = self._phase_start.pop(name, None)
        end = self._exact()
        joules, _ = self._delta(start, end)
        if start is not None and end is not None:
            self.outlook.end_pause(end.duration_s, end.steps or 0)
        if joules is not None:
            self._phase_joules[name] = self._phase_joules.get(name, 0.0) + joules

    # -- step-level metrics ------------------------------------------------------------------

    def step_metrics(self) -> dict[str, float]:
        """Totals so far, and power and energy per step, sample and token over an interval.

        Figures come from the sampler's latest sample, or from an exact read (between steps, so
        its counts are exact) when no sample has arrived since the previous call (logging more
        often than the sampler polls), when the latest sample leaves the figures per step
        unresolved, or, with a budget, when steps ran after the latest sample. Interval figures
        are left out while their interval is too short to resolve them (``intervals``): it goes
        on to the next call.

        Every rank must call it at the same step (it may run a collective).
        """
        tracker = self.tracker
        if tracker is None or not tracker.is_running:
            return {}
        now = tracker.so_far(exact=False)
        exact = now is not None and self._needs_exact(now, self._latest)
        if exact:
            now = tracker.so_far(exact=True)
        point = None if now is None else Point(now, between_steps=exact)
        adds_nothing = self._adds_nothing(now)
        work = span(self._work_from, point, per_count=True, adds_nothing=adds_nothing)
        if work.unresolved and not exact and self._work_from and self._work_from.between_steps:
            # a sample inside a step may miscount one: read between steps, where counts are exact
            now = tracker.so_far(exact=True)
            point = None if now is None else Point(now, between_steps=True)
            work = span(self._work_from, point, per_count=True, adds_nothing=adds_nothing)
        power = span(self._power_from, point, per_count=False, adds_nothing=adds_nothing)
        summed = self._sum(
            IntervalSums.extended(
                self._run_sums(now, self._forecast_sums(now, refresh=False)),
                power_w=power.power_w,
                power_unresolved=power.unresolved,
                work_power_w=work.power_w,
                energy_per_step_j=work.energy_per_step_j,
                samples_per_s=work.samples_per_s,
                tokens_per_s=work.tokens_per_s,
                work_unresolved=work.unresolved,
            )
        )
        if point is not None:
            self._latest = point
            if summed.power_unresolved == 0:  # the same on every rank: the figures are summed
                self._power_from = point
            if summed.work_unresolved == 0:
                self._work_from = point
        return self._conclude(summed) | interval_metrics(self.prefix, summed)

    # -- resume ------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, float | int | str | None]:
        """The totals so far and this run's id, for a checkpoint; a resumed run adds to them.

        In a distributed run these are the all-ranks totals of the latest collective (an epoch
        end or a logging step), which only global rank 0 takes back on resume, so nothing is
        counted once per rank. ``duration_s`` is the time measured so far, all runs together.
        """
        tracker = self.tracker
        figures = None
        if tracker is not None:
            figures = tracker.summary or tracker.so_far(exact=False)
        energy_j, co2e_kg = self._own_figures(figures)
        totals, scope = (
            (self._previous.energy_j + energy_j, self._previous.co2e_kg + co2e_kg),
            "this rank",
        )
        if self.rank.distributed and self._last_reduced is not None:
            totals, scope = self._last_reduced, "all ranks"
        run_id = tracker.run_id if tracker is not None else None
        samples, tokens = (0, 0) if figures is None else (figures.samples, figures.tokens)
        return self._previous.state(figures, totals, scope, samples or 0, tokens or 0, run_id)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue the totals of a checkpointed run (before ``start``, or just after it).

        Lightning restores callback state after its ``setup`` hook started the run; the run log
        then gets its ``resume`` record at once.
        """
        self._previous = Earlier.from_state(state)
        self._record_resume()

    # -- internals ---------------------------------------------------------------------------

    def _record_resume(self) -> None:
        """Write, once per run, which run this one continues and the totals it carries on."""
        previous = self._previous
        if self._resume_recorded or not self.is_running or not previous.resumed:
            return
        assert self.tracker is not None
        self._resume_recorded = True
        self.tracker.record("resume", previous.record())

    def _needs_exact(self, latest: Measurement, previous: Point | None) -> bool:
        """Whether the latest sample is too old to use: read the meters instead.

        When no sample arrived since the previous call (logging outpaces sampling), and, with a
        budget to enforce, when the last step came after the latest sample.
        """
        if previous is not None and latest.duration_s <= previous.figures.duration_s:
            return True
        tracker = self.tracker
        if not self.outlook.budget.active or tracker is None or tracker.started_ns is None:
            return False
        return tracker.last_step_ns > tracker.started_ns + latest.duration_s * 1e9

    def _exact(self) -> Measurement | None:
        tracker = self.tracker
        if tracker is None:
            return None
        return tracker.so_far(exact=True)

    def _run_sums(self, now: Measurement | None, forecast: ForecastSums) -> RunSums:
        """This rank's totals so far (with the runs it resumed) and its forecast, to sum."""
        energy_j, co2e_kg = self._own_figures(now)
        return RunSums(
            energy_j=self._previous.energy_j + energy_j,
            co2e_kg=self._previous.co2e_kg + co2e_kg,
            estimated=1.0 if now is not None and now.estimated else 0.0,
            partial=1.0 if now is not None and now.partial else 0.0,
            forecast=forecast,
        )

    def _conclude(self, sums: RunSums) -> dict[str, float]:
        """Judge the summed totals (announce, budget), then convert them into metrics."""
        self.outlook.judge(sums, self.rank.global_rank)
        return run_metrics(self.prefix, sums, self.outlook.duration_s)

    def _forecast_sums(self, now: Measurement | None, *, refresh: bool) -> ForecastSums:
        if self.tracker is None or now is None:
            return ForecastSums.filled(math.nan)
        if self._adds_nothing(now):
            return ForecastSums.filled(0.0)
        return self.outlook.vector(self.tracker, now, self._previous.forecast_span, refresh=refresh)

    def _sum(self, local: _Sums) -> _Sums:
        """``local`` summed over the ranks; ``local`` itself in a single process or on failure."""
        reduced = self._reduce_vector(local.to_vector())
        if reduced is None:
            return local
        summed = local.from_vector(reduced)
        self._last_reduced = (summed.energy_j, summed.co2e_kg)
        return summed

    def _reduce_vector(self, local: list[float]) -> list[float] | None:
        """``local`` summed over the ranks; None when not summed.

        None in a single process, or when the collective fails or changes the vector's length:
        training then goes on with this rank's figures.
        """
        if not self.rank.distributed:
            return None
        try:
            reduced = [float(value) for value in self._reduce(local)]
        except Exception:  # a failed collective must not stop training: report this rank alone
            return None
        return reduced if len(reduced) == len(local) else None

    def _restart_intervals(self, now: Measurement | None) -> None:
        """Start the step-level intervals at ``now``, an exact read between steps."""
        point = None if now is None else Point(now, between_steps=True)
        self._power_from = self._work_from = self._latest = point

    def _adds_nothing(self, measurement: Measurement | None) -> bool:
        """True for figures of a rank that measures nothing by design (they add 0 to the sums)."""
        return measurement is not None and not measurement.channels and self.rank.measures_nothing

    def _own_figures(self, measurement: Measurement | None) -> tuple[float, float]:
        """This rank's facility J and kg CO2e so far: NaN (unknown) when it has no figure."""
        if measurement is None:
            return math.nan, math.nan
        if self._adds_nothing(measurement):
            return 0.0, 0.0
        return _nan(_facility_j(measurement)), _nan(measurement.co2e_kg)

    def _delta(
        self, start: Measurement | None, end: Measurement | None
    ) -> tuple[float | None, float | None]:
        """Facility joules and kg CO2e between two so-far figures of the same run."""
        if start is None or end is None:
            return None, None
        if self._adds_nothing(end):
            return 0.0, 0.0
        joules = _minus(_facility_j(end), _facility_j(start))
        return joules, _minus(end.co2e_kg, start.co2e_kg)


def _facility_j(measurement: Measurement | None) -> float | None:
    """Joules x PUE, or None when nothing was measured."""
    if measurement is None or measurement.energy_j is None:
        return None
    return measurement.energy_j * measurement.pue


def _minus(after: float | None, before: float | None) -> float | None:
    return None if after is None or before is None else after - before


def _nan(value: float | None) -> float:
    return math.nan if value is None else value
