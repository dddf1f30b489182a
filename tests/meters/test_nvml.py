from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

real_pynvml = pytest.importorskip("pynvml")

from carbon_callbacks.meters.base import Unavailable  # noqa: E402
from carbon_callbacks.meters.nvml import NvmlMeter, parse_cuda_visible_devices  # noqa: E402
from carbon_callbacks.meters.visible import VisiblePosition  # noqa: E402
from tests.meters.fake_pynvml import FakeGpu, FakePynvml, error, install  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]

ENERGY_HOW = "NVML total energy counter (nvmlDeviceGetTotalEnergyConsumption)"
POWER_HOW = "NVML power draw (nvmlDeviceGetPowerUsage), integrated by the sampler"
MIG_NOTE = "the whole GPU's figure, shared by the MIG instances on it"

# NVML order: 0, 1, 2. "a1" is a prefix of both GPU 0 and GPU 1; "a1b" only of GPU 0.
UUID0 = "GPU-a1b2c3d4-0000-1111-2222-333333333333"
UUID1 = "GPU-a1ff0000-0000-1111-2222-444444444444"
UUID2 = "GPU-7e570000-0000-1111-2222-555555555555"
MIG_A = "MIG-0c0c0c0c-0000-1111-2222-aaaaaaaaaaaa"
MIG_B = "MIG-0d0d0d0d-0000-1111-2222-bbbbbbbbbbbb"

MakeNvml = Callable[..., FakePynvml]


@pytest.fixture
def make_nvml(monkeypatch: pytest.MonkeyPatch) -> MakeNvml:
    """Install a fake pynvml with the given GPUs; torch is hidden so CUDA_VISIBLE_DEVICES rules."""
    monkeypatch.delitem(sys.modules, "torch", raising=False)

    def make(*gpus: FakeGpu, init_error: int | None = None) -> FakePynvml:
        return install(monkeypatch, FakePynvml(list(gpus), init_error))

    return make


@pytest.fixture
def three_gpus(make_nvml: MakeNvml) -> FakePynvml:
    return make_nvml(
        FakeGpu(UUID0, name="GPU zero"),
        FakeGpu(UUID1, name="GPU one"),
        FakeGpu(UUID2, name="GPU two"),
    )


def channel_ids(cuda_visible: str | None, **env: str) -> list[str]:
    if cuda_visible is not None:
        env["CUDA_VISIBLE_DEVICES"] = cuda_visible
    return [channel.id for channel in NvmlMeter(environ=env).open()]


# --- readings -----------------------------------------------------------------------------------


def test_energy_counter_is_read_in_joules_and_grows(make_nvml: MakeNvml) -> None:
    fake = make_nvml(
        FakeGpu(UUID0, name="NVIDIA H100 80GB HBM3", power_w=250.0, energy_mj=5_000_000)
    )
    meter = NvmlMeter(environ={})

    (channel,) = meter.open()

    assert channel.id == "gpu:0"
    assert channel.kind == "gpu"
    assert channel.device == "NVIDIA H100 80GB HBM3"
    assert channel.method == "measured"
    assert channel.quantity == "energy"
    assert channel.how == ENERGY_HOW
    assert channel.scope == "device" and channel.host_level is False
    assert meter.unavailable == []
    assert meter.max_interval_s is None
    assert meter.read().values == {"gpu:0": 5000.0}
    fake.advance(2.0)
    assert meter.read().values == {"gpu:0": 5500.0}
    fake.gpus[0].power_w = 50.0
    fake.advance(0.5)
    assert meter.read().values == {"gpu:0": 5525.0}


def test_pre_volta_gpu_falls_back_to_power_in_watts(make_nvml: MakeNvml) -> None:
    fake = make_nvml(FakeGpu(UUID0, name="Tesla P100", energy_supported=False, power_w=87.5))
    meter = NvmlMeter(environ={})

    (channel,) = meter.open()

    assert channel.quantity == "power"
    assert channel.how == POWER_HOW
    assert meter.read().values == {"gpu:0": 87.5}
    fake.gpus[0].power_w = 120.25
    assert meter.read().values == {"gpu:0": 120.25}


