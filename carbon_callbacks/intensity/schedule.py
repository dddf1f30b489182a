"""When to start: the start time whose run meets the lowest forecast carbon intensity.

Pure functions over forecast slots (any length: 5 min, 30 min, 1 h; with gaps). The mean
intensity of a run of length H started at ``s`` is the time-weighted mean of the slots over
[s, s + H]. It is piecewise linear in ``s`` between the starts where ``s`` or ``s + H`` meets a
slot boundary, so its minimum over an interval of starts lies at one of those starts or at an end
of the interval: those are the only candidates looked at. A run must lie entirely inside the
forecast: a start whose run crosses a gap, or runs past the last slot, is not a candidate.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from carbon_callbacks.intensity.base import IntensitySlot

__all__ = [
    "Choice",
    "NoStartFits",
    "best_start",
    "covered_spans",
    "mean_over",
    "usable_slots",
    "utc_text",
]

_TIE = 1e-9
"""Means this close (relative) are equal: the earlier start wins."""
_TOUCH_S = 1e-6
"""Slots this close in time meet (float rounding of ``start + length``)."""


class NoStartFits(ValueError):
    """No start within the window lets the run lie inside the forecast; the message says why."""


@dataclass(frozen=True)
class Choice:
    """The cleanest start found, and how it compares with starting now.

    Attributes:
        start_unix: The chosen start, seconds since the epoch.
        g_per_kwh: The forecast mean intensity over the run started then.
        now_unix: The "now" the choice was made at.
        now_g_per_kwh: The forecast mean over the run started now; None when the forecast does
            not cover a run started now (a gap, or it begins later).
        forecast_until_unix: The end of the last forecast slot.
    """

    start_unix: float
    g_per_kwh: float
    now_unix: float
    now_g_per_kwh: float | None
    forecast_until_unix: float

    @property
    def saving_fraction(self) -> float | None:
        """The share of CO2e saved against starting now (0.4 = 40 % less); None when unknown."""
        if self.now_g_per_kwh is None or self.now_g_per_kwh <= 0:
            return None
        return max(0.0, 1.0 - self.g_per_kwh / self.now_g_per_kwh)

    @property
    def wait_s(self) -> float:
        """Seconds from now to the chosen start."""
        return self.start_unix - self.now_unix


def usable_slots(slots: Iterable[IntensitySlot]) -> list[IntensitySlot]:
    """The slots sorted by start, with a slot overlapping an earlier one dropped."""
    kept: list[IntensitySlot] = []
    for slot in sorted(slots, key=lambda item: item.start_unix):
        if slot.end_unix <= slot.start_unix or not math.isfinite(slot.g_per_kwh):
            continue
        if kept and slot.start_unix < kept[-1].end_unix:
            continue
        kept.append(slot)
    return kept


def covered_spans(slots: Sequence[IntensitySlot]) -> list[tuple[float, float]]:
    """The stretches of time the slots cover without a gap, in order."""
    spans: list[tuple[float, float]] = []
    for slot in usable_slots(slots):
        if spans and slot.start_unix <= spans[-1][1] + _TOUCH_S:
            spans[-1] = (spans[-1][0], max(spans[-1][1], slot.end_unix))
        else:
            spans.append((slot.start_unix, slot.end_unix))
    return spans


def mean_over(slots: Sequence[IntensitySlot], start: float, end: float) -> float | None:
    """The time-weighted mean over [start, end], or None where the slots leave any of it out."""
    if end <= start:
        raise ValueError(f"the interval must have a length, got [{start}, {end}]")
    return _Series(usable_slots(slots)).mean(start, end)


class _Series:
    """Slots (through ``usable_slots``) with their running integral, for means in O(log n)."""

    def __init__(self, ordered: Sequence[IntensitySlot]) -> None:
        self.slots = ordered
        self.starts = [slot.start_unix for slot in ordered]
        self.spans = covered_spans(ordered)
        self._span_starts = [start for start, _ in self.spans]
        self._before = [0.0]  # the integral up to each slot's start (gaps count nothing)
        for slot in ordered:
            self._before.append(
                self._before[-1] + slot.g_per_kwh * (slot.end_unix - slot.start_unix)
            )

    def mean(self, start: float, end: float) -> float | None:
        """The mean over [start, end] when one covered span holds it, else None."""
        index = bisect.bisect_right(self._span_starts, start) - 1
        if index < 0 or end > self.spans[index][1] + _TOUCH_S:
            return None
        return (self._integral(end) - self._integral(start)) / (end - start)

    def _integral(self, at: float) -> float:
        index = bisect.bisect_right(self.starts, at) - 1
        if index < 0:
            return 0.0
        slot = self.slots[index]
        inside = min(at, slot.end_unix) - slot.start_unix
        return self._before[index] + slot.g_per_kwh * inside


def best_start(
    slots: Sequence[IntensitySlot],
    now_unix: float,
    duration_s: float,
    within_s: float | None = None,
) -> Choice:
    """The start in [now, now + within] whose run of ``duration_s`` has the lowest forecast mean.

    Ties go to the earliest start. Starts are looked at only where the mean can turn: now, the
    end of the window, and the starts putting the run's start or end on a slot boundary.

    Args:
        slots: Forecast (or measured) slots; order, gaps and slot length do not matter.
        now_unix: The earliest start.
        duration_s: The run's expected length in seconds; positive.
        within_s: How long after now the run may start; None: as late as the forecast allows.

    Raises:
        ValueError: ``duration_s`` or ``within_s`` is not a positive (non-negative) number.
        NoStartFits: The run is longer than the forecast reaches, or every start within the
            window makes it cross a gap; the message gives the horizon.
    """
    if not (math.isfinite(duration_s) and duration_s > 0):
        raise ValueError(f"the run's duration must be a positive number of seconds: {duration_s}")
    if within_s is not None and not within_s >= 0:
        raise ValueError(f"the window must be 0 or more seconds: {within_s}")
    series = _Series(usable_slots(slots))
    spans = series.spans
    latest_allowed = math.inf if within_s is None else now_unix + within_s
    candidates: list[float] = []
    for span_start, span_end in spans:
        first = max(span_start, now_unix)
        last = min(span_end - duration_s, latest_allowed)
        if first > last:
            continue
        candidates += [first, last]
        for slot in series.slots:
            for boundary in (slot.start_unix, slot.end_unix):
                for start in (boundary, boundary - duration_s):
                    if first <= start <= last:
                        candidates.append(start)
    forecast_until = spans[-1][1] if spans else now_unix
    if not candidates:
        raise NoStartFits(_why_none(spans, now_unix, duration_s, forecast_until, within_s))
    scored = [(start, series.mean(start, start + duration_s)) for start in sorted(candidates)]
    means = [(start, mean) for start, mean in scored if mean is not None]
    if not means:  # only float rounding at a span's end could do this
        raise NoStartFits(_why_none(spans, now_unix, duration_s, forecast_until, within_s))
    lowest = min(mean for _, mean in means)
    start, mean = next(
        (start, mean) for start, mean in means if mean <= lowest + _TIE * max(1.0, abs(lowest))
    )
    return Choice(
        start_unix=start,
        g_per_kwh=mean,
        now_unix=now_unix,
        now_g_per_kwh=series.mean(now_unix, now_unix + duration_s),
        forecast_until_unix=forecast_until,
    )


def _why_none(
    spans: Sequence[tuple[float, float]],
    now_unix: float,
    duration_s: float,
    forecast_until: float,
    within_s: float | None,
) -> str:
    """Why no start fits: no forecast, past its horizon, or gaps (with the window named)."""
    run = f"a run of {_hours(duration_s)}"
    if not spans or forecast_until <= now_unix:
        return f"{run} cannot be placed: the forecast holds nothing after now"
    horizon = forecast_until - now_unix
    if duration_s > horizon:
        return (
            f"{run} is longer than the forecast, which reaches {utc_text(forecast_until)} "
            f"({_hours(horizon)} from now)"
        )
    window = "" if within_s is None else f" within {_hours(within_s)} from now"
    return (
        f"no start{window} keeps {run} inside the forecast: it has gaps "
        f"({_gaps(spans, now_unix)}), and a run may not cross one"
    )


def _gaps(spans: Sequence[tuple[float, float]], now_unix: float) -> str:
    """The first few gaps after now, as ``12:00-12:30 UTC``."""
    gaps = [(end, after) for (_, end), (after, _) in itertools.pairwise(spans) if after > now_unix]
    shown = ", ".join(f"{utc_text(start)} to {utc_text(end)}" for start, end in gaps[:3])
    return shown + (", ..." if len(gaps) > 3 else "") if gaps else "none after now"


def utc_text(unix: float) -> str:
    """``2024-05-01 03:30 UTC``; seconds shown only when the time has them."""
    moment = datetime.fromtimestamp(unix, timezone.utc)
    form = "%Y-%m-%d %H:%M:%S UTC" if moment.second or moment.microsecond else "%Y-%m-%d %H:%M UTC"
    return moment.strftime(form)


def _hours(seconds: float) -> str:
    """``3 h``, ``1.5 h``, ``45 min``, ``30 s``: a length of time in words."""
    if seconds >= 3600:
        return f"{seconds / 3600:.4g} h"
    if seconds >= 60:
        return f"{seconds / 60:.4g} min"
    return f"{seconds:.3g} s"
