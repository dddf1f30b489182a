"""A window's figures from the samples at its ends: energy per channel, and the intensity.

A window's energy is the counter difference between the exact reads at its ends; its intensity is
the energy-weighted mean over the pieces where a live intensity series holds one value, so that
CO2e = energy x intensity is exact.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from carbon_callbacks.intensity.base import IntensityProvider, IntensityValue
from carbon_callbacks.intensity.combine import Piece, weighted_intensity
from carbon_callbacks.intensity.live import LiveIntensity
from carbon_callbacks.meters.base import Channel
from carbon_callbacks.tracking.checks import checked_value
from carbon_callbacks.tracking.measurement import ChannelEnergy
from carbon_callbacks.tracking.sampler import Counts, Sample, Sampler


@dataclass(frozen=True)
class Mark:
    """A read at a window boundary: the sample, its wall-clock time, and the counts stored in it.

    ``counts`` (steps, samples, tokens) is None for a boundary placed in the past
    (``Tracker.energy_between``), which no sample counted.
    """

    sample: Sample
    unix: float
    counts: Counts | None


def counted_between(start: Mark, end: Mark) -> tuple[int | None, int | None, int | None]:
    """Steps, samples and tokens counted from ``start`` to ``end``; None where not counted."""
    if start.counts is None or end.counts is None:
        return None, None, None
    steps, samples, tokens = (a - b for a, b in zip(end.counts, start.counts, strict=True))
    return steps, samples, tokens


def channel_energies(
    channels: Sequence[Channel], start: Sample, end: Sample, faults: Mapping[str, str]
) -> tuple[ChannelEnergy, ...]:
    """Each channel's energy between two samples; unknown (None, never 0) where unmeasured.

    Args:
        channels: The sampler's channels, in the samples' order.
        start: The sample at the window's start.
        end: The sample at its end.
        faults: What went wrong with a channel in between, by channel id.
    """
    figures = []
    for index, (channel, before, after) in enumerate(
        zip(channels, start.joules, end.joules, strict=True)
    ):
        fault = faults.get(channel.id)
        unread_since_start = index in end.stale and after == before
        if after is None or unread_since_start:
            energy = None  # nothing was measured in this window: unknown, never 0
            fault = fault or "no reading"
        elif before is None:
            energy = after
            fault = fault or "first reading came after the window started"
        else:
            energy = after - before
        figures.append(ChannelEnergy(channel, energy, fault))
    return tuple(figures)


def window_intensity(
    provider: IntensityProvider, start: Mark, end: Mark, sampler: Sampler
) -> IntensityValue | None:
    """The energy-weighted mean intensity over the window; None when the provider has none.

    Raises:
        Exception: Whatever the provider raises, or TypeError for an answer that is not an
            ``IntensityValue``; the tracker warns once and leaves CO2e out.
    """
    pieces = []
    for (t0, joules0), (t1, joules1) in itertools.pairwise(_split(provider, start, end, sampler)):
        value = provider.intensity(t0, t1)
        if value is None:
            return None
        value = checked_value(value)
        energy = sum(
            after - before
            for before, after in zip(joules0, joules1, strict=True)
            if before is not None and after is not None
        )
        pieces.append(Piece(max(energy, 0.0), value))
    return weighted_intensity(pieces)


def _split(
    provider: IntensityProvider, start: Mark, end: Mark, sampler: Sampler
) -> list[tuple[float, tuple[float | None, ...]]]:
    """(unix time, cumulative joules) at the window's ends and where the intensity changes."""
    marks = [(start.unix, start.sample.joules)]
    if isinstance(provider, LiveIntensity):
        for point in provider.change_points(start.unix, end.unix):
            t_ns = start.sample.t_ns + round((point - start.unix) * 1e9)
            joules = sampler.joules_at(t_ns)
            if joules is not None:  # unknown: the neighbouring pieces merge, time-weighted
                marks.append((point, joules))
    marks.append((end.unix, end.sample.joules))
    return marks


def step_timeline(
    history: Iterable[Sample], start: Mark, step_slot: int
) -> list[tuple[float, int, float | None]]:
    """(seconds since ``start``, steps done, device joules so far) at each sample after it.

    Joules are summed over the channels with a figure (before PUE), None where none had one.
    """
    base = sum(j for j in start.sample.joules if j is not None)
    points = []
    for sample in history:
        if sample.t_ns < start.sample.t_ns:
            continue
        figures = [j for j in sample.joules if j is not None]
        joules = sum(figures) - base if figures else None
        points.append(((sample.t_ns - start.sample.t_ns) / 1e9, sample.steps_of(step_slot), joules))
    return points
