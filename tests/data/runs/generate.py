"""Write the run logs in this folder by running the real Tracker over fake GPUs and RAPL files.

Run from the repository root: ``PYTHONPATH=. python tests/data/runs/generate.py``. Each log is what
the Tracker wrote, renamed to a stable file name; ``truncated.jsonl`` is then cut in the middle of
its summary record, as a run killed while writing it would leave it. The GPU counters advance by
their power times the real time slept, so durations and energies agree.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

from carbon_callbacks.tracking.tracker import Tracker
from tests.meters.fake_powercap import FakePowercap
from tests.meters.fake_pynvml import FakeGpu, FakePynvml, install

HERE = Path(__file__).resolve().parent
EPOCH_S = 0.4
"""Real seconds slept per window."""


@contextmanager
def fake_machine() -> Iterator[tuple[FakePynvml, FakePowercap]]:
    """Two H100s and a one-socket RAPL tree (package + DRAM), installed for the Tracker."""
    with tempfile.TemporaryDirectory() as temp, pytest.MonkeyPatch.context() as monkeypatch:
        for name in list(os.environ):
            if name.startswith("CARBON_CALLBACKS_") or name == "ELECTRICITYMAPS_API_TOKEN":
                monkeypatch.delenv(name)
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
        gpus = FakePynvml(
            [
                FakeGpu("GPU-aaaaaaaa-0000", name="NVIDIA H100 80GB HBM3", power_w=300.0),
                FakeGpu("GPU-bbbbbbbb-0000", name="NVIDIA H100 80GB HBM3", power_w=280.0),
            ]
        )
        install(monkeypatch, gpus)
        tree = FakePowercap(Path(temp) / "fs")
        tree.add_zone("intel-rapl:0", "package-0", energy_uj=1_000_000)
        tree.add_zone("intel-rapl:0:0", "dram", energy_uj=500_000)
        monkeypatch.setenv("CARBON_CALLBACKS_POWERCAP_ROOT", str(tree.class_root))
        yield gpus, tree


def busy(gpus: FakePynvml, tree: FakePowercap, seconds: float = EPOCH_S) -> None:
    """Let ``seconds`` pass with the GPUs at their power, the CPU at 60 W and DRAM at 8 W."""
    time.sleep(seconds)
    gpus.advance(seconds)
    tree.add_energy("intel-rapl:0", round(60e6 * seconds))
    tree.add_energy("intel-rapl:0:0", round(8e6 * seconds))


def epochs(
    tracker: Tracker, gpus: FakePynvml, tree: FakePowercap, count: int, steps: int = 50
) -> None:
    """``count`` windows named ``epoch N``, each with ``steps`` steps."""
    for epoch in range(count):
        tracker.begin_window(f"epoch {epoch}")
        busy(gpus, tree)
        tracker.step(steps)
        tracker.end_window(f"epoch {epoch}")


def keep(tracker: Tracker, name: str) -> Path:
    """Move the tracker's log to ``name`` under this folder."""
    assert tracker.log_path is not None
    target = HERE / name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(tracker.log_path, target)
    return target


def single(work: Path) -> None:
    """A completed run with two windows."""
    with fake_machine() as (gpus, tree):
        tracker = Tracker(
            output_dir=work, interval_s=60, country="DE", pue=1.2, gpu_ids=[0], run_name="single"
        )
        with tracker:
            epochs(tracker, gpus, tree, 2)
        keep(tracker, "single.jsonl")


