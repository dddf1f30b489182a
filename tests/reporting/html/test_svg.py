"""The SVG helpers: thinning keeps spikes and gaps; every text is escaped; ticks are round."""

from __future__ import annotations

import math

from carbon_callbacks.reporting.html.svg import Bar, bar_chart, nice_ticks, thin
from tests.reporting.html.page_parser import parse


def test_thinning_bounds_the_points_and_keeps_each_buckets_extremes() -> None:
    xs = [float(i) for i in range(10_000)]
    ys = [1.0] * 10_000
    ys[1234], ys[8765] = 50.0, -5.0
    ys[5000] = math.nan
    out_x, out_y = thin(xs, ys, 300)
    assert len(out_x) <= 300 + 150  # a bucket keeps its low, its high and one gap at most
    assert 50.0 in out_y and -5.0 in out_y
    assert any(math.isnan(y) for y in out_y)
    assert out_x == sorted(out_x)
    assert thin(xs[:10], ys[:10], 300) == (xs[:10], ys[:10])


def test_bar_labels_are_escaped_and_each_bar_says_its_value() -> None:
    svg = parse(bar_chart("<t>", "<d>", [Bar("<script>x</script>", 2.0, "2 g", own=True)]))
    assert svg.find("title").text() == "<t>" and svg.find_all("script") == []
    texts = [text.text() for text in svg.find_all("text")]
    assert texts == ["<script>x</script>", "2 g"]


def test_ticks_are_round_and_reach_the_top() -> None:
    assert nice_ticks(283.0) == [0.0, 100.0, 200.0, 300.0]
    assert nice_ticks(0.9, 6)[-1] >= 0.9
    assert nice_ticks(math.nan) == [0.0, 1.0]