def test_power_only_reads_power_where_the_counter_exists_and_says_so(make_nvml: MakeNvml) -> None:
    fake = make_nvml(
        FakeGpu(UUID0, name="NVIDIA H100 80GB HBM3", power_w=250.0),
        FakeGpu(UUID1, name="Tesla P100", energy_supported=False, power_w=87.5),
    )
    meter = NvmlMeter(environ={}, power_only=True)

    channels = meter.open()

    assert [c.quantity for c in channels] == ["power", "power"]
    assert all(c.how.startswith(POWER_HOW + "; power_only=True") for c in channels)
    assert meter.read().values == {"gpu:0": 250.0, "gpu:1": 87.5}
    assert "nvmlDeviceGetTotalEnergyConsumption" not in fake.calls  # not even probed


def test_gpu_without_energy_or_power_is_unavailable_and_others_still_open(
    make_nvml: MakeNvml,
) -> None:
    make_nvml(
        FakeGpu(UUID0, name="Tesla K80", energy_supported=False, power_supported=False),
        FakeGpu(UUID1),
    )
    meter = NvmlMeter(environ={})

    assert [c.id for c in meter.open()] == ["gpu:1"]
    assert meter.unavailable == [
        Unavailable(
            "nvml",
            "GPU 0 (Tesla K80): neither energy counter nor power reading is supported",
            degrades=True,  # it draws power that goes unmeasured: warned
        )
    ]


def test_old_bindings_returning_bytes_are_decoded(make_nvml: MakeNvml) -> None:
    make_nvml(FakeGpu(UUID0, name="Tesla V100", bytes_strings=True))

    (channel,) = NvmlMeter(environ={"CUDA_VISIBLE_DEVICES": UUID0}).open()

    assert channel.device == "Tesla V100"


# --- unavailable NVML ---------------------------------------------------------------------------


def test_missing_nvidia_ml_py_is_reported_with_the_pip_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)
    meter = NvmlMeter(environ={})

    assert meter.open() == []
    assert meter.unavailable == [
        Unavailable(
            "nvml",
            "nvidia-ml-py is not installed",
            'pip install "carbon-callbacks[nvidia]" (from a clone: pip install ".[nvidia]")',
        )
    ]
    assert meter.read().values == {}
    meter.close()


@pytest.mark.parametrize(
    ("code", "reason", "degrades"),
    [
        (
            real_pynvml.NVML_ERROR_LIBRARY_NOT_FOUND,
            "NVIDIA driver not found (libnvidia-ml.so.1 could not be loaded)",
            False,
        ),
        (real_pynvml.NVML_ERROR_DRIVER_NOT_LOADED, "NVIDIA driver is not loaded", False),
        (real_pynvml.NVML_ERROR_NO_PERMISSION, "no permission to use NVML", True),
        (
            real_pynvml.NVML_ERROR_UNKNOWN,
            "NVML could not be initialised (NVML error: Unknown Error)",
            True,
        ),
    ],
)
def test_nvml_init_failure_is_unavailable_not_raised(
    make_nvml: MakeNvml, code: int, reason: str, degrades: bool
) -> None:
    fake = make_nvml(FakeGpu(UUID0), init_error=code)
    meter = NvmlMeter(environ={})

    assert meter.open() == []
    assert [u.reason for u in meter.unavailable] == [reason]
    assert [u.degrades for u in meter.unavailable] == [degrades]  # a hidden GPU is warned about
    assert meter.read().values == {}
    meter.close()
    assert fake.shutdown_calls == 0


def test_machine_without_gpus_says_so(make_nvml: MakeNvml) -> None:
    make_nvml()
    meter = NvmlMeter(environ={})

    assert meter.open() == []
    assert meter.unavailable == [Unavailable("nvml", "NVML reports no NVIDIA GPU")]


