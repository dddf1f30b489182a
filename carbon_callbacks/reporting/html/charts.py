"""A run's charts: power per channel and cumulative CO2e over time, with their text alternative.

The series come from ``reporting.plot.plot_data`` (the same figures ``carbon-callbacks plot``
draws), one log at a time; the ranks of a distributed run are set on one time axis from their
start times: power per rank and channel, and CO2e per rank with the ranks' sum. Each series is
thinned to ``most_points`` for the page (``svg.thin``), the text alternative is computed from the
series before thinning.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass

from carbon_callbacks.reporting.grouping import log_rank
from carbon_callbacks.reporting.html.svg import Interval, LineChart, Series, line_chart, thin
from carbon_callbacks.reporting.plot import NothingToPlot, PlotData, plot_data
from carbon_callbacks.reporting.text import format_energy, format_mass, format_power
from carbon_callbacks.runlog.reader import RunLog

SECONDS_AXIS_BELOW_MIN = 2.0
"""Runs shorter than two minutes get a time axis in seconds."""
ALTERNATIVE_ROWS = 8
"""Rows of cumulative CO2e in the text alternative: evenly spaced times, the end included."""


@dataclass(frozen=True)
class ChannelFigures:
    """One channel of the text alternative: energy over the samples, mean and peak power."""

    label: str
    energy_j: float | None
    mean_w: float | None
    peak_w: float | None


@dataclass(frozen=True)
class RunCharts:
    """A run's two charts as SVG text, and the figures their text alternative lists."""

    power_svg: str
    co2e_svg: str | None
    channels: tuple[ChannelFigures, ...]
    co2e_rows: tuple[tuple[float, float], ...]
    forecasts: tuple[Interval, ...]
    time_unit: str
    notes: tuple[str, ...]


@dataclass(frozen=True)
class _Rank:
    """One log's plot data, its label prefix and its start offset in minutes."""

    prefix: str
    data: PlotData
    offset_min: float


def run_charts(logs: Sequence[RunLog], name: str, most_points: int) -> RunCharts | None:
    """The charts of a run from its log(s); None when no log holds samples to draw."""
    ranks = _ranks(logs)
    if not ranks:
        return None
    end_min = max(
        (rank.offset_min + (rank.data.co2e_t_min or [0.0])[-1] for rank in ranks), default=0.0
    )
    end_min = max(
        [end_min]
        + [rank.offset_min + s.t_min[-1] for rank in ranks for s in rank.data.channels if s.t_min]
    )
    seconds = end_min < SECONDS_AXIS_BELOW_MIN
    scale, unit = (60.0, "s") if seconds else (1.0, "min")
    x_label = "seconds since start" if seconds else "minutes since start"
    power: list[Series] = []
    figures: list[ChannelFigures] = []
    for rank in ranks:
        for channel in rank.data.channels:
            xs = [(rank.offset_min + t) * scale for t in channel.t_min]
            label = rank.prefix + channel.label
            figures.append(_channel_figures(label, channel.t_min, channel.power_w))
            power.append(Series(label, *thin(xs, channel.power_w, most_points)))
    first = ranks[0]
    marks = _epoch_marks(first, scale)
    power_svg = line_chart(
        LineChart(
            title=f"Power per channel over time: {name}",
            desc=f"Power in watts of each of {len(power)} channel(s), {x_label}; dotted vertical "
            "lines mark epoch boundaries. The numbers are in the table below the chart.",
            x_label=x_label,
            y_label="power (W)",
            series=power,
            marks=marks,
        )
    )
    co2e_x, co2e_g = _co2e_sum(ranks)
    forecasts = tuple(
        Interval((first.offset_min + p.t_min) * scale, *p.co2e_g)
        for rank in ranks[:1]
        for p in rank.data.predictions
    )
    co2e_svg = None
    if co2e_g:
        series = [
            Series("cumulative CO2e", *thin([x * scale for x in co2e_x], co2e_g, most_points))
        ]
        if len(ranks) > 1:
            series += [
                Series(
                    f"{rank.prefix.rstrip(': ')} alone",
                    *thin(
                        [(rank.offset_min + t) * scale for t in rank.data.co2e_t_min],
                        rank.data.co2e_g,
                        most_points,
                    ),
                )
                for rank in ranks
                if rank.data.co2e_g
            ]
        latest = forecasts[-1] if forecasts else None
        co2e_svg = line_chart(
            LineChart(
                title=f"Cumulative CO2e over time, with forecasts: {name}",
                desc=f"Grams of CO2e emitted so far, {x_label}"
                + (
                    f"; {len(forecasts)} forecast(s) of the run's total, each a dot with its "
                    "interval as a vertical line, the latest also a dashed horizontal line"
                    if forecasts
                    else ""
                )
                + ". The numbers are in the table below the chart.",
                x_label=x_label,
                y_label="CO2e (g)",
                series=series,
                marks=marks,
                intervals=forecasts,
                interval_label="forecast of the total (dot) and its interval (line)",
                level=None if latest is None else (latest.mid, "latest forecast"),
            )
        )
    notes = tuple(dict.fromkeys(note for rank in ranks for note in rank.data.notes))
    return RunCharts(
        power_svg=power_svg,
        co2e_svg=co2e_svg,
        channels=tuple(figures),
        co2e_rows=_rows(co2e_x, co2e_g, scale),
        forecasts=forecasts,
        time_unit=unit,
        notes=notes,
    )


