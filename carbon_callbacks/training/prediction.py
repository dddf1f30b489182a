"""Forecasting a whole training run's energy and duration from its step timeline so far.

Pure functions over ``(seconds, steps, joules)`` points, as ``Tracker.step_timeline`` gives them:

1. Pauses (validation passes) are cut out of the timeline: their time and energy are never a
   training step's cost, even when a step is counted late, after the pause began (Keras counts
   steps at batch ends dispatched to worker threads). Validation comes back once one pass has
   been seen: the latest pass's cost (the first pass's at its median batch's pace, leaving out
   compilation), as often as passes came so far (once an epoch, or every so many steps).
2. The warm-up (compilation, autotuning, caches filling) is left out: the given number of steps,
   or the leading stretch whose time or energy per step is well above the rest's median.
3. What follows is cut into chunks of equal steps (whole epochs once two are seen, when the epoch
   length is known, so that work between epochs is counted). The central estimate of the cost per
   step is that of the most recent chunks together, so it follows a change in the workload; the
   interval spans the spread of all chunks (10th to 90th percentile), so a change also widens it.
   It reflects the variation seen so far: a trend that continues (power drifting upwards) is not
   extrapolated, and the interval can then miss the outcome. It is never narrower than the
   timeline's resolution (one sample's time and energy, scaled up to the steps still to run).
4. Total = what was measured so far + the remaining steps x the cost per step + the validation
   passes still to come x the cost of one. ``Rates`` keeps what was learned, so ``project``
   gives the totals again from any later point without reading the timeline: never below what
   is used.

Carbontracker's method (mean epoch energy x epochs, warm-up included, no interval), the accuracy
benchmark's baseline, lives with it (``benchmarks/bench_prediction.py``).
"""

from __future__ import annotations

import bisect
import itertools
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

Point = tuple[float, int, float | None]
"""Seconds since the start, steps done, joules so far (None: not measured)."""

WARMUP_RATIO = 1.5
"""A leading chunk costing this many times the median chunk, per step, counts as warm-up."""
CHUNKS = 10
MIN_CHUNKS = 3
"""Chunks with steps (distinct points of the timeline) needed before a forecast is made."""
RECENT_CHUNKS = 3
INTERVAL = 0.8
"""The interval's coverage: from the 10th to the 90th percentile of the chunks' costs."""


@dataclass(frozen=True)
class Pause:
    """A stretch of the run that is no training step's cost (a validation pass).

    Attributes:
        start_s: Seconds since the start when it began.
        end_s: Seconds since the start when it ended; None while it lasts.
        steps: Training steps done when it ended; None while it lasts.
        typical_s: Its length at the pace of its median batch (how long it takes without the
            compilation a first pass carries: JAX compiles for each new batch shape); None when
            its batches were not timed.
    """

    start_s: float
    end_s: float | None = None
    steps: int | None = None
    typical_s: float | None = None


