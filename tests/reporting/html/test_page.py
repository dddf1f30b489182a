"""``report --html``: the page's structure, read back with ``html.parser``, from real run logs.

The folder holds the logs the Tracker wrote under ``tests/data/runs`` (a sweep, a distributed run
of two ranks, a run with forecasts, a cut-off run), a run resumed from ``single``'s checkpoint,
a run stretched to an hour (thousands of samples), and a hostile log whose strings are markup.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from carbon_callbacks.reporting.html.charts import run_charts
from carbon_callbacks.reporting.html.page import (
    CSP,
    FULL_POINTS,
    INLINE_RUNS,
    html_report,
    write_html_report,
)
from carbon_callbacks.reporting.html.run_sections import folded
from carbon_callbacks.reporting.plot import plot_data
from carbon_callbacks.reporting.report import build_report, read_logs, report_from_logs
from carbon_callbacks.runlog.reader import read_run_log
from tests.reporting.html.page_parser import Element, parse, parse_file
from tests.reporting.html.synthetic import SOURCE, resumed_copy, rewritten, stretched_log

ROOT = Path(__file__).resolve().parents[3]
RUNS = ROOT / "tests" / "data" / "runs"
HOSTILE = "<script>alert(1)</script>"
HOSTILE_CHANNEL = '"><svg onload=alert(2)>'


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture logs, a resumed run, an hour-long run and a hostile log, in one folder."""
    root = tmp_path_factory.mktemp("runs")
    for name in ("single.jsonl", "predicted.jsonl", "truncated.jsonl", "ddp", "sweep"):
        source = RUNS / name
        if source.is_dir():
            shutil.copytree(source, root / name)
        else:
            shutil.copy(source, root / name)
    resumed_copy(SOURCE, root / "resumed.jsonl", run_id="20261126T131759Z-aaaaaa",
                 name="single-resumed", shift_s=3600.0)  # fmt: skip
    stretched_log(root / "long.jsonl", run_id="20261127T000000Z-bbbbbb", name="long",
                  start_unix=1795700000.0)  # fmt: skip
    hostile = rewritten(SOURCE, root / "hostile.jsonl", run_name=HOSTILE,
                        run_id="20261128T000000Z-cccccc")  # fmt: skip
    text = hostile.read_text().replace('"gpu:0"', json.dumps(HOSTILE_CHANNEL))
    hostile.write_text(text.replace("Our World in Data", "<b>Our World</b> in Data"))
    return root


