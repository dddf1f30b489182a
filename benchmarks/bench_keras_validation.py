"""The first forecast of a Keras ``fit`` with ``validation_split`` against the run's outcome.

Run from the repository root: ``python benchmarks/bench_keras_validation.py [--backend jax]
[--json P]``. Each run is a fresh process (the backend is fixed at Keras's import): a tiny dense
model trains for ``--epochs`` epochs with ``validation_split=0.2`` and the default meters, writing
a run log; the first ``prediction`` record in it (the first forecast, the one the callback
announces) is set beside the run's measured energy and duration. Results belong in
benchmarks/RESULTS.md together with the command and the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BATCH_SIZE = 32
FEATURES = 16


def one_run(backend: str, epochs: int, train_steps: int, seed: int) -> dict[str, Any]:
    """Train once in a child process with ``backend``; return its first forecast and outcome."""
    with tempfile.TemporaryDirectory() as folder:
        env = os.environ | {"KERAS_BACKEND": backend, "PYTHONPATH": str(ROOT)}
        command = [
            sys.executable, __file__, "--child", folder,
            "--epochs", str(epochs), "--train-steps", str(train_steps), "--seed", str(seed),
        ]  # fmt: skip
        subprocess.run(command, env=env, check=True, capture_output=True, text=True)
        return check_of(Path(folder))


def check_of(folder: Path) -> dict[str, Any]:
    """The first forecast of the run log in ``folder`` beside its outcome (None: no forecast)."""
    from carbon_callbacks import read_run_log
    from carbon_callbacks.reporting.forecasts import prediction_checks
    from carbon_callbacks.runlog.decode import measurement_from_record

    (path,) = folder.glob("*.jsonl")
    log = read_run_log(path)
    assert log.summary is not None
    outcome = measurement_from_record(log.summary)
    checks = prediction_checks(log.predictions, outcome)
    result: dict[str, Any] = {
        "total_steps": log.summary["steps"],
        "actual_kwh": outcome.energy_kwh,
        "actual_s": outcome.duration_s,
        "forecast": None,
    }
    if checks and checks[0].actual_energy_kwh is not None:
        first = checks[0]
        result["forecast"] = {
            "steps_done": first.steps_done,
            "total_steps": first.total_steps,
            "predicted_kwh": list(first.energy_kwh),
            "energy_error": first.energy_error,
            "inside_interval": first.energy_within,
            "predicted_s": first.duration_s[1],
            "duration_error": first.duration_s[1] / outcome.duration_s - 1,
        }
    return result


def child(folder: str, epochs: int, train_steps: int, seed: int) -> None:
    """The training run itself (in the child process, backend already chosen)."""
    import keras
    import numpy as np

    from carbon_callbacks.keras import CarbonCallback

    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((FEATURES,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer="adam", loss="mse")
    samples = round(train_steps * BATCH_SIZE / 0.8)  # 20% of them go to validation
    x = np.random.default_rng(seed).random((samples, FEATURES), dtype="float32")
    callback = CarbonCallback(output_dir=folder, summary=False)
    model.fit(
        x,
        x[:, :1] * 2.0,
        validation_split=0.2,
        batch_size=BATCH_SIZE,
        epochs=epochs,
        verbose=0,
        callbacks=[callback],
    )


def run(backend: str, epochs: int, train_steps: int, runs: int) -> dict[str, Any]:
    """``runs`` fits with ``backend``; each one's first forecast and outcome, and the medians."""
    results = [one_run(backend, epochs, train_steps, seed) for seed in range(runs)]
    made = [r["forecast"] for r in results if r["forecast"] is not None]
    return {
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "backend": backend,
        "epochs": epochs,
        "train_steps_per_epoch": train_steps,
        "runs": results,
        "forecasts_made": len(made),
        "median_abs_energy_error": (
            statistics.median(abs(f["energy_error"]) for f in made) if made else None
        ),
        "median_abs_duration_error": (
            statistics.median(abs(f["duration_error"]) for f in made) if made else None
        ),
        "inside_interval": sum(bool(f["inside_interval"]) for f in made),
    }


def table(results: dict[str, Any]) -> str:
    """One Markdown row per run."""
    rows = [
        "| run | forecast at step | predicted kWh (80% interval) | actual kWh | energy error "
        "| predicted s | actual s |",
        "|---|---|---|---|---|---|---|",
    ]
    for index, result in enumerate(results["runs"]):
        first = result["forecast"]
        if first is None:
            rows.append(
                f"| {index} | no forecast | - | {result['actual_kwh']:.3g} | - | - "
                f"| {result['actual_s']:.3g} |"
            )
            continue
        low, mid, high = first["predicted_kwh"]
        rows.append(
            f"| {index} | {first['steps_done']} of {first['total_steps']} "
            f"| {mid:.3g} ({low:.3g}-{high:.3g}) | {result['actual_kwh']:.3g} "
            f"| {first['energy_error']:+.1%} | {first['predicted_s']:.3g} "
            f"| {result['actual_s']:.3g} |"
        )
    return "\n".join(rows)


def main() -> None:
    """Run the benchmark and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", default="torch", help="torch or jax")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-steps", type=int, default=103, help="training steps an epoch")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.epochs, args.train_steps, args.seed)
        return
    results = run(args.backend, args.epochs, args.train_steps, args.runs)
    print(table(results))
    if results["forecasts_made"]:
        print(
            f"median |energy error| {results['median_abs_energy_error']:.1%}, "
            f"inside the interval {results['inside_interval']} of {results['forecasts_made']}"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
