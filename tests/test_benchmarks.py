"""The benchmark harness runs (so it cannot rot); figures are not judged here, only their shape."""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_core  # noqa: E402


def test_core_benchmarks_produce_figures(tmp_path: Path) -> None:
    assert bench_core.median_ns_per_call(lambda: None, calls=100, rounds=3) > 0
    share = bench_core.bench_sampler_share(0.3, bench_core.fake_powercap_tree(tmp_path))
    expected = ["cpu:package-0", "dram:package-0", "cpu:package-1", "dram:package-1"]
    assert share["channels"] == expected
    assert 0 <= share["share_of_one_core"] < 1
    imported = bench_core.bench_import(runs=1)
    assert imported["heavy_modules_imported"] == []
    first = bench_core.bench_first_sample(runs=1)
    assert 0 < first["from_tracker_s"] <= first["with_import_s"]


def test_prediction_benchmark_is_deterministic_and_complete() -> None:
    import bench_prediction

    results = bench_prediction.run(steps=200, epochs=10, seeds=2)
    assert results == bench_prediction.run(steps=200, epochs=10, seeds=2)
    assert list(results) == list(bench_prediction.WORKLOADS)
    for result in results.values():
        assert len(result["raw"]) == 2 * len(bench_prediction.FRACTIONS)
        assert [cell["epochs_seen"] for cell in result["summary"].values()] == [1, 2, 5]
        assert all(cell["forecast_made"] == 2 for cell in result["summary"].values())
    rows = bench_prediction.table(results).splitlines()
    assert len(rows) == 2 + len(bench_prediction.WORKLOADS) * len(bench_prediction.FRACTIONS)


def test_long_run_benchmark_produces_figures() -> None:
    import bench_long_run

    results = bench_long_run.run(
        steps=2000, block=500, log_every=50, week_s=7200, week_interval_s=10.0, keras=False
    )
    series = results["per_step"]
    assert list(series) == [
        "empty_call",
        "Tracker.step",
        "TrainingMonitor.step",
        "TrainingMonitor, logging",
    ]
    for figures in series.values():
        assert len(figures["ns_per_step_blocks"]) == 4
        assert figures["max_over_min"] >= 1
    assert results["week"]["samples"] == 720
    assert results["week"]["history_len"] == 721  # the first sample, then one per interval
    assert results["week_traced"]["tracemalloc_peak_mib"] > 0
    assert results["million_steps_traced"]["tracemalloc_peak_mib"] > 0
    assert bench_long_run.table(results).count("\n| ") == 1 + len(series)


def test_the_epoch_mean_method_counts_the_warmup() -> None:
    from bench_prediction import epoch_mean_forecast

    assert epoch_mean_forecast([30.0, 10.0], 10) == pytest.approx(200.0)
    assert epoch_mean_forecast([], 10) is None


def test_page_load_benchmark_reports_each_load_in_order(tmp_path: Path) -> None:
    from tests.browser import MISSING_MESSAGE, find_chromium

    if find_chromium() is None:
        pytest.skip(MISSING_MESSAGE)
    import bench_html_load

    from carbon_callbacks.reporting.html.page import write_html_report

    page = write_html_report(ROOT / "tests" / "data" / "runs" / "sweep", tmp_path / "page.html")
    figures = bench_html_load.measure(page, repeat=2)
    assert len(figures["loads"]) == 2 and figures["repeat"] == 2
    for load in figures["loads"]:
        assert 0 <= load["dom_content_loaded_s"] <= load["load_s"] <= load["drawn_s"]
    assert figures["load_median_s"] <= figures["load_max_s"]
    assert figures["drawn_median_s"] <= figures["drawn_max_s"]
    # headless Chromium may report no first paint at all (seen in CI): unknown, not an error
    paint = [
        load["first_paint_s"] for load in figures["loads"] if load["first_paint_s"] is not None
    ]
    assert figures["first_paint_median_s"] == (
        round(statistics.median(paint), 3) if paint else None
    )
