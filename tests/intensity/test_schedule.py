"""The cleanest start: exact answers on small forecasts, and a brute-force check on random ones."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carbon_callbacks.intensity.base import IntensitySlot
from carbon_callbacks.intensity.schedule import (
    NoStartFits,
    best_start,
    covered_spans,
    mean_over,
    utc_text,
)

T0 = 1_714_521_600.0  # 2024-05-01 00:00 UTC
HOUR = 3600.0


def series(values: Sequence[float], length_s: float, start: float = T0) -> list[IntensitySlot]:
    """Back-to-back slots of ``length_s`` with these intensities."""
    return [
        IntensitySlot(start + i * length_s, start + (i + 1) * length_s, value, True)
        for i, value in enumerate(values)
    ]


def test_half_hour_slots_pick_the_cleanest_hour_and_compare_with_now() -> None:
    slots = series([240, 240, 200, 120, 100, 180, 240, 240], 1800)
    choice = best_start(slots, T0, HOUR)
    assert choice.start_unix == T0 + 3 * 1800
    assert choice.g_per_kwh == pytest.approx(110)
    assert choice.now_g_per_kwh == pytest.approx(240)
    assert choice.saving_fraction == pytest.approx(1 - 110 / 240)
    assert choice.forecast_until_unix == T0 + 8 * 1800
    assert choice.wait_s == 3 * 1800


def test_five_minute_and_hourly_slots() -> None:
    five = series([300] * 12 + [50] * 6 + [300] * 12, 300)
    assert best_start(five, T0, 1800).start_unix == T0 + 12 * 300
    hourly = series([400, 350, 90, 80, 300], HOUR)
    choice = best_start(hourly, T0, 2 * HOUR)
    assert choice.start_unix == T0 + 2 * HOUR
    assert choice.g_per_kwh == pytest.approx(85)


def test_the_minimum_at_the_last_possible_start() -> None:
    slots = series([300, 250, 200, 150, 100], HOUR)
    choice = best_start(slots, T0, 2 * HOUR)
    assert choice.start_unix == T0 + 3 * HOUR  # the run ends with the forecast
    assert choice.g_per_kwh == pytest.approx(125)


def test_ties_go_to_the_earliest_start() -> None:
    slots = series([100, 100, 100, 100], HOUR)
    assert best_start(slots, T0 + 600, HOUR).start_unix == T0 + 600  # now wins
    twin_dips = series([300, 100, 300, 100, 300], HOUR)
    assert best_start(twin_dips, T0, HOUR).start_unix == T0 + HOUR


def test_a_run_shorter_than_one_slot_and_a_now_inside_a_slot() -> None:
    slots = series([200, 80, 150], HOUR)
    now = T0 + 1234.5
    choice = best_start(slots, now, 600)
    assert choice.start_unix == T0 + HOUR  # any start in the 80 slot; the earliest
    assert choice.g_per_kwh == pytest.approx(80)
    assert choice.now_g_per_kwh == pytest.approx(200)


def test_partial_slots_are_time_weighted() -> None:
    slots = series([100, 300], HOUR)
    assert mean_over(slots, T0 + 1800, T0 + 5400) == pytest.approx(200)
    assert mean_over(slots, T0 + 2700, T0 + 4500) == pytest.approx(200)
    assert mean_over(slots, T0 + 3000, T0 + 4200) == pytest.approx(200)
    assert mean_over(slots, T0, T0 + 3 * HOUR) is None


def test_a_run_may_not_cross_a_gap() -> None:
    slots = series([300, 300], HOUR) + series([50], HOUR, start=T0 + 2.5 * HOUR)
    assert covered_spans(slots) == [(T0, T0 + 2 * HOUR), (T0 + 2.5 * HOUR, T0 + 3.5 * HOUR)]
    assert mean_over(slots, T0 + 1.5 * HOUR, T0 + 2.75 * HOUR) is None
    choice = best_start(slots, T0, HOUR)
    assert (choice.start_unix, choice.g_per_kwh) == (T0 + 2.5 * HOUR, 50)
    # Two hours fit before the gap only.
    assert best_start(slots, T0, 2 * HOUR).start_unix == T0


def test_when_gaps_leave_no_start_the_message_names_them() -> None:
    slots = series([300, 300], HOUR) + series([50, 50], HOUR, start=T0 + 2.5 * HOUR)
    with pytest.raises(NoStartFits, match=r"gaps \(2024-05-01 02:00 UTC to 2024-05-01 02:30"):
        best_start(slots, T0, 3 * HOUR)


def test_a_run_longer_than_the_forecast_names_the_horizon() -> None:
    slots = series([200] * 4, HOUR)
    with pytest.raises(NoStartFits, match=r"reaches 2024-05-01 04:00 UTC \(4 h from now\)"):
        best_start(slots, T0, 5 * HOUR)
    with pytest.raises(NoStartFits, match="nothing after now"):
        best_start(slots, T0 + 5 * HOUR, HOUR)
    with pytest.raises(NoStartFits, match="nothing after now"):
        best_start([], T0, HOUR)


def test_the_window_limits_the_start_not_the_end() -> None:
    slots = series([300, 250, 200, 150, 100], HOUR)
    choice = best_start(slots, T0, 2 * HOUR, within_s=1.5 * HOUR)
    assert choice.start_unix == T0 + 1.5 * HOUR
    assert choice.g_per_kwh == pytest.approx((250 * 0.5 + 200 + 150 * 0.5) / 2)
    assert best_start(slots, T0, HOUR, within_s=0).start_unix == T0


def test_no_forecast_at_now_leaves_the_saving_unknown() -> None:
    slots = series([200, 100], HOUR, start=T0 + HOUR)
    choice = best_start(slots, T0, HOUR)
    assert choice.now_g_per_kwh is None and choice.saving_fraction is None
    assert choice.start_unix == T0 + 2 * HOUR


@pytest.mark.parametrize("duration", [0.0, -1.0, math.nan, math.inf])
def test_a_duration_must_be_positive(duration: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        best_start(series([1], HOUR), T0, duration)


def test_utc_text_shows_seconds_only_when_there_are_some() -> None:
    assert utc_text(T0 + 3.5 * HOUR) == "2024-05-01 03:30 UTC"
    assert utc_text(T0 + 7) == "2024-05-01 00:00:07 UTC"


MINUTE = 60.0


@st.composite
def forecasts(draw: st.DrawFn) -> tuple[list[IntensitySlot], float, float, float | None]:
    """Slots on a one-minute grid (mixed lengths, some gaps), a now, a duration, a window."""
    slots = []
    at = T0 + draw(st.integers(0, 30)) * MINUTE
    for _ in range(draw(st.integers(1, 12))):
        at += draw(st.sampled_from([0, 0, 0, 5, 30])) * MINUTE  # mostly no gap
        length = draw(st.sampled_from([5, 30, 60])) * MINUTE
        slots.append(IntensitySlot(at, at + length, draw(st.integers(0, 500)), True))
        at += length
    now = T0 + draw(st.integers(0, 90)) * MINUTE
    duration = draw(st.integers(1, 180)) * MINUTE
    within = draw(st.none() | st.integers(0, 240).map(lambda m: m * MINUTE))
    return slots, now, duration, within


@settings(max_examples=300, deadline=None)
@given(forecasts())
def test_the_choice_is_the_earliest_best_of_every_minute_start(
    case: tuple[list[IntensitySlot], float, float, float | None],
) -> None:
    """Slot edges, now and the window lie on whole minutes, so every start where the mean can
    turn is a whole minute: trying them all finds the exact optimum and the earliest tie."""
    slots, now, duration, within = case
    last = now + (within if within is not None else 1e9)
    tried = []
    start = now
    while start <= last and start <= slots[-1].end_unix:
        mean = mean_over(slots, start, start + duration)
        if mean is not None:
            tried.append((start, mean))
        start += MINUTE
    if not tried:
        with pytest.raises(NoStartFits):
            best_start(slots, now, duration, within)
        return
    lowest = min(mean for _, mean in tried)
    earliest = next(start for start, mean in tried if mean <= lowest + 1e-9 * max(1, lowest))
    choice = best_start(slots, now, duration, within)
    assert choice.start_unix == earliest
    assert choice.g_per_kwh == pytest.approx(lowest, rel=1e-9, abs=1e-9)
