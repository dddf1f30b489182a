"""A dataset that reports, from inside each DataLoader worker, which threads the worker runs.

Lives apart from the tests so that a worker started with ``spawn`` (which imports the dataset's
module) loads torch and nothing else.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import torch
from torch.utils.data import Dataset


class ThreadReportingDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Regression pairs; every item fetched appends ``<pid> <thread names>`` to ``report_dir``.

    Each process writes its own file, ``<pid>.txt``, so reports never interleave.
    """

    def __init__(self, size: int, report_dir: Path) -> None:
        self.x = torch.randn(size, 4, generator=torch.Generator().manual_seed(size))
        self.report_dir = report_dir

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        names = ",".join(sorted(thread.name for thread in threading.enumerate()))
        with (self.report_dir / f"{os.getpid()}.txt").open("a") as report:
            report.write(f"{names}\n")
        x = self.x[index]
        return x, x.sum(0, keepdim=True)


def read_reports(report_dir: Path) -> dict[int, set[str]]:
    """Process id -> every thread name seen in it while fetching items."""
    seen: dict[int, set[str]] = {}
    for path in report_dir.glob("*.txt"):
        names = seen.setdefault(int(path.stem), set())
        for line in path.read_text().splitlines():
            names.update(name for name in line.split(",") if name)
    return seen
