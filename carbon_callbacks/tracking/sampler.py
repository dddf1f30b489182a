"""The sampler: one daemon thread that polls every meter and keeps a bounded energy timeline.

Power-only channels are integrated here (trapezoid), so every channel leaves the sampler as a
cumulative energy counter in joules. Reads are serialised by one lock, so the thread and the exact
reads a tracker takes at window boundaries never interleave inside a meter. The thread is a
daemon, stopped by an Event and joined on ``stop``; at interpreter exit every running sampler is
stopped; in a child created by ``fork`` every inherited sampler is marked dead so the child never
reads or counts.

Trackers that measure the same meters in one process share one sampler (``attach`` / ``detach``):
a callback and a ``with Tracker()`` around an evaluation poll the hardware once, each with its own
start point and step count.
"""

from __future__ import annotations

import bisect
import os
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

from carbon_callbacks._internal.process_hooks import ProcessRegistry
from carbon_callbacks._internal.signals import DeferringLock
from carbon_callbacks._internal.warnings import WarnOnce
from carbon_callbacks.meters.base import Channel, Meter, Reading, Unavailable

DEFAULT_INTERVAL_S = 0.1
DEFAULT_MAX_SAMPLES = 8192
DEFAULT_CHECKPOINT_S = 30.0
MAX_CHECKPOINTS = 8192
MAX_FAULT_SPANS = 256
"""Fault spans kept per channel; past this the latest span is stretched, so memory stays bounded
(a channel that fails on and off for days is then marked faulty from that span on)."""
JOIN_TIMEOUT_S = 5.0


_NO_STALE: frozenset[int] = frozenset()
"""Shared by every sample with no stale channel (an empty frozenset each is half a sample)."""

Counts = tuple[int, int, int]
"""What a tracker has counted: steps, and the samples and tokens those steps processed. One tuple,
replaced whole at each step, so the sampler thread reads all three from the same instant."""

NO_COUNTS: Counts = (0, 0, 0)


@dataclass(frozen=True, slots=True)
class Sample:
    """Cumulative joules per channel (in ``Sampler.channels`` order) at one monotonic instant.

    A channel whose value is None has not been read successfully yet: its energy is unknown, not 0.
    ``stale`` holds the indices of channels that could not be read at this instant: their value is
    the last one read, carried forward. ``counts`` holds what every counter
    (``Sampler.count_steps``) had counted at that instant (steps, then the samples and tokens
    they processed), which makes the timeline a step timeline for prediction, and lets a figure
    divide this sample's energy by this sample's own counts.
    """

    t_ns: int
    joules: tuple[float | None, ...]
    stale: frozenset[int] = _NO_STALE
    counts: tuple[Counts, ...] = ()

    def counts_of(self, slot: int) -> Counts:
        """What the counter in ``slot`` had counted (all 0 when it was not counting yet)."""
        return self.counts[slot] if slot < len(self.counts) else NO_COUNTS

    def steps_of(self, slot: int) -> int:
        """The step count of the counter in ``slot`` (0 when it was not counting yet)."""
        return self.counts_of(slot)[0]


@dataclass(slots=True)
class FaultSpan:
    """A stretch of time during which one channel could not be read."""

    reason: str
    start_ns: int
    end_ns: int


class _ChannelState:
    """Per-channel bookkeeping that turns raw meter values into cumulative joules."""

    __slots__ = ("baseline_j", "cumulative_j", "last_power_t_ns", "last_power_w")

    def __init__(self) -> None:
        self.baseline_j: float | None = None
        self.cumulative_j: float | None = None
        self.last_power_w: float | None = None
        self.last_power_t_ns = 0

    def add_energy(self, counter_j: float) -> None:
        if self.baseline_j is None:
            self.baseline_j = counter_j
        self.cumulative_j = counter_j - self.baseline_j

    def add_power(self, watts: float, t_ns: int) -> None:
        if self.last_power_w is None:
            self.cumulative_j = 0.0
        else:
            elapsed_s = (t_ns - self.last_power_t_ns) / 1e9
            self.cumulative_j = (self.cumulative_j or 0.0) + (
                watts + self.last_power_w
            ) / 2 * elapsed_s
        self.last_power_w = watts
        self.last_power_t_ns = t_ns


