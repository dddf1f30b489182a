"""Forecasts on synthetic step timelines whose final totals are known exactly."""

from __future__ import annotations

import pytest

from carbon_callbacks.training.prediction import (
    Pause,
    Point,
    detect_warmup,
    forecast,
    pause_cost,
    project,
    training_only,
)

TOTAL = 1000


def timeline(
    steps: int, joules_per_step: list[float], seconds_per_step: list[float]
) -> list[Point]:
    """Points after each step, with per-step cost given for every step (sampled every step)."""
    points: list[Point] = [(0.0, 0, 0.0)]
    t = j = 0.0
    for step in range(steps):
        t += seconds_per_step[step]
        j += joules_per_step[step]
        points.append((t, step + 1, j))
    return points


def final(joules_per_step: list[float]) -> float:
    return sum(joules_per_step)


def test_constant_power_is_forecast_within_one_percent_after_warmup() -> None:
    costs = [2.0] * TOTAL
    seen = timeline(100, costs, [0.01] * TOTAL)
    result = forecast(seen, TOTAL)
    assert result is not None
    low, mid, high = result.energy_j
    assert mid == pytest.approx(final(costs), rel=0.01)
    # no variation: as tight as the timeline's resolution (2 J a point) over 900 steps to come
    # from 99 seen, at each side
    assert low <= mid <= high and high - low == pytest.approx(2 * 2.0 * (1 + 900 / 99))
    assert result.duration_s[1] == pytest.approx(TOTAL * 0.01, rel=0.01)
    assert result.remaining_s == pytest.approx(9.0, rel=0.01)


def test_a_warmup_spike_is_left_out() -> None:
    costs = [20.0] * 10 + [2.0] * (TOTAL - 10)  # compilation: the first steps cost 10x
    seconds = [0.2] * 10 + [0.01] * (TOTAL - 10)
    seen = timeline(200, costs, seconds)
    assert 10 <= detect_warmup(seen) <= 40
    result = forecast(seen, TOTAL)
    assert result is not None
    assert result.energy_j[1] == pytest.approx(final(costs), rel=0.01)
    assert result.duration_s[1] == pytest.approx(sum(seconds), rel=0.01)
    observed = seen[-1][2]
    assert observed is not None
    naive = observed / 200 * TOTAL  # the warm-up counted as if it were typical
    assert abs(naive - final(costs)) > 0.05 * final(costs)  # ...which would be far off
    fixed = forecast(seen, TOTAL, warmup_steps=10)
    assert fixed is not None and fixed.warmup_steps == 10


def test_a_step_change_moves_the_estimate_and_widens_the_interval() -> None:
    steady = forecast(timeline(200, [2.0] * TOTAL, [0.01] * TOTAL), TOTAL)
    costs = [2.0] * 100 + [4.0] * (TOTAL - 100)  # power doubles a tenth of the way in
    changed = forecast(timeline(200, costs, [0.01] * TOTAL), TOTAL)
    assert steady is not None and changed is not None
    assert changed.energy_j[1] == pytest.approx(final(costs), rel=0.02)  # follows the change
    width = changed.energy_j[2] - changed.energy_j[0]
    assert width > 10 * (steady.energy_j[2] - steady.energy_j[0]) + 100


@pytest.mark.parametrize(
    "points",
    [[], [(0.0, 0, 0.0)], [(0.0, 0, 0.0), (0.1, 1, 1.0)], [(0.0, 0, None), (1.0, 5, None)]],
)
def test_zero_or_one_step_or_no_energy_gives_no_forecast(points: list[Point]) -> None:
    assert forecast(points, TOTAL) is None


def test_a_finished_run_or_unknown_length_gives_no_forecast() -> None:
    seen = timeline(100, [1.0] * 100, [0.01] * 100)
    assert forecast(seen, 100) is None
    assert forecast(seen, 0) is None


def test_with_the_epoch_length_work_between_epochs_is_counted() -> None:
    """Validation after each 100-step epoch takes 0.5 s and 20 J with no step done."""
    points: list[Point] = [(0.0, 0, 0.0)]
    t = j = 0.0
    for step in range(1, 401):
        t, j = t + 0.01, j + 1.0
        points.append((t, step, j))
        if step % 100 == 0:
            t, j = t + 0.5, j + 20.0
            points.append((t, step, j))
    truth = 1000 * 1.0 + 10 * 20.0  # 10 epochs of 100 steps
    blind = forecast(points, 1000)
    aware = forecast(points, 1000, period_steps=100)
    assert blind is not None and aware is not None
    assert aware.energy_j[1] == pytest.approx(truth, rel=0.01)
    assert abs(aware.energy_j[1] - truth) < abs(blind.energy_j[1] - truth)


def test_no_forecast_before_the_minimum_of_settled_steps() -> None:
    seen = timeline(60, [2.0] * TOTAL, [0.01] * TOTAL)
    assert forecast(seen, TOTAL, warmup_steps=0, min_steps=100) is None
    assert forecast(seen, TOTAL, warmup_steps=0, min_steps=50) is not None


