"""``carbon-callbacks plot``: figures from a real run log, and the PNG written from them."""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from carbon_callbacks import Tracker, read_run_log
from carbon_callbacks.reporting.plot import (
    NothingToPlot,
    PlotData,
    draw_figure,
    plot_data,
    save_figure,
)
from carbon_callbacks.reporting.text import format_kwh, format_mass
from tests.meters.fake_powercap import FakePowercap

ROOT = Path(__file__).resolve().parents[2]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PACKAGE_J = [2.0, 6.0, 4.0]
"""Joules the fake CPU package uses in each epoch: three different power levels."""
PREDICTED_KG = [1e-6, 2e-6, 3e-6]


@pytest.fixture
def run_log(powercap: FakePowercap) -> Path:
    """A finished three-epoch run measured through the fake RAPL tree, with one forecast."""
    with Tracker(country="SE", pue=1.5, interval_s=0.02, run_name="plot test") as tracker:
        for epoch, joules in enumerate(PACKAGE_J):
            tracker.begin_window(f"epoch {epoch}")
            for _ in range(4):
                time.sleep(0.03)
                powercap.add_energy("intel-rapl:0", round(joules / 4 * 1e6))
                powercap.add_energy("intel-rapl:0:0", 100_000)
                tracker.step()
            tracker.end_window(f"epoch {epoch}")
            if epoch == 0:
                tracker.record(
                    "prediction",
                    {"steps_done": 4, "total_steps": 12, "co2e_kg": PREDICTED_KG},
                )
    assert tracker.log_path is not None
    return tracker.log_path


def integral_j(
    t_min: list[float], power_w: list[float], begin: float = -math.inf, end: float = math.inf
) -> float:
    """Joules under a step line given as (start, end) pairs of points, between two minutes."""
    total = 0.0
    for i in range(0, len(t_min), 2):
        if not math.isnan(power_w[i]):
            span = min(t_min[i + 1], end) - max(t_min[i], begin)
            total += power_w[i] * max(span, 0.0) * 60
    return total


def rewrite(path: Path, out: Path, edit: Callable[[dict[str, Any]], dict[str, Any] | None]) -> Path:
    """A copy of a run log with each record passed through ``edit`` (None drops the record)."""
    lines = []
    for line in path.read_text().splitlines():
        record = edit(json.loads(line))
        if record is not None:
            lines.append(json.dumps(record))
    out.write_text("\n".join(lines) + "\n")
    return out


def cli(*args: str, code: str | None = None) -> subprocess.CompletedProcess[str]:
    command = ["-m", "carbon_callbacks", *args] if code is None else ["-c", code, *args]
    return subprocess.run(
        [sys.executable, *command],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
        check=False,
    )


def test_power_per_channel_integrates_to_each_channels_energy(run_log: Path) -> None:
    log = read_run_log(run_log)
    data = plot_data(log)
    assert log.summary is not None
    measured = {c["id"]: c["energy_j"] for c in log.summary["channels"]}
    assert [s.id for s in data.channels] == list(measured)
    for series in data.channels:
        assert series.method == "measured" and series.label == f"{series.id} (measured)"
        assert integral_j(series.t_min, series.power_w) == pytest.approx(measured[series.id])
        assert all(w >= 0 for w in series.power_w)
    package = data.channels[0]
    assert integral_j(package.t_min, package.power_w) == pytest.approx(sum(PACKAGE_J))
    # The epochs' levels show: the power line from one epoch's end to the next holds that epoch's
    # energy (the package draws nothing between epochs). Each epoch's end is the last sample of
    # the record written when it ended, so the bounds are sample times, exact on the line.
    ends = [record["t_s"][-1] / 60 for record in log.samples[: len(PACKAGE_J)]]
    bounds = itertools.pairwise([0.0, *ends[:-1], math.inf])  # the last epoch: to the run's end
    for (begin, end), joules in zip(bounds, PACKAGE_J, strict=True):
        assert integral_j(package.t_min, package.power_w, begin, end) == pytest.approx(joules)


