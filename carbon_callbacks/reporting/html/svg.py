"""Charts as inline SVG text: line charts (steps, markers, intervals, marks) and bar charts.

Every chart is an ``<svg role="img" viewBox=...>`` with a ``<title>`` and a ``<desc>``; every text
in it passes ``html.escape`` (names come from run logs). Series differ by dash pattern and marker
as well as by colour, and the legend shows both, so a chart reads without colour. Long series are
thinned (``thin``) to a bounded number of points that keeps each bucket's lowest and highest, so
a spike survives and the page stays small.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 720, 260
"""The viewBox of a line chart; the page scales it to its column."""
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 12, 12, 40
_LEGEND_ROW = 16

DASHES = ("", "6 3", "2 3", "8 3 2 3", "1 2", "10 4")
"""Dash patterns, one per series in turn: the first is solid."""
COLOURS = ("#1b6ca8", "#c2571a", "#2e7d32", "#7b3fa0", "#8d6e00", "#b0306a")
"""Colours, one per series in turn (dark enough on white); never the only difference."""


def esc(text: object) -> str:
    """``text`` escaped for HTML and SVG text and attribute values (quotes too)."""
    return escape(str(text), quote=True)


def thin(xs: Sequence[float], ys: Sequence[float], most: int) -> tuple[list[float], list[float]]:
    """At most about ``most`` points: per bucket of neighbours, the lowest and the highest.

    The points keep their order; a NaN (a gap) in a bucket is kept as one NaN at its place, so
    gaps survive thinning as spikes do.
    """
    count = len(xs)
    if count <= most:
        return list(xs), list(ys)
    buckets = max(most // 2, 1)
    out_x: list[float] = []
    out_y: list[float] = []
    for bucket in range(buckets):
        begin, end = bucket * count // buckets, (bucket + 1) * count // buckets
        indices = range(begin, end)
        finite = [i for i in indices if not math.isnan(ys[i])]
        gaps = [i for i in indices if math.isnan(ys[i])]
        keep = set(gaps[:1])
        if finite:
            keep.add(min(finite, key=lambda i: ys[i]))
            keep.add(max(finite, key=lambda i: ys[i]))
        for i in sorted(keep):
            out_x.append(xs[i])
            out_y.append(ys[i])
    return out_x, out_y


@dataclass(frozen=True)
class Series:
    """One line: points (NaN breaks the line), its legend label, and markers or not."""

    label: str
    xs: Sequence[float]
    ys: Sequence[float]
    markers: bool = False


@dataclass(frozen=True)
class Interval:
    """A figure with its range at a time (a forecast): a marker and a whisker."""

    x: float
    low: float
    mid: float
    high: float


@dataclass(frozen=True)
class LineChart:
    """What a line chart shows; ``svg`` draws it.

    Attributes:
        title: The chart's ``<title>`` (its accessible name).
        desc: The ``<desc>``: what the chart shows, in a sentence.
        x_label: The time axis' label.
        y_label: The value axis' label.
        series: The lines.
        marks: Vertical dotted lines with a short label (epoch boundaries).
        intervals: Forecasts with their intervals, with the legend label ``interval_label``.
        level: A horizontal dashed line (the latest forecast) with its label.
    """

    title: str
    desc: str
    x_label: str
    y_label: str
    series: Sequence[Series]
    marks: Sequence[tuple[float, str]] = ()
    intervals: Sequence[Interval] = ()
    interval_label: str = "forecast (interval)"
    level: tuple[float, str] | None = None
    css_class: str = "chart"


def _number(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def nice_ticks(top: float, count: int = 4) -> list[float]:
    """Round tick values from 0 to at least ``top``: 0, 50, 100, 150 ..."""
    if not math.isfinite(top) or top <= 0:
        return [0.0, 1.0]
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    return [step * i for i in range(math.ceil(top / step - 1e-9) + 1)]


def tick_text(value: float) -> str:
    """A tick label: ``"0"``, ``"2.5"``, ``"1,500"``, ``"0.002"``."""
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.6g}"


def line_chart(chart: LineChart) -> str:
    """The chart as one ``<svg>`` element."""
    legend = [*chart.series]
    rows = len(legend) + bool(chart.intervals) + bool(chart.level) + bool(chart.marks)
    height = HEIGHT + _LEGEND_ROW * rows
    plot_bottom = HEIGHT - _BOTTOM
    xs = [x for s in chart.series for x in s.xs] + [i.x for i in chart.intervals]
    xs += [x for x, _ in chart.marks]
    ys = [y for s in chart.series for y in s.ys if not math.isnan(y)]
    ys += [i.high for i in chart.intervals] + ([chart.level[0]] if chart.level else [])
    x_ticks = nice_ticks(max(xs, default=1.0), 6)
    y_ticks = nice_ticks(max(ys, default=1.0))
    x_top, y_top = x_ticks[-1] or 1.0, y_ticks[-1] or 1.0

    def px(x: float) -> float:
        return _LEFT + (WIDTH - _LEFT - _RIGHT) * x / x_top

    def py(y: float) -> float:
        return plot_bottom - (plot_bottom - _TOP) * y / y_top

    parts = [
        f'<svg class="{esc(chart.css_class)}" role="img" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{esc(chart.title)}</title><desc>{esc(chart.desc)}</desc>",
        f'<g class="axes"><path d="M{_LEFT} {_TOP}V{plot_bottom}H{WIDTH - _RIGHT}"/>',
    ]
    for y in y_ticks:
        parts.append(
            f'<path class="grid" d="M{_LEFT} {_number(py(y))}H{WIDTH - _RIGHT}"/>'
            f'<text x="{_LEFT - 4}" y="{_number(py(y) + 4)}" text-anchor="end">'
            f"{tick_text(y)}</text>"
        )
    for x in x_ticks:
        parts.append(
            f'<text x="{_number(px(x))}" y="{plot_bottom + 14}" text-anchor="middle">'
            f"{tick_text(x)}</text>"
        )
    parts.append(
        f'<text x="{(WIDTH + _LEFT) // 2}" y="{plot_bottom + 30}" text-anchor="middle">'
        f"{esc(chart.x_label)}</text>"
        f'<text x="12" y="{(plot_bottom + _TOP) // 2}" text-anchor="middle" '
        f'transform="rotate(-90 12 {(plot_bottom + _TOP) // 2})">{esc(chart.y_label)}</text></g>'
    )
    for x, label in chart.marks:
        parts.append(
            f'<path class="mark" d="M{_number(px(x))} {_TOP}V{plot_bottom}"/>'
            + (
                f'<text class="mark-label" x="{_number(px(x) + 2)}" y="{_TOP + 10}">'
                f"{esc(label)}</text>"
                if label
                else ""
            )
        )
    if chart.level is not None:
        parts.append(
            f'<path class="level" d="M{_LEFT} {_number(py(chart.level[0]))}H{_number(px(x_top))}"/>'
        )
    for index, series in enumerate(chart.series):
        parts.append(_series_path(series, index, px, py))
    for interval in chart.intervals:
        at = _number(px(interval.x))
        parts.append(
            f'<path class="interval" d="M{at} {_number(py(interval.low))}'
            f'V{_number(py(interval.high))}"/>'
            f'<circle class="forecast" cx="{at}" cy="{_number(py(interval.mid))}" r="3.5"/>'
        )
    parts.append(_legend(chart, plot_bottom + _BOTTOM + 4))
    parts.append("</svg>")
    return "".join(parts)


def _series_path(
    series: Series, index: int, px: Callable[[float], float], py: Callable[[float], float]
) -> str:
    """The series as one ``<path>`` (a NaN starts a new subpath), with markers when asked."""
    commands: list[str] = []
    pen_down = False
    points: list[str] = []
    for x, y in zip(series.xs, series.ys, strict=True):
        if math.isnan(y):
            pen_down = False
            continue
        point = f"{_number(px(x))} {_number(py(y))}"
        commands.append(("L" if pen_down else "M") + point)
        points.append(point)
        pen_down = True
    colour, dash = COLOURS[index % len(COLOURS)], DASHES[index % len(DASHES)]
    dashed = f' stroke-dasharray="{dash}"' if dash else ""
    path = (
        f'<path class="series" data-series="{index}" d="{"".join(commands)}" '
        f'stroke="{colour}"{dashed}/>'
    )
    if not series.markers:
        return path
    dots = "".join(
        f'<circle cx="{p.split()[0]}" cy="{p.split()[1]}" r="2" fill="{colour}"/>' for p in points
    )
    return path + dots


def _legend(chart: LineChart, top: int) -> str:
    """One row per entry: a short line in the entry's dash and colour, then its label."""
    rows: list[tuple[str, str]] = []
    for index, series in enumerate(chart.series):
        colour, dash = COLOURS[index % len(COLOURS)], DASHES[index % len(DASHES)]
        dashed = f' stroke-dasharray="{dash}"' if dash else ""
        rows.append((f'<path class="series" d="M0 0H28" stroke="{colour}"{dashed}/>', series.label))
    if chart.intervals:
        rows.append(
            (
                '<path class="interval" d="M14 -6V6"/>'
                '<circle class="forecast" cx="14" cy="0" r="3.5"/>',
                chart.interval_label,
            )
        )
    if chart.level is not None:
        rows.append(('<path class="level" d="M0 0H28"/>', chart.level[1]))
    if chart.marks:
        rows.append(('<path class="mark" d="M14 -6V6"/>', "epoch boundary"))
    return "".join(
        f'<g class="legend" transform="translate({_LEFT} {top + _LEGEND_ROW * row})">{swatch}'
        f'<text x="36" y="4">{esc(label)}</text></g>'
        for row, (swatch, label) in enumerate(rows)
    )