def test_gpu_lost_before_open_is_unavailable_and_others_open(make_nvml: MakeNvml) -> None:
    make_nvml(FakeGpu(UUID0, lost_after_reads=0), FakeGpu(UUID1))
    meter = NvmlMeter(environ={})

    assert [c.id for c in meter.open()] == ["gpu:1"]
    assert meter.unavailable == [
        Unavailable("nvml", "GPU 0: NVML error: GPU is lost", degrades=True)
    ]


# --- faults while reading -----------------------------------------------------------------------


def test_gpu_failing_its_probe_is_unavailable_with_the_nvml_reason(make_nvml: MakeNvml) -> None:
    no_permission = error(real_pynvml.NVML_ERROR_NO_PERMISSION)
    make_nvml(FakeGpu(UUID0, name="GPU zero", fault=no_permission), FakeGpu(UUID1))
    meter = NvmlMeter(environ={})

    assert [c.id for c in meter.open()] == ["gpu:1"]
    assert meter.unavailable == [
        Unavailable("nvml", "GPU 0 (GPU zero): NVML error: Insufficient Permissions", degrades=True)
    ]


def test_gpu_lost_mid_run_faults_that_channel_only(make_nvml: MakeNvml) -> None:
    # One successful probe at open, then two good reads, then the GPU falls off the bus.
    fake = make_nvml(FakeGpu(UUID0, power_w=100.0), FakeGpu(UUID1, lost_after_reads=3))
    meter = NvmlMeter(environ={})
    meter.open()

    for _ in range(2):
        assert set(meter.read().values) == {"gpu:0", "gpu:1"}
        fake.advance(1.0)
    lost = meter.read()
    fake.advance(1.0)
    later = meter.read()

    assert lost.faults == {"gpu:1": "NVML error: GPU is lost"}
    assert later.faults == {"gpu:1": "NVML error: GPU is lost"}
    assert list(lost.values) == ["gpu:0"]
    assert later.values["gpu:0"] == lost.values["gpu:0"] + 100.0


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (error(real_pynvml.NVML_ERROR_UNKNOWN), "NVML error: Unknown Error"),
        (RuntimeError("boom"), "unexpected error: RuntimeError('boom')"),
    ],
)
def test_any_read_error_becomes_a_fault(make_nvml: MakeNvml, fault: Exception, reason: str) -> None:
    fake = make_nvml(FakeGpu(UUID0), FakeGpu(UUID1))
    meter = NvmlMeter(environ={})
    meter.open()
    fake.gpus[0].fault = fault

    reading = meter.read()

    assert reading.faults == {"gpu:0": reason}
    assert list(reading.values) == ["gpu:1"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_read_in_a_forked_child_does_not_touch_nvml(make_nvml: MakeNvml) -> None:
    fake = make_nvml(FakeGpu(UUID0))
    meter = NvmlMeter(environ={})
    meter.open()
    calls_at_fork = len(fake.calls)
    read_fd, write_fd = os.pipe()

    pid = os.fork()
    if pid == 0:  # child: report what happened, then leave without running pytest's teardown
        try:
            reading = meter.read()
            meter.close()
            result = {
                "values": reading.values,
                "faults": reading.faults,
                "new_calls": fake.calls[calls_at_fork:],
            }
            os.write(write_fd, json.dumps(result).encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        child = json.loads(pipe.read())
    os.waitpid(pid, 0)

    assert child == {
        "values": {},
        "faults": {"gpu:0": "NVML handle not valid after fork"},
        "new_calls": [],
    }
    assert meter.read().values == {"gpu:0": 1000.0}  # the parent's handle is still good


# --- lifecycle ----------------------------------------------------------------------------------


def test_constructor_neither_imports_nor_initialises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "pynvml")
    real_import = __import__

    def no_pynvml(name: str, *args: Any, **kwargs: Any) -> Any:
        assert name != "pynvml", "pynvml imported before open()"
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr("builtins.__import__", no_pynvml)
    meter = NvmlMeter(gpu_ids=[0, "GPU-a1"], environ={})

    assert meter.unavailable == []
    assert "pynvml" not in sys.modules


def test_close_shuts_down_exactly_once(make_nvml: MakeNvml) -> None:
    fake = make_nvml(FakeGpu(UUID0))
    meter = NvmlMeter(environ={})
    meter.open()

    meter.close()
    meter.close()

    assert fake.init_calls == 1
    assert fake.shutdown_calls == 1
    calls = len(fake.calls)
    assert meter.read().faults == {"gpu:0": "NVML meter is closed"}
    assert len(fake.calls) == calls


def test_open_twice_initialises_once_and_reopens_after_close(make_nvml: MakeNvml) -> None:
    fake = make_nvml(FakeGpu(UUID0))
    meter = NvmlMeter(environ={})

    first = meter.open()
    assert meter.open() == first
    assert fake.init_calls == 1
    meter.close()
    assert meter.open() == first
    assert fake.init_calls == 2
    assert meter.read().values == {"gpu:0": 1000.0}


def test_shutdown_error_is_swallowed(make_nvml: MakeNvml) -> None:
    fake = make_nvml(FakeGpu(UUID0))
    meter = NvmlMeter(environ={})
    meter.open()
    fake.nvmlShutdown()  # someone else shut NVML down: ours now raises Uninitialized

    meter.close()

    assert fake.shutdown_calls == 2


def test_importing_the_module_does_not_import_pynvml() -> None:
    code = "import carbon_callbacks.meters.nvml, sys; assert 'pynvml' not in sys.modules"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }

    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )

    assert result.returncode == 0, result.stderr


