"""The fake ``amdsmi`` for child processes: AMD GPUs drawing constant power on the real clock.

``tests/meters/fake_amdsmi.py`` moves its accumulators only when a test calls ``advance``; a
script run as a subprocess (``benchmarks/gpu_check.py``) cannot be told to, so here the energy
accumulator reads ``power x time since install`` from ``time.monotonic_ns``, the sampler's clock.
A child gets it from ``tests/fake_gpu_site`` (its ``sitecustomize``) when ``CLOCKED_FAKE_VENDOR``
is ``amd``; ``pynvml`` is then made unimportable, for a machine without NVIDIA GPUs.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from tests.meters.fake_amdsmi import FakeAmdGpu, FakeAmdsmi, ProcessorHandle

GPUS = (
    FakeAmdGpu(
        "1fff74a1-0000-1000-80c1-000000000000",
        "0000:c1:00.0",
        hip_uuid="GPU-c10c4ed0aaaa0000",
        hip_id=0,
        name="AMD Instinct MI300X",
        power_w=400.0,
    ),
    FakeAmdGpu(
        "1fff74a1-0000-1000-80c6-000000000001",
        "0000:c6:00.0",
        hip_uuid="GPU-c10c4ed1bbbb0001",
        hip_id=1,
        name="AMD Radeon Graphics",
        power_w=120.0,
        energy_supported=False,
    ),
)
"""GPU 0 has the energy counter; GPU 1 reports socket power only. Their power never changes
(whole watts, as amdsmi reports them)."""


class ClockedAmdsmi(FakeAmdsmi):
    """``FakeAmdsmi`` whose energy accumulators follow the monotonic clock."""

    def __init__(self, gpus: list[FakeAmdGpu]) -> None:
        super().__init__(gpus)
        self._origin_ns = time.monotonic_ns()

    def amdsmi_get_energy_count(self, processor_handle: ProcessorHandle) -> dict[str, Any]:
        count = super().amdsmi_get_energy_count(processor_handle)
        gpu = self.gpus[processor_handle.gpu]
        elapsed_s = (time.monotonic_ns() - self._origin_ns) / 1e9
        count["energy_accumulator"] += round(gpu.power_w * elapsed_s * 1e6 / gpu.resolution_uj)
        return count


def install() -> None:
    """Make ``import amdsmi`` give the clocked fake and ``import pynvml`` fail."""
    sys.modules["amdsmi"] = ClockedAmdsmi([FakeAmdGpu(**vars(gpu)) for gpu in GPUS])
    sys.modules["pynvml"] = None  # type: ignore[assignment]  # import now raises
