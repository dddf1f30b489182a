"""A fake ``pynvml`` whose GPUs follow the scripted power trace of the active accuracy scenario.

Put this folder first on ``sys.path`` (``PYTHONPATH``) and every tool that does ``import pynvml``
gets these GPUs. GPU 0 is a Volta-or-newer GPU: ``nvmlDeviceGetTotalEnergyConsumption`` returns the
exact integral of the trace (mJ, from an arbitrary offset). GPU 1 is pre-Volta: the energy call
raises ``NVMLError_NotSupported`` and only ``nvmlDeviceGetPowerUsage`` (mW) reports the trace.
The names, signatures, error classes and constants are those of ``nvidia-ml-py`` that NVML users
call (CodeCarbon, Carbontracker and carbon-callbacks); only the library behind them is simulated.
In the ``amd_`` scenarios its import fails, as where no NVIDIA binding is installed.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import accuracy

if accuracy.active_scenario().vendor != "nvidia":  # an AMD machine: no NVIDIA binding
    raise ModuleNotFoundError("No module named 'pynvml'", name="pynvml")

NVML_SUCCESS = 0
NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NOT_FOUND = 6
NVML_ERROR_FUNCTION_NOT_FOUND = 13
NVML_ERROR_GPU_IS_LOST = 15
NVML_ERROR_UNKNOWN = 999
NVML_TEMPERATURE_GPU = 0
NVML_COMPUTEMODE_DEFAULT = 0

ENERGY_OFFSET_MJ = 3_600_000_000
"""The counter's value when the fake is loaded: NVML counts from driver load, not from zero."""

GPUS = (
    ("NVIDIA A100-SXM4-40GB", "GPU-a100a100-0000-4000-8000-000000000000", True),
    ("Tesla P100-PCIE-16GB", "GPU-p100p100-0000-4000-8000-000000000001", False),
)
"""(name, UUID, has an energy counter) of each simulated GPU, in NVML index order."""


class NVMLError(Exception):
    """Base of the NVML errors; ``NVMLError(code)`` builds the subclass for ``code``."""

    value: int = NVML_ERROR_UNKNOWN
    _by_code: dict[int, type[NVMLError]] = {}  # noqa: RUF012 - filled once below

    def __new__(cls, value: int = NVML_ERROR_UNKNOWN) -> NVMLError:
        """Pick the subclass for ``value``, as the real binding does."""
        chosen = NVMLError._by_code.get(value, cls) if cls is NVMLError else cls
        error = Exception.__new__(chosen)
        error.value = value
        return error

    def __init__(self, value: int = NVML_ERROR_UNKNOWN) -> None:
        super().__init__(value)

    def __str__(self) -> str:
        return _MESSAGES.get(self.value, "Unknown Error")


def _subclass(name: str, code: int) -> type[NVMLError]:
    """Define ``NVMLError_<name>`` for ``code`` and register it."""
    cls = type(f"NVMLError_{name}", (NVMLError,), {"value": code})
    NVMLError._by_code[code] = cls
    return cls


_MESSAGES = {
    NVML_ERROR_UNINITIALIZED: "Uninitialized",
    NVML_ERROR_INVALID_ARGUMENT: "Invalid Argument",
    NVML_ERROR_NOT_SUPPORTED: "Not Supported",
    NVML_ERROR_NOT_FOUND: "Not Found",
    NVML_ERROR_FUNCTION_NOT_FOUND: "Function Not Found",
    NVML_ERROR_UNKNOWN: "Unknown Error",
}
NVMLError_Uninitialized = _subclass("Uninitialized", NVML_ERROR_UNINITIALIZED)
NVMLError_InvalidArgument = _subclass("InvalidArgument", NVML_ERROR_INVALID_ARGUMENT)
NVMLError_NotSupported = _subclass("NotSupported", NVML_ERROR_NOT_SUPPORTED)
NVMLError_NotFound = _subclass("NotFound", NVML_ERROR_NOT_FOUND)
NVMLError_FunctionNotFound = _subclass("FunctionNotFound", NVML_ERROR_FUNCTION_NOT_FOUND)
NVMLError_Unknown = _subclass("Unknown", NVML_ERROR_UNKNOWN)


