"""A Hugging Face ``Trainer`` run of a tiny torch model with ``carbon_callbacks.transformers``.

No download: the model is a linear layer returning its loss, the data random tensors.
``--without-callback`` runs the same training without our callback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset
from transformers import Trainer, TrainerCallback, TrainingArguments

from carbon_callbacks.transformers import CarbonCallback
from tests.reliability.programs.common import (
    BATCH_SIZE,
    STEPS_PER_EPOCH,
    Pacer,
    burn,
    parse_args,
    tracker_options,
)


class Pairs(Dataset[dict[str, torch.Tensor]]):
    """``STEPS_PER_EPOCH`` batches of inputs and regression targets."""

    def __init__(self) -> None:
        self.x = torch.randn(
            STEPS_PER_EPOCH * BATCH_SIZE, 4, generator=torch.Generator().manual_seed(0)
        )

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"x": self.x[index], "labels": self.x[index].sum(0, keepdim=True)}


class Linear(torch.nn.Module):
    """A linear regression that returns its loss, as ``Trainer`` expects."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"loss": torch.nn.functional.mse_loss(self.layer(x), labels)}


class Burn(TrainerCallback):
    """Burns the fake counter at each step's end (before ours counts it), then paces."""

    def __init__(self, counter: Path, pacer: Pacer) -> None:
        self.counter = counter
        self.pacer = pacer

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        burn(self.counter)
        step = state.global_step - 1
        self.pacer.step_done(step // STEPS_PER_EPOCH, step % STEPS_PER_EPOCH)


def main() -> None:
    """Train ``--steps`` steps, with the callback unless told otherwise."""
    args = parse_args(__doc__ or "")
    torch.manual_seed(0)
    pacer = Pacer(args.marker)
    callbacks: list[TrainerCallback] = [Burn(args.counter, pacer)]
    if args.callback:
        callbacks.append(CarbonCallback(summary=False, **tracker_options(args.output_dir)))
    training = TrainingArguments(
        output_dir=str(args.output_dir / "trainer"),
        num_train_epochs=args.steps // STEPS_PER_EPOCH,
        per_device_train_batch_size=BATCH_SIZE,
        use_cpu=True,
        report_to=[],
        disable_tqdm=True,
        save_strategy="no",
        logging_strategy="no",
        dataloader_num_workers=0,
    )
    Trainer(model=Linear(), args=training, train_dataset=Pairs(), callbacks=callbacks).train()
    pacer.finish()


if __name__ == "__main__":
    main()
