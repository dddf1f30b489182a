"""Plain-text rendering of measurements and device lists, shared by the CLI and the adapters."""

from __future__ import annotations

from collections.abc import Sequence

from carbon_callbacks.intensity.base import IntensityValue
from carbon_callbacks.measurement import Measurement
from carbon_callbacks.meters.base import Channel, Unavailable


def format_energy(joules: float | None) -> str:
    """Joules in the most readable unit, or ``"not measured"`` (never 0 for a missing figure)."""
    if joules is None:
        return "not measured"
    if joules < 3600.0:
        return f"{joules:.1f} J"
    return f"{joules / 3.6e6:.4g} kWh"


def format_measurement(measurement: Measurement) -> list[str]:
    """Lines describing a measurement: totals first, then one line a channel with its method."""
    kwh = measurement.energy_kwh
    basis = [format_energy(measurement.energy_j)]
    if measurement.pue != 1.0:
        basis[0] += f" x PUE {measurement.pue:g}"
    if measurement.estimated:
        basis.append("includes estimated figures")
    if measurement.partial:
        basis.append("partial: some figures are incomplete")
    total = "not measured" if kwh is None else f"{kwh:.4g} kWh ({'; '.join(basis)})"
    lines = [
        f"duration: {measurement.duration_s:.2f} s",
        f"energy:   {total}",
    ]
    for figure in measurement.channels:
        note = f"  [{figure.fault}]" if figure.fault else ""
        lines.append(
            f"  {figure.channel.id:<18} {format_energy(figure.energy_j):>14}  "
            f"{figure.channel.method:<9} {figure.channel.how}{note}"
        )
    if measurement.co2e_kg is not None and measurement.intensity is not None:
        lines.append(
            f"CO2e:     {measurement.co2e_kg * 1000:.4g} g at "
            f"{measurement.intensity.g_per_kwh:.4g} gCO2e/kWh"
        )
        lines.append(f"          ({describe_intensity(measurement.intensity)})")
    elif measurement.intensity is None:
        lines.append("CO2e:     not computed (the carbon intensity is unknown)")
    else:
        lines.append("CO2e:     not computed (no energy figure)")
    return lines


def describe_intensity(value: IntensityValue) -> str:
    """One line of provenance: source, zone, basis, and any guess, estimate or fallback."""
    parts = [value.source]
    if value.zone:
        parts.append(f"zone {value.zone}")
    if value.basis:
        parts.append(f"{value.basis} basis")
    if value.estimated:
        parts.append("includes forecast or estimated values")
    if value.guessed_location:
        parts.append("location guessed from the system time zone")
    if value.fallback:
        parts.append(f"fallback: {value.fallback}")
    return "; ".join(parts)


def format_intensity(
    value: IntensityValue, slot_start_unix: float | None, attribution: str | None
) -> list[str]:
    """Lines for ``carbon-callbacks intensity``: the factor, its provenance, its attribution."""
    import time

    lines = [f"{value.g_per_kwh:.4g} gCO2e/kWh", f"  {describe_intensity(value)}"]
    if slot_start_unix is not None:
        stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(slot_start_unix))
        lines.append(f"  for the period starting {stamp}")
    if attribution:
        lines.append(f"  {attribution}")
    return lines


def format_devices(channels: Sequence[Channel], unavailable: Sequence[Unavailable]) -> list[str]:
    """Lines listing what can be measured and how, then what cannot and why."""
    lines = ["Measurable on this machine:"]
    lines += [f"  {c.id:<18} {c.method:<9} {c.device}: {c.how}" for c in channels] or ["  nothing"]
    if unavailable:
        lines.append("Not usable:")
        for item in unavailable:
            lines.append(f"  {item.source}: {item.reason}")
            if item.fix:
                lines.extend(f"    fix: {line}" for line in item.fix.splitlines())
    return lines
