from __future__ import annotations

import itertools
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from carbon_callbacks._internal.warnings import CarbonCallbacksWarning
from carbon_callbacks.meters.base import Channel, Reading, Unavailable
from carbon_callbacks.meters.rapl import RaplMeter
from carbon_callbacks.tracking.sampler import MAX_FAULT_SPANS, Sample, Sampler, attach, detach
from tests.conftest import sampler_threads
from tests.meters.fake_powercap import FakePowercap


class ScriptedPowerMeter:
    """A power-only source (like a pre-Volta GPU) whose readings follow a script.

    It implements the public Meter protocol, as a user's own meter would, so the sampler's
    integration can be checked against exact arithmetic.
    """

    source = "scripted"

    def __init__(self, watts: list[float], max_interval_s: float | None = None) -> None:
        self._watts = list(watts)
        self._max_interval_s = max_interval_s
        self.reads = 0
        self.closed = 0

    @property
    def max_interval_s(self) -> float | None:
        return self._max_interval_s

    @property
    def unavailable(self) -> list[Unavailable]:
        return []

    def open(self) -> list[Channel]:
        return [Channel("gpu:9", "gpu", "scripted", "measured", "script", quantity="power")]

    def read(self) -> Reading:
        self.reads += 1
        if not self._watts:
            return Reading(faults={"gpu:9": "script exhausted"})
        return Reading(values={"gpu:9": self._watts.pop(0)})

    def close(self) -> None:
        self.closed += 1


HANG_GUARD_S = 60.0
"""Backstop for waits on the polling thread: a working one gets there in milliseconds, so only a
broken one (or a hang a test is about) lasts this long, and the test fails instead of hanging."""


class PollWatcher(ScriptedPowerMeter):
    """A scripted meter that says when the polling thread has read it ``polls`` times."""

    def __init__(self, watts: list[float], polls: int) -> None:
        super().__init__(watts)
        self._polls = polls
        self.polled = threading.Event()

    def read(self) -> Reading:
        if threading.current_thread() is not threading.main_thread():
            self._polls -= 1
            if self._polls <= 0:
                self.polled.set()
        return super().read()


class HeldRead(ScriptedPowerMeter):
    """A scripted meter whose reads from the polling thread wait until the test lets them go.

    The test's own reads (``open``, exact reads) answer at once, so the test decides exactly
    where the thread stands: ``inside`` is set while it waits in ``read`` (holding the sampler's
    lock), ``returned`` once that read has answered.
    """

    def __init__(self, watts: list[float]) -> None:
        super().__init__(watts)
        self.inside = threading.Event()
        self.release = threading.Event()
        self.returned = threading.Event()

    def read(self) -> Reading:
        if threading.current_thread() is not threading.main_thread():
            self.inside.set()
            self.release.wait(HANG_GUARD_S)
            self.returned.set()
        return super().read()


