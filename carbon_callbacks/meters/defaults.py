"""The meters a tracker uses unless given others: NVIDIA and AMD GPUs, then RAPL or the estimate."""

from __future__ import annotations

import os
from collections.abc import Sequence

from carbon_callbacks.meters.base import Meter
from carbon_callbacks.meters.visible import VisiblePosition


def default_meters(
    *,
    gpu_ids: Sequence[int | str] | None = None,
    powercap_root: str | os.PathLike[str] | None = None,
    cpu_watts: float | None = None,
    measure_host: bool = True,
    exclude_pids: Sequence[int] = (),
    visible_position: VisiblePosition | None = None,
) -> list[Meter]:
    """NVML and amdsmi for the GPUs, then the host: RAPL where readable, else the CPU estimate.

    Args:
        gpu_ids: GPU indices, UUIDs or (AMD) PCI addresses, given to both GPU meters; None:
            the GPUs this process can see.
        powercap_root: Root of the powercap sysfs tree; None: the standard locations.
        cpu_watts: Watts per busy core for the CPU estimate; None: the CPU's TDP / cores from
            the CPU table, else the documented default.
        measure_host: False leaves out the host-level channels (RAPL CPU packages and DRAM: the
            whole socket), which one rank per node measures in a distributed run; the
            process-level CPU estimate stays, since it covers this process tree alone.
        exclude_pids: Processes the estimate leaves out with their descendants (other ranks,
            which measure themselves).
        visible_position: A rank's place on its node, given to both GPU meters: without
            ``gpu_ids``, the visible GPU at its local rank (``meters.visible``).
    """
    from carbon_callbacks.meters.amd import AmdMeter
    from carbon_callbacks.meters.cpu_estimate import CpuEstimateMeter
    from carbon_callbacks.meters.host import HostMeter
    from carbon_callbacks.meters.nvml import NvmlMeter
    from carbon_callbacks.meters.rapl import RaplMeter

    estimate = CpuEstimateMeter(cpu_watts, exclude_pids)
    host = HostMeter(RaplMeter(root=powercap_root), estimate, host_level=measure_host)
    return [
        NvmlMeter(gpu_ids=gpu_ids, visible_position=visible_position),
        AmdMeter(gpu_ids=gpu_ids, visible_position=visible_position),
        host,
    ]
