"""A fake ``amdsmi`` whose GPUs follow the scripted power trace of the active ``amd_`` scenario.

Put this folder first on ``sys.path`` (``PYTHONPATH``) and every tool that does ``import amdsmi``
gets these GPUs; outside the ``amd_`` scenarios the import fails, as where ROCm's binding is not
installed. GPU 0 has the energy accumulator (``amdsmi_get_energy_count``: counts of
``counter_resolution`` microjoules, the exact integral of the trace from an arbitrary offset).
GPU 1's energy count is not supported, so only its socket power (``amdsmi_get_power_info``, whole
watts) reports the trace: ``current_socket_power`` the power now, ``average_socket_power`` the
mean over the last second (the firmware's averaging window, about a second).

It implements every amdsmi call that carbon-callbacks and CodeCarbon 3.3.2 make
(``codecarbon/core/gpu.py`` and ``gpu_amd.py``), with amdsmi 7.0.2's names, parameters, dict keys
and exception classes (``tests/meters/fake_amdsmi.py`` is checked against them); only the
library behind them is simulated, and dicts carry only the keys the tools read.
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import accuracy

if accuracy.active_scenario().vendor != "amd":  # an NVIDIA machine: no ROCm binding
    raise ModuleNotFoundError("No module named 'amdsmi'", name="amdsmi")

AMDSMI_STATUS_NOT_SUPPORTED = 2
AMDSMI_STATUS_NOT_INIT = 32
_ERR_INFO = {
    AMDSMI_STATUS_NOT_SUPPORTED: "AMDSMI_STATUS_NOT_SUPPORTED - Feature not supported",
    AMDSMI_STATUS_NOT_INIT: "AMDSMI_STATUS_NOT_INIT - Device not initialized",
}
COUNTER_RESOLUTION_UJ = 15.259
"""Microjoules per count of the energy accumulator."""
ACCUMULATOR_OFFSET = 1 << 40
"""The accumulator's value when the fake is loaded: it counts from driver load, not from zero."""
AVERAGE_WINDOW_S = 1.0

GPUS = (
    ("AMD Instinct MI300X", "1fff74a1-0000-1000-80c1-a300a300a300", "0000:c1:00.0", True),
    ("AMD Radeon Graphics", "1fff74a1-0000-1000-80c6-b0b0b0b0b0b0", "0000:c6:00.0", False),
)
"""(market name, UUID, PCI address, has an energy counter) of each simulated GPU."""


class AmdSmiException(Exception):
    """Base smi exception class"""


class AmdSmiLibraryException(AmdSmiException):
    """A library status code (``err_code``, made positive) and its text."""

    def __init__(self, err_code: int) -> None:
        err_code = abs(err_code)
        super().__init__(err_code)
        self.err_code = err_code
        self.err_info = _ERR_INFO.get(
            err_code, "AMDSMI_STATUS_UNKNOWN_ERROR - An unknown error occurred"
        )

    def __str__(self) -> str:
        return f"Error code:\n\t{self.err_code} | {self.err_info}"


amdsmi_exception = types.ModuleType("amdsmi.amdsmi_exception")
"""The submodule, as the real package's ``from .amdsmi_exception import *`` leaves it."""
amdsmi_exception.AmdSmiException = AmdSmiException
amdsmi_exception.AmdSmiLibraryException = AmdSmiLibraryException


class AmdSmiInitFlags(IntEnum):
    INIT_ALL_PROCESSORS = 4294967295
    INIT_AMD_CPUS = 1
    INIT_AMD_GPUS = 2


class AmdSmiTemperatureType(IntEnum):
    EDGE = 0
    HOTSPOT = 1


class AmdSmiTemperatureMetric(IntEnum):
    CURRENT = 0


@dataclass(frozen=True)
class ProcessorHandle:
    """An opaque processor handle."""

    index: int


_initialised = False


def amdsmi_init(flag: AmdSmiInitFlags = AmdSmiInitFlags.INIT_AMD_GPUS) -> None:
    """Start the library (one state per process, as the real one)."""
    global _initialised
    _initialised = True


def amdsmi_shut_down() -> None:
    """Stop the library."""
    global _initialised
    _require_init()
    _initialised = False


def amdsmi_get_processor_handles() -> list[ProcessorHandle]:
    """One handle per simulated GPU."""
    _require_init()
    return [ProcessorHandle(index) for index in range(len(GPUS))]


def amdsmi_get_gpu_device_uuid(processor_handle: ProcessorHandle) -> str:
    return GPUS[_index(processor_handle)][1]


