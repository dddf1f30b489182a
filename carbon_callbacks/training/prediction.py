"""Forecasting a whole training run's energy and duration from its step timeline so far.

Pure functions over ``(seconds, steps, joules)`` points, as ``Tracker.step_timeline`` gives them:

1. The warm-up (compilation, autotuning, caches filling) is left out: the given number of steps,
   or the leading stretch whose time or energy per step is well above the rest's median.
2. What follows is cut into chunks of equal steps (whole epochs once two are seen, when the epoch
   length is known, so that work between epochs is counted). The central estimate of the cost per
   step is the mean of the most recent chunks, so it follows a change in the workload; the
   interval spans the spread of all chunks (10th to 90th percentile), so a change also widens it.
   It reflects the variation seen so far: a trend that continues (power drifting upwards) is not
   extrapolated, and the interval can then miss the outcome.
3. Total = what was measured so far + the remaining steps x the cost per step.

Carbontracker's method (mean epoch energy x epochs, warm-up included, no interval) is
``epoch_mean_forecast``, kept for the accuracy benchmark.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

Point = tuple[float, int, float | None]
"""Seconds since the start, steps done, joules so far (None: not measured)."""

WARMUP_RATIO = 1.5
"""A leading chunk costing this many times the median chunk, per step, counts as warm-up."""
CHUNKS = 10
RECENT_CHUNKS = 3
INTERVAL = 0.8
"""The interval's coverage: from the 10th to the 90th percentile of the chunks' costs."""


@dataclass(frozen=True)
class Forecast:
    """A forecast of a run's totals, each as (low, central, high).

    Attributes:
        steps_done: Steps observed when the forecast was made.
        total_steps: The run's configured length in steps.
        warmup_steps: Steps left out as warm-up.
        elapsed_s: Seconds since the start when the forecast was made.
        energy_j: Total joules at the end of the run (measured so far + predicted).
        duration_s: Total seconds at the end of the run.
        interval: Nominal coverage of (low, high).
    """

    steps_done: int
    total_steps: int
    warmup_steps: int
    elapsed_s: float
    energy_j: tuple[float, float, float]
    duration_s: tuple[float, float, float]
    interval: float = INTERVAL

    @property
    def remaining_s(self) -> float:
        """Central estimate of the seconds still to run."""
        return self.duration_s[1] - self.elapsed_s


def forecast(
    points: Sequence[Point],
    total_steps: int,
    *,
    warmup_steps: int | None = None,
    period_steps: int | None = None,
    min_steps: int = 0,
    chunks: int = CHUNKS,
    recent: int = RECENT_CHUNKS,
) -> Forecast | None:
    """Forecast the totals of a run of ``total_steps`` steps from its timeline so far.

    Args:
        points: The timeline so far.
        total_steps: The run's configured length.
        warmup_steps: Steps to leave out at the start; None detects them.
        period_steps: Steps per epoch, when known: once two epochs are seen after the warm-up,
            chunks span whole epochs, so each holds one epoch's worth of the work done between
            epochs (validation, checkpoints), which sub-epoch chunks would miss.
        min_steps: Steps that must have run after the warm-up before a forecast is made.
        chunks: At most this many chunks.
        recent: The central estimate averages this many of the latest chunks (the latest one
            alone when chunks span whole epochs).

    Returns None when there is nothing to forecast or too little to go on: no length, the run
    already done, no measured energy, or fewer than two chunks of steps after the warm-up.
    """
    usable = [(t, s, j) for t, s, j in points if j is not None]
    if total_steps <= 0 or len(usable) < 3:
        return None
    now_t, done, now_j = usable[-1]
    if done >= total_steps or done < 2:
        return None
    warmup = detect_warmup(usable, chunks) if warmup_steps is None else max(warmup_steps, 0)
    settled = [p for p in usable if p[1] >= warmup]
    if not settled or settled[-1][1] - settled[0][1] < min_steps:
        return None
    rates = _chunk_rates(settled, chunks, period=period_steps)
    if len(rates) < 2:
        return None
    if period_steps and settled[-1][1] - settled[0][1] >= 2 * period_steps:
        recent = 1  # whole-epoch chunks: the latest epoch alone is the most recent evidence
    energy_rates = [joules for joules, _ in rates]
    time_rates = [seconds for _, seconds in rates]
    remaining = total_steps - done
    return Forecast(
        steps_done=done,
        total_steps=total_steps,
        warmup_steps=warmup,
        elapsed_s=now_t,
        energy_j=_totals(now_j or 0.0, remaining, energy_rates, recent),
        duration_s=_totals(now_t, remaining, time_rates, recent),
    )


def detect_warmup(points: Sequence[Point], chunks: int = CHUNKS) -> int:
    """Steps at the start whose time or energy per step is well above the median: the warm-up.

    Always at least the first step, which carries lazy initialisation in every framework.
    """
    rates = _chunk_rates(points, chunks, with_bounds=True)
    if len(rates) < 3:
        return min(1, points[-1][1]) if points else 0
    median_j = statistics.median(r[0] for r in rates)
    median_s = statistics.median(r[1] for r in rates)
    warmup = 1
    for joules, seconds, end_step in rates:
        if joules > WARMUP_RATIO * median_j or seconds > WARMUP_RATIO * median_s:
            warmup = max(warmup, int(end_step))
        else:
            break
    return warmup


def epoch_mean_forecast(epoch_joules: Sequence[float], total_epochs: int) -> float | None:
    """Carbontracker's forecast: the mean energy of the epochs so far x the number of epochs."""
    if not epoch_joules or total_epochs <= 0:
        return None
    return statistics.fmean(epoch_joules) * total_epochs


