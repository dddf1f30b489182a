"""Where a process sits in a distributed run, read from the launcher's environment.

The callbacks learn their rank from the framework; a custom loop (``Tracker`` in a script run by
``torchrun``, ``accelerate launch``, Ray Train, ``srun`` or ``mpirun``) learns it here, from the
variables the launcher sets, and its ranks agree on one run id without a collective: the id is
derived from the launcher's own identity for the job, which every rank reads alike.

Variables, first set found wins (an inner launcher's over an outer one's: torchrun inside srun):

- ``RANK`` / ``LOCAL_RANK`` / ``WORLD_SIZE`` / ``LOCAL_WORLD_SIZE``: torchrun, accelerate,
  Ray Train;
- ``OMPI_COMM_WORLD_RANK`` / ``_LOCAL_RANK`` / ``_SIZE`` / ``_LOCAL_SIZE``: Open MPI;
- ``PMI_RANK`` / ``PMI_SIZE`` (with Hydra's ``MPI_LOCALRANKID`` / ``MPI_LOCALNRANKS``): MPICH,
  Intel MPI; without a local rank only global rank 0 measures the host (right on one node);
- ``SLURM_PROCID`` / ``SLURM_LOCALID`` / ``SLURM_STEP_NUM_TASKS`` (else ``SLURM_NTASKS``), only
  for tasks ``srun`` started: a plain ``sbatch`` shell also has ``SLURM_PROCID=0`` and the job's
  ``SLURM_NTASKS``, but no job step of its own (``SLURM_STEP_ID``, or one of Slurm's special
  batch/extern step ids); read there, one script would be rank 0 of N and wait for N-1 logs.

The run id's 6 hex digits hash the launcher's identity for the job, first found of:
``TORCHELASTIC_RUN_ID`` (torchrun's rendezvous id, with the restart count; ``"none"``, its
default for a static rendezvous, is no id), ``SLURM_JOB_ID`` + ``SLURM_STEP_ID``, ``PMIX_NAMESPACE``
(Open MPI 5, srun --mpi=pmix); else ``MASTER_ADDR:MASTER_PORT`` (Ray Train exposes no run name to
its workers, accelerate's default rendezvous has no id) together with the launcher's start. On one
node the launcher's start is the start time of this process's parent, which the ranks a launcher
starts share exactly; across nodes no clock reading is shared, so it is the minute this rank
starts in, and ranks starting on either side of a minute's turn form two runs (neither counted
twice: each keeps its own logs); give the launcher an id (``torchrun --rdzv-id``) or ``run_id=``
to rule that out. The time before the digits is the launcher's start on one node, else the hour
(UTC) the rank starts in, which only labels the id.

A rank is told nothing of the GPU it trains on, but launchers follow one convention: the visible
GPU at its local rank. Knowing the node's number of ranks (``LOCAL_WORLD_SIZE``, Open MPI's
``_LOCAL_SIZE``, Hydra's ``MPI_LOCALNRANKS``, srun's ``SLURM_STEP_TASKS_PER_NODE``; all ranks
on one node otherwise), a rank without ``gpu_ids=`` measures that GPU alone, or, where the
visible GPUs do not tell (``meters.visible``), local rank 0 measures them for the node.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from carbon_callbacks.meters.visible import VisiblePosition
from carbon_callbacks.tracking.checks import checked_run_id, new_run_id


@dataclass(frozen=True)
class RankInfo:
    """Where this process sits in a distributed run.

    Attributes:
        global_rank: Rank among all processes.
        local_rank: Rank among the processes of this node.
        world_size: Number of processes.
        num_nodes: Number of nodes.
        devices: NVML indices or UUIDs of the GPUs this process trains on: ``()`` for none (a
            CPU run), None when unknown, which measures every GPU the process can see, or,
            with ``local_world_size`` known, the visible one at the local rank's position.
        local_world_size: Number of processes on this node; None when unknown.
    """

    global_rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    num_nodes: int = 1
    devices: tuple[int | str, ...] | None = None
    local_world_size: int | None = None

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

    @property
    def visible_position(self) -> VisiblePosition | None:
        """Where the GPU meters find this rank's GPU among the visible ones, when it counts.

        None (every visible GPU) for a single process, a lone rank on its node, known
        ``devices`` or an unknown number of ranks on the node.
        """
        ranks = self.local_world_size
        if self.devices is not None or not self.distributed or ranks is None or ranks < 2:
            return None
        return VisiblePosition(self.local_rank, ranks)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form for the run log, with the roles: who measures the host."""
        return {
            "global_rank": self.global_rank,
            "local_rank": self.local_rank,
            "world_size": self.world_size,
            "num_nodes": self.num_nodes,
            "devices": None if self.devices is None else list(self.devices),
            "local_world_size": self.local_world_size,
            "measures_host": self.measures_host,
        }