def amdsmi_get_gpu_device_bdf(processor_handle: ProcessorHandle) -> str:
    return GPUS[_index(processor_handle)][2]


def amdsmi_get_gpu_enumeration_info(processor_handle: ProcessorHandle) -> dict[str, Any]:
    index = _index(processor_handle)
    hip_uuid = "GPU-" + GPUS[index][1].replace("-", "")[-16:]
    return {"drm_render": 128 + index, "drm_card": index, "hsa_id": 2 + index, "hip_id": index,
            "hip_uuid": hip_uuid}  # fmt: skip


def amdsmi_get_gpu_asic_info(processor_handle: ProcessorHandle) -> dict[str, Any]:
    return {"market_name": GPUS[_index(processor_handle)][0], "vendor_id": "0x1002"}


def amdsmi_get_gpu_board_info(processor_handle: ProcessorHandle) -> dict[str, Any]:
    _index(processor_handle)
    return {"product_serial": "N/A", "product_name": "N/A"}  # no shared package


def amdsmi_get_energy_count(processor_handle: ProcessorHandle) -> dict[str, Any]:
    """The accumulator in counts of ``counter_resolution``: the exact integral of the trace."""
    if not GPUS[_index(processor_handle)][3]:
        raise AmdSmiLibraryException(AMDSMI_STATUS_NOT_SUPPORTED)
    counts = ACCUMULATOR_OFFSET + int(accuracy.gpu_energy_j() * 1e6 / COUNTER_RESOLUTION_UJ)
    return {"energy_accumulator": counts, "counter_resolution": COUNTER_RESOLUTION_UJ,
            "timestamp": 0}  # fmt: skip


def amdsmi_get_power_info(processor_handle: ProcessorHandle) -> dict[str, Any]:
    """Whole watts: the trace now, and its mean over the last second."""
    _index(processor_handle)
    now_w = accuracy.gpu_power_w()
    window_j = accuracy.gpu_energy_j() - accuracy.gpu_energy_j(ago_s=AVERAGE_WINDOW_S)
    average_w = window_j / AVERAGE_WINDOW_S
    return {"socket_power": round(now_w), "current_socket_power": round(now_w),
            "average_socket_power": round(average_w), "gfx_voltage": 800, "soc_voltage": 900,
            "mem_voltage": 1200, "power_limit": 750_000_000}  # fmt: skip


def amdsmi_get_power_cap_info(processor_handle: ProcessorHandle) -> dict[str, Any]:
    _index(processor_handle)
    cap_uw = 750_000_000
    return {"power_cap": cap_uw, "default_power_cap": cap_uw, "dpm_cap": 0,
            "min_power_cap": 0, "max_power_cap": cap_uw}  # fmt: skip


def amdsmi_get_gpu_vram_usage(processor_handle: ProcessorHandle) -> dict[str, Any]:
    """Megabytes."""
    _index(processor_handle)
    return {"vram_total": 196_608, "vram_used": 1024}


def amdsmi_get_temp_metric(
    processor_handle: ProcessorHandle,
    sensor_type: AmdSmiTemperatureType,
    metric: AmdSmiTemperatureMetric,
) -> int:
    _index(processor_handle)
    return 55


def amdsmi_get_gpu_activity(processor_handle: ProcessorHandle) -> dict[str, Any]:
    _index(processor_handle)
    return {"gfx_activity": 90, "umc_activity": 40, "mm_activity": "N/A"}


def amdsmi_get_gpu_process_list(processor_handle: ProcessorHandle) -> list[dict[str, Any]]:
    """Processes on the GPU: none are simulated."""
    _index(processor_handle)
    return []


def amdsmi_get_gpu_metrics_info(processor_handle: ProcessorHandle) -> dict[str, Any]:
    """The firmware's metrics table: what ``amdsmi_get_power_info`` and the counter say."""
    index = _index(processor_handle)
    power = amdsmi_get_power_info(processor_handle)
    energy = "N/A"
    if GPUS[index][3]:
        energy = amdsmi_get_energy_count(processor_handle)["energy_accumulator"]
    return {"temperature_hotspot": 55, "average_socket_power": power["average_socket_power"],
            "current_socket_power": power["current_socket_power"],
            "energy_accumulator": energy}  # fmt: skip


def _require_init() -> None:
    if not _initialised:
        raise AmdSmiLibraryException(AMDSMI_STATUS_NOT_INIT)


def _index(processor_handle: ProcessorHandle) -> int:
    _require_init()
    if not isinstance(processor_handle, ProcessorHandle):
        raise AmdSmiException(f"Invalid parameter: {type(processor_handle)}")
    return processor_handle.index
