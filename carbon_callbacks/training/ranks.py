"""Where a process sits in a distributed run, and how the ranks agree on one run at its start.

Each rank measures its own accelerator and its own process tree (the CPU estimate); local rank 0
also measures the host (RAPL: the whole socket), so a node is counted once. ``RankInfo`` lives in
``tracking.launcher``, shared with ``Tracker``, which reads it from a launcher's environment in a
custom loop. At the start of a callback's run one collective gives every rank global rank 0's run
id and the process ids of the other ranks.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import Callable, Sequence

from carbon_callbacks.tracking.checks import new_run_id
from carbon_callbacks.tracking.launcher import RankInfo

__all__ = ["RankInfo", "agree_on_run"]


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
