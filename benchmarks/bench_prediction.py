"""Accuracy of the whole-run energy forecast on synthetic step timelines.

Run from the repository root: ``python benchmarks/bench_prediction.py [--json PATH]``. For each
workload (steady; a warm-up whose first 3% of steps cost 5x; power drifting up 50% over the run;
power doubling at 40%; a validation pass after each epoch, which advances no step) and each share
of the run observed (10%, 25%, 50%), it compares with the true final energy:

- ``prediction.forecast`` (what the callbacks use): its central estimate, and whether the truth
  lies inside its 80% interval;
- ``epoch_mean_forecast`` here (carbontracker's method): the mean of the complete epochs seen
  x the number of epochs.

Noise is per step (time and power), drawn from ``random.Random(seed)``: the figures are the same on
every run with the same arguments. It prints a Markdown table of medians over the seeds and, with
``--json``, writes every figure.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from carbon_callbacks.training.prediction import (  # noqa: E402
    Pause,
    Point,
    forecast,
)


def epoch_mean_forecast(epoch_joules: Sequence[float], total_epochs: int) -> float | None:
    """Carbontracker's forecast: the mean energy of the epochs so far x the number of epochs."""
    if not epoch_joules or total_epochs <= 0:
        return None
    return statistics.fmean(epoch_joules) * total_epochs


STEP_S = 0.1
POWER_W = 200.0
TIME_NOISE = 0.05
POWER_NOISE = 0.02
FRACTIONS = (0.10, 0.25, 0.50)

Shape = Callable[[float], tuple[float, float]]
"""Position in the run (0 to 1) -> (time per step, power) as multiples of the base figures."""


@dataclass(frozen=True)
class Workload:
    """A run's cost per step over its course, and a validation pass (no steps) after each epoch.

    Attributes:
        shape: Time per step and power as multiples of ``STEP_S`` and ``POWER_W``.
        validation: The pass's length as a share of an epoch's base time; 0 for none.
    """

    shape: Shape
    validation: float = 0.0


WORKLOADS: dict[str, Workload] = {
    "steady": Workload(lambda x: (1.0, 1.0)),
    "warm-up (first 3% of steps cost 5x)": Workload(
        lambda x: (5.0, 1.0) if x < 0.03 else (1.0, 1.0)
    ),
    "drifting (power +50% over the run)": Workload(lambda x: (1.0, 1.0 + 0.5 * x)),
    "step change (power x2 at 40%)": Workload(lambda x: (1.0, 2.0 if x >= 0.4 else 1.0)),
    "validation after each epoch (+10% time)": Workload(lambda x: (1.0, 1.0), validation=0.1),
}


def timeline(
    workload: Workload, steps: int, epochs: int, seed: int
) -> tuple[list[Point], list[float], list[Pause]]:
    """(seconds, steps, joules) after every step (and validation pass), joules at epoch ends, and
    the validation passes (as the training monitor knows them from its ``"val"`` phase)."""
    rng = random.Random(seed)
    per_epoch = steps // epochs
    t = joules = 0.0
    points: list[Point] = [(0.0, 0, 0.0)]
    epoch_ends = []
    pauses = []
    for step in range(steps):
        time_x, power_x = workload.shape(step / steps)
        seconds = STEP_S * time_x * max(rng.gauss(1.0, TIME_NOISE), 0.1)
        joules += seconds * POWER_W * power_x * max(rng.gauss(1.0, POWER_NOISE), 0.1)
        t += seconds
        points.append((t, step + 1, joules))
        if (step + 1) % per_epoch == 0:
            if workload.validation > 0:
                seconds = STEP_S * per_epoch * workload.validation
                joules += seconds * POWER_W * max(rng.gauss(1.0, POWER_NOISE), 0.1)
                pauses.append(Pause(t, t + seconds, step + 1))
                t += seconds
                points.append((t, step + 1, joules))
            epoch_ends.append(joules)
    return points, epoch_ends, pauses


