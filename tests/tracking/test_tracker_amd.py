"""The whole core (default meters, sampler, tracker, run log) over fake amdsmi and powercap."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from carbon_callbacks import Tracker, read_run_log
from carbon_callbacks._internal.warnings import CarbonCallbacksWarning
from carbon_callbacks.training import RankInfo, TrainingMonitor
from tests.meters.fake_amdsmi import (
    AMDSMI_STATUS_DRIVER_NOT_LOADED,
    FakeAmdGpu,
    FakeAmdsmi,
    install,
)
from tests.meters.fake_powercap import FakePowercap

ROOT = Path(__file__).resolve().parents[2]
BDF_A, BDF_B = "0000:c1:00.0", "0000:c6:00.0"
VISIBILITY = ("HIP_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES")


@pytest.fixture
def gpus(monkeypatch: pytest.MonkeyPatch) -> FakeAmdsmi:
    """An MI300X with an energy counter and an MI100 that reports power only."""
    fake = FakeAmdsmi(
        [
            FakeAmdGpu("uuid-a", BDF_A, "GPU-aaaa", 0, name="AMD Instinct MI300X", power_w=600.0),
            FakeAmdGpu(
                "uuid-b", BDF_B, "GPU-bbbb", 1, name="AMD Instinct MI100", power_w=250.0,
                energy_supported=False,
            ),
        ]
    )  # fmt: skip
    for name in VISIBILITY:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setitem(sys.modules, "pynvml", None)  # no NVIDIA binding: AMD alone
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    return install(monkeypatch, fake)


def test_counter_exact_and_power_integrated_in_one_window(
    gpus: FakeAmdsmi, powercap: FakePowercap, tmp_path: Path
) -> None:
    with Tracker(output_dir=tmp_path, interval_s=60) as tracker:  # no background samples
        channels = {c.id: c for c in tracker.channels}
        assert channels["gpu:amd0"].quantity == "energy"
        assert channels["gpu:amd1"].quantity == "power"
        tracker.begin_window("epoch 0")
        before = gpus.gpus[0].accumulator
        gpus.advance(2.0)
        counts = gpus.gpus[0].accumulator - before
        epoch = tracker.end_window("epoch 0")
    assert epoch is not None
    figures = {c.channel.id: c.energy_j for c in epoch.channels}
    assert figures["gpu:amd0"] == pytest.approx(counts * gpus.gpus[0].resolution_uj * 1e-6)
    assert figures["gpu:amd1"] == pytest.approx(250.0 * epoch.duration_s)  # trapezoid, constant
    assert not epoch.partial and not epoch.estimated
    assert gpus.shutdown_calls == 1
    header = read_run_log(next(tmp_path.glob("*.jsonl"))).header
    assert header is not None
    hows = {c["id"]: c["how"] for c in header["channels"]}
    assert "amdsmi_get_energy_count" in hows["gpu:amd0"]
    assert "integrated by the sampler" in hows["gpu:amd1"]


def test_power_only_on_a_bursty_trace_stays_within_its_bounds(
    gpus: FakeAmdsmi, powercap: FakePowercap
) -> None:
    """Samples at 40 W and 300 W: the trapezoid lies between the trace's least and most power."""
    trace = [300.0, 40.0, 300.0, 300.0, 40.0, 40.0, 300.0]
    with Tracker(write_log=False, interval_s=60) as tracker:
        tracker.begin_window("bursty")
        for watts in trace:
            gpus.gpus[1].power_w = watts
            tracker.so_far(exact=True)
        epoch = tracker.end_window("bursty")
    assert epoch is not None
    (figure,) = [c for c in epoch.channels if c.channel.id == "gpu:amd1"]
    assert figure.energy_j is not None and not figure.partial
    assert min(trace) * epoch.duration_s <= figure.energy_j <= max(trace) * epoch.duration_s