@dataclass(frozen=True)
class Launch:
    """A launcher's description of this process: its rank, and the run id its ranks share.

    Attributes:
        rank: Where this process sits.
        launcher: Which variables said so (``"RANK/WORLD_SIZE"``, ``"srun"``, ...).
        run_id: The id every rank derives alike from the launcher's job identity.
        run_id_from: What the id was derived from (variable names, never their values).
    """

    rank: RankInfo
    launcher: str
    run_id: str
    run_id_from: str


_RANK_VARIABLES = (
    ("RANK/WORLD_SIZE", "RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE"),
    (
        "Open MPI",
        "OMPI_COMM_WORLD_RANK",
        "OMPI_COMM_WORLD_LOCAL_RANK",
        "OMPI_COMM_WORLD_SIZE",
        "OMPI_COMM_WORLD_LOCAL_SIZE",
    ),
    ("PMI", "PMI_RANK", "MPI_LOCALRANKID", "PMI_SIZE", "MPI_LOCALNRANKS"),
    ("srun", "SLURM_PROCID", "SLURM_LOCALID", "SLURM_STEP_NUM_TASKS", None),
)
_SPECIAL_SLURM_STEPS = 0xFFFFFFF0
"""Slurm's batch, extern and interactive steps have ids from here up: no tasks srun started."""


@dataclass(frozen=True)
class Roles:
    """What a tracker measures and how its log is named, given its place in a run.

    Attributes:
        rank: Where the process sits (``RankInfo()`` for a single process).
        gpu_ids: The GPUs it measures when named (``gpu_ids=``, else ``rank.devices``).
        gpu_position: Else, its place among the visible GPUs (None: every visible GPU).
        measure_host: Whether it measures the host-level channels (RAPL: the whole socket).
        run_id: The run's id, shared by the ranks of a distributed run.
        context: The header's facts, with ``distributed`` (rank, roles, run id, launcher) for a
            rank of a distributed run.
    """

    rank: RankInfo
    gpu_ids: Sequence[int | str] | None
    gpu_position: VisiblePosition | None
    measure_host: bool
    run_id: str
    context: dict[str, object]


def roles_for(
    rank: RankInfo | None,
    gpu_ids: Sequence[int | str] | None,
    measure_host: bool | None,
    *,
    run_id: str | None,
    context: Mapping[str, object] | None,
    warn: Callable[[str, str], None],
    environ: Mapping[str, str] | None = None,
) -> Roles:
    """A tracker's roles: from its arguments where given, else from the launcher's environment.

    ``rank=`` overrides the environment (``RankInfo()``: a single process, whatever the
    variables say); ``gpu_ids=``, ``measure_host=``, ``run_id=`` and a ``context`` holding
    ``distributed`` override what the rank implies. Contradicting variables warn once
    (``warn``) and leave a single process, measured as today.

    Raises:
        TypeError, ValueError: ``rank=`` or ``run_id=`` is invalid; the message says what to write.
    """
    env = os.environ if environ is None else environ
    launch, source = None, "rank= argument"
    if rank is None:
        try:
            launch = from_environment(env)
        except LauncherError as error:
            warn(
                f"launcher:{error}",
                f"carbon-callbacks: {error}; this process is measured as a single one (the host "
                "too). Pass Tracker(rank=RankInfo(global_rank=..., local_rank=..., "
                "world_size=...)) to say where it sits.",
            )
        rank = launch.rank if launch is not None else RankInfo()
        source = launch.launcher if launch is not None else ""
    else:
        rank = checked_rank(rank)
    facts = dict(context or {})
    if run_id is not None:
        run_id, run_id_from = checked_run_id(run_id), "run_id= argument"
    elif launch is not None:
        run_id, run_id_from = launch.run_id, launch.run_id_from
    elif rank.distributed:
        run_id, run_id_from = _shared_run_id(env, rank)
    else:
        run_id, run_id_from = new_run_id(), ""
    host = rank.measures_host if measure_host is None else measure_host
    named = rank.devices if gpu_ids is None else gpu_ids
    position = rank.visible_position if named is None else None
    if rank.distributed and "distributed" not in facts:
        facts["distributed"] = rank.to_dict() | {
            "measures_host": host,
            "gpus": _gpu_role(gpu_ids, rank, position),
            "run_id": run_id,
            "launcher": source,
            "run_id_from": run_id_from,
        }
    return Roles(rank, named, position, host, run_id, facts)


