"""A tiny Lightning ``fit`` on CPU with ``carbon_callbacks.lightning.CarbonCallback``.

``--without-callback`` runs the same ``fit`` without it: the crash tests compare how both end.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from carbon_callbacks.lightning import CarbonCallback
from tests.reliability.programs.common import (
    BATCH_SIZE,
    STEPS_PER_EPOCH,
    Pacer,
    burn,
    parse_args,
    tracker_options,
)


class TinyModel(L.LightningModule):
    """A linear layer; each training step burns the fake counter, then paces."""

    def __init__(self, counter: Path, pacer: Pacer) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)
        self.counter = counter
        self.pacer = pacer

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        burn(self.counter)
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.layer(x), y)
        self.pacer.step_done(self.current_epoch, batch_idx)
        return loss

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=0.01)

    def train_dataloader(self) -> Any:
        x = torch.randn(STEPS_PER_EPOCH * BATCH_SIZE, 4, generator=torch.Generator().manual_seed(0))
        return DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=BATCH_SIZE)


def main() -> None:
    """Fit ``--steps`` steps, with the callback unless told otherwise."""
    args = parse_args(__doc__ or "")
    callbacks = [CarbonCallback(**tracker_options(args.output_dir))] if args.callback else []
    trainer = L.Trainer(
        max_epochs=args.steps // STEPS_PER_EPOCH,
        callbacks=callbacks,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        accelerator="cpu",
    )
    pacer = Pacer(args.marker, args.output_dir if args.mark_at_checkpoint else None)
    trainer.fit(TinyModel(args.counter, pacer))
    pacer.finish()


if __name__ == "__main__":
    main()
