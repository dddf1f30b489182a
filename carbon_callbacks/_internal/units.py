"""Figures in the unit that fits, for everything a person reads.

Each ladder lists (unit, size in the base unit, from): a value is shown in the largest unit whose
"from" it reaches, with three significant figures (whole numbers from 100 on, thousands separated
from 10,000 on), so a person reads "62 Wh", "0.89 Wh", "29 mg", "28 cm", never "6.2e-05 kWh".
JSON and logged metrics keep their fixed units (kWh, kg); these are for text only. Reporting
re-exports them from ``reporting.text``; they live here so a measurement can print itself.
"""

from __future__ import annotations

import math

_Ladder = tuple[tuple[str, float, float], ...]

_ENERGY_WH: _Ladder = (
    ("mWh", 1e-3, 0.0),
    ("Wh", 1.0, 0.1),
    ("kWh", 1e3, 1e3),
    ("MWh", 1e6, 1e6),
    ("GWh", 1e9, 1e9),
)
"""Energy in watt-hours: Wh from 0.1 Wh (``"0.89 Wh"``), kWh from 1 kWh, and so on."""

_MASS_KG: _Ladder = (("mg", 1e-6, 0.0), ("g", 1e-3, 1e-4), ("kg", 1.0, 1.0), ("t", 1e3, 1e3))
"""Mass in kilograms: mg below 0.1 g (``"29 mg"``), g below 1 kg, kg below 1 t, then t."""

_DISTANCE_KM: _Ladder = (("cm", 1e-5, 0.0), ("m", 1e-3, 1e-3), ("km", 1.0, 1.0))
"""Distance in kilometres: cm below 1 m (``"28 cm"``), m below 1 km, then km."""

_POWER_W: _Ladder = (("mW", 1e-3, 0.0), ("W", 1.0, 0.1), ("kW", 1e3, 1e3), ("MW", 1e6, 1e6))
"""Power in watts: W from 0.1 W, kW from 1 kW, MW from 1 MW."""


def _significant(value: float) -> str:
    """Three significant figures without an exponent: ``"0.89"``, ``"61.7"``, ``"850"``."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    if abs(value) >= 100:
        return f"{value:,.0f}" if abs(value) >= 10_000 else f"{value:.0f}"
    decimals = 2 - math.floor(math.log10(abs(value)))
    text = f"{value:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _in_ladder(value: float, ladder: _Ladder) -> str:
    unit, size, _start = ladder[1] if value == 0 else ladder[0]
    for candidate in ladder:
        if value != 0 and abs(value) >= candidate[2]:
            unit, size, _start = candidate
    shown = _significant(value / size)
    if shown in ("1,000", "1000") and (unit, size, _start) != ladder[-1]:
        # 999.7 Wh rounds to "1000 Wh": say "1 kWh" instead
        index = [step[0] for step in ladder].index(unit)
        unit, size, _start = ladder[index + 1]
        shown = _significant(value / size)
    return f"{shown} {unit}"


def format_energy(joules: float | None) -> str:
    """Joules in the unit that fits (``"62 Wh"``), or ``"not measured"`` (never 0 when missing)."""
    if joules is None:
        return "not measured"
    return _in_ladder(joules / 3600.0, _ENERGY_WH)


def format_kwh(kwh: float | None) -> str:
    """A kWh figure in the unit that fits (``"0.89 Wh"``, ``"190 MWh"``), or ``"not measured"``."""
    return "not measured" if kwh is None else _in_ladder(kwh * 1000.0, _ENERGY_WH)


def format_kwh_range(low: float, mid: float, high: float) -> str:
    """A forecast in one unit, the unit of its middle: ``"62 Wh (55-70 Wh)"``."""
    return _range_in_ladder((low * 1000.0, mid * 1000.0, high * 1000.0), _ENERGY_WH)


def format_mass_range(low: float, mid: float, high: float) -> str:
    """A CO2e forecast in kg, in one unit, the unit of its middle: ``"29 mg (25-33 mg)"``."""
    return _range_in_ladder((low, mid, high), _MASS_KG)


def _range_in_ladder(values: tuple[float, float, float], ladder: _Ladder) -> str:
    low, mid, high = values
    unit = _in_ladder(mid, ladder).rsplit(" ", 1)[1]
    size = next(scale for name, scale, _start in ladder if name == unit)
    return (
        f"{_significant(mid / size)} {unit} "
        f"({_significant(low / size)}-{_significant(high / size)} {unit})"
    )


def format_kwh_span(low: float, high: float) -> str:
    """A span of kWh in the unit of its top: ``"20-32 kWh"`` (one figure when they are equal)."""
    return _span_in_ladder(low * 1000.0, high * 1000.0, _ENERGY_WH)


def format_mass_span(low: float, high: float) -> str:
    """A span of kg in the unit of its top: ``"8-12.8 kg"``."""
    return _span_in_ladder(low, high, _MASS_KG)


def format_distance_span(low: float, high: float) -> str:
    """A span of km in the unit of its top: ``"75-120 km"``."""
    return _span_in_ladder(low, high, _DISTANCE_KM)


def format_power_span(low: float, high: float) -> str:
    """A span of watts in the unit of its top: ``"250-400 W"``, ``"0.75-1 kW"``."""
    return _span_in_ladder(low, high, _POWER_W)


def _span_in_ladder(low: float, high: float, ladder: _Ladder) -> str:
    top = _in_ladder(high, ladder)
    if low == high:
        return top
    shown, unit = top.rsplit(" ", 1)
    size = next(scale for name, scale, _start in ladder if name == unit)
    return f"{_significant(low / size)}-{shown} {unit}"


def format_mass(kg: float | None) -> str:
    """A CO2e mass in the unit that fits (``"29 mg"``, ``"1.2 t"``), or ``"not computed"``."""
    return "not computed" if kg is None else _in_ladder(kg, _MASS_KG)


def format_distance(km: float) -> str:
    """A distance in the unit that fits: ``"28 cm"``, ``"3.4 m"``, ``"700,000 km"``."""
    return _in_ladder(km, _DISTANCE_KM)


def format_power(watts: float | None) -> str:
    """A power in the unit that fits (``"0.5 W"``, ``"2.4 kW"``), or ``"not measured"``."""
    return "not measured" if watts is None else _in_ladder(watts, _POWER_W)


def format_duration(seconds: float | None) -> str:
    """``"42.0 s"``, ``"12.5 min"``, ``"3.2 h"`` or ``"4.1 days"``; ``"unknown"`` for None."""
    if seconds is None:
        return "unknown"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    if seconds < 86400 * 2:
        return f"{seconds / 3600:.2g} h" if seconds < 36000 else f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.1f} days"
