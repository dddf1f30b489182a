"""The HTML report of a large project: 1,000 one-hour runs, its file size and generation time.

Run from the repository root: ``python benchmarks/bench_html.py [--runs 1000] [--keep DIR]
[--json PATH]``. The logs are made by ``tests/reporting/html/synthetic.py``: a log the Tracker
wrote (``tests/data/runs/single.jsonl``: a GPU, a CPU package and DRAM, two epochs) stretched to
one hour and written again through the real ``RunLogWriter`` (one sample row a second, power with
a slow wave and rare spikes, times and energies scaled), each run with its own id, name and
start an hour after the previous one. Then ``write_html_report`` is timed over the folder (read,
report, charts, page, atomic write) with the peak RSS, and the page's size, and the size of the
sections of the costliest runs against the others, are measured.

``--keep DIR`` keeps the logs and the page (``DIR/report.html``) for the browser's load time,
which ``bench_html_load.py --page DIR/report.html`` measures in headless Chromium. Results
belong in benchmarks/RESULTS.md with the command and the machine; they are not timed tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from carbon_callbacks.reporting.html.page import write_html_report  # noqa: E402
from tests.reporting.html.synthetic import stretched_log  # noqa: E402

START_UNIX = 1_795_000_000.0


def make_logs(folder: Path, runs: int) -> float:
    """Write ``runs`` one-hour logs into ``folder``; the seconds it took."""
    began = time.perf_counter()
    for index in range(runs):
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(START_UNIX + 3600.0 * index))
        stretched_log(
            folder / f"run-{index:04d}.jsonl",
            run_id=f"{stamp}-{index:06x}",
            name=f"sweep-{index:04d}",
            start_unix=START_UNIX + 3600.0 * index,
            seed=index,
        )
    return time.perf_counter() - began


def measure(folder: Path, output: Path) -> dict[str, object]:
    """Generate the page once and measure it."""
    logs_bytes = sum(path.stat().st_size for path in folder.glob("*.jsonl"))
    began = time.perf_counter()
    write_html_report(folder, output)
    seconds = time.perf_counter() - began
    text = output.read_text(encoding="utf-8")
    sections = re.findall(r'<section class="run" id="run-\d+">.*?</section>', text, re.S)
    shown = [s for s in sections if '<details class="charts">' not in s]
    collapsed = [s for s in sections if '<details class="charts">' in s]
    return {
        "runs": len(sections),
        "logs_mb": round(logs_bytes / 1e6, 1),
        "generate_s": round(seconds, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0),
        "page_mb": round(len(text.encode()) / 1e6, 2),
        "svg_elements": text.count("<svg "),
        "shown_section_kb": round(sum(map(len, shown)) / max(len(shown), 1) / 1e3, 1),
        "collapsed_section_kb": round(sum(map(len, collapsed)) / max(len(collapsed), 1) / 1e3, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--keep", type=Path, help="keep the logs and report.html in this folder")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        folder = args.keep or Path(temp)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "logs").mkdir(exist_ok=True)
        logs_s = make_logs(folder / "logs", args.runs)
        measured = measure(folder / "logs", folder / "report.html")
        figures = {"make_logs_s": round(logs_s, 1)} | measured
    figures |= {
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
    }
    print("| " + " | ".join(figures) + " |")
    print("|" + "---|" * len(figures))
    print("| " + " | ".join(str(value) for value in figures.values()) + " |")
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
