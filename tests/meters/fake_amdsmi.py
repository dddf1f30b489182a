"""A fake ``amdsmi`` module: the real function names, signatures, dict keys and errors; fake GPUs.

The real package (``amdsmi`` 7.0.2 on PyPI) cannot be imported without ROCm's ``libamd_smi.so``:
its exception module imports the ctypes wrapper, which fails. So the exception classes here are
copies of ``amdsmi_exception.py`` (same names, bases, ``err_code`` handling, ``err_info`` texts
for the codes used), and the status codes copies of ``amdsmi_wrapper.py``'s. Each function keeps
the real signature and returns the real dict keys, with ``"N/A"`` where the real one says it.
``tests/meters/test_amd.py`` checks all this against the installed package's source.
Install with ``install(monkeypatch, fake)``.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import pytest

AMDSMI_STATUS_SUCCESS = 0
AMDSMI_STATUS_INVAL = 1
AMDSMI_STATUS_NOT_SUPPORTED = 2
AMDSMI_STATUS_NOT_YET_IMPLEMENTED = 3
AMDSMI_STATUS_FAIL_LOAD_MODULE = 4
AMDSMI_STATUS_NO_PERM = 10
AMDSMI_STATUS_IO = 12
AMDSMI_STATUS_INIT_ERROR = 18
AMDSMI_STATUS_NOT_FOUND = 31
AMDSMI_STATUS_NOT_INIT = 32
AMDSMI_STATUS_DRIVER_NOT_LOADED = 34

_ERR_INFO = {
    AMDSMI_STATUS_INVAL: "AMDSMI_STATUS_INVAL - Invalid parameters",
    AMDSMI_STATUS_NOT_SUPPORTED: "AMDSMI_STATUS_NOT_SUPPORTED - Feature not supported",
    AMDSMI_STATUS_NOT_YET_IMPLEMENTED: (
        "AMDSMI_STATUS_NOT_YET_IMPLEMENTED - Feature not yet implemented"
    ),
    AMDSMI_STATUS_FAIL_LOAD_MODULE: "AMDSMI_STATUS_FAIL_LOAD_MODULE - Fail to load lib",
    AMDSMI_STATUS_NO_PERM: "AMDSMI_STATUS_NO_PERM - Permission Denied",
    AMDSMI_STATUS_IO: "AMDSMI_STATUS_IO - I/O Error",
    AMDSMI_STATUS_INIT_ERROR: "AMDSMI_STATUS_INIT_ERROR - Initialization error",
    AMDSMI_STATUS_NOT_FOUND: "AMDSMI_STATUS_NOT_FOUND - Device Not found",
    AMDSMI_STATUS_NOT_INIT: "AMDSMI_STATUS_NOT_INIT - Device not initialized",
    AMDSMI_STATUS_DRIVER_NOT_LOADED: "AMDSMI_STATUS_DRIVER_NOT_LOADED - Driver not loaded",
}
DRIVER_VERSION = "6.10.5"
"""What ``amdsmi_get_gpu_driver_info`` says of the amdgpu driver."""
_NA_POWER = 0xFFFF
"""What the C library puts in a power field it does not support; the binding turns it to N/A."""


class AmdSmiException(Exception):
    """Base smi exception class"""


class AmdSmiLibraryException(AmdSmiException):
    """The real class: a library status code (``err_code``, made positive) and its text."""

    def __init__(self, err_code: int) -> None:
        err_code = abs(err_code)
        super().__init__(err_code)
        self.err_code = err_code
        self.err_info = _ERR_INFO.get(
            err_code, "AMDSMI_STATUS_UNKNOWN_ERROR - An unknown error occurred"
        )

    def __str__(self) -> str:
        return f"Error code:\n\t{self.err_code} | {self.err_info}"


class AmdSmiRetryException(AmdSmiLibraryException):
    def __init__(self) -> None:
        super().__init__(9)


class AmdSmiTimeoutException(AmdSmiLibraryException):
    def __init__(self) -> None:
        super().__init__(8)


class AmdSmiParameterException(AmdSmiException):
    def __init__(self, receivedValue: Any, expectedType: Any, msg: str | None = None) -> None:
        super().__init__(msg)
        self.err_code = None
        self.err_msg = msg or f"Invalid parameter: {type(receivedValue)}, expected {expectedType}"

    def __str__(self) -> str:
        return self.err_msg


class AmdSmiInitFlags(IntEnum):
    INIT_ALL_PROCESSORS = 4294967295
    INIT_AMD_CPUS = 1
    INIT_AMD_GPUS = 2
    INIT_AMD_APUS = 3
    INIT_NON_AMD_CPUS = 4
    INIT_NON_AMD_GPUS = 8


Flags = AmdSmiInitFlags


@dataclass
class FakeAmdGpu:
    """One simulated GPU (one GCD on a dual-die board).

    Attributes:
        uuid: What ``amdsmi_get_gpu_device_uuid`` returns.
        bdf: PCI address, ``amdsmi_get_gpu_device_bdf``.
        hip_uuid: ``GPU-...`` as ROCm's variables take it; None: enumeration info unsupported.
        hip_id: HIP's index; None: enumeration info unsupported.
        name: ``market_name``.
        serial: The board's ``product_serial`` (both GCDs of an MI250X share it); "" = N/A.
        power_w: Draw; the accumulator gains ``power_w * dt`` on ``advance(dt)``.
        resolution_uj: ``counter_resolution`` in microjoules.
        accumulator: ``energy_accumulator``, counts of ``resolution_uj``.
        accumulator_bits: Width at which the accumulator wraps.
        energy_supported: False: ``amdsmi_get_energy_count`` is not supported.
        current_power_supported: False: ``current_socket_power`` is N/A (older boards).
        average_power_supported: False: ``average_socket_power`` is N/A.
        reads_zero: A second GCD: its counter and power read 0 (its sibling reports both).
        lost_after_reads: Energy/power calls that succeed before the GPU is lost.
        fault: Raised by every energy/power call while set.
        reads: Energy/power calls that succeeded so far.
    """

    uuid: str
    bdf: str
    hip_uuid: str | None = None
    hip_id: int | None = None
    name: str = "AMD Instinct MI210"
    serial: str = ""
    power_w: float = 200.0
    resolution_uj: float = 15.259
    accumulator: int = 1_000_000
    accumulator_bits: int = 64
    energy_supported: bool = True
    current_power_supported: bool = True
    average_power_supported: bool = True
    reads_zero: bool = False
    lost_after_reads: int | None = None
    fault: Exception | None = None
    reads: int = 0


@dataclass(frozen=True)
class ProcessorHandle:
    """An opaque processor handle."""

    gpu: int


class FakeAmdsmi(types.ModuleType):
    """Stands in for the ``amdsmi`` module; methods are its module-level functions."""

    AmdSmiException = AmdSmiException
    AmdSmiLibraryException = AmdSmiLibraryException
    AmdSmiRetryException = AmdSmiRetryException
    AmdSmiTimeoutException = AmdSmiTimeoutException
    AmdSmiParameterException = AmdSmiParameterException
    AmdSmiInitFlags = AmdSmiInitFlags
    """The module's attribute; annotations below name ``Flags``, the same class."""

    def __init__(self, gpus: list[FakeAmdGpu], init_error: int | None = None) -> None:
        super().__init__("amdsmi")
        self.gpus = gpus
        self.init_error = init_error
        self.init_flags: list[AmdSmiInitFlags] = []
        self.shutdown_calls = 0
        self.calls: list[str] = []
        """The energy and power functions called, in order, supported or not."""
        self._initialised = False

    # --- test controls -----------------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Let time pass: every counting GPU's accumulator gains its power times ``seconds``."""
        for gpu in self.gpus:
            if not gpu.reads_zero:
                counts = round(gpu.power_w * seconds * 1e6 / gpu.resolution_uj)
                gpu.accumulator = (gpu.accumulator + counts) % (1 << gpu.accumulator_bits)

    # --- amdsmi -------------------------------------------------------------------------------

    def amdsmi_init(self, flag: Flags = Flags.INIT_AMD_GPUS) -> None:
        if not isinstance(flag, Flags):
            raise AmdSmiParameterException(flag, Flags)
        self.init_flags.append(flag)
        if self.init_error is not None:
            raise AmdSmiLibraryException(self.init_error)
        self._initialised = True

    def amdsmi_shut_down(self) -> None:
        self.shutdown_calls += 1
        self._check()
        self._initialised = False

    def amdsmi_get_processor_handles(self) -> list[ProcessorHandle]:
        self._check()
        return [ProcessorHandle(index) for index in range(len(self.gpus))]

    def amdsmi_get_gpu_device_uuid(self, processor_handle: ProcessorHandle) -> str:
        return self._gpu(processor_handle).uuid

    def amdsmi_get_gpu_device_bdf(self, processor_handle: ProcessorHandle) -> str:
        return self._gpu(processor_handle).bdf

    def amdsmi_get_gpu_enumeration_info(self, processor_handle: ProcessorHandle) -> dict[str, Any]:
        gpu = self._gpu(processor_handle)
        if gpu.hip_id is None or gpu.hip_uuid is None:
            raise AmdSmiLibraryException(AMDSMI_STATUS_NOT_SUPPORTED)
        return {
            "drm_render": 128 + processor_handle.gpu,
            "drm_card": processor_handle.gpu,
            "hsa_id": 2 + processor_handle.gpu,
            "hip_id": gpu.hip_id,
            "hip_uuid": gpu.hip_uuid,
        }

    def amdsmi_get_gpu_asic_info(self, processor_handle: ProcessorHandle) -> dict[str, Any]:
        gpu = self._gpu(processor_handle)
        return {
            "market_name": gpu.name or "N/A",
            "vendor_id": "0x1002",
            "vendor_name": "Advanced Micro Devices Inc. [AMD/ATI]",
            "subvendor_id": "0x1002",
            "device_id": "0x740f",
            "rev_id": "0x02",
            "asic_serial": "0x" + f"{processor_handle.gpu:016X}",
            "oam_id": "N/A",
            "num_compute_units": 104,
            "target_graphics_version": "gfx90a",
            "subsystem_id": "0x0c34",
        }

    def amdsmi_get_gpu_board_info(self, processor_handle: ProcessorHandle) -> dict[str, Any]:
        gpu = self._gpu(processor_handle)
        return {
            "model_number": "102-D67302-00",
            "product_serial": gpu.serial or "N/A",
            "fru_id": "N/A",
            "product_name": gpu.name or "N/A",
            "manufacturer_name": "AMD",
        }

    def amdsmi_get_gpu_driver_info(self, processor_handle: ProcessorHandle) -> dict[str, Any]:
        self._gpu(processor_handle)
        return {"driver_name": "amdgpu", "driver_version": DRIVER_VERSION, "driver_date": "N/A"}

    def amdsmi_get_energy_count(self, processor_handle: ProcessorHandle) -> dict[str, Any]:
        self.calls.append("amdsmi_get_energy_count")
        gpu = self._sensor(processor_handle, supported=lambda g: g.energy_supported)
        return {
            "energy_accumulator": 0 if gpu.reads_zero else gpu.accumulator,
            "counter_resolution": gpu.resolution_uj,
            "timestamp": 1_700_000_000_000_000_000 + gpu.reads,
        }

    def amdsmi_get_power_info(self, processor_handle: ProcessorHandle) -> dict[str, Any]:
        self.calls.append("amdsmi_get_power_info")
        gpu = self._sensor(processor_handle, supported=lambda g: True)
        watts = 0 if gpu.reads_zero else round(gpu.power_w)
        info: dict[str, Any] = {
            "socket_power": watts if gpu.current_power_supported else _NA_POWER,
            "current_socket_power": watts if gpu.current_power_supported else _NA_POWER,
            "average_socket_power": watts if gpu.average_power_supported else _NA_POWER,
            "gfx_voltage": 800,
            "soc_voltage": 900,
            "mem_voltage": 1200,
            "power_limit": 300_000_000,
        }
        return {key: "N/A" if value == _NA_POWER else value for key, value in info.items()}

    # --- internals -----------------------------------------------------------------------------

    def _check(self) -> None:
        if not self._initialised:
            raise AmdSmiLibraryException(AMDSMI_STATUS_NOT_INIT)

    def _gpu(self, processor_handle: ProcessorHandle) -> FakeAmdGpu:
        self._check()
        if not isinstance(processor_handle, ProcessorHandle):
            raise AmdSmiParameterException(processor_handle, ProcessorHandle)
        gpu = self.gpus[processor_handle.gpu]
        if gpu.lost_after_reads is not None and gpu.reads >= gpu.lost_after_reads:
            raise AmdSmiLibraryException(AMDSMI_STATUS_NOT_FOUND)
        return gpu

    def _sensor(self, processor_handle: ProcessorHandle, supported: Any) -> FakeAmdGpu:
        gpu = self._gpu(processor_handle)
        if not supported(gpu):
            raise AmdSmiLibraryException(AMDSMI_STATUS_NOT_SUPPORTED)
        if gpu.fault is not None:
            raise gpu.fault
        gpu.reads += 1
        return gpu


def install(monkeypatch: pytest.MonkeyPatch, fake: FakeAmdsmi) -> FakeAmdsmi:
    """Make ``import amdsmi`` return ``fake`` for the rest of the test."""
    monkeypatch.setitem(sys.modules, "amdsmi", fake)
    return fake
