"""The intensity hook: what the tracker asks to turn kWh into CO2e, and the constant provider.

A provider answers "what was the grid's carbon intensity over this interval?" with a value that says
where it came from. The embedded dataset and live grid APIs plug in through the same protocol.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class IntensityValue:
    """A carbon intensity with its provenance.

    Attributes:
        g_per_kwh: Grams of CO2e per kWh of electricity used.
        source: Where the figure came from, e.g. ``"user-supplied constant"``.
        zone: The grid zone or country it applies to, when known.
        basis: ``"lifecycle"`` or ``"direct"`` (operational) emissions, when known.
    """

    g_per_kwh: float
    source: str
    zone: str | None = None
    basis: str | None = None


class IntensityProvider(Protocol):
    """Anything that can give the carbon intensity for an interval of wall-clock time."""

    def intensity(self, start_unix: float, end_unix: float) -> IntensityValue | None:
        """Return the mean intensity over [start_unix, end_unix], or None when it is unknown."""
        ...


class ConstantIntensity:
    """One fixed intensity for every interval, as given by the user.

    Args:
        g_per_kwh: Grams of CO2e per kWh; must be finite and not negative.
        source: How the figure should be described in reports.
    """

    def __init__(self, g_per_kwh: float, source: str = "user-supplied constant") -> None:
        if not math.isfinite(g_per_kwh) or g_per_kwh < 0:
            raise ValueError(
                f"carbon intensity must be a finite number of gCO2e/kWh >= 0, got {g_per_kwh!r}; "
                "write e.g. intensity=400.0"
            )
        self._value = IntensityValue(g_per_kwh=float(g_per_kwh), source=source)

    def intensity(self, start_unix: float, end_unix: float) -> IntensityValue:
        """Return the constant, whatever the interval."""
        return self._value

    def __repr__(self) -> str:
        return f"ConstantIntensity({self._value.g_per_kwh!r}, source={self._value.source!r})"
