"""Measurements merged: the windows of one log summed, the ranks of one run combined.

Energies are summed over ranks with nothing counted twice: host-level channels (RAPL CPU
package, DRAM) are only in each node's local rank 0 log, and each rank's process-level channel
(the CPU estimate) covers its own process tree. PUE and intensity are merged so that the merged
kWh and CO2e equal the parts' sums.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, cast

from carbon_callbacks._internal.unique import unique
from carbon_callbacks.intensity.base import IntensityValue
from carbon_callbacks.meters.base import Channel
from carbon_callbacks.tracking.measurement import JOULES_PER_KWH, ChannelEnergy, Measurement


def sum_windows(windows: Sequence[Measurement]) -> Measurement:
    """Consecutive windows of one log as one measurement: channel energies added by channel id."""
    by_id: dict[str, tuple[Channel, list[float | None], list[str]]] = {}
    for window in windows:
        for figure in window.channels:
            channel, energies, faults = by_id.setdefault(
                figure.channel.id, (figure.channel, [], [])
            )
            energies.append(figure.energy_j)
            if figure.fault:
                faults.append(f"{window.name}: {figure.fault}")
    channels = []
    for channel, energies, faults in by_id.values():
        known = [e for e in energies if e is not None]
        if len(energies) < len(windows):
            faults.append("not measured in every window")
        channels.append(
            ChannelEnergy(channel, sum(known) if known else None, "; ".join(faults) or None)
        )
    steps = [w.steps for w in windows]
    return Measurement(
        name=f"sum of {len(windows)} windows",
        start_unix=windows[0].start_unix,
        duration_s=sum(w.duration_s for w in windows),
        channels=tuple(channels),
        pue=_effective_pue(windows),
        steps=None if any(s is None for s in steps) else sum(cast(int, s) for s in steps),
        intensity=_merged_intensity(windows),
        unmeasured=tuple(unique(item for w in windows for item in w.unmeasured)),
    )


def combine_ranks(parts: Sequence[tuple[int, Measurement]], problems: list[str]) -> Measurement:
    """The ranks of one run as one measurement: channels kept apart, ids prefixed by the rank."""
    if not parts:
        raise ValueError("no rank has figures")
    measurements = [m for _rank, m in parts]
    channels = tuple(
        replace(figure, channel=replace(figure.channel, id=f"rank {rank}/{figure.channel.id}"))
        for rank, m in parts
        for figure in m.channels
    )
    if any(m.intensity is None and m.energy_kwh for m in measurements):
        problems.append("a rank has no carbon intensity: the run's CO2e is left out")
    steps = [m.steps for m in measurements if m.steps is not None]
    return Measurement(
        name="run (ranks combined)",
        start_unix=min(m.start_unix for m in measurements),
        duration_s=max(m.duration_s for m in measurements),
        channels=channels,
        pue=_effective_pue(measurements),
        steps=max(steps) if steps else None,
        intensity=_merged_intensity(measurements),
        unmeasured=tuple(f"rank {rank}/{item}" for rank, m in parts for item in m.unmeasured),
    )


def _effective_pue(parts: Sequence[Measurement]) -> float:
    """The PUE that makes the combined kWh equal the parts' kWh summed (exact when they differ)."""
    pues = {m.pue for m in parts}
    if len(pues) == 1:
        return pues.pop()
    joules = sum(m.energy_j or 0.0 for m in parts)
    kwh = sum(m.energy_kwh or 0.0 for m in parts)
    return kwh * JOULES_PER_KWH / joules if joules else max(pues)


def _merged_intensity(parts: Sequence[Measurement]) -> IntensityValue | None:
    """The energy-weighted intensity of the parts, so the combined CO2e is the parts' CO2e summed.

    None when a part with energy has no intensity. Provenance is kept where the parts agree.
    """
    with_energy = [m for m in parts if m.energy_kwh]
    if any(m.intensity is None for m in with_energy):
        return None
    values = [cast(IntensityValue, m.intensity) for m in with_energy] or [
        m.intensity for m in parts if m.intensity is not None
    ]
    if not values:
        return None
    if all(value == values[0] for value in values):
        return values[0]
    kwh = sum(cast(float, m.energy_kwh) for m in with_energy)
    co2e = sum(cast(float, m.co2e_kg) for m in with_energy)
    return IntensityValue(
        g_per_kwh=co2e * 1000.0 / kwh,
        source="energy-weighted mean of: " + "; ".join(unique(v.source for v in values)),
        zone=_common([v.zone for v in values]),
        basis=_common([v.basis for v in values]) or "mixed",
        year=_common([v.year for v in values]),
        estimated=any(v.estimated for v in values),
        guessed_location=any(v.guessed_location for v in values),
        fallback="; ".join(unique(v.fallback for v in values if v.fallback is not None)) or None,
    )


def _common(values: Sequence[Any]) -> Any:
    """The value when all agree, else None."""
    return values[0] if values and all(v == values[0] for v in values) else None