class TimeoutRecordingLock:
    """Stands in for the sampler's lock and records the timeout of each acquire the test makes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.test_waits: list[float] = []

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if threading.current_thread() is threading.main_thread():
            self.test_waits.append(timeout)
        return self._lock.acquire(blocking, timeout)

    def release(self) -> None:
        self._lock.release()


def join_sampler_threads() -> None:
    """Wait for every sampler thread to end (one released from a held read finishes it first)."""
    for thread in sampler_threads():
        thread.join(HANG_GUARD_S)


class Clock:
    def __init__(self) -> None:
        self.now_ns = 1_000_000_000

    def __call__(self) -> int:
        return self.now_ns

    def advance(self, seconds: float) -> None:
        self.now_ns += int(seconds * 1e9)


def test_power_channel_is_integrated_with_the_trapezoid_rule() -> None:
    clock = Clock()
    meter = ScriptedPowerMeter([100.0, 200.0, 200.0, 50.0])
    sampler = Sampler([meter], clock_ns=clock)
    sampler.open()  # first sample: 100 W at t=0, the zero point
    clock.advance(1.0)
    assert sampler.sample().joules == (150.0,)  # (100 + 200) / 2 * 1 s
    clock.advance(0.5)
    assert sampler.sample().joules == (250.0,)  # + 200 W * 0.5 s
    clock.advance(2.0)
    assert sampler.sample().joules == (500.0,)  # + (200 + 50) / 2 * 2 s
    sampler.stop()


def test_energy_counter_starts_at_zero_and_interpolates(tmp_path: Path) -> None:
    tree = FakePowercap(tmp_path)
    tree.add_zone("intel-rapl:0", "package-0", energy_uj=5_000_000)
    clock = Clock()
    sampler = Sampler([RaplMeter(root=tree.class_root)], clock_ns=clock)
    sampler.open()
    start = clock.now_ns
    assert sampler.latest().joules == (0.0,)
    tree.add_energy("intel-rapl:0", 40_000_000)  # 40 J
    clock.advance(2.0)
    sampler.sample()
    assert sampler.joules_at(start) == (0.0,)
    assert sampler.joules_at(start + 500_000_000) == pytest.approx((10.0,))
    assert sampler.joules_at(start + 2_000_000_000) == (40.0,)
    assert sampler.joules_at(start - 1) is None  # before the timeline
    assert sampler.joules_at(start + 3_000_000_000) is None  # after the latest sample
    sampler.stop()


def test_faults_are_recorded_as_spans_and_warned_once() -> None:
    clock = Clock()
    sampler = Sampler([ScriptedPowerMeter([10.0])], clock_ns=clock)
    sampler.open()
    with pytest.warns(CarbonCallbacksWarning, match="script exhausted") as caught:
        for _ in range(3):
            clock.advance(1.0)
            sampler.sample()
    assert len(caught) == 1
    assert sampler.faults_between(0, clock.now_ns) == {"gpu:9": "script exhausted"}
    # before the first fault there was none
    assert sampler.faults_between(0, 1_500_000_000) == {}
    sampler.stop()


def test_a_meter_that_raises_degrades_to_a_fault() -> None:
    class Broken(ScriptedPowerMeter):
        def read(self) -> Reading:
            raise RuntimeError("driver exploded")

    sampler = Sampler([Broken([])])
    with pytest.warns(CarbonCallbacksWarning, match="driver exploded"):
        sampler.open()
    assert sampler.latest().joules == (None,)  # never read: unknown, not 0
    sampler.stop()


def test_thread_polls_and_is_joined_on_stop() -> None:
    meter = PollWatcher([1.0] * 1000, polls=5)
    sampler = Sampler([meter], interval_s=0.01)
    sampler.start()
    assert sampler.is_running
    assert len(sampler_threads()) == 1
    assert meter.polled.wait(HANG_GUARD_S)  # the thread read the meter 5 times on its own
    sampler.stop()
    sampler.stop()
    assert not sampler.is_running
    assert sampler_threads() == []
    assert meter.closed == 1


def test_interval_shortened_for_meters_that_need_it() -> None:
    sampler = Sampler([ScriptedPowerMeter([], max_interval_s=0.02)], interval_s=0.1)
    assert sampler.interval_s == 0.02


def test_timeline_is_bounded() -> None:
    clock = Clock()
    sampler = Sampler([ScriptedPowerMeter([1.0] * 1000)], max_samples=10, clock_ns=clock)
    sampler.open()
    for _ in range(100):
        clock.advance(0.1)
        sampler.sample()
    assert len(sampler._timeline) <= 20
    sampler.stop()


def test_old_times_answer_from_checkpoints_after_the_timeline_dropped_them() -> None:
    clock = Clock()
    sampler = Sampler(
        [ScriptedPowerMeter([10.0] * 1000)], max_samples=10, clock_ns=clock, checkpoint_s=1.0
    )
    sampler.open()
    start_ns = clock.now_ns
    for _ in range(100):
        clock.advance(0.1)
        sampler.sample()
    assert sampler._timeline[0].t_ns > start_ns + 5_000_000_000
    # a constant 10 W: 2.5 s after the first sample the counter held 25 J
    joules = sampler.joules_at(start_ns + 2_500_000_000)
    assert joules is not None and joules[0] == pytest.approx(25.0)
    assert sampler.joules_at(start_ns - 1) is None
    sampler.stop()


def test_checkpoints_thin_out_instead_of_growing_without_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("carbon_callbacks.tracking.sampler.MAX_CHECKPOINTS", 8)
    clock = Clock()
    sampler = Sampler([ScriptedPowerMeter([1.0] * 1000)], clock_ns=clock, checkpoint_s=1.0)
    sampler.open()
    for _ in range(100):
        clock.advance(1.0)
        sampler.sample()
    checkpoints = sampler._checkpoints
    assert len(checkpoints) <= 8
    assert checkpoints[0].t_ns == 1_000_000_000  # the run's first sample is always kept
    assert checkpoints[-1].t_ns >= clock.now_ns - 32_000_000_000
    sampler.stop()


def interpolate(samples: list[Sample], t_ns: int) -> float | None:
    """The first channel's joules at ``t_ns``, linearly between the two samples around it."""
    for before, after in itertools.pairwise(samples):
        if before.t_ns <= t_ns <= after.t_ns:
            a, b = before.joules[0], after.joules[0]
            assert a is not None and b is not None
            return a + (b - a) * (t_ns - before.t_ns) / (after.t_ns - before.t_ns)
    return None


