"""How long the HTML report of 1,000 one-hour runs takes to load in headless Chromium.

Run from the repository root: ``python benchmarks/bench_html_load.py [--page PATH | --runs 1000]
[--repeat 7] [--json PATH]``. Without ``--page`` the logs and the page are made as
``bench_html.py`` makes them (``--keep DIR`` there keeps a page to pass here). Needs the test
dependencies and the system's Chromium (``apt-get install chromium chromium-driver``).

The page is opened from disk ``--repeat`` times in one headless Chromium (the browser tests'
harness, ``tests/browser.py``: a 1280 x 900 viewport, software rendering), each time after a
blank page. Two figures per load, both from the page's own clock (``performance``), zero at the
start of navigation:

- **load**: the end of the load event (``PerformanceNavigationTiming.loadEventEnd``): the file
  read and parsed, the style applied, the script run, the layout done;
- **drawn**: two animation frames after the load event (a script DevTools adds to every document
  before the page's own, ``Page.addScriptToEvaluateOnNewDocument``, so the page is unchanged):
  the first frame's callbacks run before a paint, the second's after it, so the charts in view
  have been painted.

The first paint (``first-contentful-paint``) is reported too. Results belong in
benchmarks/RESULTS.md with the command and the machine; they are not timed tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_html import make_logs  # noqa: E402  (this folder: the script's own sys.path entry)
from selenium.webdriver.support.wait import WebDriverWait  # noqa: E402

from carbon_callbacks.reporting.html.page import write_html_report  # noqa: E402
from tests.browser import MISSING_MESSAGE, HeadlessChromium, find_chromium  # noqa: E402

DRAWN_PROBE = """
window.addEventListener('load', function () {
  requestAnimationFrame(function () {
    requestAnimationFrame(function () { window.__benchDrawnMs = performance.now(); });
  });
});
"""
"""Added to every document before its own scripts: the time two frames after the load event."""

READ_TIMES = """
const n = performance.getEntriesByType('navigation')[0];
const paint = performance.getEntriesByName('first-contentful-paint')[0];
return [n.startTime, n.domContentLoadedEventEnd, n.loadEventEnd,
        paint ? paint.startTime : null, window.__benchDrawnMs === undefined ? null :
        window.__benchDrawnMs];
"""


def load_times(browser: HeadlessChromium, page: Path) -> dict[str, float | None]:
    """Open ``page`` once; its milestones in seconds from the start of navigation."""
    browser.open(page)
    errors = browser.console_errors()
    if errors:
        raise RuntimeError(f"the page logged errors: {errors}")

    def drawn(_: object) -> bool:
        return browser.driver.execute_script("return window.__benchDrawnMs !== undefined;") is True

    WebDriverWait(browser.driver, 60).until(drawn)
    start, dom, load, paint, frames = browser.driver.execute_script(READ_TIMES)

    def seconds(value: float | None) -> float | None:
        return None if value is None else round((value - start) / 1000, 3)

    return {
        "dom_content_loaded_s": seconds(dom),
        "first_paint_s": seconds(paint),
        "load_s": seconds(load),
        "drawn_s": seconds(frames),
    }


def measure(page: Path, repeat: int) -> dict[str, Any]:
    """Open ``page`` ``repeat`` times in one browser; every load's figures, median and max."""
    paths = find_chromium()
    if paths is None:
        sys.exit(MISSING_MESSAGE)
    browser = HeadlessChromium(*paths)
    try:
        browser.driver.execute_cdp_cmd(
            "Page.addScriptToEvaluateOnNewDocument", {"source": DRAWN_PROBE}
        )
        version = browser.driver.capabilities.get("browserVersion", "?")
        loads = [load_times(browser, page) for _ in range(repeat)]
    finally:
        browser.quit()
    summary: dict[str, Any] = {
        "page_mb": round(page.stat().st_size / 1e6, 2),
        "chromium": version,
        "repeat": repeat,
    }
    for key in ("load_s", "drawn_s", "first_paint_s"):
        # headless Chromium does not always report a first contentful paint: None, never 0
        values = [value for load in loads if (value := load[key]) is not None]
        name = key.removesuffix("_s")
        summary[f"{name}_median_s"] = round(statistics.median(values), 3) if values else None
        summary[f"{name}_max_s"] = max(values) if values else None
    summary["loads"] = loads
    return summary


def main() -> None:
    """Make (or take) the page, measure its loads, print a table row and optionally JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--page", type=Path, help="an HTML report to open (else one is made)")
    parser.add_argument("--runs", type=int, default=1000, help="runs in the page made")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        page = args.page
        if page is None:
            logs = Path(temp) / "logs"
            logs.mkdir()
            make_logs(logs, args.runs)
            page = write_html_report(logs, Path(temp) / "report.html")
        figures = measure(page, args.repeat)
    figures |= {
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
    }
    shown = {key: value for key, value in figures.items() if key != "loads"}
    print("| " + " | ".join(shown) + " |")
    print("|" + "---|" * len(shown))
    print("| " + " | ".join(str(value) for value in shown.values()) + " |")
    for number, load in enumerate(figures["loads"], start=1):
        print(f"load {number}: {load}")
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