def epochs_with_validation(epochs: int, late: bool) -> tuple[list[Point], list[Pause]]:
    """100-step epochs at 1 J and 0.01 s a step, each followed by a validation pass of 20 J and
    0.5 s (sampled every 0.05 s). With ``late``, an epoch's last step is counted only when its
    validation ends, as Keras's asynchronous batch-end calls can make it."""
    points: list[Point] = [(0.0, 0, 0.0)]
    pauses = []
    t = j = 0.0
    for epoch in range(epochs):
        for step in range(epoch * 100 + 1, epoch * 100 + 101):
            t, j = t + 0.01, j + 1.0
            points.append((t, step - 1 if late and step % 100 == 0 else step, j))
        start = t
        for _ in range(10):
            t, j = t + 0.05, j + 2.0
            points.append((t, (epoch + 1) * 100 - (1 if late else 0), j))
        points.append((t, (epoch + 1) * 100, j))
        pauses.append(Pause(start, t, (epoch + 1) * 100))
    return points, pauses


@pytest.mark.parametrize("late", [False, True])
def test_validation_is_cut_out_of_the_steps_and_added_per_epoch(late: bool) -> None:
    points, pauses = epochs_with_validation(1, late)
    truth_j, truth_s = 10 * (100 * 1.0 + 20.0), 10 * (100 * 0.01 + 0.5)
    result = forecast(points, 1000, period_steps=100, pauses=pauses)
    assert result is not None
    assert result.rates.joules_per_step[1] == pytest.approx(1.0)  # no validation in a step
    assert result.energy_j[1] == pytest.approx(truth_j, rel=0.01)
    assert result.duration_s[1] == pytest.approx(truth_s, rel=0.01)
    assert training_only(points, pauses)[-1] == pytest.approx((1.0, 100, 100.0))


def test_a_pause_still_going_is_left_out() -> None:
    points, pauses = epochs_with_validation(1, late=True)
    going = [Pause(pauses[0].start_s)]
    assert training_only(points, going)[-1] == pytest.approx((1.0, 99, 100.0))  # its start


def test_the_interval_is_never_narrower_than_the_timelines_resolution() -> None:
    """Steps much faster than the sampling: the same cost in every chunk, 20 J between points.

    The run's end adds up to one sample's worth that no step shows (the final read after the
    last step); the interval must still hold the outcome."""
    points: list[Point] = [(0.1 * k, 10 * k, 20.0 * k) for k in range(11)]  # 2 J a step
    result = forecast(points, 300, warmup_steps=0)
    assert result is not None
    low, mid, high = result.energy_j
    assert mid == pytest.approx(600.0)
    resolution = 20.0 * (1 + 200 / 100)  # one sample's energy, at the outcome and per 100 steps
    assert mid - low >= resolution - 1e-9 and high - mid >= resolution - 1e-9
    assert low <= 600.0 + 20.0 <= high
    assert result.duration_s[2] - result.duration_s[1] >= 0.1 * 3 - 1e-9


def test_a_projection_is_never_below_what_is_used() -> None:
    result = forecast(timeline(100, [1.0] * TOTAL, [0.01] * TOTAL), TOTAL)
    assert result is not None
    later = project(result.rates, TOTAL, 5.0, 900.0, 300)  # power went up tenfold since
    assert later.energy_j[0] >= 900.0
    assert later.energy_j[1] == pytest.approx(900.0 + 700 * 1.0)
    assert later.duration_s[0] >= 5.0


def test_evaluation_every_so_many_steps_comes_back_at_that_pace() -> None:
    """No epochs: an evaluation of 5 J every 50 steps (as a step-based evaluation strategy)."""
    points: list[Point] = [(0.0, 0, 0.0)]
    pauses = []
    t = j = 0.0
    for step in range(1, 201):
        t, j = t + 0.01, j + 1.0
        points.append((t, step, j))
        if step % 50 == 0:
            start = t
            t, j = t + 0.1, j + 5.0
            points.append((t, step, j))
            pauses.append(Pause(start, t, step))
    result = forecast(points, 1000, pauses=pauses)
    assert result is not None
    assert result.energy_j[1] == pytest.approx(1000 * 1.0 + 20 * 5.0, rel=0.01)


def test_a_first_pass_that_compiles_is_taken_at_its_median_batchs_pace() -> None:
    """10 validation batches of 0.05 s and 2 J; the first one compiles for 1 s more (40 J)."""
    points: list[Point] = [(0.0, 0, 0.0), (1.0, 100, 100.0), (2.05, 100, 142.0)]
    points += [(2.05 + 0.05 * k, 100, 142.0 + 2.0 * k) for k in range(1, 10)]
    first = Pause(1.0, points[-1][0], 100, typical_s=0.5)  # 10 batches at the median 0.05 s
    assert pause_cost(points, first, typical=True) == pytest.approx((0.5, 20.0))
    assert pause_cost(points, first) == pytest.approx((1.5, 60.0))  # as it came
    untimed = Pause(1.0, points[-1][0], 100)
    assert pause_cost(points, untimed, typical=True) == pytest.approx((1.5, 60.0))
