"""The result of measuring one window: energy per channel, totals, and how each was obtained."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from carbon_callbacks._internal.units import (
    format_duration,
    format_energy,
    format_kwh,
    format_mass,
    format_power,
)
from carbon_callbacks.intensity.base import IntensityValue
from carbon_callbacks.meters.base import Channel

JOULES_PER_KWH = 3.6e6
MAX_PUE = 1000.0
"""The largest PUE accepted (real data centres are below 3); keeps every figure finite."""


@dataclass(frozen=True)
class ChannelEnergy:
    """One channel's energy over a window.

    Attributes:
        channel: What was measured and how.
        energy_j: Joules used in the window; None when it could not be measured at all.
        fault: Why the figure is partial or missing; None when it is complete.
    """

    channel: Channel
    energy_j: float | None
    fault: str | None = None

    @property
    def partial(self) -> bool:
        """True when the figure is missing or covers only part of the window."""
        return self.energy_j is None or self.fault is not None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form: channel identity, method and the figure."""
        return {
            "id": self.channel.id,
            "kind": self.channel.kind,
            "device": self.channel.device,
            "method": self.channel.method,
            "how": self.channel.how,
            "energy_j": self.energy_j,
            "partial": self.partial,
            "fault": self.fault,
        }


@dataclass(frozen=True)
class Measurement:
    """Energy (and, when an intensity is known, CO2e) of one named window.

    Attributes:
        name: The window's name, e.g. ``"epoch 3"`` or ``"run"``.
        start_unix: Wall-clock start, seconds since the epoch.
        duration_s: Length of the window in seconds (monotonic clock).
        channels: Per-channel figures.
        pue: Data-centre overhead applied to the kWh total.
        steps: Steps recorded with ``Tracker.step`` inside the window; None where not tracked
            (intervals interpolated from the timeline).
        samples: Training samples those steps processed (``Tracker.step(samples=)``); None
            where not tracked. Kept for per-sample figures, not written to the run log.
        tokens: Tokens those steps processed, likewise.
        intensity: The carbon intensity used for CO2e, with its source; None when none is set.
        unmeasured: Hardware found but not measured in the window (``"source: reason"``), e.g. a
            GPU that NVML could not open: its energy is missing from the total.
    """

    name: str
    start_unix: float
    duration_s: float
    channels: tuple[ChannelEnergy, ...]
    pue: float
    steps: int | None = None
    intensity: IntensityValue | None = None
    unmeasured: tuple[str, ...] = ()
    samples: int | None = None
    tokens: int | None = None

    @property
    def energy_j(self) -> float | None:
        """Joules at the devices (before PUE) over the channels that have a figure; None if none."""
        figures = [c.energy_j for c in self.channels if c.energy_j is not None]
        return sum(figures) if figures else None

    @property
    def energy_kwh(self) -> float | None:
        """Facility energy in kWh: device joules x PUE. None when nothing could be measured."""
        joules = self.energy_j
        return None if joules is None else joules * self.pue / JOULES_PER_KWH

    @property
    def co2e_kg(self) -> float | None:
        """CO2e in kg: facility kWh x intensity. None when energy or intensity is unknown.

        The tracker gives each window its energy-weighted mean intensity, so this equals the sum
        over the window's pieces of energy x the intensity valid for that piece.
        """
        kwh = self.energy_kwh
        if kwh is None or self.intensity is None:
            return None
        return kwh * self.intensity.g_per_kwh / 1000.0

    def channel(self, channel_id: str) -> ChannelEnergy:
        """The figure of one channel, e.g. ``"gpu:0"``.

        Raises:
            KeyError: No channel has that id; the message lists the ones there are.
        """
        for figure in self.channels:
            if figure.channel.id == channel_id:
                return figure
        known = ", ".join(f.channel.id for f in self.channels) or "none"
        raise KeyError(f"no channel {channel_id!r} in this measurement (channels: {known})")

    @property
    def partial(self) -> bool:
        """True when any channel's figure is missing or incomplete, or hardware went unmeasured."""
        return bool(self.unmeasured) or any(c.partial for c in self.channels)

    @property
    def estimated(self) -> bool:
        """True when any figure in the total comes from a model rather than a sensor."""
        return any(c.channel.method == "estimated" for c in self.channels)

    @property
    def mean_power_w(self) -> float | None:
        """Average device power over the window (before PUE), None when unknown.

        None too for a zero-length window, or one too short for a finite figure (5e-324 s in a
        damaged log).
        """
        joules = self.energy_j
        if joules is None or self.duration_s <= 0:
            return None
        watts = joules / self.duration_s
        return watts if math.isfinite(watts) else None

    def __str__(self) -> str:
        """The same few readable lines as ``carbon-callbacks run`` prints (``repr`` stays exact)."""
        return "\n".join(measurement_lines(self))

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython and Jupyter show the readable lines too."""
        printer.text(str(self))

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form used by the run log and ``--json`` output."""
        return {
            "name": self.name,
            "start_unix": self.start_unix,
            "duration_s": self.duration_s,
            "steps": self.steps,
            "energy_j": self.energy_j,
            "energy_kwh": self.energy_kwh,
            "pue": self.pue,
            "co2e_kg": self.co2e_kg,
            "intensity": None if self.intensity is None else self.intensity.to_dict(),
            "partial": self.partial,
            "estimated": self.estimated,
            "mean_power_w": self.mean_power_w,
            "channels": [c.to_dict() for c in self.channels],
            "unmeasured": list(self.unmeasured),
        }