@dataclass(frozen=True)
class c_nvmlMemory_t:
    """Memory figures in bytes, as ``nvmlDeviceGetMemoryInfo`` returns them."""

    total: int
    free: int
    used: int


@dataclass(frozen=True)
class c_nvmlUtilization_t:
    """Utilisation percentages, as ``nvmlDeviceGetUtilizationRates`` returns them."""

    gpu: int
    memory: int


@dataclass(frozen=True)
class Handle:
    """An opaque device handle."""

    index: int


_lock = threading.Lock()
_refcount = 0


def nvmlInit() -> None:
    """Start NVML (reference counted, as the real library is)."""
    global _refcount
    with _lock:
        _refcount += 1


def nvmlShutdown() -> None:
    """Release one ``nvmlInit``."""
    global _refcount
    with _lock:
        _require_init()
        _refcount -= 1


def nvmlSystemGetDriverVersion() -> str:
    """The driver version string."""
    _require_init()
    return "550.54.15"


def nvmlDeviceGetCount() -> int:
    """Number of GPUs."""
    _require_init()
    return len(GPUS)


def nvmlDeviceGetHandleByIndex(index: int) -> Handle:
    """The handle of GPU ``index``."""
    _require_init()
    if not 0 <= index < len(GPUS):
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    return Handle(index)


def nvmlDeviceGetName(handle: Handle) -> str:
    """Marketing name."""
    return GPUS[_index(handle)][0]


def nvmlDeviceGetUUID(handle: Handle) -> str:
    """``GPU-...`` UUID."""
    return GPUS[_index(handle)][1]


def nvmlDeviceGetTotalEnergyConsumption(handle: Handle) -> int:
    """Millijoules since the fake was loaded plus an offset: the exact integral of the trace."""
    if not GPUS[_index(handle)][2]:
        raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
    return ENERGY_OFFSET_MJ + int(accuracy.gpu_energy_j() * 1000)


def nvmlDeviceGetPowerUsage(handle: Handle) -> int:
    """Milliwatts now, from the trace."""
    _index(handle)
    return round(accuracy.gpu_power_w() * 1000)


def nvmlDeviceGetEnforcedPowerLimit(handle: Handle) -> int:
    """Power limit in milliwatts."""
    _index(handle)
    return 400_000


def nvmlDeviceGetMemoryInfo(handle: Handle) -> c_nvmlMemory_t:
    """Memory in bytes."""
    _index(handle)
    total = 40 * 2**30
    return c_nvmlMemory_t(total=total, free=total - 2**30, used=2**30)


def nvmlDeviceGetTemperature(handle: Handle, sensor: int) -> int:
    """Degrees Celsius."""
    _index(handle)
    if sensor != NVML_TEMPERATURE_GPU:
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    return 55


def nvmlDeviceGetUtilizationRates(handle: Handle) -> c_nvmlUtilization_t:
    """Utilisation percentages."""
    _index(handle)
    return c_nvmlUtilization_t(gpu=90, memory=40)


def nvmlDeviceGetComputeMode(handle: Handle) -> int:
    """The compute mode."""
    _index(handle)
    return NVML_COMPUTEMODE_DEFAULT


def nvmlDeviceGetComputeRunningProcesses(handle: Handle) -> list[object]:
    """Processes using the GPU for compute: none are simulated."""
    _index(handle)
    return []


def nvmlDeviceGetGraphicsRunningProcesses(handle: Handle) -> list[object]:
    """Processes using the GPU for graphics: none are simulated."""
    _index(handle)
    return []


def nvmlDeviceGetMaxMigDeviceCount(handle: Handle) -> int:
    """MIG is not supported by the simulated GPUs."""
    _index(handle)
    raise NVMLError(NVML_ERROR_NOT_SUPPORTED)


def nvmlDeviceGetMigDeviceHandleByIndex(handle: Handle, index: int) -> Handle:
    """MIG is not supported by the simulated GPUs."""
    _index(handle)
    raise NVMLError(NVML_ERROR_NOT_SUPPORTED)


def _require_init() -> None:
    if _refcount <= 0:
        raise NVMLError(NVML_ERROR_UNINITIALIZED)


def _index(handle: Handle) -> int:
    _require_init()
    if not isinstance(handle, Handle) or not 0 <= handle.index < len(GPUS):
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    return handle.index
