"""Long runs stay bounded: a simulated week of sampling and a million training steps.

A training run may last days; nothing the library keeps may grow with the run's length. What these
tests prove:

- ``Sampler`` over a simulated week (an injected clock; samples two simulated seconds apart,
  302,400 in all: under tracemalloc the default 0.1 s, 6,048,000 samples, would take minutes here,
  and the bounded structures fill within hours either way): the dense timeline and the sparse
  checkpoints stay within their caps and keep the run's start, the traced memory of the second
  half of the week peaks no higher than the first half's, ``joules_at`` still answers early times
  from the checkpoints with the exact energy of a constant-power meter, and a fault that comes and
  goes every few seconds with two alternating reasons neither grows memory (fault spans are
  capped) nor warns more than once per reason.
- ``TrainingMonitor`` over a million real steps with its sampler thread running, step-level
  metrics every 1000 steps and an epoch every 100,000 as a callback would: memory does not grow per
  step, the run log does not grow per step, and the totals (steps; energy from a fake RAPL tree)
  are exact.
- ``Tracker`` and ``TrainingMonitor`` over a simulated week, each in a child interpreter whose
  monotonic clock is fake (``time.monotonic_ns`` is replaced before ``carbon_callbacks`` is
  imported: the OS clock is the outermost boundary, no code of ours is replaced): the run log's
  ``samples`` records are thinned to a bounded number that still covers the whole week with the
  right figures, and ``prediction`` records (and the monitor's in-memory list of forecasts) stay
  bounded over 1008 epochs.

No timing is asserted: per-step cost is measured by ``benchmarks/bench_long_run.py``.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
import tracemalloc
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, cast

import pytest

from carbon_callbacks._internal.warnings import CarbonCallbacksWarning
from carbon_callbacks.meters.base import Channel, Reading, Unavailable
from carbon_callbacks.reporting.text import format_training_summary
from carbon_callbacks.runlog.reader import read_run_log
from carbon_callbacks.tracking.sampler import DEFAULT_MAX_SAMPLES, MAX_CHECKPOINTS, Sample, Sampler
from carbon_callbacks.tracking.tracker import Tracker
from carbon_callbacks.training import TrainingMonitor
from tests.conftest import CHILD_TIMEOUT_S
from tests.meters.fake_powercap import FakePowercap

ROOT = Path(__file__).resolve().parents[2]
HOUR_S = 3600
DAY_S = 24 * HOUR_S
WEEK_S = 7 * DAY_S
WATTS = (100.0, 50.0)
"""Constant power of the two channels of ``SteadyMeter``."""
REASONS = ("driver timeout", "device busy")
"""The two reasons an intermittently failing channel alternates between."""
SAMPLES_BOUND = 32_768
"""Sample entries a week-long run may write to its log (one a second would be 604,800)."""
PREDICTIONS_BOUND = 512
"""Prediction records a week of 10-minute epochs may keep (one an epoch would be 1008)."""


class SteadyMeter:
    """Two power-only channels at constant power, through the public Meter protocol.

    ``gpu:0`` draws 100 W and is always read; ``gpu:1`` draws 50 W and, when ``fault_every`` is
    set, cannot be read on every ``fault_every``-th read, for a reason that alternates between two
    texts (as a flaky driver's errors do). Constant power makes every figure exact arithmetic.
    """

    source = "steady"

    def __init__(self, fault_every: int | None = None) -> None:
        self._fault_every = fault_every
        self.reads = 0

    @property
    def max_interval_s(self) -> float | None:
        return None

    @property
    def unavailable(self) -> list[Unavailable]:
        return []

    def open(self) -> list[Channel]:
        return [
            Channel(f"gpu:{index}", "gpu", "steady", "measured", "constant", quantity="power")
            for index in range(len(WATTS))
        ]

    def read(self) -> Reading:
        self.reads += 1
        every = self._fault_every
        if every and self.reads % every == 0:
            reason = REASONS[(self.reads // every) % len(REASONS)]
            return Reading(values={"gpu:0": WATTS[0]}, faults={"gpu:1": reason})
        return Reading(values={"gpu:0": WATTS[0], "gpu:1": WATTS[1]})

    def close(self) -> None:
        pass


class Clock:
    """A monotonic clock in nanoseconds that moves only when told to."""

    def __init__(self) -> None:
        self.now_ns = 1_000_000_000

    def __call__(self) -> int:
        return self.now_ns

    def advance(self, seconds: float) -> None:
        self.now_ns += round(seconds * 1e9)


def split_history(history: Sequence[Sample], interval_ns: int) -> tuple[int, int]:
    """(sparse checkpoints, dense samples) of a sampler's history.

    The dense timeline is the tail spaced by the sampling interval; a checkpoint that happens to
    lie one interval before it is counted with it.
    """
    dense = 1
    while dense < len(history) and (history[-dense].t_ns - history[-dense - 1].t_ns == interval_ns):
        dense += 1
    return len(history) - dense, dense


@pytest.mark.slow
def test_a_simulated_week_of_sampling_stays_bounded() -> None:
    interval_s = 2
    clock = Clock()
    sampler = Sampler([SteadyMeter(fault_every=5)], clock_ns=clock)
    peaks: list[int] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tracemalloc.start()
        try:
            sampler.open()
            start_ns = clock.now_ns
            for day in range(1, 8):
                for _ in range(24):
                    for _ in range(HOUR_S // interval_s):
                        clock.advance(interval_s)
                        sampler.sample()
                    history = sampler.history()
                    sparse, dense = split_history(history, interval_s * 1_000_000_000)
                    assert sparse <= MAX_CHECKPOINTS
                    assert min(len(history), DEFAULT_MAX_SAMPLES) <= dense
                    assert dense <= 2 * DEFAULT_MAX_SAMPLES + 1
                    assert history[0].t_ns == start_ns  # the run's start is never dropped
                    del history
                # peaks of days 2-4 and of days 5-7: each half sees the checkpoints fill to
                # their cap (at about 68 h and 136 h) and many cycles of the dense timeline
                if day in (1, 4, 7):
                    peaks.append(tracemalloc.get_traced_memory()[1])
                    tracemalloc.reset_peak()
        finally:
            tracemalloc.stop()
    _, first_half, second_half = peaks
    assert second_half - first_half < 1024 * 1024, (first_half, second_half)

    end_ns = clock.now_ns
    assert end_ns - start_ns == WEEK_S * 1_000_000_000
    latest = sampler.latest()
    assert latest.stale == frozenset()
    assert latest.joules == (WATTS[0] * WEEK_S, WATTS[1] * WEEK_S)
    for seconds in (0, 1800, HOUR_S + 17, DAY_S + 1234, 3.5 * DAY_S, WEEK_S - 2 * HOUR_S, WEEK_S):
        joules = sampler.joules_at(start_ns + round(seconds * 1e9))
        assert joules is not None, seconds
        assert joules[0] == pytest.approx(WATTS[0] * seconds, rel=1e-9, abs=1e-6), seconds
    assert sampler.joules_at(start_ns - 1) is None

    # the flaky channel stays marked over the whole week, the steady one never is
    for begin_s, end_s in ((0, HOUR_S), (3 * DAY_S, 3 * DAY_S + 60), (WEEK_S - 10, WEEK_S)):
        faults = sampler.faults_between(start_ns + begin_s * 10**9, start_ns + end_s * 10**9)
        assert set(faults) == {"gpu:1"}, (begin_s, faults)
        assert faults["gpu:1"] in REASONS
    messages = [str(w.message) for w in caught if issubclass(w.category, CarbonCallbacksWarning)]
    assert len(messages) == len(REASONS), messages  # once per reason, not once per fault
    assert all(any(reason in message for message in messages) for reason in REASONS)
    sampler.stop()


@pytest.mark.slow
def test_a_million_steps_keep_memory_and_the_run_log_flat(powercap: FakePowercap) -> None:
    epochs, steps_per_epoch, log_every = 10, 100_000, 1000
    monitor = TrainingMonitor(
        gpu_ids=[], intensity_g_per_kwh=100, powercap_root=str(powercap.class_root)
    )
    monitor.start()
    monitor.set_total_steps(epochs * steps_per_epoch)
    tracker = monitor.tracker
    assert tracker is not None
    added_j = 0.0
    traced: dict[str, tuple[int, int]] = {}
    tracemalloc.start()
    try:
        for epoch in range(epochs):
            monitor.begin_epoch()
            for _ in range(steps_per_epoch // log_every):
                for _ in range(log_every):
                    monitor.step(samples=32)
                # the hardware draws 1 J (package) and 0.5 J (DRAM) between logging steps
                powercap.add_energy("intel-rapl:0", 1_000_000)
                powercap.add_energy("intel-rapl:0:0", 500_000)
                added_j += 1.5
                monitor.step_metrics()
            monitor.end_epoch()
            if epoch + 1 in (epochs // 2, epochs):
                retained = len(tracker.step_timeline())
                traced[f"after epoch {epoch + 1}"] = (tracemalloc.get_traced_memory()[0], retained)
        lines = format_training_summary(monitor.finish())
    finally:
        tracemalloc.stop()
        monitor.stop("failed")  # only if the loop raised: finish() has stopped it otherwise

    # What may grow: the timeline's samples (one per logging step here, capped at 2 x 8192);
    # 1 KiB a sample is about twice what one holds. Nothing may grow per step: 500,000 ran.
    (mid_bytes, mid_samples), (end_bytes, end_samples) = traced.values()
    allowance = (end_samples - mid_samples) * 1024 + 256 * 1024
    assert end_bytes - mid_bytes < allowance, traced

    summary = tracker.summary
    assert summary is not None and summary.steps == epochs * steps_per_epoch
    assert summary.energy_j == pytest.approx(added_j)
    assert monitor.final_metrics["carbon/energy_kwh"] == pytest.approx(added_j / 3.6e6)
    assert lines and "training completed" in lines[0]
    log_path = tracker.log_path
    assert log_path is not None
    log = read_run_log(log_path)
    assert log.problems == []
    assert [w["steps"] for w in log.windows] == [steps_per_epoch] * epochs
    assert log.summary is not None and log.summary["steps"] == epochs * steps_per_epoch
    assert len(log.samples) <= epochs + 1  # at window ends and at the stop, never per step
    assert len(log.predictions) <= epochs + 1
    assert log_path.stat().st_size < 256 * 1024


# -- a simulated week in a child interpreter whose monotonic clock is fake ---------------------

CHILD = """\
import sys
import time


class FakeMonotonic:
    now_ns = 1_000_000_000

    def __call__(self):
        return self.now_ns


time.monotonic_ns = FakeMonotonic()
from tests.reliability.test_long_runs import PROGRAMS

PROGRAMS[sys.argv[1]](sys.argv[2])
"""
"""Replaces the OS monotonic clock before ``carbon_callbacks`` is imported, then runs a program."""


class _SettableClock(Protocol):
    now_ns: int


def _advance(seconds: float) -> None:
    """Move the child's fake monotonic clock forward."""
    clock = cast(_SettableClock, time.monotonic_ns)
    clock.now_ns += round(seconds * 1e9)


def _write_facts(out: str, facts: dict[str, object]) -> None:
    Path(out, "facts.json").write_text(json.dumps(facts))


def tracker_week(out: str) -> None:
    """A week of a Tracker: a step every 0.1 s, the meters read every 2 s, a window an hour.

    The sampler thread never polls (interval 3600 s of real time); the exact reads of ``so_far``
    build the timeline two simulated seconds apart instead (none at a window's end, which reads
    the meters itself: a real clock never gives two reads the same instant).
    """
    meter = SteadyMeter()
    tracker = Tracker(meters=[meter], interval_s=3600, intensity_g_per_kwh=100, output_dir=out)
    tracker.start()
    for _ in range(WEEK_S // HOUR_S):
        tracker.begin_window("hour")
        for tick in range(HOUR_S // 2):
            _advance(2.0)
            tracker.step(20)
            if tick < HOUR_S // 2 - 1:
                tracker.so_far(exact=True)
        tracker.end_window("hour")
    summary = tracker.stop()
    assert summary is not None
    _write_facts(out, {"log": str(tracker.log_path), "steps": summary.steps})


def monitor_week(out: str) -> None:
    """A week of a TrainingMonitor: 1008 epochs of 10 minutes, the meters read every 2 minutes."""
    monitor = TrainingMonitor(
        meters=[SteadyMeter()], interval_s=3600, intensity_g_per_kwh=100, output_dir=out
    )
    monitor.announce = lambda line: None
    monitor.start()
    tracker = monitor.tracker
    assert tracker is not None
    epochs, reads_per_epoch, steps_per_read = WEEK_S // 600, 5, 200
    monitor.set_total_steps(epochs * reads_per_epoch * steps_per_read)
    for _ in range(epochs):
        monitor.begin_epoch()
        for read in range(reads_per_epoch):
            _advance(120.0)
            monitor.step(samples=32 * steps_per_read, count=steps_per_read)
            if read < reads_per_epoch - 1:
                tracker.so_far(exact=True)
        monitor.end_epoch()
    monitor.finish()
    _write_facts(
        out,
        {
            "log": str(tracker.log_path),
            "total_steps": epochs * reads_per_epoch * steps_per_read,
            "records_in_memory": len(monitor.outlook.records),
        },
    )


PROGRAMS: dict[str, Callable[[str], None]] = {"tracker": tracker_week, "monitor": monitor_week}


def run_child(program: str, out: Path) -> dict[str, object]:
    """Run ``program`` in a child with a fake monotonic clock; return the facts it wrote."""
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", CHILD, program, str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    facts: dict[str, object] = json.loads((out / "facts.json").read_text())
    return facts


@pytest.mark.slow
def test_a_simulated_week_of_a_tracker_writes_a_bounded_thinned_log(tmp_path: Path) -> None:
    facts = run_child("tracker", tmp_path)
    log = read_run_log(str(facts["log"]))
    assert log.problems == []
    assert len(log.windows) == WEEK_S // HOUR_S
    assert facts["steps"] == 10 * WEEK_S
    assert log.summary is not None
    assert log.summary["energy_j"] == pytest.approx(sum(WATTS) * WEEK_S)

    times = [t for record in log.samples for t in record["t_s"]]
    steps = [n for record in log.samples for n in record["steps"]]
    joules = [row for record in log.samples for row in record["joules"]]
    assert len(times) <= SAMPLES_BOUND, len(times)
    assert times[0] == 0 and times[-1] == WEEK_S  # the whole week, start to end
    assert all(b > a for a, b in itertools.pairwise(times))
    # still a plot's worth everywhere: no gap longer than a thousandth of the run so far
    gaps = [(b - a, b) for a, b in itertools.pairwise(times)]
    assert all(gap <= max(5.0, at / 1000) for gap, at in gaps), max(gaps)
    # each kept sample carries its own figures: 10 steps and 150 J a simulated second
    assert steps == [round(10 * t) for t in times]
    assert all(
        row == pytest.approx([WATTS[0] * t, WATTS[1] * t])
        for row, t in zip(joules, times, strict=True)
    )


@pytest.mark.slow
def test_a_simulated_week_of_epochs_keeps_predictions_bounded(tmp_path: Path) -> None:
    facts = run_child("monitor", tmp_path)
    log = read_run_log(str(facts["log"]))
    assert log.problems == []
    assert len(log.windows) == WEEK_S // 600
    assert log.summary is not None and log.summary["steps"] == facts["total_steps"]
    assert len(log.predictions) <= PREDICTIONS_BOUND, len(log.predictions)
    records = facts["records_in_memory"]
    assert isinstance(records, int) and records <= PREDICTIONS_BOUND
    done = [p["steps_done"] for p in log.predictions]
    assert done == sorted(done)
    assert done[0] <= 2000  # one of the first forecasts is kept
    total = facts["total_steps"]
    assert isinstance(total, int) and done[-1] >= 0.9 * total  # and recent ones
    samples = sum(len(record["t_s"]) for record in log.samples)
    assert samples <= SAMPLES_BOUND