def test_joules_before_the_timeline_come_from_the_checkpoints_older_than_it() -> None:
    """Checkpoints are taken from the timeline's samples, so the newest ones can be newer than the
    oldest sample the timeline still holds: those must not be used before it."""
    clock = Clock()
    watts = [1.0] * 17 + [100.0] * 5  # a power step after 16 s: the figures are not linear
    sampler = Sampler([ScriptedPowerMeter(watts)], clock_ns=clock, max_samples=2, checkpoint_s=5)
    sampler.open()
    for _ in range(len(watts) - 1):
        clock.advance(1.0)
        sampler.sample()
    history = sampler.history()
    oldest_dense = sampler._timeline[0].t_ns
    assert any(c.t_ns > oldest_dense for c in sampler._checkpoints)  # the case in question
    start = history[0].t_ns
    for tenth in range(0, 10 * (len(watts) - 1) + 1):
        t_ns = start + tenth * 100_000_000
        got = sampler.joules_at(t_ns)
        assert got is not None and got[0] == pytest.approx(interpolate(history, t_ns)), t_ns


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_inherits_no_live_sampler() -> None:
    meter = HeldRead([1.0] * 10_000)
    sampler = Sampler([meter], interval_s=0.01)
    sampler.start()
    # Fork while the thread is inside a read, holding the sampler's lock: the child must neither
    # wait for that lock nor read.
    assert meter.inside.wait(HANG_GUARD_S)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report what it sees, never run pytest's teardown
        reads_before = meter.reads
        sampler.sample()
        sampler.stop()
        report = f"{int(sampler.is_running)} {meter.reads - reads_before} {len(sampler_threads())}"
        os.write(write_fd, report.encode())
        os._exit(0)
    os.close(write_fd)
    _, status = os.waitpid(pid, 0)
    report = os.read(read_fd, 100).decode()
    os.close(read_fd)
    meter.release.set()
    assert os.waitstatus_to_exitcode(status) == 0
    assert report == "0 0 0"  # not running, no read, no thread in the child
    assert sampler.is_running  # the parent's sampler is untouched
    sampler.stop()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_child_forked_while_the_stop_event_is_locked_stops_at_once() -> None:
    """The thread holds its stop event's inner lock for a moment on entering and leaving each
    wait; a child forked then inherits that lock held, by a thread it does not have."""
    sampler = Sampler([ScriptedPowerMeter([1.0] * 10_000)], interval_s=60)
    sampler.start()
    inner_lock: Any = sampler._stop_event._cond  # type: ignore[attr-defined]
    with inner_lock:  # as the thread holds it on entering and leaving Event.wait
        pid = os.fork()
        if pid == 0:  # child: stop must not wait on the inherited lock
            code = 1
            try:
                sampler.stop()
                code = 0
            finally:
                os._exit(code)
    deadline = time.monotonic() + HANG_GUARD_S
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    if done[0] == 0:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("the forked child's stop() hung on the inherited stop-event lock")
    assert os.waitstatus_to_exitcode(done[1]) == 0
    assert sampler.is_running  # the parent's sampler is untouched
    sampler.stop()


