"""Benchmarks of the measurement core's costs: step, sampler CPU share, import, start-up.

Run from the repository root: ``python benchmarks/bench_core.py [--json PATH]``. It prints a
Markdown table and, with ``--json``, writes the raw figures. Results belong in
benchmarks/RESULTS.md together with the command and the machine; they are not timed tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from carbon_callbacks import Tracker  # noqa: E402

HEAVY = ("requests", "psutil", "pynvml", "numpy", "torch")


def median_ns_per_call(call: Callable[[], None], calls: int = 200_000, rounds: int = 15) -> float:
    """Median nanoseconds per ``call()`` over ``rounds`` timed loops of ``calls`` calls."""
    per_call = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        for _ in range(calls):
            call()
        per_call.append((time.perf_counter_ns() - start) / calls)
    return statistics.median(per_call)


def bench_step() -> float:
    """Median nanoseconds per ``Tracker.step()`` call on a running tracker."""
    tracker = Tracker(write_log=False).start()
    try:
        return median_ns_per_call(tracker.step)
    finally:
        tracker.stop()


def bench_loop_overhead() -> float:
    """Median nanoseconds of the same loop calling an empty method, to separate loop cost."""

    class Empty:
        def step(self) -> None:
            pass

    return median_ns_per_call(Empty().step)


def bench_sampler_share(seconds: float, powercap_root: str | None) -> dict[str, Any]:
    """CPU time of the sampler thread over ``seconds`` of wall time, at the default interval.

    With a fake powercap tree, a helper thread advances its counters as hardware would; only the
    sampler thread's own CPU clock is read, so that helper does not count.
    """
    stop = threading.Event()
    if powercap_root is not None:
        threading.Thread(target=_advance_counters, args=(Path(powercap_root), stop)).start()
    tracker = Tracker(write_log=False, powercap_root=powercap_root).start()
    thread = next(t for t in threading.enumerate() if t.name == "carbon-callbacks-sampler")
    assert thread.ident is not None
    clock = time.pthread_getcpuclockid(thread.ident)
    cpu_start, wall_start = time.clock_gettime(clock), time.monotonic()
    time.sleep(seconds)
    cpu_used, wall = time.clock_gettime(clock) - cpu_start, time.monotonic() - wall_start
    channels = [c.id for c in tracker.channels]
    tracker.stop()
    stop.set()
    return {"cpu_s": cpu_used, "wall_s": wall, "share_of_one_core": cpu_used / wall,
            "channels": channels}  # fmt: skip


def _advance_counters(root: Path, stop: threading.Event) -> None:
    """Add 5 J to every zone of a fake tree every 50 ms (100 W per zone)."""
    files = sorted(root.glob("*/energy_uj"))
    while not stop.wait(0.05):
        for path in files:  # replace the file whole: sysfs reads are atomic, partial writes are not
            staged = path.with_name("energy_uj.new")
            staged.write_text(f"{int(path.read_text()) + 5_000_000}\n")
            os.replace(staged, path)


def bench_import(runs: int = 15) -> dict[str, Any]:
    """Median cumulative ``-X importtime`` microseconds of ``import carbon_callbacks``."""
    cumulative = []
    loaded: set[str] = set()
    for _ in range(runs):
        result = subprocess.run(
            [sys.executable, "-X", "importtime", "-c",
             "import sys, carbon_callbacks; print(' '.join(sys.modules))"],
            capture_output=True, text=True, cwd=ROOT, check=True,
        )  # fmt: skip
        match = re.search(r"\|\s*(\d+)\s*\|\s*carbon_callbacks\s*$", result.stderr, re.MULTILINE)
        assert match, result.stderr
        cumulative.append(int(match.group(1)))
        loaded |= set(result.stdout.split()) & set(HEAVY)
    return {"median_us": statistics.median(cumulative), "heavy_modules_imported": sorted(loaded)}


FIRST_SAMPLE = """
import time
start = time.perf_counter()
from carbon_callbacks import Tracker
imported = time.perf_counter()
tracker = Tracker(write_log=False).start()
assert tracker.channels
done = time.perf_counter()
tracker.stop()
print(done - imported, done - start)
"""


def bench_first_sample(runs: int = 15, powercap_root: str | None = None) -> dict[str, float]:
    """Median seconds from ``Tracker()`` to the first sample, each in a fresh interpreter.

    ``from_tracker_s`` starts at the ``Tracker(...)`` call and includes importing the meters'
    libraries (psutil, nvidia-ml-py) and opening NVML and RAPL; ``with_import_s`` also includes
    ``from carbon_callbacks import Tracker``: what a user waits for in a brand-new process.
    """
    env = dict(os.environ)
    if powercap_root is not None:
        env["CARBON_CALLBACKS_POWERCAP_ROOT"] = powercap_root
    from_tracker, with_import = [], []
    for _ in range(runs):
        result = subprocess.run(
            [sys.executable, "-c", FIRST_SAMPLE],
            capture_output=True, text=True, cwd=ROOT, env=env, check=True,
        )  # fmt: skip
        after_import, total = (float(value) for value in result.stdout.split())
        from_tracker.append(after_import)
        with_import.append(total)
    return {
        "from_tracker_s": statistics.median(from_tracker),
        "with_import_s": statistics.median(with_import),
    }


def fake_powercap_tree(base: Path) -> str:
    """A two-socket powercap tree (package + dram each), to time RAPL reads of real files."""
    sys.path.insert(0, str(ROOT))
    from tests.meters.fake_powercap import FakePowercap

    tree = FakePowercap(base)
    for socket in range(2):
        tree.add_zone(f"intel-rapl:{socket}", f"package-{socket}", energy_uj=1000)
        tree.add_zone(f"intel-rapl:{socket}:0", "dram", energy_uj=1000)
    return str(tree.class_root)


def main() -> None:
    """Run every benchmark and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument("--sampler-seconds", type=float, default=20.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        rapl_root = fake_powercap_tree(Path(folder))
        results: dict[str, Any] = {
            "machine": {
                "platform": platform.platform(),
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "processor": platform.processor(),
            },
            "step_ns": bench_step(),
            "empty_call_ns": bench_loop_overhead(),
            "sampler_estimate": bench_sampler_share(args.sampler_seconds, None),
            "sampler_rapl_files": bench_sampler_share(args.sampler_seconds, rapl_root),
            "import": bench_import(),
            "first_sample": bench_first_sample(),
            "first_sample_rapl_files": bench_first_sample(powercap_root=rapl_root),
        }
    rows = [
        ("Tracker.step(), median per call", f"{results['step_ns']:.0f} ns",
         f"(an empty method call: {results['empty_call_ns']:.0f} ns)", "< 1 us"),
        ("sampler CPU, CPU-estimate meter",
         f"{results['sampler_estimate']['share_of_one_core']:.3%}", "of one core", "< 1%"),
        ("sampler CPU, RAPL files (2 sockets)",
         f"{results['sampler_rapl_files']['share_of_one_core']:.3%}", "of one core", "< 1%"),
        ("import carbon_callbacks, cumulative", f"{results['import']['median_us'] / 1000:.1f} ms",
         f"heavy modules: {results['import']['heavy_modules_imported'] or 'none'}", "< 30 ms"),
        ("Tracker() to first sample, fresh process, CPU estimate",
         f"{results['first_sample']['from_tracker_s'] * 1000:.1f} ms",
         f"with the import: {results['first_sample']['with_import_s'] * 1000:.1f} ms", "< 50 ms"),
        ("Tracker() to first sample, fresh process, RAPL files",
         f"{results['first_sample_rapl_files']['from_tracker_s'] * 1000:.1f} ms",
         f"with the import: {results['first_sample_rapl_files']['with_import_s'] * 1000:.1f} ms",
         "< 50 ms"),
    ]  # fmt: skip
    print("| what | result | note | target |\n| --- | --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