@dataclass(frozen=True)
class Rates:
    """What a forecast learned from the timeline: enough to project the totals from a later point.

    Attributes:
        joules_per_step: Energy of a training step (low, central, high).
        seconds_per_step: Time of a training step (low, central, high).
        evidence_steps: Settled steps the rates come from.
        resolution_j: The timeline's energy resolution: the energy of one sample interval.
        resolution_s: The timeline's time resolution: one sample interval.
        warmup_steps: Steps left out as warm-up.
        pause_every_steps: Training steps per pause (validation pass) so far; None before one.
        pause_j: Energy of the latest pause (of a typical one, when only the first was seen).
        pause_s: Time of the latest pause (likewise).
        pause_resolution_j: How far ``pause_j`` may be off: one sample's energy for a typical
            pass estimated from the first, 0 for a pass measured whole (exact reads at its ends).
        pause_resolution_s: The same for ``pause_s``.
    """

    joules_per_step: tuple[float, float, float]
    seconds_per_step: tuple[float, float, float]
    evidence_steps: int
    resolution_j: float
    resolution_s: float
    warmup_steps: int
    pause_every_steps: float | None = None
    pause_j: float = 0.0
    pause_s: float = 0.0
    pause_resolution_j: float = 0.0
    pause_resolution_s: float = 0.0


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
        rates: What the totals were projected with.
        interval: Nominal coverage of (low, high).
    """

    steps_done: int
    total_steps: int
    warmup_steps: int
    elapsed_s: float
    energy_j: tuple[float, float, float]
    duration_s: tuple[float, float, float]
    rates: Rates
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
    pauses: Sequence[Pause] = (),
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
            epochs (checkpoints), which sub-epoch chunks would miss.
        min_steps: Steps that must have run after the warm-up before a forecast is made.
        pauses: Validation passes (in time order), cut out of the steps' cost; the latest
            ended one's cost is added for each pass still to come, at the pace seen so far
            (training steps done at its end over the passes ended).
        chunks: At most this many chunks.
        recent: The central estimate takes this many of the latest chunks together (the latest
            one alone when chunks span whole epochs).

    Returns None when there is nothing to forecast or too little to go on: no length, the run
    already done, no measured energy, or too few chunks of steps after the warm-up: two whole
    epochs, else ``MIN_CHUNKS`` (steps faster than the sampling land many to a point: a short
    run's first epoch may show only two, too few to tell the steps from the epoch's end).
    """
    usable = [(t, s, j) for t, s, j in points if j is not None]
    if total_steps <= 0 or len(usable) < 3:
        return None
    now_t, done, now_j = usable[-1]
    if done >= total_steps or done < 2:
        return None
    rates = fit_rates(
        usable,
        warmup_steps=warmup_steps,
        period_steps=period_steps,
        min_steps=min_steps,
        pauses=pauses,
        chunks=chunks,
        recent=recent,
    )
    if rates is None:
        return None
    return project(rates, total_steps, now_t, now_j or 0.0, done)


def fit_rates(
    points: Sequence[Point],
    *,
    warmup_steps: int | None = None,
    period_steps: int | None = None,
    min_steps: int = 0,
    pauses: Sequence[Pause] = (),
    chunks: int = CHUNKS,
    recent: int = RECENT_CHUNKS,
) -> Rates | None:
    """The costs per step and per epoch that ``forecast`` projects with (its arguments)."""
    usable = [(t, s, j) for t, s, j in points if j is not None]
    training = training_only(usable, pauses)
    if len(training) < 3:
        return None
    warmup = detect_warmup(training, chunks) if warmup_steps is None else max(warmup_steps, 0)
    settled = [p for p in training if p[1] >= warmup]
    if not settled or settled[-1][1] - settled[0][1] < min_steps:
        return None
    chunk_rates = _chunk_rates(settled, chunks, period=period_steps)
    evidence = settled[-1][1] - settled[0][1]
    whole_epochs = bool(period_steps) and evidence >= 2 * (period_steps or 0)
    if len(chunk_rates) < (2 if whole_epochs else MIN_CHUNKS):
        return None
    if whole_epochs:
        recent = 1  # whole-epoch chunks: the latest epoch alone is the most recent evidence
    ended = [pause for pause in pauses if pause.end_s is not None]
    pause_every = None
    pause_s = pause_j = pause_resolution_s = pause_resolution_j = 0.0
    resolution_s, resolution_j = resolution(settled)
    if ended and ended[-1].steps:
        pause_every = ended[-1].steps / len(ended)
        first = len(ended) == 1  # the first pass carries compilation: take its typical pace
        pause_s, pause_j = pause_cost(usable, ended[-1], typical=first)
        if first and ended[-1].typical_s is not None:
            pause_resolution_s, pause_resolution_j = resolution_s, resolution_j
    return Rates(
        joules_per_step=_spread([(j, n) for j, _, n, _ in chunk_rates], recent),
        seconds_per_step=_spread([(s, n) for _, s, n, _ in chunk_rates], recent),
        evidence_steps=evidence,
        resolution_j=resolution_j,
        resolution_s=resolution_s,
        warmup_steps=warmup,
        pause_every_steps=pause_every,
        pause_s=pause_s,
        pause_j=pause_j,
        pause_resolution_s=pause_resolution_s,
        pause_resolution_j=pause_resolution_j,
    )


