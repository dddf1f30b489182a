"""A tiny Keras 3 ``model.fit`` (torch backend) with ``carbon_callbacks.keras.CarbonCallback``.

``--without-callback`` runs the same ``fit`` without it: the crash tests compare how both end.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras
import numpy as np

from carbon_callbacks.keras import CarbonCallback
from tests.reliability.programs.common import (
    BATCH_SIZE,
    STEPS_PER_EPOCH,
    Pacer,
    burn,
    parse_args,
    tracker_options,
)


class Burn(keras.callbacks.Callback):
    """Burns the fake counter as each batch begins and paces once it has ended."""

    def __init__(self, counter: Path, pacer: Pacer) -> None:
        super().__init__()
        self.counter = counter
        self.pacer = pacer
        self.epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch = epoch

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        burn(self.counter)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.pacer.step_done(self.epoch, batch)


def main() -> None:
    """Fit ``--steps`` steps, with the callback unless told otherwise."""
    args = parse_args(__doc__ or "")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.random.default_rng(0).random((STEPS_PER_EPOCH * BATCH_SIZE, 4), dtype="float32")
    pacer = Pacer(args.marker)
    callbacks: list[Any] = [Burn(args.counter, pacer)]
    if args.callback:
        callbacks.append(CarbonCallback(**tracker_options(args.output_dir)))
    model.fit(
        x,
        x.sum(axis=1, keepdims=True),
        batch_size=BATCH_SIZE,
        epochs=args.steps // STEPS_PER_EPOCH,
        verbose=0,
        callbacks=callbacks,
    )
    pacer.finish()


if __name__ == "__main__":
    main()
