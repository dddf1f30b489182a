"""The fake ``pynvml`` for child processes: GPUs drawing constant power on the real clock.

``tests/meters/fake_pynvml.py`` moves its counters only when a test calls ``advance``; a script
run as a subprocess (``benchmarks/gpu_check.py``) cannot be told to, so here every counter reads
``power x time since install`` from ``time.monotonic_ns``, which is the clock the sampler stamps
its samples with. A child gets it by having ``tests/fake_gpu_site`` first on ``PYTHONPATH`` (its
``sitecustomize`` calls ``install``), since a monkeypatched module does not cross a process
boundary. ``CLOCKED_FAKE_HIDE`` (comma-separated module names) makes those modules unimportable
in the child too, to stand for a machine without them (Keras on the GPU machine);
``CLOCKED_FAKE_VENDOR=amd`` puts ``tests.meters.clocked_amdsmi`` in its place.
"""

from __future__ import annotations

import os
import sys
import time

from tests.meters.fake_pynvml import FakeGpu, FakePynvml, Handle

HIDE_VARIABLE = "CLOCKED_FAKE_HIDE"
VENDOR_VARIABLE = "CLOCKED_FAKE_VENDOR"
"""``amd``: the sitecustomize installs ``tests.meters.clocked_amdsmi`` instead of this fake."""
DRIVER_VERSION = "550.54.15"

GPUS = (
    FakeGpu("GPU-c10c4ed0-0000-4000-8000-000000000000", "NVIDIA H100 80GB HBM3", power_w=300.0),
    FakeGpu(
        "GPU-c10c4ed1-0000-4000-8000-000000000001",
        "Tesla P100-PCIE-16GB",
        power_w=150.0,
        energy_supported=False,
    ),
)
"""GPU 0 has the energy counter; GPU 1 is pre-Volta: power only. Their power never changes."""


class ClockedPynvml(FakePynvml):
    """``FakePynvml`` whose energy counters follow the monotonic clock."""

    def __init__(self, gpus: list[FakeGpu]) -> None:
        super().__init__(gpus)
        self._origin_ns = time.monotonic_ns()

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: Handle) -> int:
        gpu = self._sensor(handle, "nvmlDeviceGetTotalEnergyConsumption", gpu_supports="energy")
        elapsed_s = (time.monotonic_ns() - self._origin_ns) / 1e9
        return gpu.energy_mj + round(gpu.power_w * elapsed_s * 1000)

    def nvmlSystemGetDriverVersion(self) -> str:
        self._check("nvmlSystemGetDriverVersion")
        return DRIVER_VERSION


def install() -> None:
    """Make ``import pynvml`` give the clocked fake, and hide the modules the variable names."""
    sys.modules["pynvml"] = ClockedPynvml([FakeGpu(**vars(gpu)) for gpu in GPUS])
    hide_modules()


def hide_modules() -> None:
    """Make the modules ``CLOCKED_FAKE_HIDE`` names unimportable."""
    for name in filter(None, os.environ.get(HIDE_VARIABLE, "").split(",")):
        sys.modules[name.strip()] = None  # type: ignore[assignment]  # import now raises