def test_cumulative_co2e_ends_at_the_runs_total_with_pue(run_log: Path) -> None:
    log = read_run_log(run_log)
    data = plot_data(log)
    assert log.summary is not None and log.summary["pue"] == 1.5
    assert data.co2e_g[0] == 0.0
    assert data.co2e_g[-1] == pytest.approx(log.summary["co2e_kg"] * 1000)
    assert data.co2e_g == sorted(data.co2e_g)
    assert data.title.startswith("plot test (") and "UTC): completed, " in data.title
    assert f"{format_kwh(log.summary['energy_kwh'])}, " in data.title
    assert "estimated" not in data.title and data.notes == []


def test_epochs_and_forecasts_are_placed_in_minutes_since_start(run_log: Path) -> None:
    log = read_run_log(run_log)
    data = plot_data(log)
    assert log.header is not None
    started = log.header["started_unix"]
    starts = [(w["start_unix"] - started) / 60 for w in log.windows]
    last = log.windows[-1]
    assert data.epochs_min == pytest.approx([*starts, starts[-1] + last["duration_s"] / 60])
    (forecast,) = data.predictions
    assert forecast.co2e_g == pytest.approx([kg * 1000 for kg in PREDICTED_KG])
    # Made between epochs 0 and 1. An epoch's start time can only come out early, by as long as
    # the thread was descheduled between the two clock reads that date it, never late: hence a
    # strict bound below and half of epoch 1 to spare above.
    assert starts[0] < forecast.t_min < (starts[1] + starts[2]) / 2


def test_a_missing_reading_is_a_gap_never_zero(run_log: Path, tmp_path: Path) -> None:
    holes = 0

    def drop_one_reading(record: dict[str, Any]) -> dict[str, Any]:
        nonlocal holes
        if record["type"] == "samples" and holes == 0 and len(record["joules"]) > 1:
            record["joules"][1][0] = None
            holes += 1
        return record

    gappy = plot_data(read_run_log(rewrite(run_log, tmp_path / "gap.jsonl", drop_one_reading)))
    whole = plot_data(read_run_log(run_log))
    package, whole_package = gappy.channels[0], whole.channels[0]
    assert holes == 1
    assert package.t_min == whole_package.t_min
    gaps = [i for i, w in enumerate(package.power_w) if math.isnan(w)]
    assert len(gaps) == 4  # both intervals beside the hole, two points each
    assert not any(math.isnan(w) for w in whole_package.power_w)
    # every other interval is drawn as in the whole log: the hole shows as a gap and nowhere else
    kept = [w for i, w in enumerate(package.power_w) if i not in gaps]
    assert kept == [w for i, w in enumerate(whole_package.power_w) if i not in gaps]
    assert not any(math.isnan(w) for w in gappy.channels[1].power_w)  # the other channel is whole
    assert sum(math.isnan(g) for g in gappy.co2e_g) == 1
    assert gappy.co2e_g[-1] == pytest.approx(whole.co2e_g[-1])  # counted once the figure returns


def test_an_unfinished_run_uses_each_windows_intensity(run_log: Path, tmp_path: Path) -> None:
    intensities = iter([100.0, 200.0, 400.0])
    expected_g = 0.0

    def cut_with_a_live_intensity(record: dict[str, Any]) -> dict[str, Any] | None:
        nonlocal expected_g
        if record["type"] == "window":
            record["intensity"]["g_per_kwh"] = next(intensities)
            expected_g += record["energy_kwh"] * record["intensity"]["g_per_kwh"]
        return None if record["type"] == "summary" else record

    cut = plot_data(
        read_run_log(rewrite(run_log, tmp_path / "cut.jsonl", cut_with_a_live_intensity))
    )
    assert "unfinished (no summary)" in cut.title
    assert cut.co2e_g[-1] == pytest.approx(expected_g)
    assert f"{format_mass(expected_g / 1000)} CO2e" in cut.title


