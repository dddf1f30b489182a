"""A custom training loop with ``Tracker``, as the README shows, run by a launcher's ranks.

``torchrun --nproc_per_node 2 tests/tracker_launch_run.py --sync DIR --out DIR`` (or two processes
started with a launcher's variables) runs a tiny CPU loop per rank; nothing tells the tracker its
rank but the environment. After ``start`` each rank writes ``ready-<rank>`` (its pid) and waits
for ``go``, so the test can advance a fake RAPL counter while every rank's tracker is running.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from carbon_callbacks import Tracker

STEPS = 20
MIN_CPU_S = 0.1
"""CPU time each rank spends while measured: ten of psutil's 10 ms ticks, so every rank's CPU
estimate is above zero however fast the steps are (twenty tiny steps can take under one tick)."""
WAIT_S = 600.0
"""A hang guard for the test's answer, never a speed check."""


def wait_for_test(sync: Path, rank: str) -> None:
    staged = sync / f"ready-{rank}.new"
    staged.write_text(str(os.getpid()))
    os.replace(staged, sync / f"ready-{rank}")
    deadline = time.monotonic() + WAIT_S
    while not (sync / "go").exists():
        if time.monotonic() > deadline:
            raise TimeoutError("no 'go' from the test")
        time.sleep(0.01)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sync", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    rank = os.environ.get("RANK", os.environ.get("SLURM_PROCID", "0"))
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(128, 32), torch.randn(128, 1)
    with Tracker(output_dir=args.out, cpu_watts=10.0, intensity_g_per_kwh=100.0) as tracker:
        wait_for_test(args.sync, rank)
        cpu_start = time.process_time()
        for _ in range(STEPS):
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            optimizer.step()
            tracker.step()
        while time.process_time() - cpu_start < MIN_CPU_S:
            pass


if __name__ == "__main__":
    main()
