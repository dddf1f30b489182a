"""Grouping logs into runs: each log alone, except the per-rank logs of one distributed run.

Every rank writes its own log; the header and summary hold ``context.distributed``
(``global_rank``, ``local_rank``, ``world_size``, ``num_nodes``, and ``run_id``: global rank 0's
id, which every rank of the run shares, broadcast at start). Logs are one run when they share that
``run_id`` and ``world_size`` and have different global ranks. Logs written before ranks shared
an id (no ``run_id`` in ``context.distributed``) are matched the old way: the same ``run_name``
(unset counts as equal), ``world_size`` and ``num_nodes``, and overlapping time spans (within
:data:`RANK_START_TOLERANCE_S`), a rank's log joining the matching run whose start is closest to
its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

from carbon_callbacks.runlog import decode
from carbon_callbacks.runlog.reader import RunLog

RANK_START_TOLERANCE_S = 120.0
"""How far apart (seconds) the time spans of two ranks' logs may be and still be one run."""


MAX_WORLD_SIZE = 1 << 20
"""The largest ``world_size`` read as a distributed run; a log claiming more is read alone."""


def group_logs(logs: Sequence[RunLog]) -> list[list[RunLog]]:
    """Logs grouped into runs: each log alone, except the ranks of one distributed run together.

    See the module docstring for the rule. Groups come in start-time order; ranks in rank order.
    """
    groups: list[_Group] = []
    for log in sorted(logs, key=_sort_key):
        rank = log_rank(log)
        if rank is None:
            groups.append(_Group(None, log_span(log), {0: log}))
            continue
        start, end = log_span(log)
        candidates = [
            group
            for group in groups
            if group.key == rank.key
            and rank.global_rank not in group.ranks
            and (
                rank.shared_id
                or (
                    start <= group.span[1] + RANK_START_TOLERANCE_S
                    and end >= group.span[0] - RANK_START_TOLERANCE_S
                )
            )
        ]
        if candidates:
            best = min(candidates, key=lambda group: abs(group.span[0] - start))
            best.ranks[rank.global_rank] = log
            best.span = (min(best.span[0], start), max(best.span[1], end))
        else:
            groups.append(_Group(rank.key, (start, end), {rank.global_rank: log}))
    return [[group.ranks[r] for r in sorted(group.ranks)] for group in groups]


@dataclass(frozen=True)
class LogRank:
    """A log's place in a distributed run, and the key its ranks share."""

    global_rank: int
    world_size: int
    key: tuple[str | int | None, ...]
    """("run_id", the shared id, size); for older logs ("name", run name, size, nodes)."""
    shared_id: bool


@dataclass
class _Group:
    key: tuple[str | int | None, ...] | None
    span: tuple[float, float]
    ranks: dict[int, RunLog] = field(default_factory=dict)


def log_rank(log: RunLog) -> LogRank | None:
    """The log's place in a distributed run, from ``context.distributed``; None if not one."""
    for record in (log.header, log.summary):
        context = record.get("context") if record else None
        info = context.get("distributed") if isinstance(context, dict) else None
        if not isinstance(info, dict):
            continue
        try:
            rank, size, nodes = (int(info[k]) for k in ("global_rank", "world_size", "num_nodes"))
        except (KeyError, TypeError, ValueError, OverflowError):
            continue
        if 1 < size <= MAX_WORLD_SIZE and 0 <= rank < size:
            run_id = decode.text(info.get("run_id"))
            if run_id is not None:
                return LogRank(rank, size, ("run_id", run_id, size), shared_id=True)
            return LogRank(rank, size, ("name", _run_name_field(log), size, nodes), shared_id=False)
    return None


def log_span(log: RunLog) -> tuple[float, float]:
    """(start, end) of what the log covers, in Unix time; (0, 0) when it holds no time at all."""
    starts, ends = [], []
    if log.header is not None:
        starts.append(decode.maybe_number(log.header.get("started_unix")))
    for record in (*log.windows, *([log.summary] if log.summary else [])):
        start = decode.maybe_number(record.get("start_unix"))
        duration = decode.maybe_number(record.get("duration_s"))
        starts.append(start)
        ends.append(None if start is None or duration is None else start + duration)
    ends += [decode.maybe_number(p.get("t_unix")) for p in log.predictions]
    ends += [decode.maybe_number(c.get("t_unix")) for c in log.checkpoints[-1:]]
    known_starts = [s for s in starts if s is not None]
    start = min(known_starts) if known_starts else 0.0
    known_ends = [e for e in ends if e is not None]
    return start, max([start, *known_ends])


def _sort_key(log: RunLog) -> tuple[float, str]:
    return log_span(log)[0], str(log.path)


def _run_name_field(log: RunLog) -> str | None:
    return decode.text((log.header or {}).get("run_name"))


def run_id_of(log: RunLog) -> str:
    """The log's run id (from the header, else the summary), else its file name's stem."""
    for record in (log.header, log.summary):
        if record and isinstance(record.get("run_id"), str):
            return cast(str, record["run_id"])
    return log.path.stem


def run_name_of(log: RunLog) -> str:
    """The run name, else the run id."""
    return _run_name_field(log) or run_id_of(log)
