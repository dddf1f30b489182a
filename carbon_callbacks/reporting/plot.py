"""A run log as a figure: power per channel, and cumulative CO2e against its forecasts, over time.

``carbon-callbacks plot LOG -o FILE.png`` draws two panels that share a time axis in minutes since
the run started:

1. power per channel (W): each channel's cumulative joules differenced between consecutive samples,
   drawn as steps. A channel without a reading at a sample leaves a gap; it is never drawn as 0.
   Samples closer together than 1/600 of the run (50 ms at least) are merged, so a window's end
   read a moment before the next poll shows no spike.
2. cumulative CO2e (g): total device energy x PUE x the carbon intensity (the summary's, or for a
   run that did not finish, that of the window covering the time), with each forecast of the
   whole run's CO2e made during it (a marker and its interval), the latest also as a dashed line
   and a shaded band.

Epoch boundaries are vertical lines on both. The figures are computed by ``plot_data`` without
matplotlib; only ``save_figure`` needs it (the ``plot`` extra).
"""

from __future__ import annotations

import itertools
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from carbon_callbacks.reporting.text import format_kwh, format_mass
from carbon_callbacks.runlog.reader import RunLog, read_run_log
from carbon_callbacks.tracking.measurement import JOULES_PER_KWH

INSTALL_HINT = (
    'pip install "carbon-callbacks[plot]" (from a clone of the repository: pip install ".[plot]")'
)
MERGE_FRACTION = 1 / 600
"""Samples closer together than this share of the run are merged into the next one..."""
MERGE_MIN_S = 0.05
"""...or than this many seconds: a window's end read a few ms before the next poll is no spike."""
WIDTH_PX, HEIGHT_PX, DPI = 900, 600, 100
LEGEND_COLUMNS = 4
"""The power legend is a band of rows of this many entries above the highest figure."""
SECONDS_AXIS_BELOW_S = 120.0
"""Runs shorter than this (two minutes) get a time axis in seconds, longer ones in minutes."""


class PlotUnavailable(RuntimeError):
    """matplotlib, which draws the figure, is not installed."""


class NothingToPlot(ValueError):
    """The run log holds no power samples: an older log, or a run cut off early."""


@dataclass(frozen=True)
class Sample:
    """One point of the timeline: seconds since the start and cumulative joules per channel."""

    t_s: float
    joules: tuple[float | None, ...]


@dataclass(frozen=True)
class ChannelSeries:
    """One channel's power as a step line; NaN breaks the line where there is no figure."""

    id: str
    method: str | None
    t_min: list[float]
    power_w: list[float]

    @property
    def label(self) -> str:
        """The legend entry: the channel and how it is obtained (measured or estimated)."""
        return self.id if self.method is None else f"{self.id} ({self.method})"


@dataclass(frozen=True)
class PredictionPoint:
    """A forecast of the whole run's CO2e made during it: when, and (low, central, high) in g."""

    t_min: float
    co2e_g: tuple[float, float, float]


@dataclass(frozen=True)
class PlotData:
    """Everything the figure shows, in plotting units (minutes, W, g).

    Attributes:
        title: Run, status, totals and whether any figure is estimated.
        channels: Power per channel.
        co2e_t_min: Times of the cumulative CO2e curve.
        co2e_g: Cumulative CO2e (NaN where the energy is unknown); empty when no intensity is known.
        predictions: Forecasts of the whole run's CO2e that carry one.
        epochs_min: Epoch boundaries.
        notes: What the figure cannot show, and why; printed on it.
        seconds_axis: Label the time axis in seconds (runs under about two minutes) rather than
            minutes; the series stay in minutes either way.
    """

    title: str
    channels: list[ChannelSeries]
    co2e_t_min: list[float]
    co2e_g: list[float]
    predictions: list[PredictionPoint]
    epochs_min: list[float]
    notes: list[str]
    seconds_axis: bool = False


def plot_run_log(path: str | os.PathLike[str], output: str | os.PathLike[str]) -> RunLog:
    """Read the run log at ``path``, draw it into ``output`` (PNG, SVG or PDF by extension).

    Returns:
        The log as read, whose ``problems`` the caller may report.

    Raises:
        OSError: The log cannot be read or the figure cannot be written.
        NothingToPlot: The log has no power samples.
        PlotUnavailable: matplotlib is not installed.
    """
    log = read_run_log(path)
    save_figure(plot_data(log), output)
    return log


