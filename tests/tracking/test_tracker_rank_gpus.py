"""``Tracker`` ranks of a custom loop measure their own GPU, told only the launcher's variables.

Two ranks of one node (torchrun's variables, as ``accelerate launch`` sets them too) run their
trackers side by side in this process over fake NVML or amdsmi GPUs whose counters the test
advances: each rank must measure the visible GPU at its local rank, so the report sums every GPU
once; where the visible GPUs do not say which GPU a rank uses, local rank 0 measures them all for
the node, warned once, and the other rank none.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

from carbon_callbacks import Tracker, read_run_log
from carbon_callbacks.reporting.report import build_report
from tests.meters.fake_amdsmi import FakeAmdGpu, FakeAmdsmi
from tests.meters.fake_amdsmi import install as install_amdsmi
from tests.meters.fake_powercap import FakePowercap
from tests.meters.fake_pynvml import FakeGpu, FakePynvml
from tests.meters.fake_pynvml import install as install_pynvml

RANKS = 2
WATTS = (100.0, 200.0, 300.0)
"""The fake GPUs' draw: over the test's 1 s, GPU k adds WATTS[k] J to its counter."""
LAUNCHER_VARIABLES = (
    "RANK",
    "LOCAL_RANK",
    "WORLD_SIZE",
    "LOCAL_WORLD_SIZE",
    "TORCHELASTIC_RUN_ID",
    "MASTER_ADDR",
    "MASTER_PORT",
    "CUDA_VISIBLE_DEVICES",
    "HIP_VISIBLE_DEVICES",
    "ROCR_VISIBLE_DEVICES",
)


@pytest.fixture(autouse=True)
def _no_launcher_outside(monkeypatch: pytest.MonkeyPatch, powercap: FakePowercap) -> None:
    """No variable of the test runner's own; a RAPL tree that draws nothing (local rank 0's)."""
    for name in LAUNCHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delitem(sys.modules, "torch", raising=False)  # the variables rule, not torch


def nvidia(monkeypatch: pytest.MonkeyPatch, count: int) -> Callable[[float], None]:
    fake = FakePynvml([FakeGpu(f"GPU-{k}0000000-1111", power_w=WATTS[k]) for k in range(count)])
    install_pynvml(monkeypatch, fake)
    monkeypatch.setitem(sys.modules, "amdsmi", None)
    return fake.advance


def amd(monkeypatch: pytest.MonkeyPatch, count: int) -> Callable[[float], None]:
    fake = FakeAmdsmi(
        [
            FakeAmdGpu(f"uuid-{k}", f"0000:c{k}:00.0", f"GPU-{k}aaa", k, power_w=WATTS[k])
            for k in range(count)
        ]
    )
    install_amdsmi(monkeypatch, fake)
    monkeypatch.setitem(sys.modules, "pynvml", None)
    return fake.advance


def run_ranks(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    advance: Callable[[float], None],
    visible: tuple[str | None, ...] = (None, None),
) -> list[Tracker]:
    """Start each rank's tracker under its variables, let 1 s of GPU energy pass, stop them."""
    trackers = []
    for rank in range(RANKS):
        environment = {
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": str(RANKS),
            "LOCAL_WORLD_SIZE": str(RANKS),
            "TORCHELASTIC_RUN_ID": "rank-gpus",
        }
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        if visible[rank] is None:
            monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
        else:
            monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible[rank])  # type: ignore[arg-type]
        tracker = Tracker(output_dir=tmp_path / "runs", interval_s=60, intensity_g_per_kwh=100.0)
        trackers.append(tracker.start())  # the meters read the variables now
    advance(1.0)
    for tracker in trackers:
        tracker.stop()
    return trackers


def gpu_channels(tracker: Tracker) -> list[str]:
    return [channel.id for channel in tracker.channels if channel.kind == "gpu"]


def gpu_joules(tracker: Tracker) -> float:
    assert tracker.summary is not None
    return sum(c.energy_j or 0.0 for c in tracker.summary.channels if c.channel.kind == "gpu")


def report_joules(tmp_path: Path) -> float:
    report = build_report(tmp_path / "runs")
    assert len(report.runs) == 1 and report.runs[0].ranks_found == (0, 1)
    measurement = report.runs[0].measurement
    assert measurement is not None and measurement.energy_j is not None
    return measurement.energy_j  # the RAPL package drew nothing: the GPUs alone


@pytest.mark.parametrize(
    ("gpus", "channels"),
    [(nvidia, [["gpu:0"], ["gpu:1"]]), (amd, [["gpu:amd0"], ["gpu:amd1"]])],
    ids=["nvidia", "amd"],
)
def test_each_rank_measures_the_visible_gpu_at_its_local_rank(
    gpus: Callable[[pytest.MonkeyPatch, int], Callable[[float], None]],
    channels: list[list[str]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the clear case: nothing to warn about
        trackers = run_ranks(monkeypatch, tmp_path, gpus(monkeypatch, RANKS))

    assert [gpu_channels(tracker) for tracker in trackers] == channels
    assert [gpu_joules(tracker) for tracker in trackers] == [
        pytest.approx(WATTS[0]),
        pytest.approx(WATTS[1]),
    ]
    assert report_joules(tmp_path) == pytest.approx(WATTS[0] + WATTS[1])  # once, not twice
    for rank, path in enumerate(sorted((tmp_path / "runs").glob("*.jsonl"))):
        header = read_run_log(path).header
        assert header is not None
        roles = header["context"]["distributed"]
        assert roles["local_world_size"] == RANKS
        assert roles["gpus"].startswith(f"the visible GPU at local rank {rank}'s position")


def test_a_rank_that_sees_one_gpu_of_its_own_measures_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    advance = nvidia(monkeypatch, 3)
    trackers = run_ranks(monkeypatch, tmp_path, advance, visible=("2", "0"))

    assert [gpu_channels(tracker) for tracker in trackers] == [["gpu:2"], ["gpu:0"]]
    assert report_joules(tmp_path) == pytest.approx(WATTS[2] + WATTS[0])


def test_gpus_the_ranks_cannot_tell_apart_are_measured_once_by_local_rank_0_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    advance = nvidia(monkeypatch, 3)  # three GPUs visible to each of two ranks
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trackers = run_ranks(monkeypatch, tmp_path, advance)

    messages = [str(warning.message) for warning in caught]
    assert len(messages) == 1, messages  # once, by local rank 0
    assert "3 GPUs are visible to each of the node's 2 ranks" in messages[0]
    assert "local rank 0's figure for every visible GPU stands in" in messages[0]
    assert "gpu_ids=" in messages[0]
    assert [gpu_channels(tracker) for tracker in trackers] == [["gpu:0", "gpu:1", "gpu:2"], []]
    assert trackers[0].summary is not None and not trackers[0].summary.partial
    assert report_joules(tmp_path) == pytest.approx(sum(WATTS))  # each GPU once


def test_gpu_ids_still_say_which_gpu_a_rank_measures(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    nvidia(monkeypatch, 3)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    with Tracker(write_log=False, interval_s=60, gpu_ids=[2]) as tracker:
        assert gpu_channels(tracker) == ["gpu:2"]
    assert tracker.context["distributed"]["gpus"] == "gpu_ids= argument"  # type: ignore[index]
