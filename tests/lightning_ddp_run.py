"""A two-process Lightning DDP fit on CPU (gloo) with the carbon callback, run by test_lightning.

Lightning's DDP launcher starts rank 1 by running this script again. Only rank 0, during its first
training step, advances the (fake) RAPL counter named by ``--counter`` by ``--joules``; nothing else
changes it, so the run's host energy is exactly that, counted once whatever the number of ranks.

Usage: ``python tests/lightning_ddp_run.py --root DIR --counter PATH --joules N`` with
``CARBON_CALLBACKS_POWERCAP_ROOT`` pointing at the fake powercap tree; ``--every-step`` adds N
joules at each of rank 0's steps, ``--budget-joules B`` stops the fit when the ranks' total
reaches B.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader, TensorDataset

from carbon_callbacks.lightning import CarbonCallback

INTENSITY_G_PER_KWH = 100.0


class OneLayer(L.LightningModule):
    def __init__(self, counter: Path, joules: float, every_step: bool) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)
        self.counter = counter
        self.joules = joules
        self.every_step = every_step

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        first = self.current_epoch == 0 and batch_idx == 0
        if self.global_rank == 0 and (first or self.every_step):
            energy_uj = int(self.counter.read_text()) + round(self.joules * 1e6)
            staged = self.counter.with_name("energy_uj.new")  # one atomic change: rank 0's
            staged.write_text(f"{energy_uj}\n")  # sampler reads the counter concurrently
            os.replace(staged, self.counter)
        x, y = batch
        return torch.nn.functional.mse_loss(self.layer(x), y)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.layer(x), y), sync_dist=True)

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=0.01)

    def train_dataloader(self) -> Any:
        generator = torch.Generator().manual_seed(0)
        data = TensorDataset(torch.randn(32, 4, generator=generator), torch.randn(32, 1))
        return DataLoader(data, batch_size=8)

    def val_dataloader(self) -> Any:
        return DataLoader(TensorDataset(torch.zeros(16, 4), torch.zeros(16, 1)), batch_size=8)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--counter", type=Path, required=True)
    parser.add_argument("--joules", type=float, required=True)
    parser.add_argument("--every-step", action="store_true", help="add --joules at every step")
    parser.add_argument("--budget-joules", type=float, help="stop at this energy (all ranks)")
    parser.add_argument("--max-epochs", type=int, default=2)
    args = parser.parse_args()
    options: dict[str, Any] = {"gpu_ids": [], "intensity_g_per_kwh": INTENSITY_G_PER_KWH}
    if args.budget_joules is not None:  # read the meters at every logging step (every step)
        options |= {
            "max_energy_kwh": args.budget_joules / 3.6e6,
            "on_budget": "stop",
            "interval_s": 60.0,
        }
    trainer = L.Trainer(
        accelerator="cpu",
        strategy="ddp",
        devices=2,
        max_epochs=args.max_epochs,
        log_every_n_steps=1,
        logger=CSVLogger(args.root, name="", version=0),
        callbacks=[CarbonCallback(**options)],
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    trainer.fit(OneLayer(args.counter, args.joules, args.every_step))
    print(f"rank {trainer.global_rank} stopped at step {trainer.global_step}")


if __name__ == "__main__":
    main()
