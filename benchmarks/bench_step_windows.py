"""Identical steps, step-level energy: how far apart the logged ``energy_per_step_j`` figures are.

Every step is the same busy loop (a fixed amount of CPU work); the host is measured by the CPU
estimate (no powercap tree), whose counter moves in 10 ms ticks of CPU time. Each step's CPU time
is also read to the nanosecond (``time.process_time_ns``): a logged figure's reference is W x the
mean CPU time of the steps since the previous logged figure (its interval, up to the one step a
sample inside a step may miscount at each end). On a shared machine the same work takes more or
less CPU time from one moment to the next, so the spread of the logged figures themselves says
less than their error against their own interval's reference. The monitor logs every
``--log-every`` steps, as a callback at its framework's logging interval would.

Run from the repository root: ``python benchmarks/bench_step_windows.py [--json PATH]``. It prints
a Markdown table; results belong in benchmarks/RESULTS.md with the command and the machine. It
uses only ``TrainingMonitor.step`` and ``step_metrics``, so it runs on older checkouts too.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from carbon_callbacks.training import TrainingMonitor  # noqa: E402

WATTS_PER_CORE = 10.0


def burn_cpu(iterations: int) -> None:
    """The same CPU work every step."""
    total = 0
    for value in range(iterations):
        total += value * value
    if total < 0:
        raise AssertionError("unreachable")


def calibrated_iterations(cpu_s: float) -> int:
    """Loop iterations taking about ``cpu_s`` of CPU time here."""
    iterations = 20_000
    while True:
        begun = time.process_time_ns()
        burn_cpu(iterations)
        took_s = (time.process_time_ns() - begun) / 1e9
        if took_s >= 0.05:
            return max(int(iterations * cpu_s / took_s), 1)
        iterations *= 2


def run(steps: int, step_cpu_s: float, log_every: int) -> dict[str, Any]:
    """One run of ``steps`` identical steps; the logged per-step figures and the reference."""
    iterations = calibrated_iterations(step_cpu_s)
    with tempfile.TemporaryDirectory() as empty:
        os.environ["CARBON_CALLBACKS_POWERCAP_ROOT"] = empty  # no RAPL: the CPU estimate
        monitor = TrainingMonitor(write_log=False, cpu_watts=WATTS_PER_CORE)
        monitor.start()
        cpu_ns: list[int] = []
        since_logged: list[int] = []
        logged: list[float | None] = []
        errors: list[float] = []
        powers: list[float | None] = []
        before = time.process_time_ns()
        for step in range(1, steps + 1):
            burn_cpu(iterations)
            monitor.step()
            metrics = monitor.step_metrics() if step % log_every == 0 else {}
            after = time.process_time_ns()
            cpu_ns.append(after - before)
            since_logged.append(after - before)
            before = after
            if step % log_every == 0:
                value = metrics.get("carbon/energy_per_step_j")
                logged.append(value)
                powers.append(metrics.get("carbon/power_w"))
                if value is not None:
                    own_j = WATTS_PER_CORE * statistics.fmean(since_logged) / 1e9
                    errors.append(value / own_j - 1)
                    since_logged = []
        monitor.stop()
    values = [value for value in logged if value is not None]
    ceiling_w = (os.cpu_count() or 1) * WATTS_PER_CORE
    return {
        "steps": steps,
        "log_every": log_every,
        "step_cpu_ms_median": statistics.median(cpu_ns) / 1e6,
        "logging_steps": len(logged),
        "logged": len(values),
        "zero": sum(value == 0 for value in values),
        "max_over_min": max(values) / min(values) if values and min(values) > 0 else None,
        "worst_error": max(abs(error) for error in errors) if errors else None,
        "within_10_percent": sum(abs(error) <= 0.1 for error in errors),
        "power_logged": sum(watts is not None for watts in powers),
        "power_above_ceiling": sum(watts is not None and watts > ceiling_w for watts in powers),
        "ceiling_w": ceiling_w,
        "raw": values,
    }


def table(results: list[dict[str, Any]]) -> str:
    """The Markdown table of the runs."""
    rows = [
        "| log every | step CPU (median) | logging steps | J/step logged | of them 0 | "
        "max / min logged | worst error vs own interval | within 10% | power logged | "
        "above cores x W |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        spread = "inf" if r["max_over_min"] is None else f"{r['max_over_min']:.2f}"
        worst = "-" if r["worst_error"] is None else f"{100 * r['worst_error']:.0f}%"
        rows.append(
            f"| {r['log_every']} | {r['step_cpu_ms_median']:.1f} ms | {r['logging_steps']} | "
            f"{r['logged']} | {r['zero']} | {spread} | {worst} | {r['within_10_percent']} | "
            f"{r['power_logged']} | {r['power_above_ceiling']} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--step-cpu-ms", type=float, default=5.0)
    parser.add_argument("--log-every", type=int, nargs="+", default=[2, 10, 50])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = [run(args.steps, args.step_cpu_ms / 1000, every) for every in args.log_every]
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    print(table(results))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