def _chunk_rates(
    points: Sequence[Point], chunks: int, *, with_bounds: bool = False, period: int | None = None
) -> list[tuple[float, ...]]:
    """(joules per step, seconds per step[, last step]) over chunks of about equal steps.

    With ``period`` and at least two periods of steps, chunks are whole multiples of it (any
    ``period`` consecutive steps cross one epoch end), counted back from the latest step; the
    oldest, incomplete part is left out.
    """
    if len(points) < 2:
        return []
    first, last = points[0][1], points[-1][1]
    span = last - first
    if span < 2:
        return []
    if period and period > 0 and span >= 2 * period:
        length = period * max(1, (span // period) // chunks)
        bounds = [last - length * k for k in range(span // length, -1, -1)]  # end at the latest
    else:
        count = min(chunks, span)
        bounds = [first + round(span * k / count) for k in range(count + 1)]
    at_bounds = [_at_step(points, step) for step in bounds]
    rates: list[tuple[float, ...]] = []
    for (t0, s0, j0), (t1, s1, j1) in itertools.pairwise(at_bounds):
        steps = s1 - s0
        if steps <= 0 or j0 is None or j1 is None:
            continue
        rate = ((j1 - j0) / steps, (t1 - t0) / steps)
        rates.append((*rate, s1) if with_bounds else rate)
    return rates


def _at_step(points: Sequence[Point], step: int) -> Point:
    """The first point at which ``step`` steps were done (points are in time order)."""
    for point in points:
        if point[1] >= step:
            return point
    return points[-1]


def _totals(
    now: float, remaining: int, rates: Sequence[float], recent: int
) -> tuple[float, float, float]:
    """(low, central, high) of now + remaining x rate."""
    central = statistics.fmean(rates[-recent:])
    low, high = _percentiles(rates)
    low, high = min(low, central), max(high, central)
    return (now + remaining * low, now + remaining * central, now + remaining * high)


def _percentiles(values: Sequence[float]) -> tuple[float, float]:
    """The 10th and 90th percentiles (linear interpolation), or min and max for few values."""
    ordered = sorted(values)
    if len(ordered) < 3:
        return ordered[0], ordered[-1]
    deciles = statistics.quantiles(ordered, n=10, method="inclusive")
    return deciles[0], deciles[-1]