def truncated(work: Path) -> None:
    """A run cut in the middle of its summary record."""
    with fake_machine() as (gpus, tree):
        tracker = Tracker(
            output_dir=work, interval_s=60, country="DE", gpu_ids=[0], run_name="truncated"
        )
        with tracker:
            epochs(tracker, gpus, tree, 2)
        path = keep(tracker, "truncated.jsonl")
    data = path.read_bytes()
    last = data.rstrip(b"\n").rfind(b"\n") + 1
    path.write_bytes(data[: last + (len(data) - last) // 2])


def predicted(work: Path) -> None:
    """A run with two prediction records (after epoch 0, and in epoch 1), then its summary.

    The GPU draws more in epoch 1, so the first prediction is low and the latest one closer.
    """
    with fake_machine() as (gpus, tree):
        tracker = Tracker(
            output_dir=work,
            interval_s=60,
            intensity_g_per_kwh=300.0,
            gpu_ids=[0],
            run_name="predicted",
        )
        with tracker:
            epochs(tracker, gpus, tree, 1)
            predict(tracker, total_steps=100, spread=(0.85, 1.2))
            gpus.gpus[0].power_w = 360.0  # the second epoch works harder than the first
            tracker.begin_window("epoch 1")
            busy(gpus, tree, EPOCH_S / 2)
            tracker.step(25)
            predict(tracker, total_steps=100, spread=(0.9, 1.1))
            busy(gpus, tree, EPOCH_S / 2)
            tracker.step(25)
            tracker.end_window("epoch 1")
        keep(tracker, "predicted.jsonl")


def predict(tracker: Tracker, total_steps: int, spread: tuple[float, float]) -> None:
    """Write a prediction record from the run so far, extrapolated linearly in steps."""
    now = tracker.so_far(exact=True)
    assert now is not None and now.energy_kwh is not None
    scale = total_steps / tracker.steps
    low, high = spread

    def triple(value: float) -> list[float]:
        return [value * low, value, value * high]

    fields: Mapping[str, object] = {
        "steps_done": tracker.steps,
        "total_steps": total_steps,
        "warmup_steps": 10,
        "energy_kwh": triple(now.energy_kwh * scale),
        "co2e_kg": triple((now.co2e_kg or 0.0) * scale),
        "duration_s": triple(now.duration_s * scale),
        "interval": 0.8,
    }
    tracker.record("prediction", fields)


def sweep(work: Path) -> None:
    """Three runs of a learning-rate sweep; the last one fails in its second epoch."""
    for index, rate in enumerate(("1e-3", "3e-3", "1e-2")):
        with fake_machine() as (gpus, tree):
            tracker = Tracker(
                output_dir=work,
                interval_s=60,
                country="SE",
                gpu_ids=[0],
                run_name=f"sweep lr={rate}",
            )
            tracker.start()
            epochs(tracker, gpus, tree, 1 if index == 2 else 2)
            tracker.stop("failed" if index == 2 else "completed")
            keep(tracker, f"sweep/lr-{rate}.jsonl")


def distributed(work: Path) -> None:
    """A two-rank run on one node: rank 0 measures GPU 0 and the host, rank 1 only GPU 1."""
    with fake_machine() as (gpus, tree):
        ranks = [
            Tracker(
                output_dir=work / f"rank{rank}",
                interval_s=60,
                country="US",
                gpu_ids=[rank],
                measure_host=rank == 0,
                run_name="ddp",
                context={
                    "distributed": {
                        "global_rank": rank,
                        "local_rank": rank,
                        "world_size": 2,
                        "num_nodes": 1,
                        "device_id": rank,
                    }
                },
            )
            for rank in (0, 1)
        ]
        for tracker in ranks:
            tracker.start()
        for epoch in range(2):
            for tracker in ranks:
                tracker.begin_window(f"epoch {epoch}")
            busy(gpus, tree)
            for tracker in ranks:
                tracker.step(50)
                tracker.end_window(f"epoch {epoch}")
        for rank, tracker in enumerate(ranks):
            tracker.stop("completed")
            keep(tracker, f"ddp/rank{rank}.jsonl")


def main() -> None:
    """Write every log."""
    for folder in ("sweep", "ddp"):
        shutil.rmtree(HERE / folder, ignore_errors=True)
    with tempfile.TemporaryDirectory() as temp:
        work = Path(temp)
        for make in (single, truncated, predicted, sweep, distributed):
            make(work)


if __name__ == "__main__":
    main()