def evaluate(workload: Workload, steps: int, epochs: int, seed: int) -> list[dict[str, Any]]:
    """Both forecasts at each observed share of one run, against its true total.

    The forecast sees every point up to the share's step (with the validation pass when the share
    ends an epoch); the epoch-mean method sees the epochs complete by then.
    """
    points, epoch_ends, pauses = timeline(workload, steps, epochs, seed)
    true_j = epoch_ends[-1]
    rows = []
    for fraction in FRACTIONS:
        seen = round(steps * fraction)
        complete = seen // (steps // epochs)
        # As the training monitor does: the epoch length is known once an epoch has ended.
        period = steps // epochs if complete else None
        outlook = forecast(
            [p for p in points if p[1] <= seen],
            steps,
            period_steps=period,
            pauses=[p for p in pauses if p.steps is not None and p.steps <= seen],
        )
        epoch_j = [b - a for a, b in itertools.pairwise([0.0, *epoch_ends[:complete]])]
        rows.append(
            {
                "fraction": fraction,
                "seed": seed,
                "true_j": true_j,
                "forecast_j": None if outlook is None else list(outlook.energy_j),
                "warmup_steps": None if outlook is None else outlook.warmup_steps,
                "epochs_seen": complete,
                "epoch_mean_j": epoch_mean_forecast(epoch_j, epochs),
            }
        )
    return rows


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Median absolute relative errors, interval coverage and width over the seeds of one cell."""
    truth = [r["true_j"] for r in rows]
    made = [(r["forecast_j"], t) for r, t in zip(rows, truth, strict=True) if r["forecast_j"]]
    epoch = [(r["epoch_mean_j"], t) for r, t in zip(rows, truth, strict=True) if r["epoch_mean_j"]]
    return {
        "runs": len(rows),
        "forecast_made": len(made),
        "forecast_abs_error": _median([abs(f[1] / t - 1) for f, t in made]),
        "forecast_coverage": (sum(f[0] <= t <= f[2] for f, t in made) / len(made))
        if made
        else None,
        "interval_width": _median([(f[2] - f[0]) / t for f, t in made]),
        "epochs_seen": rows[0]["epochs_seen"],
        "epoch_mean_abs_error": _median([abs(m / t - 1) for m, t in epoch]),
    }


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def run(steps: int, epochs: int, seeds: int) -> dict[str, Any]:
    """Every shape x observed share x seed, raw and summarised."""
    results: dict[str, Any] = {}
    for name, workload in WORKLOADS.items():
        raw = [row for seed in range(seeds) for row in evaluate(workload, steps, epochs, seed)]
        results[name] = {
            "raw": raw,
            "summary": {
                str(fraction): summarise([r for r in raw if r["fraction"] == fraction])
                for fraction in FRACTIONS
            },
        }
    return results


def table(results: dict[str, Any]) -> str:
    """The Markdown table of the summaries."""
    lines = [
        "| workload | seen | forecast: median abs error | forecast: truth in 80% interval "
        "| interval width | epoch-mean: epochs seen | epoch-mean: median abs error |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, result in results.items():
        for fraction, cell in result["summary"].items():
            coverage = cell["forecast_coverage"]
            lines.append(
                f"| {name} | {float(fraction):.0%} | {_percent(cell['forecast_abs_error'])} "
                f"| {'n/a' if coverage is None else f'{coverage:.0%}'} "
                f"({cell['forecast_made']}/{cell['runs']} made) "
                f"| {_percent(cell['interval_width'])} | {cell['epochs_seen']} "
                f"| {_percent(cell['epoch_mean_abs_error'])} |"
            )
    return "\n".join(lines)


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="steps per run (default 2000)")
    parser.add_argument("--epochs", type=int, default=10, help="epochs per run (default 10)")
    parser.add_argument("--seeds", type=int, default=20, help="noise seeds (default 20)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the raw figures here")
    args = parser.parse_args()
    started = time.perf_counter()
    results = run(args.steps, args.epochs, args.seeds)
    print(
        f"{args.seeds} seeds x {args.steps} steps ({args.epochs} epochs); per-step noise "
        f"{TIME_NOISE:.0%} time, {POWER_NOISE:.0%} power; errors relative to the true total"
    )
    print()
    print(table(results))
    print(f"\n({time.perf_counter() - started:.1f} s)")
    if args.json is not None:
        settings = {
            "steps": args.steps,
            "epochs": args.epochs,
            "seeds": args.seeds,
            "step_s": STEP_S,
            "power_w": POWER_W,
            "time_noise": TIME_NOISE,
            "power_noise": POWER_NOISE,
        }
        args.json.write_text(json.dumps({"settings": settings, "results": results}, indent=1))


if __name__ == "__main__":
    main()
