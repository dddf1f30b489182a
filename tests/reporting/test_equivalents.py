from __future__ import annotations

import pytest

from carbon_callbacks.intensity import static
from carbon_callbacks.intensity.base import IntensityValue
from carbon_callbacks.reporting.equivalents import (
    CAR_BASELINES,
    EEA_NEW_CARS_2018,
    EEA_NEW_CARS_2023,
    LARGE_GRIDS,
    basis_note,
    car_km,
    compare_regions,
    custom_car,
    large_grid_extremes,
    times_phrase,
)


def test_car_constants_are_the_cited_eea_averages() -> None:
    assert (EEA_NEW_CARS_2023.g_per_km, EEA_NEW_CARS_2023.year) == (106.4, 2023)
    assert EEA_NEW_CARS_2023.test_cycle == "WLTP"
    assert (EEA_NEW_CARS_2018.g_per_km, EEA_NEW_CARS_2018.year) == (120.4, 2018)
    assert EEA_NEW_CARS_2018.test_cycle == "NEDC"
    assert (
        "eea.europa.eu" in EEA_NEW_CARS_2023.source and "eea.europa.eu" in EEA_NEW_CARS_2018.source
    )
    assert CAR_BASELINES == {"2023": EEA_NEW_CARS_2023, "2018": EEA_NEW_CARS_2018}


def test_car_km_is_grams_over_grams_per_km() -> None:
    assert car_km(0.1064) == pytest.approx(1.0)
    assert car_km(1.0) == pytest.approx(1000 / 106.4)
    # Carbontracker's GPT-3 comparison: 190,000 kWh at 447 g/kWh, 2018 cars: about 700,000 km
    assert car_km(190_000 * 0.447, EEA_NEW_CARS_2018.g_per_km) == pytest.approx(705_398.67, 1e-6)
    assert car_km(0.0) == 0.0
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="g_per_km"):
            car_km(1.0, bad)


def test_custom_car_baseline_is_labelled_user_supplied() -> None:
    car = custom_car(150.0)
    assert car.g_per_km == 150.0 and car.year is None
    assert car.describe() == "150 gCO2/km (user-supplied)"
    with pytest.raises(ValueError, match="--car-g-per-km"):
        custom_car(0.0)


def test_large_grids_are_twenty_countries_with_data() -> None:
    assert len(LARGE_GRIDS) == len(set(LARGE_GRIDS)) == 20
    figures = [static.country(code).g_per_kwh for code in LARGE_GRIDS]
    cleanest, dirtiest = large_grid_extremes()
    assert cleanest.g_per_kwh == min(figures) and dirtiest.g_per_kwh == max(figures)
    assert cleanest.code in LARGE_GRIDS and dirtiest.code in LARGE_GRIDS


def test_region_rows_put_the_same_energy_on_reference_grids() -> None:
    rows = compare_regions(10.0, 3.0, ["SE", "fra", "Poland"])
    cleanest, dirtiest = large_grid_extremes()
    world = static.world()
    named = [code for code in ("SE", "FR", "PL") if code not in (cleanest.code, dirtiest.code)]
    assert [row.zone for row in rows] == [cleanest.code, dirtiest.code, "WORLD", *named]
    assert [row.kind for row in rows[:3]] == [
        "cleanest large grid",
        "dirtiest large grid",
        "world average",
    ]
    assert {row.kind for row in rows[3:]} == {"named"}
    for row in rows:
        figure = static.country(row.zone)
        assert (row.g_per_kwh, row.year, row.name) == (figure.g_per_kwh, figure.year, figure.name)
        assert row.co2e_kg == pytest.approx(10.0 * figure.g_per_kwh / 1000)
        assert row.ratio == pytest.approx(row.co2e_kg / 3.0)
    assert rows[2].g_per_kwh == world.g_per_kwh
    assert rows[0].to_dict()["basis"] == "lifecycle"


def test_region_rows_without_the_runs_co2e_have_no_ratio() -> None:
    assert all(row.ratio is None for row in compare_regions(1.0, None))
    assert all(row.ratio is None for row in compare_regions(0.0, 0.0))


def test_an_unknown_country_fails_with_a_suggestion() -> None:
    with pytest.raises(static.UnknownLocationError, match="'SE'"):
        compare_regions(1.0, 1.0, ["SWD"])


def test_times_phrase() -> None:
    assert times_phrase(0.1) == "10 times less"
    assert times_phrase(0.125) == "8 times less"
    assert times_phrase(1 / 25.4) == "25 times less"
    assert times_phrase(2.0) == "2 times more"
    assert times_phrase(1.02) == "about the same"
    assert times_phrase(0.0) == "nothing"
    assert times_phrase(None) is None


def test_basis_note_says_when_the_run_factor_is_not_yearly_lifecycle() -> None:
    yearly = static.country("SE").value()
    assert basis_note(yearly) is None
    assert basis_note(None) is None
    direct = IntensityValue(
        120.0, "Google Cloud region carbon data, 2025", basis="direct", year=2025
    )
    assert "direct basis" in (basis_note(direct) or "")
    constant = IntensityValue(300.0, "user-supplied constant")
    assert "states no basis" in (basis_note(constant) or "")
    live = IntensityValue(180.0, "UK Carbon Intensity API", basis="lifecycle")
    assert "time-resolved" in (basis_note(live) or "")