def _ranks(logs: Sequence[RunLog]) -> list[_Rank]:
    """Each log with samples, offset from the earliest start; prefixed by rank when several."""
    found: list[tuple[RunLog, PlotData]] = []
    for log in logs:
        try:
            found.append((log, plot_data(log)))
        except NothingToPlot:
            continue
    starts = [_started(log) for log, _ in found]
    known = [s for s in starts if s is not None]
    origin = min(known, default=0.0)
    ranks = []
    for index, ((log, data), start) in enumerate(zip(found, starts, strict=True)):
        prefix = f"{_rank_name(log, index)}: " if len(logs) > 1 else ""
        ranks.append(_Rank(prefix, data, 0.0 if start is None else (start - origin) / 60.0))
    return ranks


def _started(log: RunLog) -> float | None:
    value = (log.header or {}).get("started_unix")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _rank_name(log: RunLog, index: int) -> str:
    """``"rank 1"`` from the log's distributed context, else the log's position."""
    rank = log_rank(log)
    return f"log {index + 1}" if rank is None else f"rank {rank.global_rank}"


def _epoch_marks(rank: _Rank, scale: float) -> list[tuple[float, str]]:
    """Epoch boundaries as unlabelled marks (the legend names them)."""
    return [((rank.offset_min + t) * scale, "") for t in rank.data.epochs_min]


def _channel_figures(
    label: str, t_min: Sequence[float], power_w: Sequence[float]
) -> ChannelFigures:
    """Energy, mean and peak power of a step series (pairs of points share one power)."""
    joules = 0.0
    seconds = 0.0
    peak: float | None = None
    for index in range(0, len(t_min) - 1, 2):
        watts = power_w[index]
        if math.isnan(watts):
            continue
        span = (t_min[index + 1] - t_min[index]) * 60.0
        joules += watts * span
        seconds += span
        peak = watts if peak is None else max(peak, watts)
    if peak is None:
        return ChannelFigures(label, None, None, None)
    return ChannelFigures(label, joules, joules / seconds if seconds > 0 else None, peak)


def _co2e_sum(ranks: Sequence[_Rank]) -> tuple[list[float], list[float]]:
    """Cumulative CO2e of all ranks (minutes, g): each rank's curve read at every rank's times.

    Before a rank's first sample it adds 0, after its last its total; NaN where one is unknown.
    """
    curves = [
        ([rank.offset_min + t for t in rank.data.co2e_t_min], rank.data.co2e_g)
        for rank in ranks
        if rank.data.co2e_g
    ]
    if len(curves) <= 1:
        return (list(curves[0][0]), list(curves[0][1])) if curves else ([], [])
    times = sorted({t for xs, _ in curves for t in xs})
    return times, [math.fsum(_at(xs, ys, t) for xs, ys in curves) for t in times]


def _at(xs: Sequence[float], ys: Sequence[float], t: float) -> float:
    """The curve at ``t``, linear between its points."""
    if t <= xs[0]:
        return 0.0 if t < xs[0] else ys[0]
    if t >= xs[-1]:
        return ys[-1]
    right = bisect.bisect_left(xs, t)
    x0, x1, y0, y1 = xs[right - 1], xs[right], ys[right - 1], ys[right]
    return y0 if x1 == x0 else y0 + (y1 - y0) * (t - x0) / (x1 - x0)


def _rows(
    xs: Sequence[float], ys: Sequence[float], scale: float
) -> tuple[tuple[float, float], ...]:
    """A few (time, g) points of the cumulative curve, evenly spread, the last one included."""
    if not xs:
        return ()
    count = len(xs)
    picks = sorted(
        {round(i * (count - 1) / (ALTERNATIVE_ROWS - 1)) for i in range(ALTERNATIVE_ROWS)}
    )
    return tuple((xs[i] * scale, ys[i]) for i in picks)


def format_channel(figures: ChannelFigures) -> tuple[str, str, str]:
    """Energy, mean and peak power in the unit that fits; 'not measured' when unknown."""
    return (
        format_energy(figures.energy_j),
        format_power(figures.mean_w),
        format_power(figures.peak_w),
    )


def format_grams(grams: float) -> str:
    """Grams of CO2e in the unit that fits; 'unknown' for a NaN (a gap)."""
    return "unknown" if math.isnan(grams) else format_mass(grams / 1000.0)
