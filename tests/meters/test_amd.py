"""AmdMeter over the fake amdsmi; the fake itself checked against the installed package's source."""

from __future__ import annotations

import ast
import importlib.util
import inspect
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest

from carbon_callbacks.meters import amd
from carbon_callbacks.meters.amd import AmdMeter
from carbon_callbacks.meters.visible import VisiblePosition
from tests.meters import fake_amdsmi
from tests.meters.fake_amdsmi import (
    AMDSMI_STATUS_DRIVER_NOT_LOADED,
    AMDSMI_STATUS_INIT_ERROR,
    AMDSMI_STATUS_IO,
    AMDSMI_STATUS_NO_PERM,
    AmdSmiLibraryException,
    FakeAmdGpu,
    FakeAmdsmi,
    install,
)

ROOT = Path(__file__).resolve().parents[2]

ENERGY_HOW = (
    "amdsmi energy counter (amdsmi_get_energy_count: energy_accumulator x counter_resolution)"
)
BDF = ["0000:c1:00.0", "0000:c6:00.0", "0000:c9:00.0"]
HIP_UUID = ["GPU-1111aaaa22223333", "GPU-4444bbbb55556666", "GPU-7777cccc88889999"]
UUID = [
    "1fff74a1-0000-1000-8011-aaaaaaaaaaaa",
    "1fff74a1-0000-1000-8022-bbbbbbbbbbbb",
    "1fff74a1-0000-1000-8033-cccccccccccc",
]

MakeAmd = Callable[..., FakeAmdsmi]


def gpu(k: int, **fields: object) -> FakeAmdGpu:
    """Simulated GPU ``k``; amdsmi's order and HIP's coincide unless ``hip_id`` says otherwise."""
    defaults: dict[str, object] = {"hip_uuid": HIP_UUID[k], "hip_id": k}
    return FakeAmdGpu(UUID[k], BDF[k], **{**defaults, **fields})  # type: ignore[arg-type]


@pytest.fixture
def make_amd(monkeypatch: pytest.MonkeyPatch) -> MakeAmd:
    """Install a fake amdsmi with the given GPUs; torch hidden so the variables rule."""
    monkeypatch.delitem(sys.modules, "torch", raising=False)

    def make(*gpus: FakeAmdGpu, init_error: int | None = None) -> FakeAmdsmi:
        return install(monkeypatch, FakeAmdsmi(list(gpus), init_error))

    return make


@pytest.fixture
def three(make_amd: MakeAmd) -> FakeAmdsmi:
    return make_amd(gpu(0), gpu(1), gpu(2))


def ids(**env: str) -> list[str]:
    return [channel.id for channel in AmdMeter(environ=env).open()]


# --- readings -----------------------------------------------------------------------------------


def test_energy_counter_is_exact_in_joules(make_amd: MakeAmd) -> None:
    fake = make_amd(gpu(0, name="AMD Instinct MI300X", power_w=500.0, resolution_uj=15.3))
    meter = AmdMeter(environ={})
    (channel,) = meter.open()
    assert (channel.id, channel.kind, channel.device) == ("gpu:amd0", "gpu", "AMD Instinct MI300X")
    assert channel.method == "measured" and channel.quantity == "energy"
    assert channel.how == ENERGY_HOW and channel.scope == "device"
    assert fake.init_flags == [fake_amdsmi.AmdSmiInitFlags.INIT_AMD_GPUS]
    first = meter.read().values["gpu:amd0"]
    before = fake.gpus[0].accumulator
    fake.advance(2.0)
    counts = fake.gpus[0].accumulator - before
    second = meter.read()
    assert second.faults == {}
    assert second.values["gpu:amd0"] - first == pytest.approx(counts * 15.3e-6, rel=1e-12)
    assert second.values["gpu:amd0"] - first == pytest.approx(1000.0, abs=15.3e-6)
    meter.close()


