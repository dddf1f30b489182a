"""The intensity hook: what the tracker asks to turn kWh into CO2e, and the types behind it.

A provider answers "what was the grid's carbon intensity over this interval?" with a value that says
where it came from. The embedded yearly data, cloud-region data and live grid APIs all plug in
through the same protocol; live APIs deliver ``IntensitySlot`` series that a provider averages.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Protocol

from carbon_callbacks._internal.env import in_range, range_text

Basis = Literal["lifecycle", "direct", "mixed"]
MAX_G_PER_KWH = 1e6
"""Largest carbon intensity accepted anywhere: given, from an API, or read from a run log (coal is
about 1,000 gCO2e/kWh). It keeps every figure derived from it finite."""


@dataclass(frozen=True)
class IntensityValue:
    """A carbon intensity with its provenance.

    Attributes:
        g_per_kwh: Grams of CO2e per kWh of electricity used.
        source: Where the figure came from, e.g. ``"Our World in Data (Ember), 2024"``.
        zone: The grid zone or country it applies to (``"SE"``, ``"DK-DK1"``, ``"GB"``), when known.
        basis: ``"lifecycle"`` or ``"direct"`` (operational) emissions, ``"mixed"`` when a window
            combines both, None when unknown.
        year: The year of a yearly average; None for time-resolved data.
        estimated: True when any part is a forecast or a modelled value rather than a measurement.
        guessed_location: True when the location was guessed (system time zone), not configured.
        fallback: Why a preferred source was not used (e.g. the live API failed); None when the
            preferred source answered.
    """

    g_per_kwh: float
    source: str
    zone: str | None = None
    basis: Basis | None = None
    year: int | None = None
    estimated: bool = False
    guessed_location: bool = False
    fallback: str | None = None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form used in run logs and ``--json`` output."""
        return {
            "g_per_kwh": self.g_per_kwh,
            "source": self.source,
            "zone": self.zone,
            "basis": self.basis,
            "year": self.year,
            "estimated": self.estimated,
            "guessed_location": self.guessed_location,
            "fallback": self.fallback,
        }


@dataclass(frozen=True, slots=True)
class IntensitySlot:
    """One entry of a live time series: the intensity over [start_unix, end_unix).

    Attributes:
        start_unix: Slot start, seconds since the epoch (UTC).
        end_unix: Slot end, seconds since the epoch; greater than ``start_unix``.
        g_per_kwh: Grams of CO2e per kWh over the slot.
        forecast: True for a forecast or an estimate, False for a measured (actual) value.
    """

    start_unix: float
    end_unix: float
    g_per_kwh: float
    forecast: bool


class ProviderError(Exception):
    """A live provider could not deliver data. The message is safe to show: it never holds a token.

    Args:
        provider: The provider's display name, e.g. ``"UK Carbon Intensity API"``.
        reason: What went wrong, in a few words, e.g. ``"HTTP 429 (rate limited)"``.
    """

    def __init__(self, provider: str, reason: str) -> None:
        super().__init__(f"{provider}: {reason}")
        self.provider = provider
        self.reason = reason


class LiveSource(Protocol):
    """A live grid API for one zone. Implementations live one per module in this package."""

    name: str
    """Display name, e.g. ``"UK Carbon Intensity API"``."""
    zone: str
    """The zone it answers for, e.g. ``"GB"``, ``"GB RG10"``, ``"DK-DK1"``."""
    basis: Basis
    """Emission basis of its figures."""

    def fetch(self, start_unix: float, end_unix: float) -> list[IntensitySlot]:
        """Slots overlapping [start_unix, end_unix], sorted by start, measured and forecast.

        Raises:
            ProviderError: The API failed, refused, timed out or answered something unusable.
        """
        ...

    def close(self) -> None:
        """Close the idle HTTP connections; a later ``fetch`` opens new ones."""
        ...


class IntensityProvider(Protocol):
    """Anything that can give the carbon intensity for an interval of wall-clock time."""

    def intensity(self, start_unix: float, end_unix: float) -> IntensityValue | None:
        """Return the mean intensity over [start_unix, end_unix], or None when it is unknown."""
        ...


class ConstantIntensity:
    """One fixed intensity for every interval.

    Args:
        g_per_kwh: Grams of CO2e per kWh; must be finite and not negative.
        source: How the figure should be described in reports.
        value: A complete value with provenance, used instead of ``g_per_kwh`` and ``source``.
    """

    def __init__(
        self,
        g_per_kwh: float = math.nan,
        source: str = "user-supplied constant",
        *,
        value: IntensityValue | None = None,
    ) -> None:
        chosen = value if value is not None else IntensityValue(g_per_kwh, source)
        check_g_per_kwh(chosen.g_per_kwh, "intensity_g_per_kwh")
        self._value = chosen

    @property
    def value(self) -> IntensityValue:
        """The value returned for every interval."""
        return self._value

    def intensity(self, start_unix: float, end_unix: float) -> IntensityValue:
        """Return the constant, whatever the interval."""
        return self._value

    def __repr__(self) -> str:
        return f"ConstantIntensity({self._value.g_per_kwh!r}, source={self._value.source!r})"


def check_g_per_kwh(value: object, name: str) -> float:
    """Validate a user-given intensity: a finite number from 0 to ``MAX_G_PER_KWH``.

    Raises:
        TypeError: Not a number.
        ValueError: Negative, NaN, infinite or above ``MAX_G_PER_KWH``; the message says what to
            write.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of gCO2e/kWh, got {value!r}; write {name}=250.0")
    if not in_range(value, 0.0, MAX_G_PER_KWH):
        raise ValueError(
            f"{name} must be a finite number of gCO2e/kWh "
            f"{range_text(0.0, MAX_G_PER_KWH, False)} (coal is about 1,000), got {value!r}; "
            f"write {name}=250.0"
        )
    return float(value)
