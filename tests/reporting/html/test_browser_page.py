"""``report --html`` in a real browser: the page the CLI writes, opened from disk in Chromium.

The folder holds a distributed run (two ranks), a run with forecasts, a run resumed from another's
checkpoint, a sweep, an hour-long run (energies from Wh to hundreds of Wh, so text order and
value order differ) and a run named ``<script>alert(1)</script>``. The page is written once per
module by ``carbon-callbacks report --html`` in a child process, and opened afresh by each test
in the module's one browser (``browser`` fixture). What a parse of the HTML cannot show is
checked here: the page's own script runs without error, nothing is fetched, the charts are laid
out at a size, a click sorts the table, a hostile name is text, and what the page looks like.
"""

from __future__ import annotations

import math
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait

from carbon_callbacks.reporting.html.page import INLINE_RUNS, write_html_report
from tests.browser import PAGE_LOAD_TIMEOUT_S, VIEWPORT_SIZE, HeadlessChromium
from tests.reporting.html.synthetic import SOURCE, resumed_copy, rewritten, stretched_log

ROOT = Path(__file__).resolve().parents[3]
RUNS = ROOT / "tests" / "data" / "runs"
HOSTILE = "<script>alert(1)</script>"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
COLUMNS = ("name", "status", "start", "duration", "energy", "CO2e", "GPUs", "method", "location")
ENERGY = COLUMNS.index("energy")
NAME = COLUMNS.index("name")
RUN_COUNT = 9
"""single, predicted, ddp (two ranks, one run), three of the sweep, resumed, long, hostile."""