# --- device selection ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", []),
        ("  ", []),
        ("-1", []),
        ("NoDevFiles", []),
        ("1,0", ["1", "0"]),
        (" GPU-a1 , 2 ", ["GPU-a1", "2"]),
        ("0,-1,1", ["0", "-1", "1"]),
        ("0,,1", ["0", "", "1"]),
    ],
)
def test_parse_cuda_visible_devices(value: str | None, expected: list[str] | None) -> None:
    assert parse_cuda_visible_devices(value) == expected


def test_unset_means_every_gpu_in_nvml_order(three_gpus: FakePynvml) -> None:
    channels = NvmlMeter(environ={}).open()

    assert [c.id for c in channels] == ["gpu:0", "gpu:1", "gpu:2"]
    assert [c.device for c in channels] == ["GPU zero", "GPU one", "GPU two"]
    assert {c.how for c in channels} == {ENERGY_HOW}


def test_environ_defaults_to_os_environ(
    three_gpus: FakePynvml, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2")

    assert [c.id for c in NvmlMeter().open()] == ["gpu:2"]


@pytest.mark.parametrize("value", ["", "-1", "NoDevFiles"])
def test_no_visible_device_means_no_channel_and_no_complaint(
    three_gpus: FakePynvml, value: str
) -> None:
    meter = NvmlMeter(environ={"CUDA_VISIBLE_DEVICES": value})

    assert meter.open() == []
    assert meter.unavailable == []
    assert "nvmlDeviceGetTotalEnergyConsumption" not in three_gpus.calls


def test_indices_keep_cuda_order_and_say_how_they_were_mapped(three_gpus: FakePynvml) -> None:
    channels = NvmlMeter(environ={"CUDA_VISIBLE_DEVICES": "1,0"}).open()

    assert [c.id for c in channels] == ["gpu:1", "gpu:0"]
    assert channels[0].how == f"{ENERGY_HOW}; CUDA index 1 taken as NVML index 1 (PCI bus order)"


def test_pci_bus_order_makes_index_mapping_exact(three_gpus: FakePynvml) -> None:
    env = {"CUDA_VISIBLE_DEVICES": "1,0", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    channels = NvmlMeter(environ=env).open()

    assert [c.id for c in channels] == ["gpu:1", "gpu:0"]
    assert {c.how for c in channels} == {ENERGY_HOW}


def test_uuids_map_to_nvml_indices_by_uuid(three_gpus: FakePynvml) -> None:
    channels = NvmlMeter(environ={"CUDA_VISIBLE_DEVICES": f"{UUID2},{UUID0}"}).open()

    assert [c.id for c in channels] == ["gpu:2", "gpu:0"]
    assert [c.device for c in channels] == ["GPU two", "GPU zero"]
    assert {c.how for c in channels} == {ENERGY_HOW}


@pytest.mark.parametrize("value", ["GPU-7e5,a1b", "7e57,GPU-a1b2c3d4"])
def test_unique_uuid_prefixes_with_or_without_gpu_dash(three_gpus: FakePynvml, value: str) -> None:
    assert channel_ids(value) == ["gpu:2", "gpu:0"]


@pytest.mark.parametrize(
    ("value", "expected", "stopped_at"),
    [
        ("2,a1,0", ["gpu:2"], "'a1'"),  # ambiguous prefix
        ("0,7,1", ["gpu:0"], "'7'"),  # no such index
        ("0,-1,1", ["gpu:0"], "'-1'"),
        ("0,,1", ["gpu:0"], "''"),
        ("1,GPU-ffff,0", ["gpu:1"], "'GPU-ffff'"),  # unknown UUID
        ("1,GPU-,0", ["gpu:1"], "'GPU-'"),
    ],
)
def test_first_invalid_entry_ends_the_list_like_cuda(
    three_gpus: FakePynvml, value: str, expected: list[str], stopped_at: str
) -> None:
    meter = NvmlMeter(environ={"CUDA_VISIBLE_DEVICES": value})

    assert [c.id for c in meter.open()] == expected
    (unavailable,) = meter.unavailable
    assert f"CUDA_VISIBLE_DEVICES entry {stopped_at} matches no GPU" in unavailable.reason


@pytest.mark.parametrize("value", ["GPU-", "MIG-", ",0"])
def test_empty_uuid_is_invalid_even_with_a_single_gpu(make_nvml: MakeNvml, value: str) -> None:
    make_nvml(FakeGpu(UUID0, mig=[MIG_A]))

    assert channel_ids(value) == []


def test_same_gpu_twice_gives_one_channel(three_gpus: FakePynvml) -> None:
    assert channel_ids(f"0,{UUID0},a1b") == ["gpu:0"]


def test_mig_instance_is_measured_through_its_parent(make_nvml: MakeNvml) -> None:
    fake = make_nvml(FakeGpu(UUID0), FakeGpu(UUID1, power_w=300.0, mig=[MIG_A, MIG_B]))
    meter = NvmlMeter(environ={"CUDA_VISIBLE_DEVICES": MIG_B})

    (channel,) = meter.open()
    fake.advance(1.0)

    assert channel.id == "gpu:1"
    assert channel.how == f"{ENERGY_HOW}; {MIG_NOTE}"
    assert meter.read().values == {"gpu:1": 1300.0}


def test_two_mig_instances_on_one_parent_give_one_channel(make_nvml: MakeNvml) -> None:
    make_nvml(FakeGpu(UUID0, mig=[MIG_A, MIG_B]), FakeGpu(UUID1))

    assert channel_ids(f"{MIG_A},{MIG_B[:10]},1") == ["gpu:0", "gpu:1"]


def test_legacy_mig_syntax_names_the_parent(make_nvml: MakeNvml) -> None:
    make_nvml(FakeGpu(UUID0), FakeGpu(UUID1, mig=[MIG_A]))

    (channel,) = NvmlMeter(environ={"CUDA_VISIBLE_DEVICES": f"MIG-{UUID1}/1/0"}).open()

    assert channel.id == "gpu:1"
    assert channel.how.endswith(MIG_NOTE)


def test_explicit_gpu_ids_override_cuda_visible_devices(three_gpus: FakePynvml) -> None:
    meter = NvmlMeter(gpu_ids=[2, "GPU-a1ff", "7e5"], environ={"CUDA_VISIBLE_DEVICES": "0"})

    channels = meter.open()

    assert [c.id for c in channels] == ["gpu:2", "gpu:1"]
    assert {c.how for c in channels} == {ENERGY_HOW}
    assert meter.unavailable == []


def test_explicit_gpu_id_that_matches_nothing_is_reported_and_the_rest_kept(
    three_gpus: FakePynvml,
) -> None:
    meter = NvmlMeter(gpu_ids=["GPU-a1", 5, 0], environ={})

    assert [c.id for c in meter.open()] == ["gpu:0"]
    assert [u.reason for u in meter.unavailable] == [
        "gpu_ids entry 'GPU-a1' matches no GPU, or several",
        "gpu_ids entry 5 matches no GPU, or several",
    ]


def test_explicit_mig_id_measures_the_parent(make_nvml: MakeNvml) -> None:
    make_nvml(FakeGpu(UUID0), FakeGpu(UUID1, mig=[MIG_A]))

    (channel,) = NvmlMeter(gpu_ids=[MIG_A], environ={"CUDA_VISIBLE_DEVICES": "0"}).open()

    assert channel.id == "gpu:1"


@pytest.mark.parametrize(
    ("gpu_id", "exception"),
    [(1.5, TypeError), (True, TypeError), (-1, ValueError), ("", ValueError), ("0", ValueError)],
)
def test_gpu_ids_mistakes_fail_at_construction(gpu_id: object, exception: type[Exception]) -> None:
    with pytest.raises(exception):
        NvmlMeter(gpu_ids=[gpu_id])  # type: ignore[list-item]


def fake_torch(uuids: list[str], initialized: bool = True) -> SimpleNamespace:
    """A stand-in for torch with CUDA; ``asked`` lists the device-property calls made on it."""
    asked: list[int] = []

    def properties(index: int) -> SimpleNamespace:
        asked.append(index)
        return SimpleNamespace(uuid=uuids[index])

    cuda = SimpleNamespace(
        is_initialized=lambda: initialized,
        device_count=lambda: len(uuids),
        get_device_properties=properties,
    )
    return SimpleNamespace(cuda=cuda, asked=asked)


def test_initialised_torch_names_the_devices_exactly(
    three_gpus: FakePynvml, monkeypatch: pytest.MonkeyPatch
) -> None:
    # torch prints UUIDs bare; its device 0 is NVML's GPU 2, whatever the index order says.
    monkeypatch.setitem(sys.modules, "torch", fake_torch([UUID2[4:], UUID1[4:]]))

    channels = NvmlMeter(environ={"CUDA_VISIBLE_DEVICES": "0,1"}).open()

    assert [c.id for c in channels] == ["gpu:2", "gpu:1"]
    assert {c.how for c in channels} == {ENERGY_HOW}


def test_torch_mig_device_maps_to_its_parent(
    make_nvml: MakeNvml, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_nvml(FakeGpu(UUID0), FakeGpu(UUID1, mig=[MIG_A]))
    monkeypatch.setitem(sys.modules, "torch", fake_torch([MIG_A[4:]]))

    (channel,) = NvmlMeter(environ={}).open()

    assert channel.id == "gpu:1"
    assert channel.how.endswith(MIG_NOTE)


def test_torch_without_cuda_initialised_is_left_alone(
    three_gpus: FakePynvml, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch = fake_torch([UUID2[4:]], initialized=False)
    monkeypatch.setitem(sys.modules, "torch", torch)

    assert channel_ids("1") == ["gpu:1"]
    assert torch.asked == []


def test_broken_torch_falls_back_to_cuda_visible_devices(
    three_gpus: FakePynvml, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "torch", SimpleNamespace())  # no .cuda at all

    assert channel_ids("1") == ["gpu:1"]


# --- a rank's GPU among the visible ones ---------------------------------------------------------


def rank_meter(local_rank: int, ranks: int, **env: str) -> NvmlMeter:
    return NvmlMeter(environ=env, visible_position=VisiblePosition(local_rank, ranks))


def test_a_rank_measures_the_visible_gpu_at_its_local_rank(three_gpus: FakePynvml) -> None:
    picked = [rank_meter(rank, 2, CUDA_VISIBLE_DEVICES="2,0").open() for rank in (0, 1)]

    assert [[c.id for c in channels] for channels in picked] == [["gpu:2"], ["gpu:0"]]
    assert "the visible GPU at local rank 1's position" in picked[1][0].how


def test_with_no_variable_the_position_counts_in_cuda_order(three_gpus: FakePynvml) -> None:
    (channel,) = rank_meter(1, 3).open()
    assert channel.id == "gpu:1" and "CUDA index 1 taken as NVML index 1" in channel.how
    (exact,) = rank_meter(1, 3, CUDA_DEVICE_ORDER="PCI_BUS_ID").open()
    assert exact.id == "gpu:1" and "CUDA index" not in exact.how


def test_the_position_counts_among_torchs_devices(
    three_gpus: FakePynvml, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "torch", fake_torch([UUID2[4:], UUID0[4:]]))
    assert [c.id for c in rank_meter(1, 2).open()] == ["gpu:0"]


def test_a_rank_that_sees_one_gpu_of_its_own_measures_it(three_gpus: FakePynvml) -> None:
    meter = rank_meter(1, 2, CUDA_VISIBLE_DEVICES="2")  # srun --gpus-per-task: one GPU each
    assert [c.id for c in meter.open()] == ["gpu:2"] and meter.unavailable == []


def test_the_nodes_only_gpu_is_measured_once_by_local_rank_0(make_nvml: MakeNvml) -> None:
    make_nvml(FakeGpu(UUID0))
    first, second = rank_meter(0, 2), rank_meter(1, 2)

    assert [c.id for c in first.open()] == ["gpu:0"] and first.unavailable == []
    assert second.open() == []
    (record,) = second.unavailable
    assert "local rank 0" in record.reason and not record.degrades


def test_more_gpus_than_ranks_leaves_every_gpu_to_local_rank_0_and_says_so(
    three_gpus: FakePynvml,
) -> None:
    first, second = rank_meter(0, 2), rank_meter(1, 2)

    assert [c.id for c in first.open()] == ["gpu:0", "gpu:1", "gpu:2"]
    (warning,) = first.unavailable
    assert warning.degrades and not warning.unmeasured  # warned, yet nothing goes unmeasured
    assert "3 GPUs are visible to each of the node's 2 ranks" in warning.reason
    assert warning.fix is not None and "gpu_ids=" in warning.fix
    assert second.open() == []
    (record,) = second.unavailable
    assert not record.degrades and "local rank 0 measures them all" in record.reason


def test_gpu_ids_win_over_the_position(three_gpus: FakePynvml) -> None:
    meter = NvmlMeter(gpu_ids=[2], environ={}, visible_position=VisiblePosition(0, 3))
    assert [c.id for c in meter.open()] == ["gpu:2"]


# --- the fake is faithful where the meter relies on it ------------------------------------------


def test_fake_uses_the_real_error_classes_and_constants(three_gpus: FakePynvml) -> None:
    assert three_gpus.NVMLError is real_pynvml.NVMLError
    assert three_gpus.NVMLError_NotSupported is real_pynvml.NVMLError_NotSupported
    assert three_gpus.NVMLError_GpuIsLost is real_pynvml.NVMLError_GpuIsLost
    assert three_gpus.NVML_ERROR_GPU_IS_LOST == real_pynvml.NVML_ERROR_GPU_IS_LOST
    assert type(error(real_pynvml.NVML_ERROR_NOT_SUPPORTED)) is real_pynvml.NVMLError_NotSupported


def test_fake_functions_exist_in_the_real_binding_with_the_same_arity() -> None:
    fake_functions = {
        name: getattr(FakePynvml, name) for name in vars(FakePynvml) if name.startswith("nvml")
    }

    assert len(fake_functions) >= 10
    for name, function in fake_functions.items():
        real_params = list(inspect.signature(getattr(real_pynvml, name)).parameters)
        fake_params = list(inspect.signature(function).parameters)[1:]  # minus self
        assert len(fake_params) == len(real_params), name


def test_fake_refuses_calls_before_init_like_nvml() -> None:
    fake = FakePynvml([FakeGpu(UUID0)])

    with pytest.raises(real_pynvml.NVMLError_Uninitialized):
        fake.nvmlDeviceGetCount()
