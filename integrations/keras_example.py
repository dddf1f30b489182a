"""A small Keras 3 training run measured by ``CarbonCallback``: offline, generated data, seconds.

Run: ``KERAS_BACKEND=torch python integrations/keras_example.py`` (torch is the default backend
here; any installed Keras backend works). Keras's epoch line shows the energy and CO2e so far and
the power (``CarbonCallback(metrics="all")`` adds every carbon metric); the same land in
``History``, in the CSV file ``CSVLogger`` writes, and with everything else in the run log under
``carbon-runs/``. The summary, printed to stderr when training ends, lists each channel with its
figure and method (the CPU figure is an estimate, unless RAPL can be read: CPU time x watts per
busy core, the CPU's TDP / cores when the embedded table knows the CPU, else 12 W).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras
import numpy as np

from carbon_callbacks.keras import CarbonCallback


def make_data(samples: int, features: int, seed: int) -> tuple[Any, Any]:
    """Points from two Gaussian blobs, labelled by blob."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=(samples, 1)).astype("float32")
    points = rng.normal(loc=(labels - 0.5) * 0.6, scale=1.5, size=(samples, features))
    return points.astype("float32"), labels


def make_model(features: int) -> Any:
    """A small multilayer perceptron for binary classification."""
    model = keras.Sequential(
        [
            keras.Input((features,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model


def main() -> None:
    """Train for a few epochs with validation, then print the energy so far from ``History``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--csv", type=Path, help="CSVLogger file (default: a temporary one)")
    args = parser.parse_args()
    x, y = make_data(args.samples, features=32, seed=0)
    model = make_model(features=32)
    with tempfile.TemporaryDirectory() as folder:
        csv_path = args.csv or Path(folder) / "training.csv"
        # No location given: the country is guessed from the system time zone (World value if
        # none), offline; pass country="SE", zone=... or cloud=/region= to say where power is used.
        # CarbonCallback comes before CSVLogger, which fixes its columns at the first epoch.
        history = model.fit(
            x,
            y,
            batch_size=64,
            epochs=args.epochs,
            validation_split=0.2,
            verbose=2,
            callbacks=[CarbonCallback(), keras.callbacks.CSVLogger(str(csv_path))],
        )
        columns = csv_path.read_text().splitlines()[0].split(",")
    energy = history.history.get("carbon/energy_kwh", [])
    for epoch, kwh in enumerate(energy):
        print(f"epoch {epoch}: {kwh * 3.6e6:.1f} J so far")
    print(f"CSV columns from CarbonCallback: {[c for c in columns if c.startswith('carbon/')]}")


if __name__ == "__main__":
    main()