@pytest.fixture(scope="module")
def page_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The page of the folder described above, written by the CLI in a child process."""
    folder = tmp_path_factory.mktemp("runs")
    for name in ("single.jsonl", "predicted.jsonl", "ddp", "sweep"):
        source = RUNS / name
        if source.is_dir():
            shutil.copytree(source, folder / name)
        else:
            shutil.copy(source, folder / name)
    resumed_copy(SOURCE, folder / "resumed.jsonl", run_id="20261126T131759Z-aaaaaa",
                 name="single-resumed", shift_s=3600.0)  # fmt: skip
    stretched_log(folder / "long.jsonl", run_id="20261127T000000Z-bbbbbb", name="long",
                  start_unix=1795700000.0)  # fmt: skip
    rewritten(SOURCE, folder / "hostile.jsonl", run_name=HOSTILE,
              run_id="20261128T000000Z-cccccc")  # fmt: skip
    output = tmp_path_factory.mktemp("page") / "report.html"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBON_CALLBACKS_")}
    result = subprocess.run(
        [sys.executable, "-m", "carbon_callbacks", "report", str(folder), "--html", str(output)],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return output


@pytest.fixture
def opened(browser: HeadlessChromium, page_path: Path) -> HeadlessChromium:
    """The browser with the page freshly opened (no earlier click's order or log carried over)."""
    browser.open(page_path)
    return browser


def sort_keys(browser: HeadlessChromium, column: int) -> list[str]:
    """The ``data-sort`` values of one column of the table of runs, top row first."""
    cells = browser.driver.find_elements(
        By.CSS_SELECTOR, f"#runs tbody tr > :nth-child({column + 1})"
    )
    return [str(cell.get_attribute("data-sort")) for cell in cells]


def aria_sort(browser: HeadlessChromium) -> list[str]:
    heads = browser.driver.find_elements(By.CSS_SELECTOR, "#runs thead th")
    return [str(head.get_attribute("aria-sort")) for head in heads]


def click_header(browser: HeadlessChromium, column: int) -> None:
    browser.click(f'#runs th button[data-column="{column}"]')


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_the_page_loads_without_an_error_or_a_request(opened: HeadlessChromium) -> None:
    assert opened.console_errors() == []
    assert opened.network_requests() == []
    assert opened.dialog_text() is None
    assert math.isfinite(opened.load_time_s())
    assert opened.texts("#runs thead th") == list(COLUMNS)
    assert len(opened.texts("#runs tbody tr")) == RUN_COUNT


def test_every_chart_is_drawn_at_a_size(opened: HeadlessChromium) -> None:
    charts = opened.rendered_sizes("section.run svg.chart")
    assert len(charts) == 2 * RUN_COUNT  # power and CO2e of every run: all are among the costliest
    assert all(width > 200 and height > 100 for width, height in charts), charts
    lines = opened.rendered_sizes("section.run svg.chart path.series[data-series]")
    assert len(lines) >= 2 * RUN_COUNT
    # a flat line is a zero-height box, never a zero-width one: every series spans its run's time
    assert all(width > 50 for width, _ in lines), lines
    assert any(height > 20 for _, height in lines)
    bars = opened.rendered_sizes("#regions svg rect")
    assert len(bars) == 4 and all(width > 0 and height > 0 for width, height in bars), bars
    assert opened.rendered_sizes("#regions svg")[0][0] > 200


def test_clicking_a_header_sorts_by_value_and_again_reverses(opened: HeadlessChromium) -> None:
    before = sort_keys(opened, ENERGY)
    values = [float(key) for key in before if key]
    assert len(values) == RUN_COUNT
    # the test means something only if text order and value order differ
    assert sorted(values) != sorted(values, key=repr)

    click_header(opened, ENERGY)
    ascending = [float(key) for key in sort_keys(opened, ENERGY)]
    assert ascending == sorted(values)
    assert aria_sort(opened)[ENERGY] == "ascending"
    assert aria_sort(opened).count("none") == len(COLUMNS) - 1
    shown = opened.column_texts("#runs", ENERGY)
    assert "kWh" in shown[-1] or "Wh" in shown[-1]

    click_header(opened, ENERGY)
    descending = [float(key) for key in sort_keys(opened, ENERGY)]
    assert descending == sorted(values, reverse=True)
    assert aria_sort(opened)[ENERGY] == "descending"
    assert opened.column_texts("#runs", ENERGY) == shown[::-1]

    click_header(opened, NAME)
    names = opened.column_texts("#runs", NAME)
    assert names == sorted(names, key=str.lower)
    assert aria_sort(opened)[ENERGY] == "none" and aria_sort(opened)[NAME] == "ascending"
    assert opened.console_errors() == []
    assert opened.network_requests() == []


def test_a_run_named_script_shows_as_text_and_opens_no_dialog(opened: HeadlessChromium) -> None:
    assert opened.dialog_text() is None
    assert HOSTILE in opened.column_texts("#runs", NAME)
    headings = opened.texts("section.run h3")
    assert any(heading.startswith(HOSTILE) for heading in headings), headings
    scripts = opened.driver.find_elements(By.TAG_NAME, "script")
    assert len(scripts) == 1  # the page's own; the name made no element
    assert opened.console_errors() == []


def click_copy(browser: HeadlessChromium, key: str) -> str:
    """Click the copy button of ``export-<key>`` and return what the page says it did.

    The clipboard answers asynchronously: the note is waited for, not assumed; a script error
    ends the wait at once (the note would never come).
    """
    selector = f'button.copy[data-copy="export-{key}"]'
    browser.click(selector)
    note = browser.driver.find_element(By.CSS_SELECTOR, f"{selector} + *")
    WebDriverWait(browser.driver, PAGE_LOAD_TIMEOUT_S).until(
        lambda _: note.text or browser.console_errors()
    )
    assert browser.console_errors() == []
    return str(note.text)


def test_the_copy_buttons_do_not_throw_and_say_what_they_did(opened: HeadlessChromium) -> None:
    for key in ("paper", "model-card"):
        said = click_copy(opened, key)
        # copied, or (no clipboard access) the text left selected for the reader to copy
        assert said == "copied" or said.startswith("selected:"), said
        if said != "copied":
            selected = opened.driver.execute_script("return window.getSelection().toString();")
            area = opened.driver.find_element(By.ID, f"export-{key}")
            assert selected == area.get_attribute("value") != ""
    assert opened.console_errors() == []
    assert opened.network_requests() == []


def test_a_full_page_screenshot_is_written(opened: HeadlessChromium, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    size = opened.screenshot(shot, full_page=True)
    width, height = png_size(shot)
    assert width == VIEWPORT_SIZE[0]
    assert height > 5 * VIEWPORT_SIZE[1]  # nine runs with two charts each, the tables, the exports
    assert size == shot.stat().st_size > 200_000


@pytest.fixture(scope="module")
def folded_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A page of ``INLINE_RUNS + 2`` runs: the two cheapest have their charts folded away."""
    folder = tmp_path_factory.mktemp("many")
    for index in range(INLINE_RUNS + 2):
        rewritten(SOURCE, folder / f"r{index:02d}.jsonl", run_name=f"r{index:02d}",
                  run_id=f"20261126T1218{index:02d}Z-dddddd")  # fmt: skip
    return write_html_report(folder, tmp_path_factory.mktemp("folded") / "report.html")


def test_folded_charts_are_drawn_when_opened(browser: HeadlessChromium, folded_page: Path) -> None:
    browser.open(folded_page)
    folded = "section.run details.charts"
    assert len(browser.texts(folded)) == 2
    assert len(browser.rendered_sizes("section.run svg.chart")) == 2 * INLINE_RUNS
    assert browser.rendered_sizes(f"{folded} svg") == []  # not built until opened

    first = browser.driver.find_elements(By.CSS_SELECTOR, folded)[0]
    section = str(first.find_element(By.XPATH, "..").get_attribute("id"))
    browser.click(f"#{section} details.charts > summary")
    # the details' toggle event, which builds the charts, is queued after the click: wait for it
    WebDriverWait(browser.driver, PAGE_LOAD_TIMEOUT_S).until(
        lambda _: browser.rendered_sizes(f"#{section} svg.chart") or browser.console_errors()
    )
    assert browser.console_errors() == []
    charts = browser.rendered_sizes(f"#{section} svg.chart")
    assert len(charts) == 2 and all(w > 200 and h > 100 for w, h in charts), charts
    lines = browser.rendered_sizes(f"#{section} svg.chart path.series[data-series]")
    assert lines and all(width > 50 for width, _ in lines), lines
    assert len(browser.texts(f"#{section} details.numbers table")) == 2
    assert len(browser.rendered_sizes(f"{folded} svg")) == 2  # the other one still folded

    # closed and opened again: built once. The marker on a chart survives only if it is not
    # rebuilt; the script returns once the toggle event (after the page's own handler) has run.
    browser.driver.execute_async_script(
        "const details = document.querySelector(arguments[0]), done = arguments[1];"
        " details.querySelector('svg.chart').dataset.seen = '1';"
        " details.addEventListener('toggle', () => done(null), {once: true});"
        " details.querySelector('summary').click(); details.querySelector('summary').click();",
        f"#{section} details.charts",
    )
    assert len(browser.rendered_sizes(f"#{section} svg.chart")) == 2
    assert browser.texts(f"#{section} svg.chart[data-seen]") != []
    assert browser.console_errors() == []
    assert browser.network_requests() == []
