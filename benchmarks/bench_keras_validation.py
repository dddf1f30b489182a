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
    """The first forecast of the run log in ``folder`` beside its outcome."""
    from carbon_callbacks import read_run_log
    from carbon_callbacks.report import measurement_from_record, prediction_checks

    (path,) = folder.glob("*.jsonl")
    log = read_run_log(path)
    assert log.summary is not None
    (first, *_) = prediction_checks(log.predictions, measurement_from_record(log.summary))
    assert first.actual_energy_kwh is not None and first.actual_duration_s is not None
    return {
        "steps_done": first.steps_done,
        "total_steps": first.total_steps,
        "predicted_kwh": list(first.energy_kwh),
        "actual_kwh": first.actual_energy_kwh,
        "energy_error": first.energy_error,
        "inside_interval": first.energy_within,
        "predicted_s": first.duration_s[1],
        "actual_s": first.actual_duration_s,
        "duration_error": first.duration_s[1] / first.actual_duration_s - 1,
    }


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
    checks = [one_run(backend, epochs, train_steps, seed) for seed in range(runs)]
    return {
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "backend": backend,
        "epochs": epochs,
        "train_steps_per_epoch": train_steps,
        "runs": checks,
        "median_abs_energy_error": statistics.median(abs(c["energy_error"]) for c in checks),
        "median_abs_duration_error": statistics.median(abs(c["duration_error"]) for c in checks),
        "inside_interval": sum(bool(c["inside_interval"]) for c in checks),
    }


def table(results: dict[str, Any]) -> str:
    """One Markdown row per run."""
    rows = [
        "| run | forecast at step | predicted kWh (80% interval) | actual kWh | energy error "
        "| predicted s | actual s |",
        "|---|---|---|---|---|---|---|",
    ]
    for index, check in enumerate(results["runs"]):
        low, mid, high = check["predicted_kwh"]
        rows.append(
            f"| {index} | {check['steps_done']} of {check['total_steps']} "
            f"| {mid:.3g} ({low:.3g}-{high:.3g}) | {check['actual_kwh']:.3g} "
            f"| {check['energy_error']:+.1%} | {check['predicted_s']:.3g} "
            f"| {check['actual_s']:.3g} |"
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
    print(
        f"median |energy error| {results['median_abs_energy_error']:.1%}, "
        f"inside the interval {results['inside_interval']} of {len(results['runs'])}"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
