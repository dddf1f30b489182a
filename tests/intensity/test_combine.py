from __future__ import annotations

import pytest

from carbon_callbacks.intensity.base import IntensityValue
from carbon_callbacks.intensity.combine import Piece, weighted_intensity

LIVE = IntensityValue(100.0, "UK Carbon Intensity API", zone="GB", basis="direct")
YEARLY = IntensityValue(
    300.0, "Our World in Data (Ember, Energy Institute), 2024", zone="GB", basis="lifecycle"
)


def test_energy_weighted_mean_makes_energy_times_it_the_sum_of_pieces() -> None:
    pieces = [Piece(1000.0, LIVE), Piece(3000.0, LIVE.__class__(400.0, LIVE.source, "GB"))]
    value = weighted_intensity(pieces)
    assert value is not None
    co2e = 4000.0 * value.g_per_kwh
    assert co2e == pytest.approx(1000.0 * 100.0 + 3000.0 * 400.0)
    assert value.g_per_kwh != pytest.approx((100.0 + 400.0) / 2)  # not the time average


def test_mixed_sources_keep_every_provenance() -> None:
    fallback = IntensityValue(300.0, YEARLY.source, "GB", "lifecycle", 2024, fallback="API: 500")
    value = weighted_intensity([Piece(1.0, LIVE), Piece(1.0, fallback)])
    assert value is not None
    assert value.g_per_kwh == pytest.approx(200.0)
    assert value.source == f"{LIVE.source} + {YEARLY.source}"
    assert value.zone == "GB"
    assert value.basis == "mixed"
    assert value.year is None
    assert value.fallback == "API: 500"


def test_zero_energy_falls_back_to_equal_weights_and_one_piece_is_itself() -> None:
    value = weighted_intensity([Piece(0.0, LIVE), Piece(0.0, YEARLY)])
    assert value is not None and value.g_per_kwh == pytest.approx(200.0)
    assert weighted_intensity([Piece(5.0, YEARLY)]) is YEARLY
    assert weighted_intensity([]) is None


def test_estimated_and_guessed_flags_survive_averaging() -> None:
    forecast = IntensityValue(50.0, LIVE.source, "GB", "direct", estimated=True)
    guessed = IntensityValue(60.0, YEARLY.source, "GB", "lifecycle", 2024, guessed_location=True)
    value = weighted_intensity([Piece(1.0, forecast), Piece(1.0, guessed)])
    assert value is not None and value.estimated and value.guessed_location