def test_a_32_bit_accumulator_wrap_is_unwrapped(make_amd: MakeAmd) -> None:
    fake = make_amd(gpu(0, accumulator=(1 << 32) - 10, accumulator_bits=32, resolution_uj=1.0))
    meter = AmdMeter(environ={})
    meter.open()
    first = meter.read().values["gpu:amd0"]
    fake.gpus[0].accumulator = 5  # wrapped: 15 counts later
    reading = meter.read()
    assert reading.faults == {}
    assert reading.values["gpu:amd0"] - first == pytest.approx(15e-6)


def test_a_counter_that_goes_back_implausibly_is_a_reset_and_a_fault(make_amd: MakeAmd) -> None:
    fake = make_amd(gpu(0, accumulator=10**12, resolution_uj=15.259))
    meter = AmdMeter(environ={})
    meter.open()
    first = meter.read().values["gpu:amd0"]
    fake.gpus[0].accumulator = 1000  # a driver reload: no 64-bit wrap can be this quick
    reading = meter.read()
    assert reading.values["gpu:amd0"] == first  # that interval counts 0, never a huge jump
    assert "reset" in reading.faults["gpu:amd0"]
    fake.advance(1.0)
    after = meter.read()
    assert after.faults == {}
    assert after.values["gpu:amd0"] - first == pytest.approx(200.0, abs=1e-3)


@pytest.mark.parametrize(
    ("fields", "key"),
    [
        ({}, "current_socket_power"),
        ({"current_power_supported": False}, "average_socket_power"),
    ],
)
def test_without_energy_counter_power_is_read_and_labelled(
    make_amd: MakeAmd, fields: dict[str, bool], key: str
) -> None:
    make_amd(gpu(0, energy_supported=False, power_w=180.0, **fields))
    meter = AmdMeter(environ={})
    (channel,) = meter.open()
    assert channel.quantity == "power"
    assert channel.how.startswith(
        f"amdsmi {key} (amdsmi_get_power_info), integrated by the sampler"
    )
    assert ("average over about a second" in channel.how) == (key == "average_socket_power")
    assert meter.read().values == {"gpu:amd0": 180.0}


def test_power_only_reads_power_where_the_counter_exists_and_says_so(make_amd: MakeAmd) -> None:
    fake = make_amd(
        gpu(0, name="AMD Instinct MI300X", power_w=500.0),
        gpu(1, energy_supported=False, current_power_supported=False, power_w=180.0),
    )
    meter = AmdMeter(environ={}, power_only=True)

    channels = meter.open()

    assert [c.quantity for c in channels] == ["power", "power"]
    assert channels[0].how == (
        "amdsmi current_socket_power (amdsmi_get_power_info), integrated by the sampler; "
        "power_only=True: any energy counter left unread"
    )
    assert channels[1].how.startswith("amdsmi average_socket_power")
    assert "power_only=True" in channels[1].how
    assert meter.read().values == {"gpu:amd0": 500.0, "gpu:amd1": 180.0}
    assert "amdsmi_get_energy_count" not in fake.calls  # not even probed


def test_power_only_dual_die_package_is_found_from_power(make_amd: MakeAmd) -> None:
    fake = make_amd(
        gpu(0, serial="PKG-A", power_w=500.0),
        gpu(1, serial="PKG-A", reads_zero=True),
    )
    meter = AmdMeter(environ={"HIP_VISIBLE_DEVICES": "1"}, power_only=True)
    (channel,) = meter.open()
    assert channel.quantity == "power" and "counts 1/2" in channel.how
    assert meter.read().values == {"gpu:amd0": 250.0}
    assert "amdsmi_get_energy_count" not in fake.calls