def project(
    rates: Rates, total_steps: int, elapsed_s: float, joules: float, steps_done: int
) -> Forecast:
    """The run's totals from a point of it (``elapsed_s``, ``joules`` so far, ``steps_done``).

    Remaining steps cost the rates; each pause still to come adds its cost. The interval is
    at least the rates' resolution over the remaining steps plus that of the outcome itself, and
    its low end is never below what is used already.
    """
    remaining = max(total_steps - steps_done, 0)
    pauses_left = 0
    if rates.pause_every_steps:
        pauses_left = math.ceil(remaining / rates.pause_every_steps - 1e-9)
    scale = 1 + remaining / max(rates.evidence_steps, 1)
    return Forecast(
        steps_done=steps_done,
        total_steps=total_steps,
        warmup_steps=rates.warmup_steps,
        elapsed_s=elapsed_s,
        energy_j=_totals(
            joules,
            remaining,
            rates.joules_per_step,
            pauses_left * rates.pause_j,
            rates.resolution_j * scale + pauses_left * rates.pause_resolution_j,
        ),
        duration_s=_totals(
            elapsed_s,
            remaining,
            rates.seconds_per_step,
            pauses_left * rates.pause_s,
            rates.resolution_s * scale + pauses_left * rates.pause_resolution_s,
        ),
        rates=rates,
    )


def training_only(points: Sequence[Point], pauses: Sequence[Pause]) -> list[Point]:
    """The timeline with the pauses cut out (both in time order).

    Points inside a pause are dropped; later ones are moved back by the time and energy of the
    pauses before them, so steps counted during a pause land where training stopped. Pauses
    that ended before the first point move every point alike and are passed over.
    """
    if not points:
        return []
    joules_at = _interpolator(points)
    cuts = [
        (pause.start_s, pause.end_s, _cost(joules_at, pause.start_s, pause.end_s))
        for pause in pauses
        if pause.end_s is not None and pause.end_s > points[0][0]
    ]
    open_from = min((p.start_s for p in pauses if p.end_s is None), default=math.inf)
    kept: list[Point] = []
    shift_s = shift_j = 0.0
    index = 0
    for t, steps, joules in points:
        while index < len(cuts) and cuts[index][1] <= t:
            start, end, cost = cuts[index]
            shift_s, shift_j = shift_s + (end - start), shift_j + cost
            index += 1
        if (index < len(cuts) and cuts[index][0] < t) or t > open_from:
            continue  # inside a pause
        kept.append((t - shift_s, steps, None if joules is None else joules - shift_j))
    return kept


def pause_cost(
    points: Sequence[Point], pause: Pause, *, typical: bool = False
) -> tuple[float, float]:
    """Seconds and joules of an ended pause, the joules interpolated on the timeline.

    With ``typical`` and its batches timed, it is taken at the pace of its median batch, its
    energy scaled alike: what a pass takes without compiling, as the first one does.
    """
    if pause.end_s is None or not points:
        return 0.0, 0.0
    seconds = pause.end_s - pause.start_s
    joules = _cost(_interpolator(points), pause.start_s, pause.end_s)
    if typical and pause.typical_s is not None and 0 < pause.typical_s < seconds:
        return pause.typical_s, joules * pause.typical_s / seconds
    return seconds, joules


def resolution(points: Sequence[Point]) -> tuple[float, float]:
    """The timeline's resolution: the typical time between points and the energy in it.

    The energy is at least the smallest step a counter made (a coarse counter, such as CPU
    time in clock ticks, changes by that much or not at all between points).
    """
    gaps = [
        (t1 - t0, j1 - j0)
        for (t0, _, j0), (t1, _, j1) in itertools.pairwise(points)
        if t1 > t0 and j0 is not None and j1 is not None
    ]
    if not gaps:
        return 0.0, 0.0
    rises = [joules for _, joules in gaps if joules > 0]
    seconds = statistics.median(seconds for seconds, _ in gaps)
    joules = statistics.median(joules for _, joules in gaps)
    return seconds, max(joules, min(rises, default=0.0))