def test_warnings_turned_into_errors_never_raise_from_a_read() -> None:
    import warnings

    clock = Clock()
    sampler = Sampler([ScriptedPowerMeter([10.0])], clock_ns=clock)
    sampler.open()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clock.advance(1.0)
        sample = sampler.sample()  # the script is exhausted: a fault, warned as an "error"
    assert sample.stale == frozenset({0})
    assert sampler.faults_between(0, clock.now_ns) == {"gpu:9": "script exhausted"}
    sampler.stop()


def test_a_hanging_meter_cannot_hang_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    from carbon_callbacks.tracking import sampler as sampler_module

    monkeypatch.setattr(sampler_module, "JOIN_TIMEOUT_S", 0.2)
    meter = HeldRead([1.0] * 100)  # the polling thread's reads hang, as on a wedged driver
    sampler = Sampler([meter], interval_s=0.01)
    sampler.open()  # the first sample, taken before the lock is watched
    lock = TimeoutRecordingLock()
    monkeypatch.setattr(sampler, "_lock", lock)
    sampler.start()
    try:
        assert meter.inside.wait(HANG_GUARD_S)  # the thread is now stuck in read()
        with pytest.warns(CarbonCallbacksWarning, match="hanging"):
            stuck = sampler.sample()  # an exact read gives up and returns the latest sample
            assert sampler.sample() is stuck  # ... and at once while the hang lasts
            sampler.stop()
        assert not meter.returned.is_set()  # all three came back while the read still hung
        assert lock.test_waits == [0.2, 0, 0]  # one bounded wait, then none while it hangs
    finally:
        meter.release.set()  # let the stuck thread finish so the test leaves none behind
        join_sampler_threads()


def test_fault_spans_stay_bounded_when_a_fault_comes_and_goes() -> None:
    class Flaky(ScriptedPowerMeter):
        def read(self) -> Reading:
            self.reads += 1
            return Reading(faults={"gpu:9": f"error {self.reads % 2}"})  # alternating reasons

    clock = Clock()
    sampler = Sampler([Flaky([])], clock_ns=clock)
    with pytest.warns(CarbonCallbacksWarning):
        sampler.open()
        for _ in range(3 * MAX_FAULT_SPANS):
            clock.advance(0.1)
            sampler.sample()
    assert len(sampler._faults["gpu:9"]) == MAX_FAULT_SPANS
    assert sampler.faults_between(clock.now_ns, clock.now_ns)  # the latest time still faulty
    sampler.stop()


def test_samplers_are_shared_per_key_and_stopped_by_their_last_user() -> None:
    made: list[Sampler] = []

    def make() -> Sampler:
        made.append(Sampler([ScriptedPowerMeter([1.0] * 1000)], interval_s=0.01))
        return made[-1]

    first, slot_a = attach("key", make, lambda: (5, 40, 0))
    second, slot_b = attach("key", make, lambda: (7, 0, 0))
    private, slot_c = attach(None, make, lambda: (9, 0, 0))
    assert first is second and private is not first and len(made) == 2
    sample = first.sample()
    assert (sample.steps_of(slot_a), sample.steps_of(slot_b)) == (5, 7)
    assert sample.counts_of(slot_a) == (5, 40, 0)
    assert private.sample().steps_of(slot_c) == 9
    detach("key", first, slot_a)
    assert first.is_running
    detach("key", second, slot_b)
    detach(None, private, slot_c)
    assert not first.is_running and not private.is_running
    third, slot = attach("key", make, lambda: 1)
    assert third is not first  # a stopped sampler is never handed out again
    detach("key", third, slot)
