"""Regenerate the README's pictures of the HTML report: ``docs/images/html-report*.png``.

Run from the repository root: ``python scripts/readme_screenshot.py [--out-dir DIR]``
(needs the test dependencies and the system's headless Chromium: ``apt-get install chromium
chromium-driver``). The example runs are the committed logs: the Lightning example
(``docs/images/lightning-example.jsonl``, CPU estimated) and the Tracker's logs under
``tests/data/runs`` (a run on an H100 with RAPL, a run with forecasts, a two-rank distributed run
and a three-run sweep), copied into ``example-runs/`` in a temporary folder. The page is written
by ``carbon-callbacks report example-runs --html report.html`` run there (so the page names the
folder, not a temporary path), opened in the same headless Chromium the browser tests use, and
two pictures are saved: the 1280 x 900 viewport at the top of the page (title, totals, the table
of runs) as ``html-report.png``, and the section of the run with forecasts (its figures, its power
and CO2e charts, the forecasts against the outcome) as ``html-report-run.png``.
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from selenium.webdriver.common.by import By  # noqa: E402

from tests.browser import MISSING_MESSAGE, HeadlessChromium, find_chromium  # noqa: E402

EXAMPLES = (
    ROOT / "docs" / "images" / "lightning-example.jsonl",
    ROOT / "tests" / "data" / "runs" / "single.jsonl",
    ROOT / "tests" / "data" / "runs" / "predicted.jsonl",
    ROOT / "tests" / "data" / "runs" / "ddp",
    ROOT / "tests" / "data" / "runs" / "sweep",
)
OUTPUT_DIR = ROOT / "docs" / "images"
RUN_SHOWN = "predicted"
"""The run whose section is the second picture: a GPU, RAPL, epochs and two forecasts."""


def write_page(folder: Path) -> Path:
    """Copy the example runs into ``folder/example-runs`` and write their page with the CLI."""
    runs = folder / "example-runs"
    runs.mkdir()
    for source in EXAMPLES:
        if source.is_dir():
            shutil.copytree(source, runs / source.name)
        else:
            shutil.copy(source, runs / source.name)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBON_CALLBACKS_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "carbon_callbacks", "report", runs.name, "--html"]
    subprocess.run([*command, "report.html"], cwd=folder, env=env, check=True)
    return folder / "report.html"


def section_screenshot(browser: HeadlessChromium, run_name: str, path: Path) -> None:
    """Write a PNG of the section of the run named ``run_name``, whole, with a margin.

    Taken by DevTools with a clip in page coordinates: an element's WebDriver screenshot stops
    at the viewport, and this section is taller.
    """
    section = next(
        element
        for element in browser.driver.find_elements(By.CSS_SELECTOR, "section.run")
        if element.find_element(By.TAG_NAME, "h3").text.startswith(run_name)
    )
    x, y, width, height = browser.driver.execute_script(
        "const r = arguments[0].getBoundingClientRect();"
        " return [r.left + scrollX, r.top + scrollY, r.width, r.height];",
        section,
    )
    margin = 16
    clip = {
        "x": max(x - margin, 0),
        "y": max(y - margin, 0),
        "width": width + 2 * margin,
        "height": height + 2 * margin,
        "scale": 1,
    }
    result: dict[str, Any] = browser.driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    path.write_bytes(base64.b64decode(result["data"]))


def main() -> None:
    """Write the page of the example runs and save the two pictures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=OUTPUT_DIR, help=f"default: {OUTPUT_DIR}")
    args = parser.parse_args()
    paths = find_chromium()
    if paths is None:
        sys.exit(MISSING_MESSAGE)
    with tempfile.TemporaryDirectory() as temp:
        page = write_page(Path(temp))
        browser = HeadlessChromium(*paths)
        try:
            browser.open(page)
            if errors := browser.console_errors():
                sys.exit(f"the page logged errors: {errors}")
            top = args.out_dir / "html-report.png"
            print(f"wrote {top} ({browser.screenshot(top) / 1000:.0f} kB)")
            run = args.out_dir / "html-report-run.png"
            section_screenshot(browser, RUN_SHOWN, run)
            print(f"wrote {run} ({run.stat().st_size / 1000:.0f} kB)")
        finally:
            browser.quit()


if __name__ == "__main__":
    main()
