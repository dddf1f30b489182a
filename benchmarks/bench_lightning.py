"""Per-step overhead of the Lightning ``CarbonCallback`` on a tiny model (about 1 ms a step, CPU).

Run from the repository root: ``python benchmarks/bench_lightning.py [--json PATH]``. Three variants
of the same ``fit`` are alternated for several rounds: no callback, an empty callback overriding the
same hooks, and ours. A step's time runs from the first batch's start to the epoch's end, over the
steps run; ours opens the epoch before the first batch and closes it after the timer has stopped,
so its start, epoch reads and summary are left out, while its step-level metrics (every
``log_every_n_steps``, default 50) are in. The batch hook is also called directly in a tight loop on
a started callback, which resolves its cost far below the noise of a whole step; ``step_metrics``,
the work done once every ``log_every_n_steps``, is timed apart. Results belong in
benchmarks/RESULTS.md together with the command and the machine.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import lightning as L  # noqa: E402
import torch  # noqa: E402
from overhead_table import markdown, step_rows  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from carbon_callbacks.lightning import CarbonCallback  # noqa: E402

BATCH_SIZE = 32
FEATURES = 16
VARIANTS = ("none", "empty", "ours")


class Tiny(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(FEATURES, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1)
        )

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        x, y = batch
        return torch.nn.functional.mse_loss(self.net(x), y)

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=0.01)


class StepTimer(L.Callback):
    """Times one epoch's steps: from the first batch's start to the epoch's end (runs first)."""

    def __init__(self) -> None:
        self.start_ns = 0
        self.seconds_per_step = 0.0

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, idx: int) -> None:
        if idx == 0:
            self.start_ns = time.perf_counter_ns()

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        steps = trainer.num_training_batches
        self.seconds_per_step = (time.perf_counter_ns() - self.start_ns) / 1e9 / steps


class EmptyCallback(L.Callback):
    """Overrides the hooks ours overrides and does nothing in them."""

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        pass

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        pass

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        pass

    def on_validation_start(self, trainer: Any, pl_module: Any) -> None:
        pass

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        pass

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        pass

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        pass

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        pass

    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        pass


def make_data(steps: int) -> DataLoader[Any]:
    x = torch.rand(steps * BATCH_SIZE, FEATURES, generator=torch.Generator().manual_seed(0))
    return DataLoader(TensorDataset(x, x[:, :1] * 2.0), batch_size=BATCH_SIZE)


def ours() -> CarbonCallback:
    return CarbonCallback(write_log=False, summary=False)


def make_trainer(callbacks: list[Any]) -> Any:
    return L.Trainer(
        max_epochs=1,
        accelerator="cpu",
        logger=False,
        callbacks=callbacks,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )


def time_fit(model: Any, data: DataLoader[Any], variant: str) -> float:
    """Seconds per step of one epoch of ``fit`` with the variant's callback."""
    timer = StepTimer()
    extra = {"none": [], "empty": [EmptyCallback()], "ours": [ours()]}[variant]
    make_trainer([timer, *extra]).fit(model, data)
    return timer.seconds_per_step


def hook_ns(callback: Any, trainer: Any, model: Any, calls: int, rounds: int) -> float:
    """Median ns per direct ``on_train_batch_end`` call on a started callback.

    The trainer is one that has finished a fit, so its step counter stands still, at a value
    where no step-level metrics are due: this is the path 49 of 50 steps take.
    """
    batch = (torch.zeros(BATCH_SIZE, FEATURES), torch.zeros(BATCH_SIZE, 1))
    callback.setup(trainer, model, "fit")
    per_call = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        for index in range(calls):
            callback.on_train_batch_end(trainer, model, None, batch, index)
        per_call.append((time.perf_counter_ns() - start) / calls)
    callback.teardown(trainer, model, "fit")
    return statistics.median(per_call)


def step_metrics_us(calls: int, rounds: int) -> float:
    """Median microseconds per ``step_metrics`` call (the work of a logging step)."""
    monitor = ours().monitor
    monitor.start()
    per_call = []
    try:
        for _ in range(rounds):
            start = time.perf_counter_ns()
            for _ in range(calls):
                monitor.step(BATCH_SIZE)
                monitor.step_metrics()
            per_call.append((time.perf_counter_ns() - start) / calls / 1000)
    finally:
        monitor.stop()
    return statistics.median(per_call)


def run(steps: int, rounds: int, hook_calls: int) -> dict[str, Any]:
    """Alternate the variants for ``rounds`` rounds; return the raw and median figures."""
    model, data = Tiny(), make_data(steps)
    for variant in VARIANTS:  # warm-up: first-use imports and allocations, the meters' start
        time_fit(model, data, variant)
    seconds: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    for _ in range(rounds):
        for variant in VARIANTS:
            seconds[variant].append(time_fit(model, data, variant))
    finished = make_trainer([])
    finished.fit(model, data)
    every = finished.log_every_n_steps
    return {
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "lightning": L.__version__,
            "torch": torch.__version__,
        },
        "steps_per_round": steps,
        "rounds": rounds,
        "log_every_n_steps": every,
        "seconds_per_step": seconds,
        "median_us_per_step": {v: statistics.median(s) * 1e6 for v, s in seconds.items()},
        "hook_ns": {
            "empty": hook_ns(EmptyCallback(), finished, model, hook_calls, rounds=5),
            "ours": hook_ns(ours(), finished, model, hook_calls, rounds=5),
        },
        "step_metrics_us": step_metrics_us(hook_calls // 100, rounds=5),
    }


def table(results: dict[str, Any]) -> str:
    """The medians as a Markdown table, with the cost of the step-level metrics."""
    rows = step_rows(results["median_us_per_step"], results["hook_ns"], "on_train_batch_end")
    every, metrics_us = results["log_every_n_steps"], results["step_metrics_us"]
    rows.append(
        ("step_metrics, once every log_every_n_steps", f"{metrics_us:.1f} us", "",
         f"{metrics_us / every:.2f} us a step at log_every_n_steps={every}")
    )  # fmt: skip
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
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