class Sampler:
    """Polls meters at a fixed interval from one daemon thread.

    Args:
        meters: The meters to poll. They are opened by ``open`` and closed by ``stop``.
        interval_s: Polling interval; shortened when a meter needs more frequent reads (RAPL wrap).
        max_samples: Bound on the timeline; older samples are dropped.
        clock_ns: Monotonic clock in nanoseconds (injectable for tests).
        checkpoint_s: Spacing of the sparse checkpoints kept for the whole run, so that
            ``joules_at`` still answers (more coarsely) after the timeline has dropped old samples.
            When ``MAX_CHECKPOINTS`` is reached every other one is dropped and the spacing doubles.
    """

    def __init__(
        self,
        meters: Sequence[Meter],
        interval_s: float = DEFAULT_INTERVAL_S,
        max_samples: int = DEFAULT_MAX_SAMPLES,
        clock_ns: Callable[[], int] = time.monotonic_ns,
        checkpoint_s: float = DEFAULT_CHECKPOINT_S,
    ) -> None:
        self._meters = list(meters)
        self._step_counters: tuple[Callable[[], Counts] | None, ...] = ()
        self._listeners: dict[int, Callable[[Sample], None]] = {}
        self._requested_interval_s = interval_s
        self._max_samples = max_samples
        self._clock_ns = clock_ns
        self._lock = DeferringLock()
        self._counters_lock = DeferringLock()
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._timeline: list[Sample] = []
        self._checkpoints: list[Sample] = []
        self._checkpoint_ns = round(checkpoint_s * 1e9)
        self._channels: tuple[Channel, ...] = ()
        self._unavailable: list[Unavailable] = []
        self._states: dict[str, _ChannelState] = {}
        self._opened_meters: list[tuple[Meter, tuple[str, ...]]] = []
        self._power_ids: frozenset[str] = frozenset()
        self._faults: dict[str, list[FaultSpan]] = {}
        self._owner_pid = os.getpid()
        self._warn_once = WarnOnce()
        self._wedged = False
        self._opened = False
        self._closed = False

    @property
    def channels(self) -> tuple[Channel, ...]:
        """The channels of every meter, in the order of ``Sample.joules``."""
        return self._channels

    @property
    def unavailable(self) -> list[Unavailable]:
        """What the meters found but could not use."""
        return list(self._unavailable)

    @property
    def interval_s(self) -> float:
        """The effective polling interval: the requested one, shortened for meters that need it."""
        limits = [m.max_interval_s for m in self._meters if m.max_interval_s is not None]
        return min([self._requested_interval_s, *limits])

    @property
    def is_running(self) -> bool:
        """True while the polling thread is alive in this process."""
        return self._thread is not None and self._thread.is_alive() and self._is_owner()

    def count_steps(self, counter: Callable[[], Counts]) -> int:
        """Record ``counter()`` (a tracker's counts so far) in every sample from now on.

        Returns:
            The slot to read with ``Sample.steps_of`` and to hand back to ``stop_counting``.
        """
        with self._counters_lock:
            counters = list(self._step_counters)
            slot = counters.index(None) if None in counters else len(counters)
            counters[slot : slot + 1] = [counter]
            self._step_counters = tuple(counters)
        return slot

    def listen(self, slot: int, listener: Callable[[Sample], None]) -> None:
        """Hand ``listener`` every sample the thread takes, until ``stop_counting(slot)``.

        Exact reads (window boundaries) are not handed on, so a listener's work (the run log's
        checkpoints) stays off the training thread.
        """
        with self._counters_lock:
            self._listeners = self._listeners | {slot: listener}

    def stop_counting(self, slot: int) -> int:
        """Stop recording the counter in ``slot`` (and its listener); returns how many remain."""
        with self._counters_lock:
            self._listeners = {key: fn for key, fn in self._listeners.items() if key != slot}
            counters = list(self._step_counters)
            if slot < len(counters):
                counters[slot] = None
            self._step_counters = tuple(counters)
            return sum(counter is not None for counter in counters)

    def open(self) -> None:
        """Open every meter and take the first sample (the zero point of every channel)."""
        if self._opened:
            return
        self._opened = True
        channels: list[Channel] = []
        for meter in self._meters:
            try:
                opened = meter.open()
            except Exception as error:  # a meter bug must not stop the run
                self._unavailable.append(Unavailable(meter.source, f"failed to open: {error}"))
                continue
            channels.extend(opened)
            self._opened_meters.append((meter, tuple(channel.id for channel in opened)))
            self._unavailable.extend(meter.unavailable)
        self._channels = tuple(channels)
        self._power_ids = frozenset(c.id for c in channels if c.quantity == "power")
        self._states = {channel.id: _ChannelState() for channel in channels}
        self.sample()

    def start(self) -> None:
        """Start the polling thread (opening the meters first if needed)."""
        self.open()
        if self._thread is not None or self._closed:
            return
        _live_samplers.add(self)
        self._thread = threading.Thread(
            target=self._run, name="carbon-callbacks-sampler", daemon=True
        )
        self._thread.start()

    def sample(self) -> Sample:
        """Read every meter now and append the result to the timeline; returns that sample.

        In a forked child, or after ``stop``, no meter is read and the latest sample is returned.
        So it is while another read hangs (a wedged driver): the caller waits at most
        ``JOIN_TIMEOUT_S`` once, and not at all while the hang lasts.
        """
        if not self._acquire():
            return self._latest_or_empty()
        try:
            if self._closed or not self._is_owner():
                return self._latest_or_empty()
            return self._sample_locked()
        finally:
            self._lock.release()

    def latest(self) -> Sample:
        """The most recent sample, without reading the meters (and without waiting on a hang)."""
        if not self._acquire():
            return self._latest_or_empty()  # reading the last list item is atomic
        try:
            return self._latest_or_empty()
        finally:
            self._lock.release()

    def joules_at(self, t_ns: int) -> tuple[float | None, ...] | None:
        """Cumulative joules per channel at ``t_ns``, interpolated linearly between samples.

        Inside the retained timeline the interpolation uses neighbouring samples; before it, the
        sparse checkpoints (every ``checkpoint_s`` or more). Returns None when ``t_ns`` is before
        the first sample or after the latest one (the caller then needs an exact read), and
        while a device read hangs.
        """
        if not self._acquire():
            return None
        try:
            timeline = self._timeline
            if not timeline or t_ns > timeline[-1].t_ns:
                return None
            first = timeline[0]
            series = (
                timeline
                if t_ns >= first.t_ns
                else [c for c in self._checkpoints if c.t_ns < first.t_ns] + [first]
            )
            if t_ns < series[0].t_ns:
                return None
            index = bisect.bisect_left(series, t_ns, key=_sample_time)
            after = series[index]
            if after.t_ns == t_ns or index == 0:
                return after.joules
            before = series[index - 1]
        finally:
            self._lock.release()
        weight = (t_ns - before.t_ns) / (after.t_ns - before.t_ns)
        return tuple(
            None if a is None or b is None else a + (b - a) * weight
            for a, b in zip(before.joules, after.joules, strict=True)
        )

    def history(self) -> list[Sample]:
        """The run so far: the sparse checkpoints older than the timeline, then the timeline.

        Empty while a device read hangs.
        """
        if not self._acquire():
            return []
        try:
            dense = list(self._timeline)
            if not dense:
                return []
            return [c for c in self._checkpoints if c.t_ns < dense[0].t_ns] + dense
        finally:
            self._lock.release()

    def faults_between(self, start_ns: int, end_ns: int) -> dict[str, str]:
        """Channel id to the first fault reason seen in [start_ns, end_ns], for partial figures.

        While a device read hangs, every channel is reported faulty: its figure ends at the last
        sample taken, not at ``end_ns``.
        """
        if not self._acquire():
            return dict.fromkeys((c.id for c in self._channels), "a device read is hanging")
        try:
            found: dict[str, str] = {}
            for channel_id, spans in self._faults.items():
                for span in spans:
                    if span.start_ns <= end_ns and span.end_ns >= start_ns:
                        found[channel_id] = span.reason
                        break
            return found
        finally:
            self._lock.release()

    def stop(self) -> None:
        """Stop and join the thread, then close the meters. Idempotent; safe from any thread."""
        self._stop_event.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread() and self._is_owner():
            thread.join(timeout=JOIN_TIMEOUT_S)
            if thread.is_alive():  # a meter call that hangs (a wedged driver) must not hang exit
                self._warn_once(
                    "join-timeout",
                    f"carbon-callbacks: the sampler thread did not stop within "
                    f"{JOIN_TIMEOUT_S:g} s (a device read is hanging); it is a daemon and ends "
                    "with the process.",
                )
        acquired = self._acquire()
        try:
            if self._closed:
                return
            self._closed = True
        finally:
            if acquired:
                self._lock.release()
        _live_samplers.discard(self)
        if not self._is_owner() or not acquired:
            return  # never call into meters from a forked child, or while one of them hangs
        for meter in self._meters:
            try:
                meter.close()
            except Exception as error:
                self._warn_once(
                    f"close:{meter.source}", f"carbon-callbacks: closing {meter.source}: {error}"
                )

    def _run(self) -> None:
        interval_s = self.interval_s
        while not self._stop_event.wait(interval_s):
            try:
                sample = self.sample()
                for listener in self._listeners.values():
                    listener(sample)
            except Exception as error:  # never let the thread die silently or raise into training
                self._warn_once(
                    f"sampler:{type(error).__name__}", f"carbon-callbacks sampler: {error!r}"
                )

    def _sample_locked(self) -> Sample:
        t_ns = self._clock_ns()
        failed: set[str] = set()
        for meter, channel_ids in self._opened_meters:
            reading = self._read_meter(meter, channel_ids)
            for channel_id, value in reading.values.items():
                state = self._states.get(channel_id)
                if state is None:
                    continue
                if channel_id in self._power_ids:
                    state.add_power(value, t_ns)
                else:
                    state.add_energy(value)
            for channel_id, reason in reading.faults.items():
                if channel_id in self._states:
                    self._record_fault(channel_id, reason, t_ns)
                    if channel_id not in reading.values:
                        failed.add(channel_id)
        stale = (
            frozenset(i for i, c in enumerate(self._channels) if c.id in failed)
            if failed
            else _NO_STALE
        )
        counts = tuple(NO_COUNTS if count is None else count() for count in self._step_counters)
        joules = tuple(self._states[c.id].cumulative_j for c in self._channels)
        sample = Sample(t_ns, joules, stale, counts)
        self._timeline.append(sample)
        if len(self._timeline) > 2 * self._max_samples:
            del self._timeline[: len(self._timeline) - self._max_samples]
        self._keep_checkpoint(sample)
        return sample

    def _keep_checkpoint(self, sample: Sample) -> None:
        checkpoints = self._checkpoints
        if checkpoints and sample.t_ns - checkpoints[-1].t_ns < self._checkpoint_ns:
            return
        checkpoints.append(sample)
        if len(checkpoints) > MAX_CHECKPOINTS:
            self._checkpoints = checkpoints[::2]
            self._checkpoint_ns *= 2

    @staticmethod
    def _read_meter(meter: Meter, channel_ids: tuple[str, ...]) -> Reading:
        try:
            return meter.read()
        except Exception as error:  # a meter broke its no-raise contract: degrade its channels
            return Reading(
                faults=dict.fromkeys(channel_ids, f"{meter.source} read failed: {error!r}")
            )

    def _record_fault(self, channel_id: str, reason: str, t_ns: int) -> None:
        spans = self._faults.setdefault(channel_id, [])
        if spans and (spans[-1].reason == reason or len(spans) >= MAX_FAULT_SPANS):
            spans[-1].end_ns = t_ns
        else:
            spans.append(FaultSpan(reason, t_ns, t_ns))
        self._warn_once(
            f"fault:{channel_id}:{reason}",
            f"carbon-callbacks: {channel_id}: {reason}; its figure is marked partial and "
            "training continues.",
        )

    def _acquire(self) -> bool:
        """Take the read lock, giving up after JOIN_TIMEOUT_S (at once while a read hangs)."""
        if self._lock.acquire(timeout=0 if self._wedged else JOIN_TIMEOUT_S):
            self._wedged = False
            return True
        self._wedged = True
        self._warn_once(
            "wedged",
            "carbon-callbacks: a device read is hanging; figures use the latest sample until it "
            "returns.",
        )
        return False

    def _latest_or_empty(self) -> Sample:
        if self._timeline:
            return self._timeline[-1]
        return Sample(self._clock_ns(), tuple(None for _ in self._channels))

    def _is_owner(self) -> bool:
        return os.getpid() == self._owner_pid

    def _disown_after_fork(self) -> None:
        """In a forked child: new locks and a set stop event; never read again.

        The thread did not survive the fork and may have held any of them (the stop event's inner
        lock too, for a moment on entering and leaving each ``wait``).
        """
        self._lock = DeferringLock()
        self._counters_lock = DeferringLock()
        self._stop_event = threading.Event()
        self._stop_event.set()
        self._thread = None
        self._closed = True


