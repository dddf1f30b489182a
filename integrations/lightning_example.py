"""A small Lightning training run measured by ``carbon_callbacks.lightning.CarbonCallback``.

An MLP learns to tell two Gaussian blobs apart, on data generated here: no download, CPU is enough
(a few seconds). Run it from a checkout with the package installed::

    python integrations/lightning_example.py [--max-epochs 3] [--country SE] [--json summary.json]

At the end of ``fit`` the callback prints the run's energy, per channel with how it was obtained,
and its CO2e. The per-epoch and per-step metrics (``carbon/energy_kwh``,
``carbon/epoch_energy_kwh``, ``carbon/val_energy_kwh``, ...) go to a CSVLogger under
``--log-dir``, the run log to ``carbon-runs``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader, TensorDataset

from carbon_callbacks.lightning import CarbonCallback


def blobs(samples: int, features: int, seed: int) -> TensorDataset:
    """Points from two Gaussian blobs, labelled by blob."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (samples,), generator=generator)
    centres = (labels.float() * 0.6 - 0.3).unsqueeze(1)
    points = centres + 1.5 * torch.randn(samples, features, generator=generator)
    return TensorDataset(points, labels)


class Classifier(L.LightningModule):
    """A two-layer MLP with cross-entropy loss."""

    def __init__(self, features: int = 32, hidden: int = 64) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(features, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 2)
        )

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        """Cross-entropy on one batch, logged."""
        points, labels = batch
        loss = torch.nn.functional.cross_entropy(self.net(points), labels)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        """Loss and accuracy on one validation batch, logged."""
        points, labels = batch
        logits = self.net(points)
        self.log("val_loss", torch.nn.functional.cross_entropy(logits, labels), prog_bar=True)
        self.log("val_acc", (logits.argmax(1) == labels).float().mean(), prog_bar=True)

    def configure_optimizers(self) -> Any:
        """Adam."""
        return torch.optim.Adam(self.parameters(), lr=1e-3)


def main() -> None:
    """Train, measured; print the summary (the callback does) and optionally write it as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-epochs", type=int, default=3)
    parser.add_argument("--country", help="where the power is used (default: guessed offline)")
    parser.add_argument("--log-dir", type=Path, default=Path("carbon-runs/lightning-example"))
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the run's figures here")
    args = parser.parse_args()

    L.seed_everything(0, verbose=False)
    train = DataLoader(blobs(16384, 32, seed=1), batch_size=64, shuffle=True)
    val = DataLoader(blobs(4096, 32, seed=2), batch_size=256)
    carbon = CarbonCallback(country=args.country)
    trainer = L.Trainer(
        max_epochs=args.max_epochs,
        accelerator="cpu",
        callbacks=[carbon],
        logger=CSVLogger(args.log_dir, name=""),
        log_every_n_steps=20,
        enable_model_summary=False,
        enable_progress_bar=False,
    )
    trainer.fit(Classifier(), train, val)

    tracker = carbon.monitor.tracker
    summary = None if tracker is None else tracker.summary
    print(f"metrics: {Path(trainer.logger.log_dir) / 'metrics.csv'}")
    if tracker is not None and tracker.log_path is not None:
        print(f"run log: {tracker.log_path}")
    if args.json is not None and summary is not None:
        args.json.write_text(json.dumps(summary.to_dict(), indent=2) + "\n")


if __name__ == "__main__":
    main()
