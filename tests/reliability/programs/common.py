"""What every crash-test program shares: its arguments, the fake energy and the "signal me" marker.

Each program trains for ``--steps`` optimizer steps, ``STEPS_PER_EPOCH`` a epoch, and adds
``JOULES_PER_STEP`` to the fake RAPL package counter (``--counter``) in every step, so every epoch
the run log records is worth exactly ``STEPS_PER_EPOCH * JOULES_PER_STEP``. Once it is in the
middle of its second epoch (one full epoch logged) it writes the ``--marker`` file and waits, inside
that training step, until a signal has reached it: the parent's signal always lands mid-epoch and
in this waiting code, whatever the machine's load. (A signal landing inside a framework's own code
can be lost there: Keras's ``pythonify_logs`` runs ``float(value)`` under a bare ``except:``, which
swallows a ``KeyboardInterrupt``; that is Keras's behaviour, not what these tests are about.)

With ``--mark-at-checkpoint S`` (checkpoints every S seconds) it marks earlier, in the first epoch
(no window closed yet), once the run log holds a checkpoint with every joule burnt so far: what a
worker killed by its launcher leaves.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

STEPS_PER_EPOCH = 8
BATCH_SIZE = 8
JOULES_PER_STEP = 1.0
INTENSITY = 100.0  # gCO2e/kWh
CHECKPOINT_STEP = 2
"""With ``--mark-at-checkpoint``: the step (0-based, in epoch 0) that waits for a checkpoint."""
SIGNAL_WAIT_S = 120.0
"""How long the marked step waits for a signal before training goes on (and so runs to its end,
which the tests report as a signal that had no effect)."""
POLL_S = 0.01


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
    parser.add_argument(
        "--mark-at-checkpoint",
        type=float,
        metavar="S",
        help="checkpoints every S seconds; mark in epoch 0 once one holds the energy burnt",
    )
    args = parser.parse_args()
    if args.mark_at_checkpoint is not None:
        from carbon_callbacks.tracking import progress

        progress.CHECKPOINT_SPACING_S = args.mark_at_checkpoint  # the interval, set internally
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
    """Called after every step: writes the marker mid-epoch 1, then waits there for a signal.

    A signal whose Python handler runs (SIGINT, and SIGTERM where a handler is installed) also
    writes its number to a wakeup pipe (``signal.set_wakeup_fd``) at the moment it arrives, so the
    marked step can wait until the handler has run (and raised, or set a framework's flag) rather
    than for a guessed time. A signal with no handler (SIGKILL, SIGTERM's default) ends the
    process while it waits. ``finish`` writes ``<marker>.finished`` when training returns
    normally, so the parent can tell a signal that stopped training from one that did not.

    With ``checkpoints`` (the run-log folder) the marker comes in epoch 0, at its third step,
    once the log's latest checkpoint holds every joule burnt so far (``CHECKPOINT_STEP + 1``
    steps' worth), or after ``SIGNAL_WAIT_S`` without one.

    Must be built in the main thread, before training starts.
    """

    def __init__(self, marker: Path, checkpoints: Path | None = None) -> None:
        self.marker = marker
        self.checkpoints = checkpoints
        self.marked = False
        self._wakeup, writer = os.pipe()
        os.set_blocking(self._wakeup, False)
        os.set_blocking(writer, False)
        signal.set_wakeup_fd(writer, warn_on_full_buffer=False)

    def step_done(self, epoch: int, batch: int) -> None:
        """After step ``batch`` (0-based) of epoch ``epoch`` (0-based)."""
        if self.checkpoints is not None:
            if self.marked or (epoch, batch) != (0, CHECKPOINT_STEP):
                return
            self._wait_for_checkpoint((CHECKPOINT_STEP + 1) * JOULES_PER_STEP)
        elif self.marked or epoch < 1 or batch < 1:
            return
        staged = self.marker.with_name(self.marker.name + ".new")
        staged.write_text(f"{os.getpid()}\n")
        os.replace(staged, self.marker)  # the parent never sees a half-written marker
        self.marked = True
        deadline = time.monotonic() + SIGNAL_WAIT_S
        while not self._signal_arrived() and time.monotonic() < deadline:
            time.sleep(POLL_S)  # a raising handler raises here, inside this training step

    def _wait_for_checkpoint(self, joules: float) -> None:
        assert self.checkpoints is not None
        deadline = time.monotonic() + SIGNAL_WAIT_S
        while time.monotonic() < deadline:
            logged = _last_checkpoint_j(self.checkpoints)
            if logged is not None and abs(logged - joules) < 1e-6:
                return
            time.sleep(POLL_S)

    def _signal_arrived(self) -> bool:
        try:
            return bool(os.read(self._wakeup, 64))
        except BlockingIOError:
            return False

    def finish(self) -> None:
        """Training returned normally: say so."""
        self.marker.with_name(self.marker.name + ".finished").write_text("finished\n")


def _last_checkpoint_j(folder: Path) -> float | None:
    """The energy of the latest checkpoint in the run log under ``folder`` (read as plain JSON)."""
    joules = None
    for path in folder.glob("*.jsonl"):
        for line in path.read_text().splitlines():
            if line.endswith("}") and '"type":"checkpoint"' in line:
                joules = json.loads(line).get("energy_j")
    return joules