def detect_warmup(points: Sequence[Point], chunks: int = CHUNKS) -> int:
    """Steps at the start whose time or energy per step is well above the median: the warm-up.

    Always at least the first step, which carries lazy initialisation in every framework.
    """
    rates = _chunk_rates(points, chunks)
    if len(rates) < 3:
        return min(1, points[-1][1]) if points else 0
    median_j = statistics.median(r[0] for r in rates)
    median_s = statistics.median(r[1] for r in rates)
    warmup = 1
    for joules, seconds, _, end_step in rates:
        if joules > WARMUP_RATIO * median_j or seconds > WARMUP_RATIO * median_s:
            warmup = max(warmup, end_step)
        else:
            break
    return warmup


def _chunk_rates(
    points: Sequence[Point], chunks: int, *, period: int | None = None
) -> list[tuple[float, float, int, int]]:
    """(joules per step, seconds per step, steps, last step) over chunks of about equal steps.

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
    rates: list[tuple[float, float, int, int]] = []
    for (t0, s0, j0), (t1, s1, j1) in itertools.pairwise(at_bounds):
        steps = s1 - s0
        if steps <= 0 or j0 is None or j1 is None:
            continue
        rates.append(((j1 - j0) / steps, (t1 - t0) / steps, steps, s1))
    return rates


def _at_step(points: Sequence[Point], step: int) -> Point:
    """The first point at which ``step`` steps were done (points are in time order)."""
    for point in points:
        if point[1] >= step:
            return point
    return points[-1]


def _interpolator(points: Sequence[Point]) -> Callable[[float], float | None]:
    """Joules so far at a time, interpolated between the measured points around it."""
    known = [(t, j) for t, _, j in points if j is not None]
    times = [t for t, _ in known]

    def joules_at(seconds: float) -> float | None:
        if not known:
            return None
        index = bisect.bisect_right(times, seconds)
        if index == 0 or index == len(known):
            return known[min(index, len(known) - 1)][1]
        (t0, j0), (t1, j1) = known[index - 1], known[index]
        return j0 + (j1 - j0) * (seconds - t0) / (t1 - t0)

    return joules_at


def _cost(joules_at: Callable[[float], float | None], start_s: float, end_s: float) -> float:
    """Joules between two times (0 when unknown: the pause then moves only the time)."""
    start, end = joules_at(start_s), joules_at(end_s)
    return 0.0 if start is None or end is None else max(end - start, 0.0)


def _spread(rates: Sequence[tuple[float, int]], recent: int) -> tuple[float, float, float]:
    """(low, central, high) cost per step from chunk rates and their steps.

    The central figure is the latest ``recent`` chunks taken together (their cost over their
    steps), so a chunk that a sparse timeline made short weighs only its steps.
    """
    latest = rates[-recent:]
    central = sum(rate * steps for rate, steps in latest) / sum(steps for _, steps in latest)
    low, high = _percentiles([rate for rate, _ in rates])
    return min(low, central), central, max(high, central)


def _totals(
    now: float,
    remaining: int,
    rates: tuple[float, float, float],
    extra: float,
    resolution: float,
) -> tuple[float, float, float]:
    """(low, central, high) of now + remaining x rate + extra, at least ``resolution`` apart.

    The low end is never below ``now``: what is used is used.
    """
    low, central, high = (now + remaining * max(rate, 0.0) + extra for rate in rates)
    low = max(now, min(low, central - resolution))
    return (low, central, max(high, central + resolution))


def _percentiles(values: Sequence[float]) -> tuple[float, float]:
    """The 10th and 90th percentiles (linear interpolation), or min and max for few values."""
    ordered = sorted(values)
    if len(ordered) < 3:
        return ordered[0], ordered[-1]
    deciles = statistics.quantiles(ordered, n=10, method="inclusive")
    return deciles[0], deciles[-1]