def _sample_time(sample: Sample) -> int:
    return sample.t_ns


_live_samplers: ProcessRegistry[Sampler] = ProcessRegistry(
    at_exit=Sampler.stop, in_forked_child=Sampler._disown_after_fork
)


_shared: dict[Hashable, Sampler] = {}
_shared_lock = DeferringLock()
_shared_fork_hook = False


def attach(
    key: Hashable | None, make: Callable[[], Sampler], counter: Callable[[], Counts]
) -> tuple[Sampler, int]:
    """A running sampler for ``key`` (shared with the trackers already using it) and a step slot.

    Args:
        key: What the sampler measures (the meter settings); None for a sampler of its own.
        make: Builds a new sampler when none runs for ``key``.
        counter: The tracker's counts (steps, samples, tokens), recorded in every sample.

    Returns:
        The sampler, started, and the slot of ``counter`` (for ``detach``).
    """
    global _shared_fork_hook
    with _shared_lock:
        sampler = None if key is None else _shared.get(key)
        if sampler is None or not sampler.is_running:
            sampler = make()
            sampler.start()
            if key is not None:
                _shared[key] = sampler
                if not _shared_fork_hook:
                    _shared_fork_hook = True
                    os.register_at_fork(after_in_child=_forget_shared_in_child)
        return sampler, sampler.count_steps(counter)


def _forget_shared_in_child() -> None:
    """A forked child shares no parent's sampler; the lock may have been held at the fork."""
    global _shared_lock
    _shared.clear()
    _shared_lock = DeferringLock()


def detach(key: Hashable | None, sampler: Sampler, slot: int) -> None:
    """Give back a tracker's use of ``sampler``; the last user stops it (joins, closes meters)."""
    with _shared_lock:
        if sampler.stop_counting(slot) > 0:
            return
        if key is not None and _shared.get(key) is sampler:
            del _shared[key]
    sampler.stop()