def plot_data(log: RunLog) -> PlotData:
    """The figure's series from a run log.

    Raises:
        NothingToPlot: The log has no usable sample records.
    """
    ids, samples = _timeline(log)
    if len(samples) < 2:
        raise NothingToPlot(
            f"{log.path} has no power samples to plot (a log from an older version, or a run cut "
            "off before its first window ended); 'carbon-callbacks report' shows its windows"
        )
    header = log.header or {}
    summary = log.summary or {}
    channels = [c for c in _list(header.get("channels")) if isinstance(c, dict)]
    methods = {c.get("id"): c.get("method") for c in channels}
    series = [_channel_series(i, ids[i], methods.get(ids[i]), samples) for i in range(len(ids))]
    started = _number(header.get("started_unix")) or _number(summary.get("start_unix"))
    notes: list[str] = []
    if started is None:
        notes.append("no start time in the log: epochs and forecasts not shown")
    intensity = _intensity_source(log, started)
    co2e_t: list[float] = []
    co2e_g: list[float] = []
    if intensity is None:
        notes.append("no carbon intensity in the log: CO2e not shown")
    else:
        co2e_t, co2e_g = _cumulative_co2e(samples, _pue(log), intensity)
    predictions = [] if started is None else _predictions(log, started)
    if intensity is not None and log.predictions and not predictions:
        notes.append("forecasts carry no CO2e (no intensity ahead): not shown")
    return PlotData(
        title=_title(log, samples, co2e_g, methods.values()),
        channels=series,
        co2e_t_min=co2e_t,
        co2e_g=co2e_g,
        predictions=predictions,
        epochs_min=[] if started is None else _epoch_boundaries(log, started),
        notes=notes,
        seconds_axis=samples[-1].t_s < SECONDS_AXIS_BELOW_S,
    )


def save_figure(data: PlotData, output: str | os.PathLike[str]) -> None:
    """Draw ``data`` with matplotlib (Agg, no window, no global state) and write ``output``.

    Raises:
        PlotUnavailable: matplotlib is not installed.
        OSError: ``output`` cannot be written.
    """
    draw_figure(data).savefig(Path(output), dpi=DPI)


