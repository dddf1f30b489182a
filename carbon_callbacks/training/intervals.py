"""Step-level figures over one window each, carried on until the window resolves them.

A logging step's figures (power, energy per step, sample and token) cover the interval from an
earlier point to this one. A point is one sample's figures: its time, its energy per channel and
the steps, samples and tokens counted when it was taken (``Tracker.so_far``), so no rate divides
one window's energy by another window's time or counts.

An interval too short for what it measures is not logged: its start is kept and the next logging
step measures from there (the interval is widened). The bound is a relative error of at most
``MAX_RESOLUTION_ERROR`` (10%) from resolution alone:

- energy: the channels' resolution over the interval's energy. The CPU estimate counts CPU time
  in clock ticks (10 ms), user and system time each rounded down, so an interval's energy may be
  2 ticks x watts per core off; 10% needs at least 20 ticks' worth of energy;
- counts (per step, sample, token): a sample the sampler thread takes falls inside a step, whose
  energy it partly holds but whose count it does not, so each end may be up to one step off:
  1 / steps adds to the bound, unless both ends are exact reads taken between steps;
- power: a channel above the most it can draw (the estimate: every CPU busy) is such an error
  too (a CPU tick or a late-found child process landing in a short interval): never logged.

Power and the per-count figures are judged apart, each with its own start, so a run with few
steps per logging step still logs its power at every one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from carbon_callbacks.tracking.measurement import Measurement

MAX_RESOLUTION_ERROR = 0.1
"""The most an interval figure's resolution may move it, relative; longer intervals are waited
for (the interval is carried into the next logging step)."""


@dataclass(frozen=True)
class Point:
    """Where an interval starts or ends: one sample's figures, and how they were taken.

    Attributes:
        figures: The run so far at one sample (``Tracker.so_far``).
        between_steps: An exact read taken between two steps, whose counts hold every step
            whose energy it holds; False for a sample the sampler thread took mid-step.
    """

    figures: Measurement
    between_steps: bool


@dataclass(frozen=True)
class Span:
    """This rank's figures over one interval, to be summed across ranks.

    Rates, not amounts, so each rank's numerator and denominator share that rank's window:
    summed, the power is the ranks' total power, the energy per step their total energy per
    (global) step, and total power over total samples (or tokens) per second the energy per
    sample (or token).

    Attributes:
        power_w: Facility watts (x PUE); NaN when unknown.
        energy_per_step_j: Facility joules per step; NaN when unknown or no step was counted.
        samples_per_s: Samples counted per second (0 when none).
        tokens_per_s: Tokens counted per second (0 when none).
        unresolved: 1 when the interval is too short for its figures (carried on), else 0.
    """

    power_w: float = math.nan
    energy_per_step_j: float = math.nan
    samples_per_s: float = 0.0
    tokens_per_s: float = 0.0
    unresolved: float = 0.0


def span(start: Point | None, end: Point | None, *, per_count: bool, adds_nothing: bool) -> Span:
    """This rank's figures from ``start`` to ``end``, or ``unresolved`` when too short for them.

    Args:
        start: The interval's start (None: nothing to measure from yet).
        end: The interval's end.
        per_count: Judge the figures per step, sample and token (their counts' resolution adds
            to the bound, and the interval needs a step); False judges the power alone.
        adds_nothing: This rank measures nothing by design (its figures are 0 for the sums).
    """
    if start is None or end is None:
        return Span()
    before, after = start.figures, end.figures
    seconds = after.duration_s - before.duration_s
    steps = (after.steps or 0) - (before.steps or 0)
    if seconds <= 0 or (per_count and steps <= 0):
        return Span(unresolved=1.0)  # no sample (or no step) since the start: nothing to say
    samples = (after.samples or 0) - (before.samples or 0)
    tokens = (after.tokens or 0) - (before.tokens or 0)
    counts = Span(samples_per_s=samples / seconds, tokens_per_s=tokens / seconds)
    if adds_nothing:
        return Span(0.0, 0.0 if steps > 0 else math.nan, counts.samples_per_s, counts.tokens_per_s)
    joules = _channel_joules(before, after)
    if joules is None:
        return counts  # nothing measured: the figures are unknown
    error = resolution_error(before, after, joules, seconds)
    if per_count and not (start.between_steps and end.between_steps):
        error += 1.0 / steps
    if error > MAX_RESOLUTION_ERROR:
        return Span(unresolved=1.0)
    facility_j = sum(joules.values()) * after.pue
    return Span(
        power_w=facility_j / seconds,
        energy_per_step_j=facility_j / steps if steps > 0 else math.nan,
        samples_per_s=counts.samples_per_s,
        tokens_per_s=counts.tokens_per_s,
    )


def resolution_error(
    before: Measurement, after: Measurement, joules: dict[str, float], seconds: float
) -> float:
    """The most the channels' resolution can move the interval's energy, relative to it.

    Infinite when a channel shows more than it can draw over ``seconds`` (an impossible power:
    what a longer interval spreads out) or when no energy was counted on a channel that counts
    in steps.
    """
    figures = {c.channel.id: c.channel for c in after.channels}
    resolution_j = 0.0
    for channel_id, energy_j in joules.items():
        channel = figures[channel_id]
        if channel.max_power_w is not None and energy_j > channel.max_power_w * seconds:
            return math.inf
        resolution_j += channel.resolution_j or 0.0
    total_j = sum(joules.values())
    if resolution_j == 0.0:
        return 0.0
    return resolution_j / total_j if total_j > 0 else math.inf


def _channel_joules(before: Measurement, after: Measurement) -> dict[str, float] | None:
    """Device joules per channel between two so-far figures; None when no channel has both."""
    start = {c.channel.id: c.energy_j for c in before.channels}
    joules = {
        c.channel.id: c.energy_j - begun
        for c in after.channels
        if c.energy_j is not None and (begun := start.get(c.channel.id)) is not None
    }
    return joules or None