def test_gpu_with_neither_reading_is_unavailable_and_others_open(make_amd: MakeAmd) -> None:
    make_amd(
        gpu(
            0, energy_supported=False, current_power_supported=False, average_power_supported=False
        ),
        gpu(1),
    )
    meter = AmdMeter(environ={})
    assert [c.id for c in meter.open()] == ["gpu:amd1"]
    (problem,) = meter.unavailable
    assert (
        problem.reason
        == "GPU 0 (AMD Instinct MI210): neither energy counter nor power reading is supported"
    )
    assert problem.degrades and problem.unmeasured


def test_power_turning_na_mid_run_is_a_fault_not_zero(make_amd: MakeAmd) -> None:
    fake = make_amd(gpu(0, energy_supported=False))
    meter = AmdMeter(environ={})
    meter.open()
    fake.gpus[0].current_power_supported = False
    reading = meter.read()
    assert reading.values == {}
    assert reading.faults == {"gpu:amd0": "amdsmi error: current_socket_power is N/A"}


# --- faults ---------------------------------------------------------------------------------


def test_gpu_lost_mid_run_faults_that_channel_only(make_amd: MakeAmd) -> None:
    fake = make_amd(gpu(0), gpu(1))
    meter = AmdMeter(environ={})
    meter.open()
    fake.gpus[0].lost_after_reads = fake.gpus[0].reads
    reading = meter.read()
    assert reading.faults == {
        "gpu:amd0": "amdsmi error: AMDSMI_STATUS_NOT_FOUND - Device Not found"
    }
    assert set(reading.values) == {"gpu:amd1"}


def test_gpu_lost_before_open_is_unavailable_and_degrades(make_amd: MakeAmd) -> None:
    make_amd(gpu(0, lost_after_reads=0), gpu(1))
    meter = AmdMeter(environ={})
    assert [c.id for c in meter.open()] == ["gpu:amd1"]
    (problem,) = meter.unavailable
    assert "Device Not found" in problem.reason and problem.unmeasured


@pytest.mark.parametrize(
    "fault",
    [
        AmdSmiLibraryException(AMDSMI_STATUS_IO),
        fake_amdsmi.AmdSmiTimeoutException(),
        OSError(5, "EIO"),
    ],
)
def test_any_read_error_becomes_the_same_fault_each_time(
    make_amd: MakeAmd, fault: Exception
) -> None:
    fake = make_amd(gpu(0))
    meter = AmdMeter(environ={})
    meter.open()
    fake.gpus[0].fault = fault
    first, second = meter.read(), meter.read()
    assert first.values == {} and first.faults == second.faults  # a constant text: warned once
    assert "\n" not in first.faults["gpu:amd0"]


def test_read_in_a_forked_child_does_not_touch_amdsmi(make_amd: MakeAmd) -> None:
    fake = make_amd(gpu(0))
    meter = AmdMeter(environ={})
    meter.open()
    reads = fake.gpus[0].reads
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report the reading's faults, touch nothing else
        os.close(read_fd)
        reading = meter.read()
        meter.close()
        os.write(write_fd, repr((reading.faults, fake.gpus[0].reads, fake.shutdown_calls)).encode())
        os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        faults, child_reads, child_shutdowns = eval(pipe.read())  # our own repr
    os.waitpid(pid, 0)
    assert faults == {"gpu:amd0": "amdsmi handle not valid after fork"}
    assert (child_reads, child_shutdowns) == (reads, 0)
    meter.close()
    assert fake.shutdown_calls == 1


def test_close_is_idempotent_and_reopen_works(make_amd: MakeAmd) -> None:
    fake = make_amd(gpu(0))
    meter = AmdMeter(environ={})
    assert meter.open() == meter.open()
    assert len(fake.init_flags) == 1
    meter.close()
    meter.close()
    assert fake.shutdown_calls == 1
    assert meter.read().faults == {"gpu:amd0": "amdsmi meter is closed"}
    assert [c.id for c in meter.open()] == ["gpu:amd0"]


