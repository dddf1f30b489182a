"""What every crash-test program shares: its arguments, the fake energy and the "signal me" marker.

Each program trains for ``--steps`` optimizer steps, ``STEPS_PER_EPOCH`` a epoch, and adds
``JOULES_PER_STEP`` to the fake RAPL package counter (``--counter``) in every step, so every epoch
the run log records is worth exactly ``STEPS_PER_EPOCH * JOULES_PER_STEP``. Once it is in the
middle of its second epoch (one full epoch logged) it writes the ``--marker`` file and from then
on trains slowly, so that the parent's signal lands mid-epoch.
"""

from __future__ import annotations

import argparse
import os
import signal
import time
from pathlib import Path
from typing import Any

STEPS_PER_EPOCH = 8
BATCH_SIZE = 8
JOULES_PER_STEP = 1.0
INTENSITY = 100.0  # gCO2e/kWh
SLOW_STEP_S = 0.05
"""Sleep per step once the marker is written: long enough for a signal to land inside an epoch."""


def parse_args(description: str) -> argparse.Namespace:
    """The arguments every program takes (``--help`` lists them)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("output_dir", type=Path, help="folder for the run log")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--with-callback", dest="callback", action="store_true", default=True)
    which.add_argument("--without-callback", dest="callback", action="store_false")
    parser.add_argument("--steps", type=int, default=400, help="optimizer steps to train")
    parser.add_argument("--marker", type=Path, required=True, help="written once mid-epoch 1")
    parser.add_argument("--counter", type=Path, required=True, help="a fake energy_uj file")
    args = parser.parse_args()
    # A launcher may start us with SIGINT ignored (a background job of a non-interactive shell);
    # Ctrl-C must raise KeyboardInterrupt here as in a terminal.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    return args


def tracker_options(output_dir: Path) -> dict[str, Any]:
    """Measure the fake RAPL tree only (no GPU, even where there is one), at a fixed intensity."""
    return {"gpu_ids": [], "intensity_g_per_kwh": INTENSITY, "output_dir": output_dir}


def burn(counter: Path, joules: float = JOULES_PER_STEP) -> None:
    """Advance the fake counter in one atomic replace, as the sampler may read it at any time."""
    staged = counter.with_name(counter.name + ".new")
    staged.write_text(f"{int(counter.read_text()) + round(joules * 1_000_000)}\n")
    os.replace(staged, counter)


class Pacer:
    """Called after every step: writes the marker mid-epoch 1, then slows training down.

    ``finish`` writes ``<marker>.finished`` when training returns normally, so the parent can
    tell a signal that stopped training from one that came too late to.
    """

    def __init__(self, marker: Path) -> None:
        self.marker = marker
        self.marked = False

    def step_done(self, epoch: int, batch: int) -> None:
        """After step ``batch`` (0-based) of epoch ``epoch`` (0-based)."""
        if self.marked:
            time.sleep(SLOW_STEP_S)
        elif epoch >= 1 and batch >= 1:
            staged = self.marker.with_name(self.marker.name + ".new")
            staged.write_text(f"{os.getpid()}\n")
            os.replace(staged, self.marker)  # the parent never sees a half-written marker
            self.marked = True

    def finish(self) -> None:
        """Training returned normally: say so."""
        self.marker.with_name(self.marker.name + ".finished").write_text("finished\n")
