"""What a CO2e figure means in everyday terms: car distance, and the same energy on other grids.

Car distance uses the European Environment Agency's average type-approval CO2 emissions of new
passenger cars registered in the EU (with Iceland and Norway). The region comparison puts the run's
energy on reference grids from the embedded yearly country data (Our World in Data, lifecycle
basis): the cleanest and the dirtiest of the large grids listed in :data:`LARGE_GRIDS`, the World
average, and any countries the caller names.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from carbon_callbacks.intensity import static
from carbon_callbacks.intensity.base import IntensityValue


@dataclass(frozen=True)
class CarBaseline:
    """An average new car's CO2 per kilometre, with where the figure comes from.

    Attributes:
        g_per_km: Grams of CO2 per kilometre (type approval, tailpipe).
        year: The registration year the average is for; None for a user-supplied figure.
        test_cycle: The test procedure: ``"WLTP"`` (2021 on) or ``"NEDC"`` (up to 2020); WLTP
            values are systematically higher, so figures from the two are not comparable.
        source: The publisher and page.
    """

    g_per_km: float
    year: int | None
    test_cycle: str
    source: str

    def describe(self) -> str:
        """``"106.4 gCO2/km, average new car registered in the EU in 2023 (WLTP; EEA)"``."""
        if self.year is None:
            return f"{self.g_per_km:g} gCO2/km ({self.source})"
        return (
            f"{self.g_per_km:g} gCO2/km, average new car registered in the EU in {self.year} "
            f"({self.test_cycle}; EEA)"
        )

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "g_per_km": self.g_per_km,
            "year": self.year,
            "test_cycle": self.test_cycle,
            "source": self.source,
        }


EEA_NEW_CARS_2023 = CarBaseline(
    106.4,
    2023,
    "WLTP",
    "European Environment Agency, CO2 emissions from new passenger cars (EU-27, Iceland, Norway), "
    "final 2023 data as restated with the provisional 2024 data (June 2025); "
    "https://www.eea.europa.eu/en/analysis/indicators/co2-performance-of-new-passenger",
)
"""The latest final EEA average (2023): 106.4 gCO2/km, WLTP. The default for car distances."""

EEA_NEW_CARS_2018 = CarBaseline(
    120.4,
    2018,
    "NEDC",
    "European Environment Agency, average CO2 emissions from new passenger cars, 2018; "
    "https://www.eea.europa.eu/data-and-maps/indicators/"
    "average-co2-emissions-from-motor-vehicles/assessment-1",
)
"""The 2018 EEA average (NEDC), 120.4 gCO2/km: the constant behind older published comparisons,
such as Carbontracker's (Anthony et al., 2020) "GPT-3 is about 700,000 km by car"."""

CAR_BASELINES = {"2023": EEA_NEW_CARS_2023, "2018": EEA_NEW_CARS_2018}
"""Named baselines, by registration year, for ``--car-baseline``."""


def custom_car(g_per_km: float) -> CarBaseline:
    """A car baseline the user gives (``--car-g-per-km``).

    Raises:
        ValueError: Not a positive finite number.
    """
    if not math.isfinite(g_per_km) or g_per_km <= 0:
        raise ValueError(
            f"car emissions must be a positive number of gCO2/km, got {g_per_km!r}; "
            "write --car-g-per-km 120.4"
        )
    return CarBaseline(g_per_km, None, "given", "user-supplied")


LARGE_GRIDS = (
    "CN", "US", "IN", "RU", "JP", "BR", "CA", "KR", "FR", "DE",
    "SA", "IR", "MX", "ID", "TR", "GB", "TW", "ES", "VN", "AU",
)  # fmt: skip
"""The 20 largest electricity producers in 2023, by TWh generated (Ember Yearly Electricity Data /
Energy Institute Statistical Review, as compiled by Our World in Data, "Electricity generation").
The last five (GB, TW, ES, VN, AU, about 270-290 TWh each) are within 5% of each other. "Large"
means a grid that supplies much of the world's computing, so "the cleanest large grid" is a place a
run could plausibly move to, not a small hydro-powered country."""

RowKind = Literal["cleanest large grid", "dirtiest large grid", "world average", "named"]


@dataclass(frozen=True)
class RegionRow:
    """The same energy on another grid.

    Attributes:
        kind: Why the row is there.
        zone: The country code (``"WORLD"`` for the world average).
        name: The country's name.
        g_per_kwh: Its yearly average intensity (lifecycle basis).
        year: The year of that average.
        co2e_kg: The run's energy times that intensity.
        ratio: ``co2e_kg`` divided by the run's own CO2e: 0.1 means ten times less; None when the
            run's own CO2e is unknown or zero.
    """

    kind: RowKind
    zone: str
    name: str
    g_per_kwh: float
    year: int
    co2e_kg: float
    ratio: float | None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "kind": self.kind,
            "zone": self.zone,
            "name": self.name,
            "g_per_kwh": self.g_per_kwh,
            "year": self.year,
            "basis": "lifecycle",
            "co2e_kg": self.co2e_kg,
            "ratio": self.ratio,
        }