# --- unavailable, never raised -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "reason", "degrades"),
    [
        (AMDSMI_STATUS_DRIVER_NOT_LOADED, "the amdgpu driver is not loaded", False),
        (AMDSMI_STATUS_NO_PERM, "no permission to use the AMD GPUs", True),
        (
            AMDSMI_STATUS_INIT_ERROR,
            "amdsmi could not be initialised (amdsmi error: AMDSMI_STATUS_INIT_ERROR - "
            "Initialization error)",
            False,  # no /dev/kfd here
        ),
    ],
)
def test_init_failure_is_unavailable_with_the_reason(
    make_amd: MakeAmd, monkeypatch: pytest.MonkeyPatch, code: int, reason: str, degrades: bool
) -> None:
    monkeypatch.setattr(amd, "_AMD_COMPUTE_MARKER", "/nonexistent/kfd")
    make_amd(gpu(0), init_error=code)
    meter = AmdMeter(environ={})
    assert meter.open() == []
    (problem,) = meter.unavailable
    assert (problem.source, problem.reason, problem.degrades) == ("amdsmi", reason, degrades)
    assert meter.read().faults == {}
    meter.close()


def hide_amdsmi(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "amdsmi", None)  # import amdsmi raises ModuleNotFoundError


def test_missing_amdsmi_on_an_amd_machine_offers_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    hide_amdsmi(monkeypatch)
    kfd = tmp_path / "kfd"
    kfd.touch()
    monkeypatch.setattr(amd, "_AMD_COMPUTE_MARKER", str(kfd))
    monkeypatch.setattr(amd, "_AMD_DRIVER_MARKERS", (str(kfd),))
    meter = AmdMeter(environ={})
    assert meter.open() == []
    (problem,) = meter.unavailable
    assert problem.reason == "amdsmi is not installed"
    assert problem.fix is not None and "carbon-callbacks[amd]" in problem.fix
    assert problem.degrades


def test_missing_amdsmi_without_amd_hardware_says_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    hide_amdsmi(monkeypatch)
    monkeypatch.setattr(amd, "_AMD_DRIVER_MARKERS", ("/nonexistent/kfd",))
    meter = AmdMeter(environ={})
    assert meter.open() == [] and meter.unavailable == []


REAL_AMDSMI = importlib.util.find_spec("amdsmi")


@pytest.mark.skipif(REAL_AMDSMI is None, reason="amdsmi (the test extra) is not installed")
def test_the_real_package_without_rocm_is_unavailable_and_prints_nothing() -> None:
    """The PyPI package prints and raises KeyError at import without libamd_smi.so: run it."""
    code = (
        "from carbon_callbacks.meters.amd import AmdMeter\n"
        "m = AmdMeter(environ={}); print(m.open()); print([u.reason for u in m.unavailable])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "ROCM_PATH": "/nonexistent", "ROCM_HOME": "/nonexistent"},
        check=True,
    )
    lines = result.stdout.splitlines()
    assert lines[0] == "[]" and len(lines) == 2, result.stdout  # nothing else on stdout
    assert "could not load ROCm's libamd_smi.so" in lines[1]
    assert "libamd_smi.so" in lines[1].split("(", 1)[1]  # the loader's own words
    assert result.stderr == ""


def test_constructor_neither_imports_nor_initialises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "amdsmi", raising=False)
    AmdMeter(gpu_ids=[0, "GPU-1111"], environ={})
    assert "amdsmi" not in sys.modules


def test_importing_the_module_does_not_import_amdsmi() -> None:
    code = "import sys, carbon_callbacks.meters.amd; print('amdsmi' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


# --- which GPUs ---------------------------------------------------------------------------------


def test_no_variable_means_every_gpu(three: FakeAmdsmi) -> None:
    assert ids() == ["gpu:amd0", "gpu:amd1", "gpu:amd2"]