def test_a_read_just_after_another_is_merged_but_a_missing_one_still_breaks_the_line(
    tmp_path: Path,
) -> None:
    def power(t_s: list[float], joules: list[float | None]) -> list[float]:
        header = {"type": "header", "schema": 1, "run_id": "r", "started_unix": 1000.0}
        samples = {
            "type": "samples",
            "channels": ["gpu:0"],
            "t_s": t_s,
            "joules": [[j] for j in joules],
        }
        path = tmp_path / "handmade.jsonl"
        path.write_text(f"{json.dumps(header)}\n{json.dumps(samples)}\n")
        return plot_data(read_run_log(path)).channels[0].power_w

    # a window's end read 1 ms before the next poll: no 0 W spike between them
    assert power([0.0, 1.0, 1.001, 2.0], [0.0, 10.0, 10.0, 20.0]) == [10.0] * 4
    gap = power([0.0, 1.0, 1.001, 2.0], [0.0, 10.0, None, 20.0])
    assert gap[:2] == [10.0, 10.0] and all(math.isnan(w) for w in gap[2:])


def test_a_log_without_samples_has_nothing_to_plot(run_log: Path, tmp_path: Path) -> None:
    def drop_samples(record: dict[str, Any]) -> dict[str, Any] | None:
        return None if record["type"] == "samples" else record

    bare = rewrite(run_log, tmp_path / "bare.jsonl", drop_samples)
    with pytest.raises(NothingToPlot, match="no power samples"):
        plot_data(read_run_log(bare))
    result = cli("plot", str(bare), "-o", str(tmp_path / "bare.png"))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "no power samples" in result.stderr
    assert not (tmp_path / "bare.png").exists()