def draw_figure(data: PlotData) -> Any:
    """The matplotlib ``Figure`` of ``data``, not shown and not saved.

    Raises:
        PlotUnavailable: matplotlib is not installed.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise PlotUnavailable(f"plotting needs matplotlib: {INSTALL_HINT}") from None
    figure = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI, layout="constrained")
    power, co2e = figure.subplots(2, 1, sharex=True)
    scale = 60.0 if data.seconds_axis else 1.0  # the series are in minutes
    _draw_power(power, data, scale)
    _draw_co2e(co2e, data, scale)
    for axes in (power, co2e):
        for number, t in enumerate(data.epochs_min):
            label = "epoch boundary" if number == 0 and axes is power else None
            axes.axvline(t * scale, color="0.6", linestyle=":", linewidth=0.8, label=label)
        axes.grid(True, alpha=0.3)
    legend = power.legend(loc="upper right", fontsize="small", ncols=LEGEND_COLUMNS)
    co2e.set_xlabel("seconds since start" if data.seconds_axis else "minutes since start")
    co2e.set_xlim(left=0)
    texts = list(legend.get_texts())  # channel names, from the log
    if data.notes:
        texts.append(figure.supxlabel("; ".join(data.notes), fontsize="small", color="0.3"))
    texts.append(figure.suptitle(data.title, fontsize="medium"))
    for text in texts:  # shown as written: a "$x$" in a name is not mathtext here
        text.set_parse_math(False)
    return figure


# -- the series ---------------------------------------------------------------------------------


def _timeline(log: RunLog) -> tuple[list[str], list[Sample]]:
    """Channel ids and every sample of the log in time order, on the first record's channels.

    Records without channels are skipped: their rows hold no figure to place.
    """
    ids: list[str] = []
    samples: list[Sample] = []
    for record in log.samples:
        channels = [str(c) for c in _list(record.get("channels"))]
        if not channels:
            continue
        ids = ids or channels
        rows = zip(_list(record.get("t_s")), _list(record.get("joules")), strict=False)
        for t_s, joules in rows:
            if _number(t_s) is None or not isinstance(joules, list):
                continue
            by_id = dict(zip(channels, (_number(j) for j in joules), strict=False))
            samples.append(Sample(float(t_s), tuple(by_id.get(i) for i in ids)))
    samples.sort(key=lambda s: s.t_s)
    return ids, samples


def _merged(samples: Sequence[Sample]) -> list[Sample]:
    """Samples with the too-close ones dropped, so each power figure spans a readable interval.

    A sample missing a figure is always kept: it marks a gap that merging would hide.
    """
    span = samples[-1].t_s - samples[0].t_s
    spacing = max(MERGE_MIN_S, span * MERGE_FRACTION)
    kept = [samples[0]]
    for sample in samples[1:-1]:
        if sample.t_s - kept[-1].t_s >= spacing or None in sample.joules:
            kept.append(sample)
    last = samples[-1]
    if len(kept) > 1 and last.t_s - kept[-1].t_s < spacing and None not in kept[-1].joules:
        kept[-1] = last
    else:
        kept.append(last)
    return kept


def _channel_series(
    index: int, channel: str, method: str | None, samples: Sequence[Sample]
) -> ChannelSeries:
    """Power of one channel as horizontal steps, one per interval between (merged) samples."""
    t_min: list[float] = []
    power: list[float] = []
    for before, after in itertools.pairwise(_merged(samples)):
        j0, j1 = before.joules[index], after.joules[index]
        seconds = after.t_s - before.t_s
        watts = math.nan
        if j0 is not None and j1 is not None and seconds > 0 and j1 >= j0:
            watts = (j1 - j0) / seconds
        t_min += [before.t_s / 60, after.t_s / 60]
        power += [watts, watts]
    return ChannelSeries(channel, method, t_min, power)


def _cumulative_co2e(
    samples: Sequence[Sample], pue: float, intensity: Callable[[float], float | None]
) -> tuple[list[float], list[float]]:
    """Cumulative CO2e in g at each sample: each stretch's energy x PUE x its intensity.

    Channels that never have a figure are left out; a sample where another one has none is NaN,
    and the energy across it is counted once a figure returns.
    """
    count = len(samples[0].joules)
    read = [i for i in range(count) if any(s.joules[i] is not None for s in samples)]
    t_min: list[float] = []
    grams: list[float] = []
    previous: tuple[float, float] | None = None  # (t_s, joules) of the last sample with a total
    total_g = math.nan
    for sample in samples:
        t_min.append(sample.t_s / 60)
        figures = [j for j in (sample.joules[i] for i in read) if j is not None]
        if not read or len(figures) < len(read):
            grams.append(math.nan)
            continue
        joules = math.fsum(figures)
        if previous is None:
            total_g = 0.0
        else:
            g_per_kwh = intensity((previous[0] + sample.t_s) / 2)
            added = max(joules - previous[1], 0.0) * pue / JOULES_PER_KWH
            total_g += math.nan if g_per_kwh is None else added * g_per_kwh
        previous = (sample.t_s, joules)
        grams.append(total_g)
    return t_min, grams


def _intensity_source(log: RunLog, started: float | None) -> Callable[[float], float | None] | None:
    """g/kWh at a time (seconds since the start): the summary's, else the covering window's."""
    summary_value = _g_per_kwh(log.summary)
    if summary_value is not None:
        return lambda t_s: summary_value
    spans = []
    for window in log.windows:
        value, start = _g_per_kwh(window), _number(window.get("start_unix"))
        duration = _number(window.get("duration_s"))
        if value is not None and start is not None and duration is not None and started is not None:
            spans.append((start - started, start - started + duration, value))
    if not spans:
        return None

    def at(t_s: float) -> float:
        covering = [value for begin, end, value in spans if begin <= t_s <= end]
        if covering:
            return covering[-1]
        return min(spans, key=lambda span: min(abs(t_s - span[0]), abs(t_s - span[1])))[2]

    return at


def _predictions(log: RunLog, started: float) -> list[PredictionPoint]:
    """Forecasts of the whole run's CO2e, at the time each was made."""
    points = []
    for record in log.predictions:
        t_unix = _number(record.get("t_unix"))
        figures = record.get("co2e_kg")
        if t_unix is None or not isinstance(figures, list) or len(figures) != 3:
            continue
        values = [_number(kg) for kg in figures]
        if any(v is None for v in values):
            continue
        low, mid, high = (v * 1000 for v in values if v is not None)
        points.append(PredictionPoint((t_unix - started) / 60, (low, mid, high)))
    return points


def _epoch_boundaries(log: RunLog, started: float) -> list[float]:
    """Minutes at which epochs start, and at which the last one ends.

    Epoch windows are named ``"epoch"`` by the framework adapters, ``"epoch N"`` in scripts.
    """
    epochs = []
    for window in log.windows:
        name = str(window.get("name", ""))
        start, duration = _number(window.get("start_unix")), _number(window.get("duration_s"))
        if (name == "epoch" or name.startswith("epoch ")) and start is not None:
            epochs.append((start - started, duration))
    if not epochs:
        return []
    boundaries = [start / 60 for start, _ in epochs]
    last_start, last_duration = epochs[-1]
    if last_duration is not None:
        boundaries.append((last_start + last_duration) / 60)
    return boundaries