@pytest.mark.parametrize(
    "variable", ["HIP_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES"]
)
def test_each_variable_takes_indices_and_uuids(three: FakeAmdsmi, variable: str) -> None:
    assert ids(**{variable: "2,0"}) == ["gpu:amd2", "gpu:amd0"]
    assert ids(**{variable: f"{HIP_UUID[1]},{HIP_UUID[2][:9]}"}) == ["gpu:amd1", "gpu:amd2"]
    assert ids(**{variable: UUID[0]}) == ["gpu:amd0"]  # amdsmi's own UUID form too
    assert ids(**{variable: ""}) == [] and ids(**{variable: "-1"}) == []


def test_hip_indexes_what_rocr_left_and_wins_over_cuda(three: FakeAmdsmi) -> None:
    assert ids(ROCR_VISIBLE_DEVICES="1,2", HIP_VISIBLE_DEVICES="1") == ["gpu:amd2"]
    assert ids(ROCR_VISIBLE_DEVICES="1,2", CUDA_VISIBLE_DEVICES="0") == ["gpu:amd1"]
    assert ids(HIP_VISIBLE_DEVICES="0", CUDA_VISIBLE_DEVICES="2") == ["gpu:amd0"]


def test_hip_order_follows_hip_id_not_amdsmi_order(make_amd: MakeAmd) -> None:
    make_amd(gpu(0, hip_id=1), gpu(1, hip_id=0))
    assert ids(HIP_VISIBLE_DEVICES="0") == ["gpu:amd1"]


def test_unknown_hip_order_is_said(make_amd: MakeAmd) -> None:
    make_amd(gpu(0, hip_id=None, hip_uuid=None), gpu(1, hip_id=None, hip_uuid=None))
    (channel,) = AmdMeter(environ={"HIP_VISIBLE_DEVICES": "1"}).open()
    assert channel.id == "gpu:amd1" and "HIP order taken as amdsmi's" in channel.how


def test_first_invalid_entry_ends_the_list(three: FakeAmdsmi) -> None:
    meter = AmdMeter(environ={"HIP_VISIBLE_DEVICES": "1,7,0"})
    assert [c.id for c in meter.open()] == ["gpu:amd1"]
    (problem,) = meter.unavailable
    assert "'7'" in problem.reason and "every entry after it" in problem.reason
    assert problem.fix is not None and not problem.degrades


def test_explicit_gpu_ids_override_the_variables(three: FakeAmdsmi) -> None:
    meter = AmdMeter(
        gpu_ids=[2, HIP_UUID[0], "c6:00.0", "GPU-nothing"], environ={"HIP_VISIBLE_DEVICES": "1"}
    )
    assert [c.id for c in meter.open()] == ["gpu:amd2", "gpu:amd0", "gpu:amd1"]
    (problem,) = meter.unavailable
    assert "'GPU-nothing'" in problem.reason


@pytest.mark.parametrize(
    ("gpu_id", "exception"), [(-1, ValueError), ("3", ValueError), (1.0, TypeError)]
)
def test_gpu_ids_mistakes_fail_at_construction(gpu_id: object, exception: type[Exception]) -> None:
    with pytest.raises(exception):
        AmdMeter(gpu_ids=[gpu_id])  # type: ignore[list-item]


def fake_rocm_torch(addresses: list[tuple[int, int, int]]) -> SimpleNamespace:
    def properties(index: int) -> SimpleNamespace:
        domain, bus, device = addresses[index]
        return SimpleNamespace(pci_domain_id=domain, pci_bus_id=bus, pci_device_id=device)

    cuda = SimpleNamespace(
        is_initialized=lambda: True,
        device_count=lambda: len(addresses),
        get_device_properties=properties,
    )
    return SimpleNamespace(version=SimpleNamespace(hip="6.2.41133"), cuda=cuda)


def test_initialised_rocm_torch_names_the_devices_by_pci_address(
    three: FakeAmdsmi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "torch", fake_rocm_torch([(0, 0xC9, 0), (0, 0xC1, 0)]))
    assert ids(HIP_VISIBLE_DEVICES="1") == ["gpu:amd2", "gpu:amd0"]  # torch settles it