def _gpu_role(
    gpu_ids: Sequence[int | str] | None, rank: RankInfo, position: VisiblePosition | None
) -> str:
    """Which GPUs a rank measures, for the header: the rule (its GPU channels say which)."""
    if gpu_ids is not None:
        return "gpu_ids= argument"
    if rank.devices is not None:
        return "rank.devices"
    if position is not None:
        return (
            f"the visible GPU at local rank {position.local_rank}'s position among the node's "
            f"{position.local_world_size} ranks (meters.visible)"
        )
    return "every visible GPU"


class LauncherError(ValueError):
    """The launcher's variables contradict each other; the message names them."""


def checked_rank(rank: object) -> RankInfo:
    """``rank=``: a ``RankInfo`` whose numbers fit together, else a message saying what to write.

    Raises:
        TypeError: Not a ``RankInfo``.
        ValueError: The numbers contradict each other (a rank outside the world, ...).
    """
    if not isinstance(rank, RankInfo):
        raise TypeError(
            f"rank must be a RankInfo, got {rank!r}; write e.g. rank=RankInfo(global_rank=1, "
            "local_rank=1, world_size=2), or leave it out to read the launcher's environment"
        )
    problem = _contradiction(rank)
    if problem is not None:
        raise ValueError(
            f"rank={rank!r}: {problem}; write the values your launcher gives, e.g. "
            "RankInfo(global_rank=1, local_rank=1, world_size=2)"
        )
    return rank