def measurement_lines(measurement: Measurement) -> list[str]:
    """The few lines a person reads about a measurement: totals, each channel and how, CO2e."""
    kwh = measurement.energy_kwh
    basis = []
    if measurement.pue != 1.0:
        basis.append(
            f"{format_energy(measurement.energy_j)} at the devices x PUE {measurement.pue:g}"
        )
    if measurement.estimated:
        basis.append("includes estimated figures")
    if measurement.partial:
        basis.append("partial: some figures are incomplete")
    total = format_kwh(kwh) + (f" ({'; '.join(basis)})" if basis and kwh is not None else "")
    lines = [
        f"duration: {format_duration(measurement.duration_s)}",
        f"energy:   {total}",
        f"power:    {format_power(measurement.mean_power_w)} on average at the devices",
    ]
    for figure in measurement.channels:
        note = f"  [{figure.fault}]" if figure.fault else ""
        how = figure.channel.how.removeprefix("estimate: ")  # the method column says it
        lines.append(
            f"  {figure.channel.id:<18} {format_energy(figure.energy_j):>14}  "
            f"{figure.channel.method:<9} {how}{note}"
        )
    if measurement.co2e_kg is not None and measurement.intensity is not None:
        lines.append(
            f"CO2e:     {format_mass(measurement.co2e_kg)} at "
            f"{measurement.intensity.g_per_kwh:.4g} gCO2e/kWh"
        )
        lines.append(f"          ({describe_intensity(measurement.intensity)})")
    elif measurement.intensity is None:
        lines.append("CO2e:     not computed (the carbon intensity is unknown)")
    else:
        lines.append("CO2e:     not computed (no energy figure)")
    return lines


BASIS_WORDS = {
    "lifecycle": "whole-life emissions of the power plants (lifecycle basis)",
    "direct": "emissions from burning fuel only (direct basis)",
}
"""What an intensity's basis counts, in words for anyone."""


def describe_intensity(value: IntensityValue) -> str:
    """One line of provenance in plain words: source, zone, what it counts, guesses, stand-ins."""
    world = value.zone is not None and value.zone.upper() == "WORLD"
    parts = [value.source]
    if value.zone and not world:
        parts.append(f"zone {value.zone}")
    if value.basis:
        parts.append(BASIS_WORDS.get(value.basis, f"{value.basis} basis"))
    if value.estimated:
        parts.append("partly forecast or modelled")
    if value.guessed_location:
        parts.append("location guessed from the system time zone")
    if value.fallback:
        parts.append(("World average used: " if world else "used instead: ") + value.fallback)
    return "; ".join(parts)