@dataclass(frozen=True)
class Bar:
    """One bar: its label, value and the value as text (written beside it)."""

    label: str
    value: float
    text: str
    own: bool = False


BAR_ROW = 26
_BAR_LABEL_W = 300


def bar_chart(title: str, desc: str, bars: Sequence[Bar]) -> str:
    """Horizontal bars, each labelled with its name and value: no legend, no colour needed."""
    height = BAR_ROW * len(bars) + 8
    top = max((bar.value for bar in bars), default=1.0) or 1.0
    room = WIDTH - _BAR_LABEL_W - 110
    parts = [
        f'<svg class="chart bars" role="img" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" '
        f'height="{height}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{esc(title)}</title><desc>{esc(desc)}</desc>",
    ]
    for row, bar in enumerate(bars):
        y = 4 + row * BAR_ROW
        width = max(room * bar.value / top, 1.0)
        css = "bar own" if bar.own else "bar"
        parts.append(
            f'<text x="{_BAR_LABEL_W - 6}" y="{y + 15}" text-anchor="end">{esc(bar.label)}</text>'
            f'<rect class="{css}" x="{_BAR_LABEL_W}" y="{y + 2}" width="{_number(width)}" '
            f'height="{BAR_ROW - 8}"/>'
            f'<text x="{_number(_BAR_LABEL_W + width + 6)}" y="{y + 15}">{esc(bar.text)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
