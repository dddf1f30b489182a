"""A small, real training run in plain Python: logistic regression by SGD on synthetic data.

No framework and no download, so it runs anywhere; measure it with
``carbon-callbacks run -- python integrations/plain_python.py``. With ``--tracker`` it measures
itself through the ``Tracker`` API instead and prints each epoch's energy.
"""

from __future__ import annotations

import argparse
import math
import random


def make_data(samples: int, features: int, seed: int) -> tuple[list[list[float]], list[int]]:
    """Points from two Gaussian blobs, labelled by blob."""
    rng = random.Random(seed)
    xs, ys = [], []
    for _ in range(samples):
        label = rng.randint(0, 1)
        centre = 0.3 if label else -0.3
        xs.append([rng.gauss(centre, 1.5) for _ in range(features)])
        ys.append(label)
    return xs, ys


def train_epoch(weights: list[float], xs: list[list[float]], ys: list[int], rate: float) -> float:
    """One SGD pass; returns the mean log-loss."""
    total = 0.0
    for x, y in zip(xs, ys, strict=True):
        z = sum(w * v for w, v in zip(weights, x, strict=True))
        p = 1.0 / (1.0 + math.exp(-max(min(z, 30.0), -30.0)))
        total -= math.log(p if y else 1.0 - p)
        for i, v in enumerate(x):
            weights[i] -= rate * (p - y) * v
    return total / len(xs)


def main() -> None:
    """Train for a few epochs and print the loss (and, with --tracker, the energy) of each."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--tracker", action="store_true", help="measure with the Tracker API")
    args = parser.parse_args()
    xs, ys = make_data(args.samples, features=32, seed=0)
    weights = [0.0] * 32
    if not args.tracker:
        for epoch in range(args.epochs):
            print(f"epoch {epoch}: loss {train_epoch(weights, xs, ys, rate=0.01):.4f}")
        return

    from carbon_callbacks import Tracker

    # No location given: the country is guessed from the system time zone (World value if none),
    # offline; pass country="SE", zone=... or cloud=/region= to say where the power is used.
    with Tracker() as tracker:
        for epoch in range(args.epochs):
            tracker.begin_window(f"epoch {epoch}")
            loss = train_epoch(weights, xs, ys, rate=0.01)
            tracker.step(len(xs))
            window = tracker.end_window(f"epoch {epoch}")
            energy = (
                "not measured"
                if window is None or window.energy_j is None
                else (f"{window.energy_j:.1f} J")
            )
            print(f"epoch {epoch}: loss {loss:.4f}, energy {energy}")
    summary = tracker.summary
    if summary is not None and summary.energy_kwh is not None:
        kind = "estimated" if summary.estimated else "measured"
        print(f"total: {summary.energy_kwh:.3g} kWh ({kind}), run log {tracker.log_path}")
    if summary is not None and summary.co2e_kg is not None and summary.intensity is not None:
        print(f"CO2e: {summary.co2e_kg * 1000:.3g} g ({summary.intensity.source})")


if __name__ == "__main__":
    main()
