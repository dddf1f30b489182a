"""The whole core (default meters, sampler, tracker, run log) over fake pynvml and powercap."""

from __future__ import annotations

from pathlib import Path

import pytest

from carbon_callbacks import Tracker, read_run_log
from carbon_callbacks._internal.warnings import CarbonCallbacksWarning
from carbon_callbacks.reporting.runs import run_report
from carbon_callbacks.reporting.text import format_run_summary
from carbon_callbacks.training import RankInfo, TrainingMonitor
from tests.meters.fake_powercap import FakePowercap
from tests.meters.fake_pynvml import FakeGpu, FakePynvml, install

UUID_A = "GPU-aaaaaaaa-1111-2222-3333-444444444444"
UUID_B = "GPU-bbbbbbbb-1111-2222-3333-444444444444"


@pytest.fixture
def gpus(monkeypatch: pytest.MonkeyPatch) -> FakePynvml:
    fake = FakePynvml(
        [
            FakeGpu(UUID_A, name="NVIDIA H100 80GB HBM3", power_w=300.0),
            FakeGpu(UUID_B, name="Tesla P100-PCIE-16GB", power_w=150.0, energy_supported=False),
        ]
    )
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return install(monkeypatch, fake)


def test_counter_and_power_gpus_and_rapl_in_one_window(
    gpus: FakePynvml, powercap: FakePowercap, tmp_path: Path
) -> None:
    with Tracker(output_dir=tmp_path, interval_s=60) as tracker:  # no background samples
        channels = {c.id: c for c in tracker.channels}
        assert channels["gpu:0"].quantity == "energy" and channels["gpu:1"].quantity == "power"
        tracker.begin_window("epoch 0")
        gpus.advance(2.0)  # H100: 300 W x 2 s on its counter
        powercap.add_energy("intel-rapl:0", 50_000_000)
        epoch = tracker.end_window("epoch 0")
    assert epoch is not None
    figures = {c.channel.id: c.energy_j for c in epoch.channels}
    assert figures["gpu:0"] == pytest.approx(600.0)
    assert figures["cpu:package-0"] == pytest.approx(50.0)
    # the P100 read 150 W at both ends: the trapezoid gives 150 W x the window's duration
    assert figures["gpu:1"] == pytest.approx(150.0 * epoch.duration_s)
    assert not epoch.partial and not epoch.estimated
    assert gpus.shutdown_calls == 1
    log = read_run_log(next(tmp_path.glob("*.jsonl")))
    assert {c["id"] for c in log.header["channels"]} >= {"gpu:0", "gpu:1"}  # type: ignore[index]


