"""The framework-neutral training monitor the three callbacks share: metrics, epochs, ranks, resume.

An adapter maps its framework's hooks onto ``TrainingMonitor`` and hands the returned metric dicts
to the framework's own logger; everything else lives here once:

- the metric names (one table, ``METRICS``), all prefixed (default ``carbon/``);
- epochs as exact windows, phases inside them (validation inside a Lightning training epoch);
- step-level metrics over the interval since the previous call, from the sampler's timeline;
- the devices: the accelerators the trainer uses (none for a CPU run), not every visible one;
- distributed runs: each rank measures its own accelerator and its own process tree (the CPU
  estimate), one rank per node the host-level channels (RAPL: the whole socket); the ranks share
  rank 0's run id; totals are summed across ranks by a ``Reducer`` the adapter supplies (the
  framework's collective);
- resume: ``state_dict`` / ``load_state_dict`` carry the totals of the runs before this one and
  the id of the run that saved them; the resumed run's log gets a ``resume`` record naming it, so
  a report links the segments of one training, and forecasts cover the whole training (energy,
  CO2e, steps and duration alike) with the earlier part stated, so each is compared like with like.

The per-step path (``step``) is two additions and a timestamp; nothing in it reads a meter.
"""

from __future__ import annotations

import hashlib
import math
import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from carbon_callbacks.reporting.text import format_run_summary
from carbon_callbacks.tracking.measurement import JOULES_PER_KWH, Measurement
from carbon_callbacks.tracking.tracker import RunStatus, Tracker, new_run_id
from carbon_callbacks.training.budget import Budget, OnBudget
from carbon_callbacks.training.outlook import FORECAST_LEN, Outlook

Reducer = Callable[[Sequence[float]], Sequence[float]]
"""Sums a vector element-wise across ranks; the identity in a single process. NaN marks unknown."""

DEFAULT_PREFIX = "carbon/"
EPOCH_WINDOW = "epoch"
"""The name of the run-log window of each epoch."""
_TOTALS_LEN = 4 + FORECAST_LEN
"""Leading entries of every summed vector: 4 totals, then the forecast's figures."""

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


@dataclass(frozen=True)
class RankInfo:
    """Where this process sits in a distributed run.

    Attributes:
        global_rank: Rank among all processes.
        local_rank: Rank among the processes of this node.
        world_size: Number of processes.
        num_nodes: Number of nodes.
        devices: NVML indices or UUIDs of the GPUs this process trains on: ``()`` for none (a
            CPU run), None when unknown, which measures every GPU the process can see.
    """

    global_rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    num_nodes: int = 1
    devices: tuple[int | str, ...] | None = None

    @property
    def distributed(self) -> bool:
        """True when more than one process takes part."""
        return self.world_size > 1

    @property
    def measures_host(self) -> bool:
        """Only local rank 0 measures host-level channels (RAPL), so the node is counted once.

        Process-level channels (the CPU estimate of this process tree) are every rank's own.
        """
        return self.local_rank == 0

    @property
    def measures_nothing(self) -> bool:
        """A rank with no accelerator whose host another rank measures: no channel adds 0.

        Such a rank has no channel when the node has RAPL (read by local rank 0); without RAPL it
        has its CPU estimate. Any other rank without a figure is unknown, never 0.
        """
        return self.distributed and not self.measures_host and not self.devices

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form for the run log."""
        return {
            "global_rank": self.global_rank,
            "local_rank": self.local_rank,
            "world_size": self.world_size,
            "num_nodes": self.num_nodes,
            "devices": None if self.devices is None else list(self.devices),
        }


@dataclass
class _Totals:
    """What earlier (resumed) runs contributed; added to this run's figures."""

    energy_j: float = 0.0
    co2e_kg: float = 0.0
    steps: int = 0
    samples: int = 0
    tokens: int = 0
    duration_s: float = 0.0
    run_id: str | None = None
    """The run that saved these totals: the one this run continues."""

    @property
    def resumed(self) -> bool:
        """True when there is an earlier run to continue."""
        return self.run_id is not None or self.steps > 0


