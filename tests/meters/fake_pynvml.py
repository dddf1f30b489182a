"""A fake ``pynvml`` module: the real function names, error classes and constants, simulated GPUs.

The error hierarchy and constants are the real ones from ``nvidia-ml-py`` (so ``except
pynvml.NVMLError_NotSupported`` in the code under test means exactly what it means on a GPU box);
only the C library behind the functions is simulated. Install with ``install(monkeypatch, fake)``.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field

import pynvml as real_pynvml
import pytest

NVMLError = real_pynvml.NVMLError

MAX_MIG_SLOTS = 7


@dataclass
class FakeGpu:
    """One simulated GPU.

    Attributes:
        uuid: ``GPU-...`` as NVML reports it.
        name: Marketing name.
        power_w: Current draw; the energy counter advances by ``power_w * dt`` on ``advance(dt)``.
        energy_mj: Counter value (millijoules since driver load).
        energy_supported: False for pre-Volta GPUs.
        power_supported: False for GPUs without a power sensor.
        mig: UUIDs of MIG instances, in slot order (empty: MIG unsupported or off).
        lost_after_reads: Energy/power calls that succeed before the GPU falls off the bus.
        bytes_strings: Return name and UUID as bytes, like old bindings.
        fault: Raised by every energy/power call while set (e.g. ``error(NVML_ERROR_UNKNOWN)``).
        reads: Energy/power calls that succeeded so far.
    """

    uuid: str
    name: str = "NVIDIA A100-SXM4-40GB"
    power_w: float = 100.0
    energy_mj: int = 1_000_000
    energy_supported: bool = True
    power_supported: bool = True
    mig: list[str] = field(default_factory=list)
    lost_after_reads: int | None = None
    bytes_strings: bool = False
    fault: Exception | None = None
    reads: int = 0


@dataclass(frozen=True)
class Handle:
    """An opaque device handle: a GPU, or a MIG instance on it."""

    gpu: int
    mig_slot: int | None = None


def error(code: int) -> Exception:
    """The real binding's exception for ``code`` (``NVMLError.__new__`` picks the subclass)."""
    exc: Exception = NVMLError(code)
    return exc


class FakePynvml(types.ModuleType):
    """Stands in for the ``pynvml`` module; methods are its module-level functions."""

    def __init__(self, gpus: list[FakeGpu], init_error: int | None = None) -> None:
        super().__init__("pynvml")
        for name in dir(real_pynvml):
            if name.startswith(("NVMLError", "NVML_")):
                setattr(self, name, getattr(real_pynvml, name))
        self.gpus = gpus
        self.init_error = init_error
        self.init_calls = 0
        self.shutdown_calls = 0
        self.calls: list[str] = []
        self._refcount = 0

    # --- test controls -----------------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Let time pass: every GPU's counter gains its current power times ``seconds``."""
        for gpu in self.gpus:
            gpu.energy_mj += round(gpu.power_w * seconds * 1000)

    # --- NVML ----------------------------------------------------------------------------------

    def nvmlInit(self) -> None:
        self.init_calls += 1
        self.calls.append("nvmlInit")
        if self.init_error is not None:
            raise error(self.init_error)
        self._refcount += 1

    def nvmlShutdown(self) -> None:
        self.shutdown_calls += 1
        self._check("nvmlShutdown")
        self._refcount -= 1

    def nvmlDeviceGetCount(self) -> int:
        self._check("nvmlDeviceGetCount")
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> Handle:
        self._check("nvmlDeviceGetHandleByIndex")
        if not 0 <= index < len(self.gpus):
            raise error(real_pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return Handle(index)

    def nvmlDeviceGetUUID(self, handle: Handle) -> str | bytes:
        gpu = self._gpu(handle, "nvmlDeviceGetUUID")
        uuid = gpu.uuid if handle.mig_slot is None else gpu.mig[handle.mig_slot]
        return uuid.encode() if gpu.bytes_strings else uuid

    def nvmlDeviceGetName(self, handle: Handle) -> str | bytes:
        gpu = self._gpu(handle, "nvmlDeviceGetName")
        return gpu.name.encode() if gpu.bytes_strings else gpu.name

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: Handle) -> int:
        gpu = self._sensor(handle, "nvmlDeviceGetTotalEnergyConsumption", gpu_supports="energy")
        return gpu.energy_mj

    def nvmlDeviceGetPowerUsage(self, handle: Handle) -> int:
        gpu = self._sensor(handle, "nvmlDeviceGetPowerUsage", gpu_supports="power")
        return round(gpu.power_w * 1000)

    def nvmlDeviceGetMaxMigDeviceCount(self, handle: Handle) -> int:
        gpu = self._gpu(handle, "nvmlDeviceGetMaxMigDeviceCount")
        if not gpu.mig or handle.mig_slot is not None:
            raise error(real_pynvml.NVML_ERROR_NOT_SUPPORTED)
        return MAX_MIG_SLOTS

    def nvmlDeviceGetMigDeviceHandleByIndex(self, handle: Handle, index: int) -> Handle:
        gpu = self._gpu(handle, "nvmlDeviceGetMigDeviceHandleByIndex")
        if handle.mig_slot is not None or not 0 <= index < MAX_MIG_SLOTS:
            raise error(real_pynvml.NVML_ERROR_INVALID_ARGUMENT)
        if index >= len(gpu.mig):
            raise error(real_pynvml.NVML_ERROR_NOT_FOUND)
        return Handle(handle.gpu, index)

    def nvmlDeviceGetDeviceHandleFromMigDeviceHandle(self, handle: Handle) -> Handle:
        self._gpu(handle, "nvmlDeviceGetDeviceHandleFromMigDeviceHandle")
        if handle.mig_slot is None:
            raise error(real_pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return Handle(handle.gpu)

    # --- internals -----------------------------------------------------------------------------

    def _check(self, name: str) -> None:
        self.calls.append(name)
        if self._refcount <= 0:
            raise error(real_pynvml.NVML_ERROR_UNINITIALIZED)

    def _gpu(self, handle: Handle, name: str) -> FakeGpu:
        self._check(name)
        gpu = self.gpus[handle.gpu]
        if gpu.lost_after_reads is not None and gpu.reads >= gpu.lost_after_reads:
            raise error(real_pynvml.NVML_ERROR_GPU_IS_LOST)
        return gpu

    def _sensor(self, handle: Handle, name: str, gpu_supports: str) -> FakeGpu:
        gpu = self._gpu(handle, name)
        supported = gpu.energy_supported if gpu_supports == "energy" else gpu.power_supported
        if handle.mig_slot is not None or not supported:  # NVML has no per-MIG energy or power
            raise error(real_pynvml.NVML_ERROR_NOT_SUPPORTED)
        if gpu.fault is not None:
            raise gpu.fault
        gpu.reads += 1
        return gpu


def install(monkeypatch: pytest.MonkeyPatch, fake: FakePynvml) -> FakePynvml:
    """Make ``import pynvml`` return ``fake`` for the rest of the test."""
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    return fake
