"""Per-step overhead of the Keras ``CarbonCallback`` on a tiny model (about 1 ms a step on a CPU).

Run from the repository root: ``KERAS_BACKEND=torch python benchmarks/bench_keras.py [--json P]``.
Three variants of the same ``fit`` are alternated for several rounds: no callback, an empty callback
with the same hooks (and the same ``async_safe`` declaration, so Keras dispatches the same way),
and ours. A step's time is the time from the first batch to the end of the epoch (ours starts
and ends before, so its start-up, epoch reads and summary are left out) over the steps run. The
batch hook is also called directly in a tight loop, which resolves its cost far below the noise of
a whole step. Results belong in benchmarks/RESULTS.md together with the command and the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "torch")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import keras  # noqa: E402
import numpy as np  # noqa: E402
from overhead_table import markdown, step_rows  # noqa: E402

from carbon_callbacks.keras import CarbonCallback  # noqa: E402

BATCH_SIZE = 32
FEATURES = 16


class StepTimer(keras.callbacks.Callback):
    """Times the steps of one epoch: from the first batch's start to the epoch's end.

    Only begin hooks and ``on_epoch_end`` are overridden, so it does not change how Keras
    dispatches batch-end callbacks. ``on_epoch_end`` runs after Keras has waited for every
    asynchronous batch-end call, so their cost is inside the figure.
    """

    def __init__(self) -> None:
        super().__init__()
        self.start_ns = 0
        self.seconds_per_step = 0.0

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if batch == 0:
            self.start_ns = time.perf_counter_ns()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        steps = self.params["steps"]
        self.seconds_per_step = (time.perf_counter_ns() - self.start_ns) / 1e9 / steps


class EmptyCallback(keras.callbacks.Callback):
    """Overrides the hooks ours overrides and does nothing in them."""

    async_safe = True

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        pass

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        pass

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        pass

    def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
        pass

    def on_test_end(self, logs: dict[str, Any] | None = None) -> None:
        pass

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        pass

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        pass


def make_model() -> Any:
    model = keras.Sequential(
        [
            keras.Input((FEATURES,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer="sgd", loss="mse")
    return model


def make_data(steps: int) -> tuple[Any, Any]:
    x = np.random.default_rng(0).random((steps * BATCH_SIZE, FEATURES), dtype="float32")
    return x, x[:, :1] * 2.0


def variant_callbacks(name: str) -> list[Any]:
    if name == "none":
        return []
    if name == "empty":
        return [EmptyCallback()]
    return [CarbonCallback(write_log=False, summary=False)]


def time_fit(model: Any, data: tuple[Any, Any], variant: str) -> float:
    """Seconds per step of one epoch of ``fit`` with the variant's callbacks."""
    timer = StepTimer()
    model.fit(
        *data,
        batch_size=BATCH_SIZE,
        epochs=1,
        verbose=0,
        shuffle=False,
        callbacks=[timer, *variant_callbacks(variant)],
    )
    return timer.seconds_per_step


def hook_ns(callback: Any, calls: int, rounds: int) -> float:
    """Median nanoseconds per direct ``on_train_batch_end`` call, inside a running epoch."""
    callback.on_train_begin()
    callback.on_epoch_begin(0)
    per_call = []
    batch = 0
    for _ in range(rounds):
        start = time.perf_counter_ns()
        for _ in range(calls):
            callback.on_train_batch_end(batch, {})
            batch += 1
        per_call.append((time.perf_counter_ns() - start) / calls)
    callback.on_epoch_end(0, {})
    callback.on_train_end()
    return statistics.median(per_call)


def run(steps: int, rounds: int, hook_calls: int) -> dict[str, Any]:
    """Alternate the variants for ``rounds`` rounds; return the raw and median figures."""
    model, data = make_model(), make_data(steps)
    variants = ("none", "empty", "ours")
    for variant in variants:  # warm-up: compile paths, first-use imports, the meters' start
        time_fit(model, data, variant)
    seconds: dict[str, list[float]] = {variant: [] for variant in variants}
    for _ in range(rounds):
        for variant in variants:
            seconds[variant].append(time_fit(model, data, variant))
    return {
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "keras": keras.__version__,
            "backend": keras.backend.backend(),
        },
        "steps_per_round": steps,
        "rounds": rounds,
        "seconds_per_step": seconds,
        "median_us_per_step": {v: statistics.median(s) * 1e6 for v, s in seconds.items()},
        "hook_ns": {
            "empty": hook_ns(EmptyCallback(), hook_calls, rounds=5),
            "ours": hook_ns(CarbonCallback(write_log=False, summary=False), hook_calls, rounds=5),
        },
    }


def table(results: dict[str, Any]) -> str:
    """The medians as a Markdown table."""
    rows = step_rows(results["median_us_per_step"], results["hook_ns"], "on_train_batch_end")
    return markdown(rows)


def main() -> None:
    """Run the benchmark and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=400, help="steps per fit")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--hook-calls", type=int, default=100_000)
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args()
    results = run(args.steps, args.rounds, args.hook_calls)
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
