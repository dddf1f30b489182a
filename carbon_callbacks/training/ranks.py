"""Where a process sits in a distributed run, and how the ranks agree on one run at its start.

Each rank measures its own accelerator and its own process tree (the CPU estimate); local rank 0
also measures the host (RAPL: the whole socket), so a node is counted once. At the start one
collective gives every rank global rank 0's run id and the process ids of the other ranks.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from carbon_callbacks.tracking.tracker import new_run_id


@dataclass(frozen=True)
class RankInfo:
    """Where this process sits in a distributed run.

    Attributes:
        global_rank: Rank among all processes.
        local_rank: Rank among the processes of this node.
        world_size: Number of processes.
        num_nodes: Number of nodes.
        devices: NVML indices or UUIDs of the GPUs this process trains on: ``()`` for none (a
            CPU run), None when unknown, which measures every GPU the process can see.
    """

    global_rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    num_nodes: int = 1
    devices: tuple[int | str, ...] | None = None

    @property
    def distributed(self) -> bool:
        """True when more than one process takes part."""
        return self.world_size > 1

    @property
    def measures_host(self) -> bool:
        """Only local rank 0 measures host-level channels (RAPL), so the node is counted once.

        Process-level channels (the CPU estimate of this process tree) are every rank's own.
        """
        return self.local_rank == 0

    @property
    def measures_nothing(self) -> bool:
        """A rank with no accelerator whose host another rank measures: no channel adds 0.

        Such a rank has no channel when the node has RAPL (read by local rank 0); without RAPL it
        has its CPU estimate. Any other rank without a figure is unknown, never 0.
        """
        return self.distributed and not self.measures_host and not self.devices

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form for the run log."""
        return {
            "global_rank": self.global_rank,
            "local_rank": self.local_rank,
            "world_size": self.world_size,
            "num_nodes": self.num_nodes,
            "devices": None if self.devices is None else list(self.devices),
        }


def agree_on_run(
    rank: RankInfo, reduce: Callable[[list[float]], Sequence[float] | None]
) -> tuple[str, list[int]]:
    """Global rank 0's run id, and the pids of the other ranks on this node: one collective.

    The vector summed is [rank 0's time, rank 0's nonce, then (pid, node) per global rank],
    each entry set by one rank alone (all integers below 2**53, exact in float64). If the
    collective fails (``reduce`` gives None), this rank keeps an id of its own and excludes no
    process.
    """
    size, me = rank.world_size, rank.global_rank
    seconds, nonce = int(time.time()), int.from_bytes(os.urandom(3), "big")
    node = _node_key()
    local = [0.0] * (2 + 2 * size)
    if me == 0:
        local[0], local[1] = float(seconds), float(nonce)
    local[2 + 2 * me], local[3 + 2 * me] = float(os.getpid()), float(node)
    agreed = reduce(local)
    if agreed is None or len(agreed) != len(local) or agreed[0] <= 0:
        return new_run_id(seconds, nonce), []
    others = [
        int(agreed[2 + 2 * other])
        for other in range(size)
        if other != me and agreed[3 + 2 * other] == node and agreed[2 + 2 * other] > 0
    ]
    return new_run_id(int(agreed[0]), int(agreed[1])), others


def _node_key() -> int:
    """This machine's host name as a 48-bit number (exact in float64), to tell nodes apart."""
    digest = hashlib.blake2b(socket.gethostname().encode(), digest_size=6).digest()
    return int.from_bytes(digest, "big")
