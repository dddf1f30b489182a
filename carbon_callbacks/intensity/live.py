"""Time-resolved intensity from a live grid API, fetched off the training thread.

``LiveIntensity`` answers ``intensity(start, end)`` from memory at once: the slots fetched so far
cover what they cover, the static fallback value covers the rest (and everything until the first
answer arrives). A daemon thread fetches the recent past and the forecast horizon at start and
then every ``refresh_s``, with a bounded retry; a failure warns once and changes nothing else.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import NamedTuple

from carbon_callbacks._internal.signals import DeferringLock
from carbon_callbacks._internal.warnings import WarnOnce
from carbon_callbacks.intensity.base import IntensitySlot, IntensityValue, LiveSource, ProviderError
from carbon_callbacks.intensity.cache import IntensityCache
from carbon_callbacks.intensity.combine import Piece, weighted_intensity
from carbon_callbacks.intensity.schedule import Choice, best_start

THREAD_NAME = "carbon-callbacks-intensity"


class _SlotTable(NamedTuple):
    """The live slots in start order and their start times, published together."""

    slots: tuple[IntensitySlot, ...] = ()
    starts: tuple[float, ...] = ()


class LiveIntensity:
    """An intensity provider backed by a live source, with a static fallback.

    Args:
        source: The live API client for one zone.
        fallback: The value used wherever no live slot covers the time.
        cache: On-disk cache of slots; None keeps them in memory only.
        refresh_s: Seconds between fetches while running.
        cache_max_age_s: A cache younger than this replaces the first fetch.
        attempts: Tries per fetch before giving up until the next refresh.
        backoff_s: Wait before the second try; doubled for each further one.
        history_s: How far before the run (or the last measured slot) each fetch reaches back.
        horizon_s: How far ahead each fetch reaches (forecasts).
        clock: Wall clock in seconds since the epoch (injectable for tests).
    """

    def __init__(
        self,
        source: LiveSource,
        fallback: IntensityValue,
        *,
        cache: IntensityCache | None = None,
        refresh_s: float = 900.0,
        cache_max_age_s: float = 900.0,
        attempts: int = 3,
        backoff_s: float = 2.0,
        history_s: float = 3600.0,
        horizon_s: float = 86400.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.source = source
        self.fallback = fallback
        self._cache = cache
        self._refresh_s = refresh_s
        self._cache_max_age_s = cache_max_age_s
        self._attempts = attempts
        self._backoff_s = backoff_s
        self._history_s = history_s
        self._horizon_s = horizon_s
        self._clock = clock
        self._table = _SlotTable()
        self._merge_lock = DeferringLock()
        self._stop_event = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._started_unix: float | None = None
        self._last_error: str | None = None
        self._warn_once = WarnOnce()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start fetching in a daemon thread. Idempotent."""
        if self._thread is not None:
            return
        self._started_unix = self._clock()
        self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop fetching and close the source's idle connections.

        Does not wait for a request in flight: the thread is a daemon, and the connection of that
        request is closed when it comes back to the closed pool.
        """
        self._stop_event.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=0.1)
        try:
            self.source.close()
        except Exception as error:  # closing must never raise into the end of training
            self._warn_once("close", f"carbon-callbacks: closing {self.source.name}: {error!r}")

    def wait_ready(self, timeout: float) -> bool:
        """Wait until the first fetch has succeeded or given up; True if it finished in time."""
        return self._ready.wait(timeout)

    @property
    def last_error(self) -> str | None:
        """Why the latest fetch failed; None after a success or before any fetch."""
        return self._last_error

    # -- answers -----------------------------------------------------------------------------

    def intensity(self, start_unix: float, end_unix: float) -> IntensityValue:
        """Time-weighted mean over [start_unix, end_unix]: live slots where known, else fallback."""
        if end_unix <= start_unix:
            slot = self.slot_at(start_unix)
            return self._fallback_value() if slot is None else self._live_value(slot)
        slots, starts = self._table
        pieces: list[Piece] = []
        covered = 0.0
        index = max(bisect.bisect_right(starts, start_unix) - 1, 0)
        for slot in slots[index:]:
            if slot.start_unix >= end_unix:
                break
            overlap = min(end_unix, slot.end_unix) - max(start_unix, slot.start_unix)
            if overlap > 0:
                pieces.append(Piece(overlap, self._live_value(slot)))
                covered += overlap
        uncovered = (end_unix - start_unix) - covered
        if uncovered > 1e-6 * (end_unix - start_unix):
            pieces.append(Piece(uncovered, self._fallback_value()))
        result = weighted_intensity(pieces)
        assert result is not None  # pieces is never empty for a non-empty interval
        return result

    def slot_at(self, t_unix: float) -> IntensitySlot | None:
        """The live slot covering ``t_unix``, or None when no live data covers it."""
        slots, starts = self._table
        index = bisect.bisect_right(starts, t_unix) - 1
        if index >= 0 and slots[index].end_unix > t_unix:
            return slots[index]
        return None

    def change_points(self, start_unix: float, end_unix: float) -> list[float]:
        """Times strictly inside (start_unix, end_unix) where the intensity may change."""
        slots, starts = self._table
        index = max(bisect.bisect_right(starts, start_unix) - 1, 0)
        points: set[float] = set()
        for slot in slots[index:]:
            if slot.start_unix >= end_unix:
                break
            points.update(t for t in (slot.start_unix, slot.end_unix) if start_unix < t < end_unix)
        return sorted(points)

    @property
    def has_forecast(self) -> bool:
        """True once a fetch has brought forecast slots (none before the first answer)."""
        return any(slot.forecast for slot in self._table.slots)

    def cleanest_start(
        self, earliest_unix: float, duration_s: float, within_s: float
    ) -> Choice | None:
        """The start in [earliest, earliest + within] with the lowest mean over ``duration_s``.

        From the slots fetched so far (``schedule.best_start``, from memory: no request). None
        when they hold no forecast, when no start keeps the run inside them, or for a duration
        that is not a positive number.
        """
        if not self.has_forecast:
            return None
        try:
            return best_start(self._table.slots, earliest_unix, duration_s, within_s)
        except ValueError:  # NoStartFits among them: the forecast does not cover such a run
            return None

    def describe(self) -> dict[str, object]:
        """JSON-ready description for the run-log header (holds no secrets)."""
        return {
            "live": self.source.name,
            "zone": self.source.zone,
            "basis": self.source.basis,
            "fallback": self.fallback.to_dict(),
        }

    def __repr__(self) -> str:
        return f"LiveIntensity({self.source.name!r}, zone={self.source.zone!r})"

    # -- fetching ----------------------------------------------------------------------------

    def refresh(self) -> bool:
        """Fetch now (with the bounded retry), merge and cache the result; True on success."""
        now = self._clock()
        since = min(self._started_unix or now, now) - self._history_s
        measured = [s.end_unix for s in self._table.slots if not s.forecast]
        if measured:
            since = max(since, max(measured) - self._history_s)
        for attempt in range(self._attempts):
            try:
                slots = self.source.fetch(since, now + self._horizon_s)
            except ProviderError as error:
                self._last_error = error.reason
            except Exception as error:  # a client bug must not kill the thread or leak details
                self._last_error = f"unexpected {type(error).__name__}"
            else:
                self._last_error = None
                self._merge(slots)
                self._save()
                return True
            if self._stop_event.is_set():
                break  # the run is over: nobody is left to use the figure
            self._warn_once(
                "live-unavailable",
                f"carbon-callbacks: live carbon intensity from {self.source.name} "
                f"({self.source.zone}) unavailable: {self._last_error}; CO2e uses "
                f"{self.fallback.source} where no live data has arrived, and training continues.",
            )
            if attempt + 1 < self._attempts and self._stop_event.wait(self._backoff_s * 2**attempt):
                break
        return False

    def _run(self) -> None:
        if not self._load_fresh_cache():
            self.refresh()
        self._ready.set()
        while not self._stop_event.wait(self._refresh_s):
            self.refresh()

    def _load_fresh_cache(self) -> bool:
        """Merge cached slots; True when the cache is recent enough to skip the first fetch."""
        if self._cache is None:
            return False
        cached = self._cache.load()
        if cached is None:
            return False
        self._merge(list(cached.slots))
        now = self._clock()
        covers_now = any(s.start_unix <= now < s.end_unix for s in cached.slots)
        return covers_now and 0 <= now - cached.fetched_unix < self._cache_max_age_s

    def _merge(self, new_slots: list[IntensitySlot]) -> None:
        """Add slots by start time; a measured value is never replaced by a forecast."""
        with self._merge_lock:
            by_start = {slot.start_unix: slot for slot in self._table.slots}
            for slot in new_slots:
                old = by_start.get(slot.start_unix)
                if old is None or old.forecast or not slot.forecast:
                    by_start[slot.start_unix] = slot
            ordered = tuple(sorted(by_start.values(), key=lambda s: s.start_unix))
            # one assignment publishes both: a reader never pairs new slots with old starts
            self._table = _SlotTable(ordered, tuple(s.start_unix for s in ordered))

    def _save(self) -> None:
        if self._cache is None:
            return
        try:
            self._cache.save(self._clock(), self._table.slots)
        except OSError as error:
            self._warn_once(
                "cache-write",
                f"carbon-callbacks: cannot write the intensity cache {self._cache.path} "
                f"({error.strerror or error}); live data is kept in memory only.",
            )

    def _live_value(self, slot: IntensitySlot) -> IntensityValue:
        return IntensityValue(
            g_per_kwh=slot.g_per_kwh,
            source=self.source.name,
            zone=self.source.zone,
            basis=self.source.basis,
            estimated=slot.forecast,
            guessed_location=self.fallback.guessed_location,
        )

    def _fallback_value(self) -> IntensityValue:
        reason = self._last_error or "no live data for this time"
        note = f"{self.source.name}: {reason}"
        if self.fallback.fallback:
            note = f"{self.fallback.fallback}; {note}"
        return replace(self.fallback, fallback=note)
