"""Which visible GPU a rank trains on when nothing names it: the one at its local rank.

Launchers such as torchrun and ``accelerate launch`` leave every GPU of the node visible to each
of its ranks, and by convention a rank trains on the visible GPU at its local rank: torchrun's
documentation has each rank use ``device_ids=[LOCAL_RANK]``, Accelerate puts a process on
``cuda:{local_process_index}``. Told a rank's ``VisiblePosition``, the GPU meters (NVML, amdsmi)
measure only that GPU, so that every GPU is counted by one rank:

- as many GPUs visible as ranks on the node: the GPU at the local rank's position;
- one GPU visible, chosen by a visibility variable (``srun --gpus-per-task``, a
  ``CUDA_VISIBLE_DEVICES`` of its own per rank): that one;
- the node's only GPU, visible to every rank: local rank 0 measures it, once;
- any other count: which GPU a rank uses is unknown, so local rank 0 measures every visible GPU
  for the node and the other ranks none (nothing counted twice), and local rank 0 says so once,
  naming ``gpu_ids=`` as the fix, since it may count GPUs the run does not use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from carbon_callbacks.meters.base import Unavailable

GPU_IDS_FIX = (
    "Pass gpu_ids= on every rank, naming the GPU it trains on (e.g. "
    'gpu_ids=[f"GPU-{torch.cuda.get_device_properties(device).uuid}"]), or give each rank one '
    "visible GPU (CUDA_VISIBLE_DEVICES, srun --gpus-per-task)."
)
MEASURED_BY_LOCAL_RANK_0 = "local rank 0's figure for every visible GPU"
"""What stands in for the GPUs a rank cannot tell apart: local rank 0 measures them all."""


@dataclass(frozen=True)
class VisiblePosition:
    """A rank's place on its node, which names its GPU among the visible ones.

    Attributes:
        local_rank: This process's rank among the node's processes: its GPU's position.
        local_world_size: The number of processes on the node (2 or more).
    """

    local_rank: int
    local_world_size: int


class Noted(Protocol):
    """A GPU picked by a meter, with the notes that go into its channel's ``how``."""

    notes: list[str]


PickT = TypeVar("PickT", bound=Noted)


def at_position(
    visible: Sequence[PickT],
    position: VisiblePosition | None,
    *,
    narrowed: bool,
    source: str,
) -> tuple[list[PickT], list[Unavailable]]:
    """The visible GPUs this rank measures, noted, and what to tell about the others.

    Args:
        visible: The GPUs the process sees, in the order CUDA (or HIP) numbers them.
        position: The rank's place on its node; None measures every visible GPU.
        narrowed: Whether a visibility variable chose the visible GPUs (not the whole node).
        source: The meter's source name, for the ``Unavailable`` entries.

    Returns:
        The GPUs to measure (each with a note saying why) and ``Unavailable`` entries: a
        warning for local rank 0 when it cannot tell which GPU a rank uses, else a record.
    """
    count = len(visible)
    if position is None or count == 0:
        return list(visible), []
    rank, ranks = position.local_rank, position.local_world_size
    if count == ranks:
        note = f"the visible GPU at local rank {rank}'s position, of the node's {ranks} ranks"
        return _noted([visible[rank]], note), []
    if count == 1 and narrowed:
        return _noted(list(visible), f"the one GPU visible to local rank {rank}"), []
    if count == 1:
        if rank == 0:
            return _noted(list(visible), f"the node's only GPU, once for its {ranks} ranks"), []
        reason = f"the node's only GPU is measured by local rank 0, once for its {ranks} ranks"
        return [], [Unavailable(source, reason)]
    unknown = (
        f"{count} GPUs are visible to each of the node's {ranks} ranks, so which one a rank "
        "trains on is unknown"
    )
    if rank == 0:
        note = f"every visible GPU, measured by local rank 0 for the node's {ranks} ranks"
        problem = Unavailable(
            source, unknown, GPU_IDS_FIX, degrades=True, stand_in=MEASURED_BY_LOCAL_RANK_0
        )
        return _noted(list(visible), note), [problem]
    reason = f"{unknown}: local rank 0 measures them all"
    return [], [Unavailable(source, reason, GPU_IDS_FIX)]


def _noted(picks: list[PickT], note: str) -> list[PickT]:
    for pick in picks:
        pick.notes.append(note)
    return picks