def car_km(co2e_kg: float, g_per_km: float = EEA_NEW_CARS_2023.g_per_km) -> float:
    """Kilometres an average new car emits ``co2e_kg`` over (EEA 2023, 106.4 gCO2/km by default).

    Raises:
        ValueError: ``g_per_km`` is not a positive finite number.
    """
    if not math.isfinite(g_per_km) or g_per_km <= 0:
        raise ValueError(f"g_per_km must be a positive number of gCO2/km, got {g_per_km!r}")
    return co2e_kg * 1000.0 / g_per_km


def large_grid_extremes() -> tuple[static.YearlyIntensity, static.YearlyIntensity]:
    """The cleanest and the dirtiest of :data:`LARGE_GRIDS` in the embedded yearly data."""
    grids = [static.country(code) for code in LARGE_GRIDS]
    return min(grids, key=_intensity_of), max(grids, key=_intensity_of)


def check_countries(codes: Sequence[str]) -> list[static.YearlyIntensity]:
    """The embedded yearly figure of each named country, in order.

    Raises:
        UnknownLocationError: A code is unknown or has no figure; the message names close matches.
    """
    return [static.country(code) for code in codes]


def compare_regions(
    energy_kwh: float, run_co2e_kg: float | None, countries: Sequence[str] = ()
) -> list[RegionRow]:
    """Rows for the run's energy on reference grids.

    Args:
        energy_kwh: The run's facility energy (device energy x PUE).
        run_co2e_kg: The run's own CO2e, for the ratios; None when unknown.
        countries: Extra country codes or names to compare with, e.g. ``["SE", "PL"]``.

    Returns:
        The cleanest and the dirtiest large grid, the World average, then the named countries (a
        country already listed is not repeated).

    Raises:
        UnknownLocationError: A named country is unknown or has no figure.
    """
    cleanest, dirtiest = large_grid_extremes()
    picks: list[tuple[RowKind, static.YearlyIntensity]] = [
        ("cleanest large grid", cleanest),
        ("dirtiest large grid", dirtiest),
        ("world average", static.world()),
    ]
    for entry in check_countries(countries):
        if all(entry.code != listed.code for _kind, listed in picks):
            picks.append(("named", entry))
    return [_row(kind, entry, energy_kwh, run_co2e_kg) for kind, entry in picks]


def basis_note(own: IntensityValue | None) -> str | None:
    """Why the run's factor and the reference rows may not compare like for like; None if they do.

    The reference rows are yearly lifecycle averages. A direct (operational) factor leaves out the
    emissions of building and fuelling power plants, so it is lower for the same grid; a live
    factor follows the hours the run actually ran.
    """
    if own is None or (own.basis == "lifecycle" and own.year is not None):
        return None
    rows = "the reference rows are yearly lifecycle averages"
    if own.basis is None:
        return f"{rows}; the run's own factor ({own.source}) states no basis"
    if own.basis != "lifecycle":
        return (
            f"{rows}; the run's own factor is {own.basis} basis ({own.source}), which counts "
            "fewer emissions per kWh than lifecycle for the same grid"
        )
    return f"{rows}; the run's own factor is time-resolved ({own.source})"


def times_phrase(ratio: float | None) -> str | None:
    """``"8.4 times less"``, ``"1.9 times more"`` or ``"about the same"``; None without a ratio."""
    if ratio is None:
        return None
    if ratio <= 0:
        return "nothing"
    if 0.95 <= ratio <= 1.05:
        return "about the same"
    factor = 1 / ratio if ratio < 1 else ratio
    shown = f"{factor:.0f}" if factor >= 10 else f"{factor:.2g}"
    return f"{shown} times {'less' if ratio < 1 else 'more'}"


def _intensity_of(entry: static.YearlyIntensity) -> float:
    return entry.g_per_kwh


def _row(
    kind: RowKind, entry: static.YearlyIntensity, energy_kwh: float, run_co2e_kg: float | None
) -> RegionRow:
    co2e_kg = energy_kwh * entry.g_per_kwh / 1000.0
    ratio = co2e_kg / run_co2e_kg if run_co2e_kg else None
    return RegionRow(kind, entry.code, entry.name, entry.g_per_kwh, entry.year, co2e_kg, ratio)