@pytest.fixture(scope="module")
def page(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Element:
    output = tmp_path_factory.mktemp("page") / "report.html"
    assert write_html_report(folder, output) == output
    return parse_file(output)


def test_the_sections_of_the_contract_are_there(page: Element, folder: Path) -> None:
    report = build_report(folder)
    for section_id in ("totals", "runs-table", "trainings", "regions", "exports"):
        page.find("section", id=section_id)
    runs = page.find_all("section", class_="run")
    assert [run.attrs["id"] for run in runs] == [f"run-{i}" for i in range(1, len(report.runs) + 1)]
    assert [run.find("h3").texts[0].strip() for run in runs] == [run.name for run in report.runs]
    totals = page.find("section", id="totals").text()
    assert f"{report.totals.runs}" in totals and "measured 100%" in totals


def test_the_table_has_a_row_per_run_sorted_by_value_not_text(page: Element, folder: Path) -> None:
    report = build_report(folder)
    table = page.find("table", id="runs")
    heads = table.find("thead").find_all("th")
    assert [h.find("button").text() for h in heads] == [
        "name", "status", "start", "duration", "energy", "CO2e", "GPUs", "method", "location",
    ]  # fmt: skip
    assert all(h.attrs["aria-sort"] == "none" for h in heads)
    rows = table.find("tbody").find_all("tr")
    assert len(rows) == len(report.runs) == 10
    for row, run in zip(rows, report.runs, strict=True):
        cells = row.find_all("td")
        assert cells[0].find("a").attrs["href"] == f"#{row.attrs['id'].removeprefix('row-')}"
        m = run.measurement
        assert m is not None
        assert float(cells[3].attrs["data-sort"]) == m.duration_s
        assert float(cells[4].attrs["data-sort"]) == m.energy_kwh
        assert float(cells[5].attrs["data-sort"]) == m.co2e_kg
        assert cells[6].attrs["data-sort"] == repr(float(sum(
            c.channel.kind == "gpu" for c in m.channels)))  # fmt: skip
    ddp = next(r for r, run in zip(rows, report.runs, strict=True) if run.world_size == 2)
    assert ddp.find_all("td")[6].text() == "2"  # both ranks' GPUs, combined


def test_every_chart_is_an_accessible_svg_with_drawn_paths(page: Element) -> None:
    charts = page.find_all("svg")
    assert len(charts) >= 2 * 10 + 1
    for svg in charts:
        assert svg.attrs["role"] == "img"
        assert re.fullmatch(r"0 0 \d+ \d+", svg.attrs["viewbox"])  # html.parser folds names
        assert svg.find("title").text() and svg.find("desc").text()
    for run in page.find_all("section", class_="run"):
        series = [p for p in run.find_all("path", class_="series") if "data-series" in p.attrs]
        assert series and all(re.match(r"M[\d.]+ [\d.]+L", p.attrs["d"]) for p in series)
        assert run.find("details", class_="numbers").find_all("table")
    dashes = {p.attrs.get("stroke-dasharray") for p in page.find_all("path", class_="series")}
    assert len(dashes) >= 3  # channels differ by line style, not by colour alone


def test_forecasts_are_drawn_with_their_intervals_beside_the_outcome(
    page: Element, folder: Path
) -> None:
    report = build_report(folder)
    index = next(i for i, run in enumerate(report.runs) if run.name == "predicted")
    section = page.find("section", id=f"run-{index + 1}")
    log = read_run_log(folder / "predicted.jsonl")
    assert len(section.find_all("circle", class_="forecast")) == len(log.predictions) + 1  # legend
    assert len(section.find_all("svg", class_="chart")[0].find_all("path", class_="mark")) >= 3
    table = section.find("table", class_="forecasts")
    assert len(table.find("tbody").find_all("tr")) == len(report.runs[index].predictions)
    assert "interval" in table.text()


def test_distributed_ranks_are_combined_and_resumed_runs_chained(
    page: Element, folder: Path
) -> None:
    logs = [read_run_log(folder / "ddp" / f"rank{r}.jsonl") for r in (0, 1)]
    charts = run_charts(logs, "ddp", FULL_POINTS)
    assert charts is not None
    labels = [figures.label for figures in charts.channels]
    assert any(label.startswith("rank 0: gpu:0") for label in labels)
    assert any(label.startswith("rank 1: gpu:1") for label in labels)
    totals = [plot_data(log).co2e_g[-1] for log in logs]
    assert charts.co2e_rows[-1][1] == pytest.approx(sum(totals))
    training = page.find("section", id="trainings").find("section", class_="training")
    links = [a.attrs["href"] for a in training.find("ol").find_all("a")]
    report = build_report(folder)
    names = {f"#run-{i + 1}": run.name for i, run in enumerate(report.runs)}
    assert [names[link] for link in links] == ["single", "single-resumed"]


def test_a_hostile_log_stays_text_everywhere(page: Element, folder: Path) -> None:
    scripts = page.find_all("script")
    assert len(scripts) == 1 and "getElementById('runs')" in scripts[0].text()
    assert not scripts[0].attrs
    assert page.find_all("b") == []
    assert [svg for svg in page.find_all("svg") if "onload" in svg.attrs] == []
    assert HOSTILE in page.find("table", id="runs").text()
    run = next(s for s in page.find_all("section", class_="run") if HOSTILE in s.find("h3").text())
    assert any(HOSTILE in title.text() for title in run.find_all("title"))
    assert any(HOSTILE_CHANNEL in text.text() for text in run.find_all("text"))
    assert "<b>Our World</b> in Data" in page.find("section", id="totals").text()


def test_the_page_asks_for_nothing_outside_itself(page: Element) -> None:
    metas = page.find_all("meta", http_equiv="Content-Security-Policy")
    assert len(metas) == 1 and metas[0].attrs["content"] == CSP
    for element in page.find_all("*"):
        for name in ("src", "href", "action", "xlink:href", "srcset"):
            value = element.attrs.get(name, "")
            assert not re.match(r"\s*(https?:)?//", value), (element.tag, name, value)
            assert not value or value.startswith("#"), (element.tag, name, value)
    assert page.find_all("link") == [] and page.find_all("img") == []


def test_exports_are_read_only_with_a_copy_button(page: Element, folder: Path) -> None:
    section = page.find("section", id="exports")
    for key in ("paper", "model-card"):
        area = section.find("textarea", id=f"export-{key}")
        assert "readonly" in area.attrs and area.text().strip()
        assert section.find("button", data_copy=f"export-{key}")
    assert "co2_eq_emissions:" in section.find("textarea", id="export-model-card").text()


def test_regions_are_a_bar_chart_with_its_numbers(page: Element) -> None:
    section = page.find("section", id="regions")
    bars = section.find("svg").find_all("rect")
    assert len(bars) == 4 and all(float(bar.attrs["width"]) > 0 for bar in bars)
    assert len(section.find("details").find("tbody").find_all("tr")) == 4


def test_long_series_are_thinned_and_spikes_kept(folder: Path) -> None:
    log = read_run_log(folder / "long.jsonl")
    full = plot_data(log)
    charts = run_charts([log], "long", FULL_POINTS)
    assert charts is not None
    page = parse(charts.power_svg)
    for index, series in enumerate(full.channels):
        path = page.find("path", data_series=str(index))
        points = len(re.findall(r"[ML]", path.attrs["d"]))
        assert points <= FULL_POINTS < len(series.t_min)
    peak = max(w for w in full.channels[0].power_w if not math.isnan(w))
    assert charts.channels[0].peak_w == pytest.approx(peak)
    tops = [float(y) for y in re.findall(r"[ML][\d.]+ ([\d.]+)", page.find_all(
        "path", data_series="0")[0].attrs["d"])]  # fmt: skip
    highest = min(tops)  # SVG's y grows downwards: the spike is the smallest y
    assert highest < sorted(tops)[len(tops) // 2] - 5


def test_only_the_costliest_runs_show_their_charts_at_once(tmp_path: Path) -> None:
    for index in range(INLINE_RUNS + 3):
        rewritten(SOURCE, tmp_path / f"r{index}.jsonl", run_name=f"r{index}",
                  run_id=f"20261126T1218{index:02d}Z-dddddd")  # fmt: skip
    long = stretched_log(tmp_path / "long.jsonl", run_id="20261127T000000Z-bbbbbb", name="long",
                         start_unix=1795700000.0, hours=0.1)  # fmt: skip
    logs, problems = read_logs(tmp_path)
    text = html_report(report_from_logs(tmp_path, logs, problems), logs)
    page = parse(text)
    runs = page.find_all("section", class_="run")
    collapsed = [run for run in runs if run.find_all("details", class_="charts")]
    assert len(collapsed) == 4 and len(runs) == INLINE_RUNS + 4
    # folded: the charts are a comment the page's script builds when opened, not elements
    assert all(run.find_all("svg") == [] for run in collapsed)
    held = re.findall(r'<details class="charts"><summary>Charts</summary>'
                      r'<div class="folded"><!--(.*?)--></div></details>', text, re.S)  # fmt: skip
    assert len(held) == 4
    for markup in held:
        charts = parse(markup)
        assert len(charts.find_all("svg", class_="chart")) == 2
        assert charts.find("details", class_="numbers").find_all("table")
    long_section = next(run for run in runs if run.find("h3").texts[0].strip() == "long")
    assert not long_section.find_all("details", class_="charts")
    assert long.exists()


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBON_CALLBACKS_")}
    return subprocess.run(
        [sys.executable, "-m", "carbon_callbacks", "report", *args],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=120, check=False,
    )  # fmt: skip


def test_markup_that_would_end_a_comment_is_not_folded() -> None:
    assert folded("<figure><svg></svg></figure>") == (
        '<div class="folded"><!--<figure><svg></svg></figure>--></div>'
    )
    for markup in ("<p>a --> b</p>", "<p>a --!> b</p>", "<p><!-- x</p>", "->x", ">x"):
        assert folded(markup) == markup


def test_cli_writes_the_page_atomically_and_says_where(tmp_path: Path) -> None:
    output = tmp_path / "out.html"
    output.write_text("old")
    result = cli(str(RUNS / "sweep"), "--html", str(output), "--compare", "SE")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"wrote {output}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.html"]  # no temporary left
    page = parse_file(output)
    assert len(page.find("table", id="runs").find("tbody").find_all("tr")) == 3
    assert "Sweden" in page.find("section", id="regions").text()


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--html", "{tmp}"], "--html {tmp} is a folder"),
        (["--html", "{tmp}/missing/out.html"], "--html {tmp}/missing/out.html: the folder"),
        (["--html", "{tmp}/o.html", "--json"], "not allowed with argument"),
        (["--html", "{tmp}/o.html", "--estimate", "e.json"], "--estimate is not shown"),
        (["--html", "{tmp}/o.html", "--compare", "Atlantis"], "Atlantis"),
    ],
)
def test_cli_errors_are_one_line_in_flags(tmp_path: Path, args: list[str], said: str) -> None:
    result = cli(str(RUNS / "sweep"), *(arg.format(tmp=tmp_path) for arg in args))
    assert result.returncode == 2
    assert said.format(tmp=tmp_path) in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "o.html").exists()


def test_nothing_outside_the_folder_is_read(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    rewritten(SOURCE, outside / "secret.jsonl", run_name="secret-run")
    inside = tmp_path / "inside"
    inside.mkdir()
    shutil.copy(SOURCE, inside / "single.jsonl")
    (inside / "link.jsonl").symlink_to(outside / "secret.jsonl")
    (inside / "dir").symlink_to(outside)
    output = tmp_path / "page.html"
    write_html_report(inside, output)
    text = output.read_text()
    assert "secret-run" not in text and "outside" in text
