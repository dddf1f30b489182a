"""What the PyTorch-based adapters (Lightning, Hugging Face) share: device identity and sums.

Torch is never imported here: these helpers run only inside a framework that already imported it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any


def gpu_ids_of(device: Any) -> tuple[str, ...] | None:
    """What names the GPU a process trains on with torch ``device``, for the GPU meters.

    An NVIDIA GPU is named by its NVML UUID (``GPU-...``); an AMD GPU under ROCm torch (which
    uses the ``"cuda"`` device type too) by its PCI address (``0000:c1:00``), which amdsmi
    reports for each GPU while torch's UUID for it follows no form amdsmi knows. ``()`` for a
    device that is no GPU (CPU, MPS, XLA): nothing to measure there, though GPUs may be visible;
    None (measure every visible GPU) when torch cannot describe it (no driver, a MIG slice).
    """
    torch = sys.modules.get("torch")
    if getattr(device, "type", None) != "cuda":
        return ()
    if torch is None:
        return None
    try:
        index = device.index if device.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        if getattr(torch.version, "hip", None):
            domain, bus, slot = props.pci_domain_id, props.pci_bus_id, props.pci_device_id
            return (f"{domain:04x}:{bus:02x}:{slot:02x}",)
        return (f"GPU-{props.uuid}",)
    except Exception:  # no driver, a MIG slice torch cannot describe: measure what CUDA shows
        return None


def distributed_sum(device: Any) -> Callable[[Sequence[float]], Sequence[float]]:
    """A reducer that sums a vector over ``torch.distributed``'s default group (float64)."""

    def reduce(values: Sequence[float]) -> Sequence[float]:
        torch = sys.modules["torch"]
        distributed = torch.distributed
        if not (distributed.is_available() and distributed.is_initialized()):
            return values
        tensor = torch.tensor(list(values), dtype=torch.float64, device=device)
        distributed.all_reduce(tensor, op=distributed.ReduceOp.SUM)
        return [float(value) for value in tensor.cpu().tolist()]

    return reduce