@dataclass
class _Interval:
    """The latest point step-level metrics were computed from."""

    seconds: float
    energy_j: float | None
    steps: int
    samples: int
    tokens: int


def _identity(values: Sequence[float]) -> Sequence[float]:
    return values


class TrainingMonitor:
    """Measures a training run for a framework callback.

    Args:
        prefix: Prepended to every metric name (default ``"carbon/"``).
        quiet: Announce nothing (the one-line forecast); the forecast is still logged and
            recorded. The callbacks pass their ``summary=False`` here.
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
        self._options = dict(tracker_options)
        # validate now, to fail at construction rather than at fit; building a Tracker opens
        # nothing (meters, threads and HTTP sessions open at start, and close at stop)
        Tracker(**self._options)
        self.outlook = Outlook(Budget(max_energy_kwh, max_co2e_kg, on_budget), warmup_steps, prefix)
        """The forecast, its announcement and the budget decisions."""
        self.outlook.quiet = quiet
        self._epoch_begin_steps: int | None = None
        self.tracker: Tracker | None = None
        self.rank = RankInfo()
        self._reduce: Reducer = _identity
        self._previous = _Totals()
        self._previous_scope = "this rank"
        self._resume_recorded = False
        self._last_reduced: list[float] | None = None
        self._samples = 0
        self._tokens = 0
        self._epoch_start: Measurement | None = None
        self._phase_start: dict[str, Measurement] = {}
        self._phase_joules: dict[str, float] = {}
        self._interval: _Interval | None = None
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
        if self.rank.devices is not None and "gpu_ids" not in options:
            options["gpu_ids"] = list(self.rank.devices)
        if self.rank.distributed:
            run_id, other_ranks = self._agree_on_run()
            options["measure_host"] = self.rank.measures_host
            options["exclude_pids"] = other_ranks
            options["run_id"] = run_id
            options["context"] = {"distributed": self.rank.to_dict() | {"run_id": run_id}}
        self.tracker = Tracker(**options).start()
        if self.rank.global_rank != 0 and self._previous_scope == "all ranks":
            self._previous = _Totals()  # global rank 0 carries the checkpoint's all-ranks totals
        self._resume_recorded = False
        self._record_resume()
        self._samples = self._tokens = 0
        self.final_metrics = {}
        self.outlook.reset()
        self._last_reduced = None  # a previous run's all-ranks totals are not this run's
        self._epoch_begin_steps = None
        self._epoch_start = None
        self._phase_start, self._phase_joules = {}, {}
        self._interval = self._interval_point(self.tracker.so_far(exact=False))

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
        local = self._total_vector(self._exact()) + [math.nan] * FORECAST_LEN
        return self._total_metrics(self._reduce_vector(local) if collective else local)

    def finish(self, status: RunStatus = "completed") -> list[str]:
        """Stop at the normal end of training and return the summary to show on global rank 0.

        Every rank must call it (it sums the totals over the ranks); the totals are kept in
        ``final_metrics`` for the adapter to log. Other ranks, and a second call, get ``[]``.
        """
        if not self.is_running:
            return []
        # the totals come from the stop's own read, so the logged figures equal the run log's
        # summary (two reads a moment apart differ wherever energy goes on being counted)
        measurement = self.stop(status)
        local = self._total_vector(measurement) + [math.nan] * FORECAST_LEN
        self.final_metrics = self._total_metrics(self._reduce_vector(local))
        if measurement is None or self.rank.global_rank != 0:
            return []
        steps_done = self._previous.steps + (measurement.steps or 0)
        total_steps = self.outlook.total_steps
        finished = total_steps is None or steps_done >= total_steps
        lines = [
            f"carbon-callbacks: training {status} in {measurement.duration_s:.1f} s",
            # a forecast is for the whole planned run: set beside the outcome only when it ran
            *format_run_summary(measurement, self.outlook.records if finished else None),
        ]
        if not finished:
            lines.append(f"stopped at step {steps_done} of the {total_steps} planned")
        if self.tracker is not None and self.tracker.log_problem is not None:
            lines.append(f"run log: {self.tracker.log_problem}")
        if self.rank.distributed or self._previous.steps:
            scope = f"all {self.rank.world_size} ranks" if self.rank.distributed else "this run"
            if self._previous.steps:
                scope += " and the runs it resumed"
            energy = self.final_metrics.get(f"{self.prefix}energy_kwh")
            co2e = self.final_metrics.get(f"{self.prefix}co2e_kg")
            lines.append(
                f"total ({scope}): "
                + ("energy not measured" if energy is None else f"{energy:.4g} kWh")
                + ("" if co2e is None else f", {co2e * 1000:.4g} g CO2e")
            )
        return lines

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
    def announce(self) -> Callable[[str], object]:
        """Shows the one-off lines (the first forecast) on global rank 0; default: stderr."""
        return self.outlook.announce

    @announce.setter
    def announce(self, show: Callable[[str], object]) -> None:
        self.outlook.announce = show

    # -- hot path ----------------------------------------------------------------------------

    def step(self, samples: int | None = None, tokens: int | None = None, count: int = 1) -> None:
        """Record ``count`` optimizer steps and the samples and tokens they processed here."""
        tracker = self.tracker
        if tracker is None:
            return
        tracker.step(count)
        if samples:
            self._samples += samples
        if tokens:
            self._tokens += tokens

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
        reduced = self._reduce_vector(
            [
                *self._total_vector(now),
                *self._forecast_vector(now, refresh=True),
                _nan(epoch_j),
                _nan(epoch_co2e),
                _nan(val_j),
            ]
        )
        metrics = self._total_metrics(reduced[:_TOTALS_LEN])
        if every_forecast_name:
            metrics = self.outlook.unknown() | metrics
        epoch_j, epoch_co2e, val_j = reduced[_TOTALS_LEN:]
        if start is not None and now is not None and math.isfinite(epoch_j):
            seconds = now.duration_s - start.duration_s
            metrics |= self._named(epoch_energy_kwh=epoch_j / JOULES_PER_KWH)
            if math.isfinite(epoch_co2e):
                metrics |= self._named(epoch_co2e_kg=epoch_co2e)
            if seconds > 0:
                metrics |= self._named(power_w=epoch_j / seconds)
            if math.isfinite(val_j):
                metrics |= self._named(
                    val_energy_kwh=val_j / JOULES_PER_KWH,
                    train_energy_kwh=(epoch_j - val_j) / JOULES_PER_KWH,
                )
        self._interval = self._interval_point(now)
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
        """Totals so far and the interval since the previous call.

        Figures come from the sampler's latest sample, or from an exact read when no sample has
        arrived since the previous call (logging more often than the sampler polls) or, with a
        budget, when steps ran after the latest sample.

        Every rank must call it at the same step (it may run a collective).
        """
        tracker = self.tracker
        if tracker is None or not tracker.is_running:
            return {}
        now = tracker.so_far(exact=False)
        previous = self._interval
        if now is not None and self._needs_exact(now, previous):
            now = tracker.so_far(exact=True)
        point = self._interval_point(now)
        interval = [math.nan, 0.0, 0.0]
        if previous is not None and point is not None:
            interval = [
                _nan(_minus(point.energy_j, previous.energy_j)),
                float(point.samples - previous.samples),
                float(point.tokens - previous.tokens),
            ]
        reduced = self._reduce_vector(
            [*self._total_vector(now), *self._forecast_vector(now, refresh=False), *interval]
        )
        metrics = self._total_metrics(reduced[:_TOTALS_LEN])
        joules, samples, tokens = reduced[_TOTALS_LEN:]
        seconds = 0.0 if previous is None or point is None else point.seconds - previous.seconds
        if seconds > 0 and math.isfinite(joules):  # no new sample since the last call: no interval
            steps = point.steps - previous.steps  # type: ignore[union-attr]
            metrics |= self._named(power_w=joules / seconds)
            if steps > 0:
                metrics |= self._named(energy_per_step_j=joules / steps)
            if samples > 0:
                metrics |= self._named(energy_per_sample_j=joules / samples)
            if tokens > 0:
                metrics |= self._named(energy_per_token_j=joules / tokens)
        self._interval = point
        return metrics

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
        scope = "this rank"
        energy_j += self._previous.energy_j
        co2e_kg += self._previous.co2e_kg
        if self.rank.distributed and self._last_reduced is not None:
            energy_j, co2e_kg = self._last_reduced
            scope = "all ranks"
        return {
            "energy_j": energy_j if math.isfinite(energy_j) else self._previous.energy_j,
            "co2e_kg": co2e_kg if math.isfinite(co2e_kg) else self._previous.co2e_kg,
            "steps": self._previous.steps + ((figures.steps or 0) if figures is not None else 0),
            "samples": self._previous.samples + self._samples,
            "tokens": self._previous.tokens + self._tokens,
            "duration_s": self._previous.duration_s
            + (figures.duration_s if figures is not None else 0.0),
            "run_id": tracker.run_id if tracker is not None else self._previous.run_id,
            "scope": scope,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue the totals of a checkpointed run (before ``start``, or just after it).

        Lightning restores callback state after its ``setup`` hook started the run; the run log
        then gets its ``resume`` record at once.
        """
        run_id = state.get("run_id")
        self._previous = _Totals(
            energy_j=float(state.get("energy_j", 0.0)),
            co2e_kg=float(state.get("co2e_kg", 0.0)),
            steps=int(state.get("steps", 0)),
            samples=int(state.get("samples", 0)),
            tokens=int(state.get("tokens", 0)),
            duration_s=float(state.get("duration_s", 0.0)),
            run_id=None if run_id is None else str(run_id),
        )
        self._previous_scope = str(state.get("scope", "this rank"))
        self._record_resume()

    # -- internals ---------------------------------------------------------------------------

    def _record_resume(self) -> None:
        """Write, once per run, which run this one continues and the totals it carries on."""
        previous = self._previous
        if self._resume_recorded or not self.is_running or not previous.resumed:
            return
        assert self.tracker is not None
        self._resume_recorded = True
        self.tracker.record(
            "resume",
            {
                "resumes": previous.run_id,
                "energy_kwh": previous.energy_j / JOULES_PER_KWH,
                "co2e_kg": previous.co2e_kg,
                "steps": previous.steps,
                "duration_s": previous.duration_s,
                "scope": self._previous_scope,
            },
        )

    def _agree_on_run(self) -> tuple[str, list[int]]:
        """Global rank 0's run id, and the pids of the other ranks on this node: one collective.

        The vector summed is [rank 0's time, rank 0's nonce, then (pid, node) per global rank],
        each entry set by one rank alone (all integers below 2**53, exact in float64). If the
        collective fails, this rank keeps an id of its own and excludes no process.
        """
        size, me = self.rank.world_size, self.rank.global_rank
        seconds, nonce = int(time.time()), int.from_bytes(os.urandom(3), "big")
        node = _node_key()
        local = [0.0] * (2 + 2 * size)
        if me == 0:
            local[0], local[1] = float(seconds), float(nonce)
        local[2 + 2 * me], local[3 + 2 * me] = float(os.getpid()), float(node)
        agreed = self._reduce_vector(local)
        if len(agreed) != len(local) or agreed[0] <= 0 or agreed is local:
            return new_run_id(seconds, nonce), []
        others = [
            int(agreed[2 + 2 * rank])
            for rank in range(size)
            if rank != me and agreed[3 + 2 * rank] == node and agreed[2 + 2 * rank] > 0
        ]
        return new_run_id(int(agreed[0]), int(agreed[1])), others

    def _needs_exact(self, latest: Measurement, previous: _Interval | None) -> bool:
        """Whether the latest sample is too old to use: read the meters instead.

        When no sample arrived since the previous call (logging outpaces sampling), and, with a
        budget to enforce, when the last step came after the latest sample.
        """
        if previous is not None and latest.duration_s <= previous.seconds:
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

    def _total_vector(self, now: Measurement | None) -> list[float]:
        """This rank's [facility J, kg CO2e, estimated 0/1, partial 0/1] so far, with resumes."""
        energy_j, co2e_kg = self._own_figures(now)
        return [
            self._previous.energy_j + energy_j,
            self._previous.co2e_kg + co2e_kg,
            1.0 if now is not None and now.estimated else 0.0,
            1.0 if now is not None and now.partial else 0.0,
        ]

    def _total_metrics(self, totals: Sequence[float]) -> dict[str, float]:
        """Metrics from a (summed) totals vector: the totals, the forecast, budget decisions."""
        energy_j, co2e_kg, estimated, partial = totals[:4]
        if not math.isfinite(energy_j):
            return {}
        metrics = self._named(
            energy_kwh=energy_j / JOULES_PER_KWH,
            estimated=min(estimated, 1.0),
            partial=min(partial, 1.0),
        )
        if math.isfinite(co2e_kg):
            metrics |= self._named(co2e_kg=co2e_kg)
            if energy_j > 0:
                metrics |= self._named(
                    intensity_g_per_kwh=co2e_kg * 1000 / (energy_j / JOULES_PER_KWH)
                )
        metrics |= self.outlook.metrics(totals[4:_TOTALS_LEN])
        self.outlook.judge(metrics, self.rank.global_rank)
        return metrics

    def _forecast_vector(self, now: Measurement | None, *, refresh: bool) -> list[float]:
        if self.tracker is None or now is None:
            return [math.nan] * FORECAST_LEN
        if self._adds_nothing(now):
            return [0.0] * FORECAST_LEN
        previous = self._previous
        earlier = (previous.energy_j, previous.co2e_kg, previous.steps, previous.duration_s)
        return self.outlook.vector(self.tracker, now, earlier, refresh=refresh)

    def _reduce_vector(self, local: list[float]) -> list[float]:
        if not self.rank.distributed:
            return local
        try:
            reduced = [float(value) for value in self._reduce(local)]
        except Exception:  # a failed collective must not stop training: report this rank alone
            return local
        self._last_reduced = reduced[:2]
        return reduced

    def _interval_point(self, now: Measurement | None) -> _Interval | None:
        if now is None:
            return None
        return _Interval(
            seconds=now.duration_s,
            energy_j=0.0 if self._adds_nothing(now) else _facility_j(now),
            steps=now.steps or 0,
            samples=self._samples,
            tokens=self._tokens,
        )

    def _named(self, **values: float) -> dict[str, float]:
        return {f"{self.prefix}{name}": float(value) for name, value in values.items()}

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


def _node_key() -> int:
    """This machine's host name as a 48-bit number (exact in float64), to tell nodes apart."""
    digest = hashlib.blake2b(socket.gethostname().encode(), digest_size=6).digest()
    return int.from_bytes(digest, "big")


def _facility_j(measurement: Measurement | None) -> float | None:
    """Joules x PUE, or None when nothing was measured."""
    if measurement is None or measurement.energy_j is None:
        return None
    return measurement.energy_j * measurement.pue


def _minus(after: float | None, before: float | None) -> float | None:
    return None if after is None or before is None else after - before


def _nan(value: float | None) -> float:
    return math.nan if value is None else value
