"""A small, real Hugging Face ``Trainer`` run measured by ``CarbonCallback``, offline.

A tiny BERT classifier is built from its config (no download) and trained on token ids generated
in code, with an evaluation after each epoch. The ``carbon/*`` metrics go through the trainer's
own logging, in the trainer's own log calls: ``trainer.state.log_history`` and the ``report_to``
integrations keep every one, ``PrinterCallback`` prints energy and CO2e so far, power and the
forecast (``CarbonCallback(metrics="all")`` prints all), and the summary is printed when training
ends, each channel with its figure and method::

    python integrations/transformers_example.py --epochs 2 --country SE
"""

from __future__ import annotations

import argparse
import tempfile
from typing import Any

import torch
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

from carbon_callbacks.transformers import CarbonCallback


class ParityDataset(torch.utils.data.Dataset):
    """Random token sequences labelled by whether token 1 occurs an odd number of times."""

    def __init__(self, size: int, length: int = 16, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(1, 64, (size, length), generator=generator)
        self.labels = ((self.ids == 1).sum(dim=1) % 2).long()

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict[str, Any]:
        ids = self.ids[index]
        return {
            "input_ids": ids,
            "attention_mask": torch.ones_like(ids),
            "labels": self.labels[index],
        }


def main() -> None:
    """Train for a few epochs with ``CarbonCallback`` and print what it logs."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--country", default=None, help="where the power is used, e.g. SE")
    options = parser.parse_args()
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=64,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=32,
        num_labels=2,
    )
    with tempfile.TemporaryDirectory() as output_dir:
        args = TrainingArguments(
            output_dir=output_dir,
            num_train_epochs=options.epochs,
            per_device_train_batch_size=16,
            eval_strategy="epoch",
            logging_steps=5,
            include_num_input_tokens_seen=True,
            save_strategy="no",
            report_to=[],
            disable_tqdm=True,  # PrinterCallback prints every log, the watched carbon/* included
            use_cpu=True,
            dataloader_num_workers=0,
        )
        # Without a location the country is guessed from the time zone (World value if none).
        trainer = Trainer(
            model=BertForSequenceClassification(config),
            args=args,
            train_dataset=ParityDataset(320),
            eval_dataset=ParityDataset(64, seed=1),
            callbacks=[CarbonCallback(country=options.country)],
        )
        trainer.train()


if __name__ == "__main__":
    main()