def test_only_visible_gpus_are_measured(
    gpus: FakePynvml, powercap: FakePowercap, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", UUID_B[:12])
    with Tracker(write_log=False) as tracker:
        assert [c.id for c in tracker.channels if c.kind == "gpu"] == ["gpu:1"]


def test_gpu_lost_mid_run_marks_it_partial_and_keeps_the_rest(
    gpus: FakePynvml, powercap: FakePowercap
) -> None:
    with (
        pytest.warns(CarbonCallbacksWarning, match="gpu:0"),
        Tracker(write_log=False, interval_s=60) as tracker,
    ):
        tracker.begin_window("epoch 0")
        gpus.advance(1.0)
        gpus.gpus[0].lost_after_reads = gpus.gpus[0].reads  # falls off the bus now
        powercap.add_energy("intel-rapl:0", 10_000_000)
        epoch = tracker.end_window("epoch 0")
    assert epoch is not None
    by_id = {c.channel.id: c for c in epoch.channels}
    assert by_id["gpu:0"].partial and "lost" in (by_id["gpu:0"].fault or "").lower()
    assert by_id["gpu:0"].energy_j is None  # no good reading since the window start: unknown
    assert not by_id["gpu:1"].partial
    assert by_id["cpu:package-0"].energy_j == pytest.approx(10.0)
    assert epoch.partial
    assert epoch.energy_j == pytest.approx(10.0 + by_id["gpu:1"].energy_j)  # type: ignore[operator]


def test_gpu_lost_after_some_energy_keeps_that_part_flagged_partial(
    gpus: FakePynvml, powercap: FakePowercap
) -> None:
    with (
        pytest.warns(CarbonCallbacksWarning, match="gpu:0"),
        Tracker(write_log=False, interval_s=60) as tracker,  # no background samples
    ):
        tracker.begin_window("epoch 0")
        gpus.advance(1.0)  # 300 J on the counter
        tracker.so_far(exact=True)  # a sample sees them, as a poll would
        gpus.gpus[0].lost_after_reads = gpus.gpus[0].reads
        gpus.advance(1.0)  # never seen
        epoch = tracker.end_window("epoch 0")
    assert epoch is not None
    lost = next(c for c in epoch.channels if c.channel.id == "gpu:0")
    assert lost.energy_j == pytest.approx(300.0)
    assert lost.partial


def test_a_gpu_lost_before_the_start_makes_every_figure_partial_and_is_named(
    gpus: FakePynvml, powercap: FakePowercap, tmp_path: Path
) -> None:
    """Its power goes uncounted from the first second: the summary says so, never a clean total."""
    gpus.gpus[0].lost_after_reads = 0
    with (
        pytest.warns(CarbonCallbacksWarning, match="GPU is lost"),
        Tracker(output_dir=tmp_path, interval_s=60) as tracker,
    ):
        tracker.begin_window("epoch 0")
        powercap.add_energy("intel-rapl:0", 10_000_000)
        epoch = tracker.end_window("epoch 0")
    summary = tracker.summary
    assert epoch is not None and summary is not None
    assert "gpu:0" not in {c.channel.id for c in summary.channels}
    assert all(c.fault is None for c in summary.channels)  # what was measured is complete
    assert summary.partial and epoch.partial
    (missing,) = summary.unmeasured
    assert missing.startswith("nvml: ") and "GPU is lost" in missing
    assert any("not measured: nvml" in line for line in format_run_summary(summary))
    log = read_run_log(next(tmp_path.glob("*.jsonl")))
    assert log.summary is not None and log.summary["partial"] is True
    assert log.summary["unmeasured"] == [missing]
    assert run_report([log]).measurement.partial  # type: ignore[union-attr]  # the report, reading the log back, agrees


def test_no_nvidia_driver_is_not_a_partial_figure(gpus: FakePynvml, powercap: FakePowercap) -> None:
    """A machine without an NVIDIA driver has no GPU to miss: its figures are complete."""
    gpus.init_error = gpus.NVML_ERROR_DRIVER_NOT_LOADED
    with Tracker(write_log=False, interval_s=60) as tracker:
        powercap.add_energy("intel-rapl:0", 10_000_000)
    assert tracker.summary is not None
    assert not tracker.summary.partial and tracker.summary.unmeasured == ()


@pytest.mark.parametrize(
    ("rank", "measured"),
    [
        (RankInfo(devices=(UUID_B,)), ["gpu:1"]),  # devices=[1], both GPUs visible
        (RankInfo(devices=()), []),  # a CPU run on a GPU machine
        (RankInfo(global_rank=1, local_rank=1, world_size=2, devices=()), []),  # a CPU DDP rank
        (RankInfo(), ["gpu:0", "gpu:1"]),  # the devices unknown: every visible GPU
    ],
)
def test_the_monitor_measures_the_gpus_the_trainer_uses(
    gpus: FakePynvml, powercap: FakePowercap, rank: RankInfo, measured: list[str]
) -> None:
    monitor = TrainingMonitor(write_log=False)
    monitor.start(rank, reduce=lambda values: values)
    assert monitor.tracker is not None
    assert [c.id for c in monitor.tracker.channels if c.kind == "gpu"] == measured
    monitor.stop()


@pytest.mark.parametrize(("gpu_ids", "measured"), [(None, ["gpu:0", "gpu:1"]), ([1], ["gpu:1"])])
def test_gpu_ids_given_to_the_monitor_win_over_the_trainers_devices(
    gpus: FakePynvml, powercap: FakePowercap, gpu_ids: list[int] | None, measured: list[str]
) -> None:
    """``gpu_ids=None`` given explicitly means every visible GPU, even for a CPU trainer."""
    monitor = TrainingMonitor(write_log=False, gpu_ids=gpu_ids)
    monitor.start(RankInfo(devices=()), reduce=lambda values: values)
    assert monitor.tracker is not None
    assert [c.id for c in monitor.tracker.channels if c.kind == "gpu"] == measured
    monitor.stop()