def test_visibility_variables_choose_the_gpus(
    gpus: FakeAmdsmi, powercap: FakePowercap, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROCR_VISIBLE_DEVICES", "GPU-bbbb")
    with Tracker(write_log=False) as tracker:
        assert [c.id for c in tracker.channels if c.kind == "gpu"] == ["gpu:amd1"]


def test_gpu_lost_mid_run_warns_once_and_marks_it_partial(
    gpus: FakeAmdsmi, powercap: FakePowercap
) -> None:
    with (
        pytest.warns(CarbonCallbacksWarning, match="gpu:amd0") as caught,
        Tracker(write_log=False, interval_s=60) as tracker,
    ):
        tracker.begin_window("epoch 0")
        gpus.advance(1.0)
        tracker.so_far(exact=True)
        gpus.gpus[0].lost_after_reads = gpus.gpus[0].reads
        for _ in range(5):
            tracker.so_far(exact=True)
        epoch = tracker.end_window("epoch 0")
    assert epoch is not None
    lost = next(c for c in epoch.channels if c.channel.id == "gpu:amd0")
    assert lost.partial and "Device Not found" in (lost.fault or "")
    assert lost.energy_j == pytest.approx(600.0, rel=1e-4)  # what was seen before the loss
    assert sum("gpu:amd0" in str(w.message) for w in caught) == 1


def test_no_amdgpu_driver_is_not_a_partial_figure(gpus: FakeAmdsmi, powercap: FakePowercap) -> None:
    gpus.init_error = AMDSMI_STATUS_DRIVER_NOT_LOADED
    with Tracker(write_log=False, interval_s=60) as tracker:
        powercap.add_energy("intel-rapl:0", 10_000_000)
    assert tracker.summary is not None
    assert not tracker.summary.partial and tracker.summary.unmeasured == ()
    assert any(u.source == "amdsmi" for u in tracker.unavailable)


@pytest.mark.parametrize(
    ("rank", "measured"),
    [
        (RankInfo(devices=("0000:c6:00",)), ["gpu:amd1"]),  # what gpu_ids_of gives on ROCm
        (RankInfo(devices=()), []),
        (RankInfo(), ["gpu:amd0", "gpu:amd1"]),
    ],
)
def test_the_monitor_measures_the_amd_gpu_the_rank_uses(
    gpus: FakeAmdsmi, powercap: FakePowercap, rank: RankInfo, measured: list[str]
) -> None:
    monitor = TrainingMonitor(write_log=False)
    monitor.start(rank, reduce=lambda values: values)
    assert monitor.tracker is not None
    assert [c.id for c in monitor.tracker.channels if c.kind == "gpu"] == measured
    monitor.stop()


def test_two_ranks_on_the_two_dies_of_one_package_sum_to_it_once(
    monkeypatch: pytest.MonkeyPatch, powercap: FakePowercap
) -> None:
    name = "AMD Instinct MI250X"
    fake = install(
        monkeypatch,
        FakeAmdsmi(
            [
                FakeAmdGpu("u0", BDF_A, "GPU-aaaa", 0, name=name, serial="S1", power_w=500.0),
                FakeAmdGpu("u1", BDF_B, "GPU-bbbb", 1, name=name, serial="S1", reads_zero=True),
            ]
        ),
    )
    monkeypatch.setitem(sys.modules, "pynvml", None)
    ranks = [Tracker(write_log=False, interval_s=60, gpu_ids=[bdf]) for bdf in (BDF_A, BDF_B)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for tracker in ranks:
            tracker.start()
            tracker.begin_window("epoch 0")
        fake.advance(1.0)
        ranks[0].stop()  # one tracker ends first: the other's amdsmi must stay initialised
        epochs = [tracker.end_window("epoch 0") for tracker in ranks[1:]]
        ranks[1].stop()
    assert [str(w.message) for w in caught] == []
    assert fake.shutdown_calls == 1
    assert ranks[0].summary is not None
    epochs.insert(0, ranks[0].summary)
    gpu_j = [
        c.energy_j for e in epochs if e is not None for c in e.channels if c.channel.kind == "gpu"
    ]
    assert gpu_j == [pytest.approx(250.0), pytest.approx(250.0)]  # 500 J, counted once in all


def test_devices_lists_amd_gpus_with_their_method() -> None:
    code = (
        "import sys\n"
        "from tests.meters.fake_amdsmi import FakeAmdGpu, FakeAmdsmi\n"
        "sys.modules['pynvml'] = None\n"
        "sys.modules['amdsmi'] = FakeAmdsmi([\n"
        "    FakeAmdGpu('u0', '0000:c1:00.0', 'GPU-aaaa', 0, name='AMD Instinct MI300X'),\n"
        "    FakeAmdGpu('u1', '0000:c6:00.0', 'GPU-bbbb', 1, name='AMD Instinct MI100',\n"
        "               energy_supported=False),\n"
        "])\n"
        "from carbon_callbacks.cli import main\n"
        "raise SystemExit(main(sys.argv[1:]))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in VISIBILITY} | {"PYTHONPATH": str(ROOT)}

    def devices(*flags: str) -> str:
        result = subprocess.run(
            [sys.executable, "-c", code, "devices", *flags],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True,
        )  # fmt: skip
        return result.stdout

    channels = {c["id"]: c for c in json.loads(devices("--json"))["channels"]}
    assert channels["gpu:amd0"]["device"] == "AMD Instinct MI300X"
    assert channels["gpu:amd0"]["method"] == "measured"
    assert "amdsmi energy counter" in channels["gpu:amd0"]["how"]
    assert "current_socket_power" in channels["gpu:amd1"]["how"]
    human = devices()
    assert "gpu:amd0" in human and "AMD Instinct MI300X" in human and "amdsmi" in human