def _title(
    log: RunLog, samples: Sequence[Sample], co2e_g: Sequence[float], methods: Iterable[object]
) -> str:
    """``"mnist (keras, 2026-12-01 09:00 UTC): completed, 62 Wh, 29 mg CO2e (estimated)"``.

    The run's name (or id), the framework when the log's context names one, the start date; then
    the status and the totals in the unit that fits.
    """
    header = log.header or {}
    summary = log.summary
    name = header.get("run_name") or header.get("run_id") or log.path.stem
    status = "unfinished (no summary)" if summary is None else str(summary.get("status"))
    if summary is not None:
        kwh, kg = _number(summary.get("energy_kwh")), _number(summary.get("co2e_kg"))
    else:
        known = [g for g in co2e_g if not math.isnan(g)]
        kg = known[-1] / 1000 if known else None
        kwh = _energy_kwh(samples, _pue(log))
    estimated = "estimated" in methods or bool(summary and summary.get("estimated"))
    about = [_framework(header)]
    started = _number(header.get("started_unix"))
    if started is not None and 0 <= started < 32_503_680_000:  # before the year 3000
        about.append(time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)))
    shown = ", ".join(part for part in about if part)
    parts = [
        f"{name} ({shown}): {status}" if shown else f"{name}: {status}",
        "energy not measured" if kwh is None else format_kwh(kwh),
        "CO2e not computed" if kg is None else f"{format_mass(kg)} CO2e",
    ]
    return ", ".join(parts) + (" (estimated)" if estimated else "")


def _framework(header: dict[str, Any]) -> str | None:
    context = header.get("context")
    framework = context.get("framework") if isinstance(context, dict) else None
    return framework if isinstance(framework, str) and framework else None


def _energy_kwh(samples: Sequence[Sample], pue: float) -> float | None:
    """Facility energy over the samples, from each channel's first and last figures."""
    total, any_figure = 0.0, False
    for index in range(len(samples[0].joules)):
        figures = [j for j in (s.joules[index] for s in samples) if j is not None]
        if figures:
            total += figures[-1] - figures[0]
            any_figure = True
    return total * pue / JOULES_PER_KWH if any_figure else None


def _pue(log: RunLog) -> float:
    config = (log.header or {}).get("config") or {}
    return _number(config.get("pue")) or _number((log.summary or {}).get("pue")) or 1.0


def _g_per_kwh(record: dict[str, Any] | None) -> float | None:
    intensity = (record or {}).get("intensity")
    return _number(intensity.get("g_per_kwh")) if isinstance(intensity, dict) else None


def _list(value: object) -> list[Any]:
    """A list from untrusted JSON, else empty."""
    return value if isinstance(value, list) else []


def _number(value: object) -> float | None:
    """A finite number from untrusted JSON, else None (booleans are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


# -- drawing ------------------------------------------------------------------------------------


def _draw_power(axes: Any, data: PlotData, scale: float) -> None:
    for series in data.channels:
        times = [t * scale for t in series.t_min]
        axes.plot(times, series.power_w, linewidth=1.2, label=series.label)
    axes.set_ylabel("power (W)")
    peaks = [w for series in data.channels for w in series.power_w if not math.isnan(w)]
    rows = math.ceil((len(data.channels) + bool(data.epochs_min)) / LEGEND_COLUMNS)
    free = 0.05 + 0.08 * rows  # the share of the height above the highest figure, for the legend
    axes.set_ylim(0, max(peaks, default=1.0) / (1 - min(free, 0.6)) or 1.0)


def _draw_co2e(axes: Any, data: PlotData, scale: float) -> None:
    axes.set_ylabel("CO2e (g)")
    if not data.co2e_g:
        return
    times = [t * scale for t in data.co2e_t_min]
    axes.plot(times, data.co2e_g, color="tab:green", label="cumulative CO2e")
    if data.predictions:
        times = [p.t_min * scale for p in data.predictions]
        mids = [p.co2e_g[1] for p in data.predictions]
        errors = [
            [p.co2e_g[1] - p.co2e_g[0] for p in data.predictions],
            [p.co2e_g[2] - p.co2e_g[1] for p in data.predictions],
        ]
        axes.errorbar(
            times,
            mids,
            yerr=errors,
            fmt="o",
            color="tab:purple",
            markersize=4,
            capsize=3,
            label="forecast of the total (interval)",
        )
        low, mid, high = data.predictions[-1].co2e_g
        axes.axhline(mid, color="tab:purple", linestyle="--", linewidth=1, label="latest forecast")
        axes.axhspan(low, high, color="tab:purple", alpha=0.12, label="latest forecast's interval")
    axes.set_ylim(bottom=0)
    axes.legend(loc="best", fontsize="small")
