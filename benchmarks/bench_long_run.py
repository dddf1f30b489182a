"""Long runs: per-step cost over a million steps; memory over a simulated week and a million steps.

Run from the repository root: ``python benchmarks/bench_long_run.py [--json PATH]``. Three parts:

- Per-step cost in consecutive blocks of 100,000 steps over 1,000,000, with the sampler thread
  running on a fake two-socket powercap tree whose counters a helper thread advances (as in
  ``bench_core.py``): ``Tracker.step()``; ``TrainingMonitor.step()``; the monitor as a Lightning
  callback drives it (``step_metrics()`` every 50 steps, a forecast, an epoch per block, a run
  log); and the Keras callback's ``on_train_batch_end`` called directly (it checks the forecast
  and budget every 50 steps). Flat means the last block costs what the first does.
- A simulated week of the sampler: an injected clock, a scripted meter with two power channels,
  one sample every 0.1 s (6,048,000): wall time per simulated day and RSS before and after
  (psutil), then the same week again under tracemalloc for its peak.
- The monitor's million steps again under tracemalloc, for their peak.

It prints a Markdown table and, with ``--json``, writes every figure. Results belong in
benchmarks/RESULTS.md together with the command and the machine; they are not timed tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_core import _advance_counters, fake_powercap_tree  # noqa: E402

from carbon_callbacks import Tracker  # noqa: E402
from carbon_callbacks.meters.base import Channel, Reading, Unavailable  # noqa: E402
from carbon_callbacks.tracking.sampler import DEFAULT_INTERVAL_S, Sampler  # noqa: E402
from carbon_callbacks.training import TrainingMonitor  # noqa: E402

DAY_S = 24 * 3600
MiB = 1024 * 1024


class TwoGpuMeter:
    """Two power-only channels at a constant 300 W, through the public Meter protocol."""

    source = "scripted"
    max_interval_s = None

    @property
    def unavailable(self) -> list[Unavailable]:
        return []

    def open(self) -> list[Channel]:
        return [
            Channel(f"gpu:{index}", "gpu", "scripted", "measured", "constant", quantity="power")
            for index in range(2)
        ]

    def read(self) -> Reading:
        return Reading(values={"gpu:0": 300.0, "gpu:1": 300.0})

    def close(self) -> None:
        pass


class FakeClock:
    """A monotonic nanosecond clock that moves only when told to."""

    def __init__(self) -> None:
        self.now_ns = 1_000_000_000

    def __call__(self) -> int:
        return self.now_ns


def rss() -> int:
    """This process's resident set size in bytes."""
    return int(psutil.Process().memory_info().rss)


