"""One small CPU training run with the carbon callback, run by test_torchrun under ``torchrun``.

``torchrun --nproc_per_node 2 tests/torchrun_run.py --framework transformers|lightning --sync DIR``
starts two sibling ranks (gloo). Around the measured part each rank waits for the test, which
reads every rank's CPU time from outside (psutil) at those two points: at the start a callback
placed before ours writes ``ready-<rank>`` (its pid) and waits for ``go``; at the end one placed
after ours writes ``done-<rank>`` and waits for ``exit``. Global rank 0 writes the callback's
final totals (summed over the ranks) to ``DIR/totals.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

CPU_WATTS = 10.0
STEPS = 40
"""Steps of a batch of 256 through a 64-512-512-1 network: about a CPU second per rank, far more
than the few milliseconds between the test's readings and the callback's start and stop."""
WAIT_S = 600.0
"""A hang guard for the test's answer, never a speed check."""


class Checkpoint:
    """A point where this rank stops until the test has read its CPU time."""

    def __init__(self, sync: Path) -> None:
        self.sync = sync
        self.rank = int(os.environ["RANK"])

    def reach(self, name: str, answer: str) -> None:
        staged = self.sync / f"{name}-{self.rank}.new"
        staged.write_text(str(os.getpid()))
        os.replace(staged, self.sync / f"{name}-{self.rank}")
        deadline = time.monotonic() + WAIT_S
        while not (self.sync / answer).exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {answer!r} from the test")
            time.sleep(0.01)


class Pairs(Dataset[dict[str, torch.Tensor]]):
    def __init__(self, samples: int) -> None:
        generator = torch.Generator().manual_seed(0)
        self.x = torch.randn(samples, 64, generator=generator)
        self.y = self.x.sum(1, keepdim=True)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"x": self.x[index], "labels": self.y[index]}


def network() -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Linear(64, 512), torch.nn.ReLU(), torch.nn.Linear(512, 512), torch.nn.ReLU(),
        torch.nn.Linear(512, 1),
    )  # fmt: skip


def with_transformers(sync: Path, batch: int) -> dict[str, float]:
    from transformers import Trainer, TrainerCallback, TrainingArguments

    from carbon_callbacks.transformers import CarbonCallback

    class Regression(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = network()

        def forward(self, x: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"loss": torch.nn.functional.mse_loss(self.net(x), labels)}

    checkpoint = Checkpoint(sync)

    class Before(TrainerCallback):
        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            checkpoint.reach("ready", "go")

    class After(TrainerCallback):
        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            checkpoint.reach("done", "exit")

    carbon = CarbonCallback(cpu_watts=CPU_WATTS, intensity_g_per_kwh=100.0)
    args = TrainingArguments(
        output_dir=str(sync / "hf"), max_steps=STEPS, per_device_train_batch_size=batch,
        use_cpu=True, ddp_backend="gloo", report_to=[], disable_tqdm=True, save_strategy="no",
        logging_steps=10, dataloader_num_workers=0,
    )  # fmt: skip
    trainer = Trainer(
        model=Regression(),
        args=args,
        train_dataset=Pairs(batch * STEPS * 2),
        callbacks=[Before(), carbon, After()],
    )
    trainer.train()
    return carbon.monitor.final_metrics


def with_lightning(sync: Path, batch: int) -> dict[str, float]:
    import lightning as L
    from torch.utils.data import DataLoader

    from carbon_callbacks.lightning import CarbonCallback

    checkpoint = Checkpoint(sync)

    class Regression(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = network()

        def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> Any:
            return torch.nn.functional.mse_loss(self.net(batch["x"]), batch["labels"])

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.001)

        def train_dataloader(self) -> Any:
            return DataLoader(Pairs(batch * STEPS * 2), batch_size=batch)

    class Before(L.Callback):
        def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
            checkpoint.reach("ready", "go")

    class After(L.Callback):
        def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
            checkpoint.reach("done", "exit")

    carbon = CarbonCallback(cpu_watts=CPU_WATTS, intensity_g_per_kwh=100.0)
    trainer = L.Trainer(
        accelerator="cpu", strategy="ddp", devices=2, max_steps=STEPS, logger=False,
        callbacks=[Before(), carbon, After()], enable_progress_bar=False,
        enable_model_summary=False, enable_checkpointing=False, log_every_n_steps=10,
    )  # fmt: skip
    trainer.fit(Regression())
    return carbon.monitor.final_metrics


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--framework", choices=["transformers", "lightning"], required=True)
    parser.add_argument("--sync", type=Path, required=True)
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args()
    run = with_transformers if args.framework == "transformers" else with_lightning
    totals = run(args.sync, args.batch)
    if os.environ["RANK"] == "0":
        (args.sync / "totals.json").write_text(json.dumps(totals))


if __name__ == "__main__":
    main()