def from_environment(environ: Mapping[str, str] | None = None) -> Launch | None:
    """This process's place from its launcher's variables, or None outside a distributed launch.

    Raises:
        LauncherError: The variables found contradict each other (the tracker warns and
            measures this process as a single one).
    """
    env = os.environ if environ is None else environ
    for launcher, rank_name, local_name, size_name, local_size_name in _RANK_VARIABLES:
        if launcher == "srun" and size_name not in env:
            size_name = "SLURM_NTASKS"
        if rank_name not in env or size_name not in env:
            continue
        if launcher == "srun" and not _started_by_srun(env):
            continue
        global_rank, world_size = _integer(env, rank_name), _integer(env, size_name)
        local_rank = _integer(env, local_name) if local_name in env else global_rank
        has_local_size = local_size_name is not None and local_size_name in env
        local_size = _integer(env, local_size_name) if has_local_size else None
        if launcher == "srun":
            nodes = _integer(env, "SLURM_STEP_NUM_NODES") if "SLURM_STEP_NUM_NODES" in env else 1
            local_size = _tasks_per_node(env.get("SLURM_STEP_TASKS_PER_NODE", ""))
        elif local_size:
            nodes = max(1, -(-world_size // local_size))
        else:
            nodes = 1
        if local_size is None and nodes == 1:
            local_size = world_size
        rank = RankInfo(global_rank, local_rank, world_size, nodes, local_world_size=local_size)
        problem = _contradiction(rank)
        if problem is not None:
            raise LauncherError(f"the {launcher} variables ({rank_name}, ...) say {problem}")
        if not rank.distributed:
            return None
        run_id, run_id_from = _shared_run_id(env, rank)
        return Launch(rank, launcher, run_id, run_id_from)
    return None


def _tasks_per_node(value: str) -> int | None:
    """The tasks srun starts on each node (``"2(x3),1"``), when every node has as many."""
    counts = set()
    for part in value.split(","):
        count, _, repeat = part.strip().partition("(x")
        if not count.isdigit() or (repeat and not repeat.removesuffix(")").isdigit()):
            return None
        counts.add(int(count))
    return counts.pop() if len(counts) == 1 else None


def _started_by_srun(env: Mapping[str, str]) -> bool:
    """True for a task srun started: a job step of its own (see the module docstring)."""
    step = env.get("SLURM_STEP_ID", env.get("SLURM_STEPID", ""))
    return step.isdigit() and int(step) < _SPECIAL_SLURM_STEPS and "SLURM_JOB_ID" in env


def _shared_run_id(env: Mapping[str, str], rank: RankInfo) -> tuple[str, str]:
    """The run id every rank derives alike, and what it came from (see the module docstring)."""
    now = int(time.time())
    one_node = rank.num_nodes == 1
    start = _launcher_start() if one_node else None
    label_time = start if start is not None else now - now % 3600
    elastic = env.get("TORCHELASTIC_RUN_ID", "")
    if elastic and elastic != "none":
        restart = env.get("TORCHELASTIC_RESTART_COUNT", "0")
        return _hashed(label_time, f"torchelastic:{elastic}:{restart}"), "TORCHELASTIC_RUN_ID"
    if _started_by_srun(env):
        job = f"slurm:{env['SLURM_JOB_ID']}.{env.get('SLURM_STEP_ID', env.get('SLURM_STEPID'))}"
        job_start = env.get("SLURM_JOB_START_TIME", "")
        label = int(job_start) if job_start.isdigit() else label_time
        return _hashed(label, job), "SLURM_JOB_ID+SLURM_STEP_ID"
    if env.get("PMIX_NAMESPACE"):
        return _hashed(label_time, f"pmix:{env['PMIX_NAMESPACE']}"), "PMIX_NAMESPACE"
    rendezvous = f"{env.get('MASTER_ADDR', '')}:{env.get('MASTER_PORT', '')}"
    if start is not None:
        return _hashed(start, f"{rendezvous}@{start}"), "MASTER_ADDR:MASTER_PORT+launcher start"
    minute = now - now % 60
    return _hashed(minute, f"{rendezvous}@{minute}"), "MASTER_ADDR:MASTER_PORT+start minute"


def _launcher_start() -> int | None:
    """Start time (Unix seconds) of this process's parent: the launcher, on one node."""
    try:
        import psutil

        return int(psutil.Process(os.getppid()).create_time())
    except Exception:  # no parent to read (gone, not permitted): the minute instead
        return None


def _hashed(unix_seconds: int, identity: str) -> str:
    digest = hashlib.blake2b(identity.encode(), digest_size=3).digest()
    return new_run_id(unix_seconds, int.from_bytes(digest, "big"))


def _integer(env: Mapping[str, str], name: str | None) -> int:
    text = env.get(name or "", "").strip()
    if not text.isdigit():
        raise LauncherError(f"{name}={text!r} is not a whole number >= 0")
    return int(text)


def _contradiction(rank: RankInfo) -> str | None:
    """What is wrong with the numbers, or None when they fit together."""
    numbers = (rank.global_rank, rank.local_rank, rank.world_size, rank.num_nodes)
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in numbers):
        return "global_rank, local_rank, world_size and num_nodes must be ints"
    if rank.world_size < 1 or rank.num_nodes < 1:
        return "world_size and num_nodes must be at least 1"
    if not 0 <= rank.global_rank < rank.world_size:
        return f"global rank {rank.global_rank} is not in 0..{rank.world_size - 1}"
    if not 0 <= rank.local_rank <= rank.global_rank:
        return f"local rank {rank.local_rank} is not in 0..{rank.global_rank} (the global rank)"
    if rank.num_nodes > rank.world_size:
        return f"{rank.num_nodes} nodes for {rank.world_size} processes"
    local = rank.local_world_size
    if local is not None and (
        not isinstance(local, int) or isinstance(local, bool) or not 1 <= local <= rank.world_size
    ):
        return f"local_world_size {local!r} is not an int in 1..{rank.world_size} (world size)"
    if local is not None and rank.local_rank >= local:
        return f"local rank {rank.local_rank} is not below the local world size {local}"
    return None
