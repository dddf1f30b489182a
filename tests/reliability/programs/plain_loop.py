"""A plain training loop (linear regression by SGD, pure Python) measured by a ``Tracker``.

Each epoch is a ``"epoch"`` window; ``--without-callback`` runs the same loop without a tracker.
"""

from __future__ import annotations

import contextlib
import random

from carbon_callbacks import Tracker
from tests.reliability.programs.common import (
    BATCH_SIZE,
    STEPS_PER_EPOCH,
    Pacer,
    burn,
    parse_args,
    tracker_options,
)


def main() -> None:
    """Train ``--steps`` steps, with a tracker unless told otherwise."""
    args = parse_args(__doc__ or "")
    pacer = Pacer(args.marker, args.output_dir if args.mark_at_checkpoint else None)
    rng = random.Random(0)
    data = [(x, 3.0 * x + 1.0) for x in (rng.uniform(-1, 1) for _ in range(BATCH_SIZE))]
    weight, bias = 0.0, 0.0
    tracker = Tracker(**tracker_options(args.output_dir)) if args.callback else None
    with tracker if tracker is not None else contextlib.nullcontext():
        for epoch in range(args.steps // STEPS_PER_EPOCH):
            if tracker is not None:
                tracker.begin_window("epoch")
            for batch in range(STEPS_PER_EPOCH):
                burn(args.counter)
                grad_w = sum(2 * (weight * x + bias - y) * x for x, y in data) / len(data)
                grad_b = sum(2 * (weight * x + bias - y) for x, y in data) / len(data)
                weight, bias = weight - 0.1 * grad_w, bias - 0.1 * grad_b
                if tracker is not None:
                    tracker.step()
                pacer.step_done(epoch, batch)
            if tracker is not None:
                tracker.end_window("epoch")
    pacer.finish()


if __name__ == "__main__":
    main()