def test_cli_writes_a_png(run_log: Path, tmp_path: Path) -> None:
    from PIL import Image  # comes with matplotlib, the plot extra the tests install

    out = tmp_path / "run.png"
    result = cli("plot", str(run_log), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"wrote {out}"
    assert out.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(out) as image:
        image.verify()
    with Image.open(out) as image:
        assert image.size == (900, 600)


def test_cli_errors_are_one_line_with_status_2(run_log: Path, tmp_path: Path) -> None:
    missing = cli("plot", str(tmp_path / "nope.jsonl"), "-o", str(tmp_path / "x.png"))
    assert missing.returncode == 2
    assert missing.stderr.count("\n") == 1 and "nope.jsonl" in missing.stderr
    no_output = cli("plot", str(run_log))
    assert no_output.returncode == 2 and "-o/--output" in no_output.stderr
    without_matplotlib = (
        "import sys; sys.modules['matplotlib'] = None; from carbon_callbacks.cli import main; "
        "raise SystemExit(main(sys.argv[1:]))"
    )
    blocked = cli("plot", str(run_log), "-o", str(tmp_path / "y.png"), code=without_matplotlib)
    assert blocked.returncode == 2
    assert blocked.stderr == (
        'carbon-callbacks: error: plotting needs matplotlib: pip install "carbon-callbacks[plot]" '
        '(from a clone of the repository: pip install ".[plot]")\n'
    )


def test_a_malformed_log_gives_what_it_can(tmp_path: Path) -> None:
    def read(*records: dict[str, Any]) -> PlotData:
        path = tmp_path / "odd.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
        return plot_data(read_run_log(path))

    with pytest.raises(NothingToPlot):
        read({"type": "header", "channels": "gpu"}, {"type": "samples", "channels": 3, "t_s": 1})
    data = read(
        {"type": "header", "channels": ["gpu:0", 7], "started_unix": "soon"},
        {"type": "samples", "channels": ["a"], "t_s": [0, "1", 2], "joules": [[0], 5, [1, 2]]},
        {"type": "samples", "channels": ["a"], "t_s": [3, 4], "joules": [[True], [None]]},
        {"type": "window", "name": "epoch", "start_unix": None, "intensity": [1]},
        {"type": "prediction", "t_unix": 1, "co2e_kg": [1, "2", 3]},
        {"type": "summary", "status": 3, "intensity": {"g_per_kwh": "high"}},
    )
    (series,) = data.channels
    assert series.id == "a" and series.power_w[:2] == [0.5, 0.5]
    assert all(math.isnan(w) for w in series.power_w[2:])  # true is not a number, nor 0
    assert data.co2e_g == [] and data.predictions == [] and data.epochs_min == []
    assert data.notes == [
        "no start time in the log: epochs and forecasts not shown",
        "no carbon intensity in the log: CO2e not shown",
    ]


def test_names_from_the_log_are_drawn_as_written_not_as_mathtext(
    run_log: Path, tmp_path: Path
) -> None:
    odd = "$\\frac{1}{ costs $5"  # unbalanced mathtext: matplotlib would refuse to parse it

    def rename(record: dict[str, Any]) -> dict[str, Any]:
        if record["type"] == "header":
            record["run_name"] = odd
        if record["type"] == "samples":
            record["channels"] = [f"{channel} {odd}" for channel in record["channels"]]
        return record

    data = plot_data(read_run_log(rewrite(run_log, tmp_path / "odd.jsonl", rename)))
    assert data.title.startswith(odd)
    assert all(series.id.endswith(odd) for series in data.channels)
    save_figure(data, tmp_path / "odd.png")
    assert (tmp_path / "odd.png").read_bytes()[:8] == PNG_SIGNATURE


def test_samples_written_before_any_channel_are_skipped(run_log: Path, tmp_path: Path) -> None:
    first = True

    def empty_first(record: dict[str, Any]) -> dict[str, Any]:
        nonlocal first
        if record["type"] == "samples" and first:
            first = False
            return {**record, "channels": [], "joules": [[] for _ in record["t_s"]]}
        return record

    original = plot_data(read_run_log(run_log))
    data = plot_data(read_run_log(rewrite(run_log, tmp_path / "empty.jsonl", empty_first)))
    assert [s.id for s in data.channels] == [s.id for s in original.channels]
    assert 0 < len(data.channels[0].t_min) <= len(original.channels[0].t_min)


COMMITTED = Path(__file__).parents[1] / "data" / "runs"


def test_the_title_names_the_run_and_its_date_with_readable_totals(tmp_path: Path) -> None:
    log = read_run_log(COMMITTED / "predicted.jsonl")
    assert plot_data(log).title == (
        "predicted (2026-11-26 12:18 UTC): completed, 88.4 mWh, 26.5 mg CO2e"
    )

    def with_framework(record: dict[str, Any]) -> dict[str, Any]:
        if record["type"] == "header":
            record["context"] = {"framework": "keras"}
        return record

    named = rewrite(COMMITTED / "predicted.jsonl", tmp_path / "keras.jsonl", with_framework)
    assert plot_data(read_run_log(named)).title.startswith(
        "predicted (keras, 2026-11-26 12:18 UTC): completed"
    )


def test_a_short_run_is_drawn_in_seconds_and_the_forecast_band_has_a_legend_entry() -> None:
    data = plot_data(read_run_log(COMMITTED / "predicted.jsonl"))
    assert data.seconds_axis  # a run of about a second
    _power, co2e = draw_figure(data).axes
    assert co2e.get_xlabel() == "seconds since start"
    assert "latest forecast's interval" in co2e.get_legend_handles_labels()[1]
    last_t_s = data.co2e_t_min[-1] * 60
    assert max(line.get_xdata()[-1] for line in co2e.get_lines()) >= last_t_s * 0.999


def test_a_long_run_is_drawn_in_minutes() -> None:
    data = plot_data(read_run_log(COMMITTED / "predicted.jsonl"))
    long = PlotData(**{**data.__dict__, "seconds_axis": False})
    assert draw_figure(long).axes[1].get_xlabel() == "minutes since start"