def blocks_ns(call: Callable[[], object], steps: int, block: int) -> list[float]:
    """Nanoseconds per ``call()`` in each consecutive block of ``block`` calls."""
    per_block = []
    for _ in range(steps // block):
        start = time.perf_counter_ns()
        for _ in range(block):
            call()
        per_block.append((time.perf_counter_ns() - start) / block)
    return per_block


def monitor_blocks_ns(
    monitor: TrainingMonitor, steps: int, block: int, log_every: int
) -> list[float]:
    """ns per step of a monitor driven as a Lightning callback: logging steps, an epoch a block."""
    monitor.set_total_steps(steps)
    per_block = []
    for _ in range(steps // block):
        start = time.perf_counter_ns()
        monitor.begin_epoch()
        for index in range(block):
            monitor.step(32)
            if index % log_every == log_every - 1:
                monitor.step_metrics()
        monitor.end_epoch()
        per_block.append((time.perf_counter_ns() - start) / block)
    return per_block


def keras_blocks_ns(options: dict[str, Any], steps: int, block: int) -> list[float]:
    """ns per direct ``on_train_batch_end`` call of the Keras callback, in blocks."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    from carbon_callbacks.keras import CarbonCallback

    callback = CarbonCallback(summary=False, **options)
    callback.on_train_begin()
    callback.on_epoch_begin(0)
    per_block = []
    for first in range(0, steps - block + 1, block):
        start = time.perf_counter_ns()
        for batch in range(first, first + block):
            callback.on_train_batch_end(batch, None)
        per_block.append((time.perf_counter_ns() - start) / block)
    callback.on_epoch_end(0, {})
    callback.on_train_end()
    return per_block


def summarise(per_block: list[float], rss_before: int, rss_after: int) -> dict[str, Any]:
    """First and last block, their spread, and the memory the series added."""
    return {
        "ns_per_step_blocks": per_block,
        "first_block_ns": per_block[0],
        "last_block_ns": per_block[-1],
        "max_over_min": max(per_block) / min(per_block),
        "rss_before_mib": rss_before / MiB,
        "rss_after_mib": rss_after / MiB,
    }


@contextmanager
def advancing_tree() -> Iterator[str]:
    """A fake two-socket powercap tree whose counters advance (100 W a zone) while in use."""
    with tempfile.TemporaryDirectory() as folder:
        root = fake_powercap_tree(Path(folder))
        stop = threading.Event()
        helper = threading.Thread(target=_advance_counters, args=(Path(root), stop))
        helper.start()
        try:
            yield root
        finally:
            stop.set()
            helper.join()


def bench_steps(root: str, steps: int, block: int, log_every: int, keras: bool) -> dict[str, Any]:
    """Per-step cost in blocks for each way a training loop counts a step."""
    options: dict[str, Any] = {"gpu_ids": [], "powercap_root": root, "intensity_g_per_kwh": 100}
    results: dict[str, Any] = {}
    before = rss()
    results["empty_call"] = summarise(blocks_ns(lambda: None, steps, block), before, rss())

    before = rss()
    tracker = Tracker(write_log=False, **options).start()
    try:
        results["Tracker.step"] = summarise(blocks_ns(tracker.step, steps, block), before, rss())
    finally:
        tracker.stop()

    before = rss()
    monitor = TrainingMonitor(write_log=False, **options)
    monitor.start()
    try:
        per_block = blocks_ns(lambda: monitor.step(32), steps, block)
        results["TrainingMonitor.step"] = summarise(per_block, before, rss())
    finally:
        monitor.stop()

    with tempfile.TemporaryDirectory() as runs:
        before = rss()
        monitor = TrainingMonitor(output_dir=runs, **options)
        monitor.announce = lambda line: None
        monitor.start()
        try:
            per_block = monitor_blocks_ns(monitor, steps, block, log_every)
            results["TrainingMonitor, logging"] = summarise(per_block, before, rss())
        finally:
            monitor.stop()

    if keras:
        before = rss()
        per_block = keras_blocks_ns(options | {"write_log": False}, steps, block)
        results["keras on_train_batch_end"] = summarise(per_block, before, rss())
    return results


def week_of_sampling(week_s: int, interval_s: float, trace: bool) -> dict[str, Any]:
    """Drive a sampler through ``week_s`` simulated seconds, one sample every ``interval_s``."""
    clock = FakeClock()
    sampler = Sampler([TwoGpuMeter()], clock_ns=clock)
    step_ns = round(interval_s * 1e9)
    days = max(1, round(week_s / DAY_S))
    per_day = round(week_s / days / interval_s)
    rss_before = rss()
    if trace:
        tracemalloc.start()
    sampler.open()
    day_s = []
    started = time.perf_counter()
    for _ in range(days):
        day_start = time.perf_counter()
        for _ in range(per_day):
            clock.now_ns += step_ns
            sampler.sample()
        day_s.append(time.perf_counter() - day_start)
    wall_s = time.perf_counter() - started
    result: dict[str, Any] = {
        "samples": days * per_day,
        "interval_s": interval_s,
        "wall_s": wall_s,
        "us_per_sample_by_day": [s / per_day * 1e6 for s in day_s],
        "history_len": len(sampler.history()),
    }
    if trace:
        current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        result |= {"tracemalloc_peak_mib": peak / MiB, "tracemalloc_end_mib": current / MiB}
    else:
        result |= {"rss_before_mib": rss_before / MiB, "rss_after_mib": rss() / MiB}
    sampler.stop()
    return result


def traced_monitor_run(root: str, steps: int, block: int, log_every: int) -> dict[str, Any]:
    """The logging monitor's run again under tracemalloc: the memory it ever held at once."""
    with tempfile.TemporaryDirectory() as runs:
        monitor = TrainingMonitor(
            gpu_ids=[], powercap_root=root, intensity_g_per_kwh=100, output_dir=runs
        )
        monitor.announce = lambda line: None
        tracemalloc.start()
        monitor.start()
        try:
            per_block = monitor_blocks_ns(monitor, steps, block, log_every)
            current, peak = tracemalloc.get_traced_memory()
        finally:
            monitor.stop()
            tracemalloc.stop()
    return {
        "tracemalloc_peak_mib": peak / MiB,
        "tracemalloc_end_mib": current / MiB,
        "traced_ns_per_step_first_last": [per_block[0], per_block[-1]],
    }


def run(
    steps: int = 1_000_000,
    block: int = 100_000,
    log_every: int = 50,
    week_s: int = 7 * DAY_S,
    week_interval_s: float = DEFAULT_INTERVAL_S,
    keras: bool = True,
) -> dict[str, Any]:
    """Every part of the benchmark; returns the raw figures."""
    week = week_of_sampling(week_s, week_interval_s, trace=False)  # first: before any import
    week_traced = week_of_sampling(week_s, week_interval_s, trace=True)
    with advancing_tree() as root:
        steps_results = bench_steps(root, steps, block, log_every, keras)
        traced = traced_monitor_run(root, steps, block, log_every)
    return {
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "settings": {"steps": steps, "block": block, "log_every": log_every},
        "per_step": steps_results,
        "week": week,
        "week_traced": week_traced,
        "million_steps_traced": traced,
    }


def table(results: dict[str, Any]) -> str:
    """The figures as a Markdown table."""
    rows = ["| what | first block | last block | max/min over blocks | RSS after |",
            "| --- | ---: | ---: | ---: | ---: |"]  # fmt: skip
    for name, series in results["per_step"].items():
        rows.append(
            f"| {name} | {series['first_block_ns']:.0f} ns | {series['last_block_ns']:.0f} ns "
            f"| {series['max_over_min']:.2f} | {series['rss_after_mib']:.0f} MiB |"
        )
    week, traced_week = results["week"], results["week_traced"]
    by_day = week["us_per_sample_by_day"]
    traced = results["million_steps_traced"]
    return "\n".join(
        [
            *rows,
            "",
            f"week of sampling: {week['samples']} samples every {week['interval_s']:g} s in "
            f"{week['wall_s']:.1f} s ({by_day[0]:.2f} us/sample on day 1, {by_day[-1]:.2f} on "
            f"the last day); RSS {week['rss_before_mib']:.1f} -> {week['rss_after_mib']:.1f} MiB; "
            f"tracemalloc peak {traced_week['tracemalloc_peak_mib']:.1f} MiB "
            f"(end {traced_week['tracemalloc_end_mib']:.1f} MiB); history kept: "
            f"{week['history_len']} samples",
            f"million monitor steps (logging, epochs, run log): tracemalloc peak "
            f"{traced['tracemalloc_peak_mib']:.2f} MiB (end {traced['tracemalloc_end_mib']:.2f})",
        ]
    )


def main() -> None:
    """Run the benchmark and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--block", type=int, default=100_000)
    parser.add_argument("--log-every", type=int, default=50, help="steps between step_metrics")
    parser.add_argument("--week-interval-s", type=float, default=DEFAULT_INTERVAL_S)
    parser.add_argument("--no-keras", action="store_true", help="leave out the Keras callback")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args()
    started = time.perf_counter()
    results = run(
        args.steps,
        args.block,
        args.log_every,
        week_interval_s=args.week_interval_s,
        keras=not args.no_keras,
    )
    results["benchmark_wall_s"] = time.perf_counter() - started
    print(table(results))
    print(f"\n({results['benchmark_wall_s']:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