def test_cuda_torch_is_no_guide_to_amd_devices(
    three: FakeAmdsmi, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch = fake_rocm_torch([(0, 0xC9, 0)])
    torch.version.hip = None
    monkeypatch.setitem(sys.modules, "torch", torch)
    assert ids(HIP_VISIBLE_DEVICES="1") == ["gpu:amd1"]


# --- a rank's GPU among the visible ones ---------------------------------------------------------


def rank_ids(local_rank: int, ranks: int, **env: str) -> list[str]:
    meter = AmdMeter(environ=env, visible_position=VisiblePosition(local_rank, ranks))
    return [channel.id for channel in meter.open()]


def test_a_rank_measures_the_visible_gpu_at_its_local_rank(three: FakeAmdsmi) -> None:
    assert [rank_ids(rank, 2, HIP_VISIBLE_DEVICES="2,0") for rank in (0, 1)] == [
        ["gpu:amd2"],
        ["gpu:amd0"],
    ]
    assert [rank_ids(rank, 3) for rank in (0, 1, 2)] == [["gpu:amd0"], ["gpu:amd1"], ["gpu:amd2"]]
    assert rank_ids(1, 2, ROCR_VISIBLE_DEVICES="1") == ["gpu:amd1"]  # one GPU of its own


def test_the_position_counts_in_hip_order_and_among_torchs_devices(
    make_amd: MakeAmd, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_amd(gpu(0, hip_id=1), gpu(1, hip_id=0))
    assert rank_ids(0, 2) == ["gpu:amd1"]
    monkeypatch.setitem(sys.modules, "torch", fake_rocm_torch([(0, 0xC6, 0), (0, 0xC1, 0)]))
    assert rank_ids(1, 2) == ["gpu:amd0"]


def test_more_gpus_than_ranks_leaves_every_gpu_to_local_rank_0_and_says_so(
    three: FakeAmdsmi,
) -> None:
    first = AmdMeter(environ={}, visible_position=VisiblePosition(0, 2))
    assert [c.id for c in first.open()] == ["gpu:amd0", "gpu:amd1", "gpu:amd2"]
    (warning,) = first.unavailable
    assert warning.degrades and not warning.unmeasured
    assert warning.fix is not None and "gpu_ids=" in warning.fix
    assert rank_ids(1, 2) == []


# --- dual-die packages --------------------------------------------------------------------------


@pytest.fixture
def mi250x(make_amd: MakeAmd) -> FakeAmdsmi:
    """One MI250X: GCD 0 reports the package (560 W), GCD 1 reads 0; a third, separate GPU."""
    name = "AMD Instinct MI250X"
    return make_amd(
        gpu(0, name=name, serial="PKG-A", power_w=560.0, resolution_uj=1.0),
        gpu(1, name=name, serial="PKG-A", reads_zero=True, resolution_uj=1.0),
        gpu(2, name=name, serial="PKG-B", power_w=300.0, resolution_uj=1.0),
    )


def package_joules(fake: FakeAmdsmi, meter: AmdMeter, seconds: float) -> dict[str, float]:
    first = meter.read().values
    fake.advance(seconds)
    second = meter.read().values
    return {key: second[key] - first[key] for key in second}


def test_both_dies_count_the_package_once(mi250x: FakeAmdsmi) -> None:
    meter = AmdMeter(environ={"HIP_VISIBLE_DEVICES": "0,1"})
    (channel,) = meter.open()
    assert channel.id == "gpu:amd0"
    assert channel.device == "AMD Instinct MI250X (package of GPU 0, GPU 1)"
    assert (
        "the package's figure, shared by its 2 dies: GPU 0 reports it while GPU 1 read 0"
        in channel.how
    )
    assert "counted once for the package" in channel.how
    assert package_joules(mi250x, meter, 1.0) == {"gpu:amd0": pytest.approx(560.0)}


@pytest.mark.parametrize("die", ["0", "1"])
def test_one_die_counts_its_half_so_two_ranks_sum_to_the_package(
    mi250x: FakeAmdsmi, die: str
) -> None:
    meter = AmdMeter(environ={"ROCR_VISIBLE_DEVICES": die})
    (channel,) = meter.open()
    assert channel.id == "gpu:amd0"  # read on the die that reports
    assert "this process uses 1 of its 2 dies and counts 1/2 of it" in channel.how
    assert package_joules(mi250x, meter, 1.0) == {"gpu:amd0": pytest.approx(280.0)}


def test_a_package_whose_dies_both_report_is_two_gpus(make_amd: MakeAmd) -> None:
    fake = make_amd(gpu(0, serial="PKG-A", power_w=300.0), gpu(1, serial="PKG-A", power_w=250.0))
    meter = AmdMeter(environ={})
    channels = meter.open()
    assert [c.id for c in channels] == ["gpu:amd0", "gpu:amd1"]
    assert all(c.how == ENERGY_HOW for c in channels)
    joules = package_joules(fake, meter, 1.0)
    assert joules == {
        "gpu:amd0": pytest.approx(300.0, abs=1e-3),
        "gpu:amd1": pytest.approx(250.0, abs=1e-3),
    }


def test_power_only_dual_die_is_shared_too(make_amd: MakeAmd) -> None:
    make_amd(
        gpu(0, serial="PKG-A", power_w=500.0, energy_supported=False),
        gpu(1, serial="PKG-A", reads_zero=True, energy_supported=False),
    )
    meter = AmdMeter(environ={"HIP_VISIBLE_DEVICES": "1"})
    (channel,) = meter.open()
    assert channel.quantity == "power" and "counts 1/2" in channel.how
    assert meter.read().values == {"gpu:amd0": 250.0}


# --- the fake against the real package ---------------------------------------------------------

PINNED_FUNCTIONS = {
    "amdsmi_init": ["flag"],
    "amdsmi_shut_down": [],
    "amdsmi_get_processor_handles": [],
    "amdsmi_get_gpu_device_uuid": ["processor_handle"],
    "amdsmi_get_gpu_device_bdf": ["processor_handle"],
    "amdsmi_get_gpu_enumeration_info": ["processor_handle"],
    "amdsmi_get_gpu_asic_info": ["processor_handle"],
    "amdsmi_get_gpu_board_info": ["processor_handle"],
    "amdsmi_get_gpu_driver_info": ["processor_handle"],
    "amdsmi_get_energy_count": ["processor_handle"],
    "amdsmi_get_power_info": ["processor_handle"],
}
"""Each function the meter (and gpu_check, for the driver) calls and its parameters, from amdsmi
7.0.2's amdsmi_interface.py."""
PINNED_KEYS = {
    "amdsmi_get_gpu_enumeration_info": {"drm_render", "drm_card", "hsa_id", "hip_id", "hip_uuid"},
    "amdsmi_get_gpu_asic_info": {
        "market_name", "vendor_id", "vendor_name", "subvendor_id", "device_id", "rev_id",
        "asic_serial", "oam_id", "num_compute_units", "target_graphics_version", "subsystem_id",
    },
    "amdsmi_get_gpu_board_info": {
        "model_number", "product_serial", "fru_id", "product_name", "manufacturer_name",
    },
    "amdsmi_get_gpu_driver_info": {"driver_name", "driver_version", "driver_date"},
    "amdsmi_get_energy_count": {"energy_accumulator", "counter_resolution", "timestamp"},
    "amdsmi_get_power_info": {
        "socket_power", "current_socket_power", "average_socket_power", "gfx_voltage",
        "soc_voltage", "mem_voltage", "power_limit",
    },
}  # fmt: skip
"""The keys of each dict those functions return (amdsmi 7.0.2)."""
PINNED_STATUS = {
    "AMDSMI_STATUS_NOT_SUPPORTED": 2,
    "AMDSMI_STATUS_NOT_YET_IMPLEMENTED": 3,
    "AMDSMI_STATUS_NO_PERM": 10,
    "AMDSMI_STATUS_NOT_FOUND": 31,
    "AMDSMI_STATUS_DRIVER_NOT_LOADED": 34,
}
"""The status codes the meter tells apart (amdsmi 7.0.2's amdsmi_wrapper.py)."""
PINNED_EXCEPTIONS = {
    "AmdSmiException": "Exception",
    "AmdSmiLibraryException": "AmdSmiException",
    "AmdSmiRetryException": "AmdSmiLibraryException",
    "AmdSmiTimeoutException": "AmdSmiLibraryException",
    "AmdSmiParameterException": "AmdSmiException",
}


def test_the_fake_matches_the_pinned_api(three: FakeAmdsmi) -> None:
    for name, parameters in PINNED_FUNCTIONS.items():
        assert list(inspect.signature(getattr(three, name)).parameters) == parameters, name
    three.amdsmi_init()
    (handle, *_) = three.amdsmi_get_processor_handles()
    for name, keys in PINNED_KEYS.items():
        assert set(getattr(three, name)(handle)) == keys, name
    for name, value in PINNED_STATUS.items():
        assert getattr(fake_amdsmi, name) == value
        assert AmdSmiLibraryException(-value).err_code == value  # made positive, as the real one
    for name, base in PINNED_EXCEPTIONS.items():
        assert getattr(three, name).__bases__[0].__name__ == base
    assert set(amd._NOT_SUPPORTED) == {2, 3}
    assert (amd._NO_PERMISSION, amd._DRIVER_NOT_LOADED) == (10, 34)


def real_source(name: str) -> ast.Module:
    assert REAL_AMDSMI is not None and REAL_AMDSMI.submodule_search_locations
    (folder,) = REAL_AMDSMI.submodule_search_locations
    return ast.parse((Path(folder) / name).read_text(encoding="utf-8"))


@pytest.mark.skipif(REAL_AMDSMI is None, reason="amdsmi (the test extra) is not installed")
def test_the_pinned_api_is_the_installed_packages() -> None:
    """Read amdsmi's source without importing it (importing needs ROCm's library)."""
    functions = {
        node.name: node
        for node in real_source("amdsmi_interface.py").body
        if isinstance(node, ast.FunctionDef)
    }
    for name, parameters in PINNED_FUNCTIONS.items():
        assert [arg.arg for arg in functions[name].args.args] == parameters, name
    for name, keys in PINNED_KEYS.items():
        literal = {
            key.value
            for node in ast.walk(functions[name])
            if isinstance(node, ast.Dict)
            for key in node.keys
            if isinstance(key, ast.Constant) and isinstance(key.value, str)
        }
        assert literal == keys, name
    classes = {
        node.name: node
        for node in real_source("amdsmi_exception.py").body
        if isinstance(node, ast.ClassDef)
    }
    for name, base in PINNED_EXCEPTIONS.items():
        assert [b.id for b in classes[name].bases if isinstance(b, ast.Name)] == [base], name
    init = next(
        node
        for node in classes["AmdSmiLibraryException"].body
        if isinstance(node, ast.FunctionDef) and node.name == "__init__"
    )
    assert [arg.arg for arg in init.args.args] == ["self", "err_code"]
    constants = {
        target.id: node.value.value
        for node in real_source("amdsmi_wrapper.py").body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    assert {name: constants[name] for name in PINNED_STATUS} == PINNED_STATUS
    assert constants["AMDSMI_INIT_AMD_GPUS"] == fake_amdsmi.AmdSmiInitFlags.INIT_AMD_GPUS
    exported = real_source("__init__.py")
    names = {
        alias.name
        for node in ast.walk(exported)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert set(PINNED_FUNCTIONS) | set(PINNED_EXCEPTIONS) | {"AmdSmiInitFlags"} <= names
