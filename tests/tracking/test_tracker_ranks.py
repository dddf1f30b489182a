"""``Tracker`` in a custom loop under a launcher: its rank, its roles and its run id from the env.

The launched tests run ``tests/tracker_launch_run.py`` (a plain torch loop with ``Tracker``, as the
README shows) in two real processes: under ``torchrun --nproc_per_node 2`` and ``accelerate
launch --num_processes 2`` (on CPU) with a fake RAPL tree
whose 40 W package the test advances while both ranks' trackers run (the host counted once, by
local rank 0), and as two ``srun``-style tasks without RAPL (every rank's CPU estimate counted).
Nothing tells the tracker its rank but the launcher's variables.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from carbon_callbacks import RankInfo, Tracker, read_run_log
from carbon_callbacks.reporting.report import build_report
from carbon_callbacks.tracking.launcher import LauncherError, from_environment
from tests.conftest import CHILD_TIMEOUT_S
from tests.meters.fake_powercap import FakePowercap

ROOT = Path(__file__).resolve().parents[2]
RANKS = 2
PACKAGE_J = 67.0
"""What the fake 40 W package draws while the ranks' trackers run (40 W for 1.675 s)."""


# -- the launcher's variables ---------------------------------------------------------------


def torchrun_env(
    rank: int, local_rank: int, world: int = 2, local_world: int = 2
) -> dict[str, str]:
    return {
        "RANK": str(rank),
        "LOCAL_RANK": str(local_rank),
        "WORLD_SIZE": str(world),
        "LOCAL_WORLD_SIZE": str(local_world),
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": "29500",
        "TORCHELASTIC_RUN_ID": "5d0c2d6e-0e0b-4a55-9c4c-2a8d3f1b7e11",
    }


def srun_env(rank: int, local_rank: int, tasks: int = 2, nodes: int = 1) -> dict[str, str]:
    return {
        "SLURM_JOB_ID": "4242",
        "SLURM_STEP_ID": "0",
        "SLURM_PROCID": str(rank),
        "SLURM_LOCALID": str(local_rank),
        "SLURM_NTASKS": str(tasks),
        "SLURM_STEP_NUM_TASKS": str(tasks),
        "SLURM_STEP_NUM_NODES": str(nodes),
    }


def test_torchrun_variables_give_the_rank_and_the_roles() -> None:
    launch = from_environment(torchrun_env(rank=3, local_rank=1, world=4, local_world=2))
    assert launch is not None
    assert launch.rank == RankInfo(
        global_rank=3, local_rank=1, world_size=4, num_nodes=2, local_world_size=2
    )
    assert not launch.rank.measures_host
    assert launch.launcher == "RANK/WORLD_SIZE"
    assert launch.run_id_from == "TORCHELASTIC_RUN_ID"


def test_every_rank_derives_the_same_run_id_from_the_job_identity() -> None:
    ids = {
        from_environment(torchrun_env(rank, rank % 2, world=4)).run_id  # type: ignore[union-attr]
        for rank in range(4)
    }
    assert len(ids) == 1
    other_job = torchrun_env(0, 0, world=4) | {"TORCHELASTIC_RUN_ID": "another"}
    assert from_environment(other_job).run_id not in ids  # type: ignore[union-attr]
    restarted = torchrun_env(0, 0, world=4) | {"TORCHELASTIC_RESTART_COUNT": "1"}
    assert from_environment(restarted).run_id not in ids  # type: ignore[union-attr]


def test_a_static_rendezvous_falls_back_to_the_master_address_and_the_launchers_start() -> None:
    env = torchrun_env(1, 1) | {"TORCHELASTIC_RUN_ID": "none"}
    first, second = from_environment(env), from_environment(env | {"RANK": "0", "LOCAL_RANK": "0"})
    assert first is not None and second is not None
    assert first.run_id == second.run_id
    assert first.run_id_from == "MASTER_ADDR:MASTER_PORT+launcher start"


def test_srun_tasks_are_ranks_but_a_plain_sbatch_shell_is_not() -> None:
    launch = from_environment(srun_env(rank=1, local_rank=0, tasks=2, nodes=2))
    assert launch is not None
    assert launch.rank == RankInfo(global_rank=1, local_rank=0, world_size=2, num_nodes=2)
    assert launch.rank.measures_host  # the first task on its node
    assert launch.run_id_from == "SLURM_JOB_ID+SLURM_STEP_ID"
    batch_shell = {k: v for k, v in srun_env(0, 0, tasks=4).items() if "STEP" not in k}
    assert from_environment(batch_shell) is None
    assert from_environment(batch_shell | {"SLURM_STEP_ID": "4294967291"}) is None  # batch step


def test_mpi_variables_give_the_rank() -> None:
    ompi = {
        "OMPI_COMM_WORLD_RANK": "2",
        "OMPI_COMM_WORLD_LOCAL_RANK": "0",
        "OMPI_COMM_WORLD_SIZE": "4",
        "OMPI_COMM_WORLD_LOCAL_SIZE": "2",
        "PMIX_NAMESPACE": "prterun-host-1234@1",
    }
    launch = from_environment(ompi)
    assert launch is not None
    assert launch.rank == RankInfo(
        global_rank=2, local_rank=0, world_size=4, num_nodes=2, local_world_size=2
    )
    assert launch.run_id_from == "PMIX_NAMESPACE"
    pmi = from_environment({"PMI_RANK": "1", "PMI_SIZE": "2"})
    assert pmi is not None  # no local rank: one node
    assert pmi.rank == RankInfo(global_rank=1, local_rank=1, world_size=2, local_world_size=2)


@pytest.mark.parametrize(
    ("tasks_per_node", "nodes", "expected"),
    [("2(x2)", 2, 2), ("3,3", 2, 3), ("3,1", 2, None), ("", 2, None), ("", 1, 4)],
)
def test_srun_says_how_many_ranks_a_node_has_when_the_nodes_agree(
    tasks_per_node: str, nodes: int, expected: int | None
) -> None:
    env = srun_env(rank=0, local_rank=0, tasks=4, nodes=nodes)
    launch = from_environment(env | {"SLURM_STEP_TASKS_PER_NODE": tasks_per_node})
    assert launch is not None and launch.rank.local_world_size == expected


def test_the_gpu_position_needs_a_known_number_of_ranks_on_the_node() -> None:
    assert RankInfo(1, 1, 2, local_world_size=2).visible_position is not None
    assert RankInfo(1, 1, 2).visible_position is None  # unknown: every visible GPU, as before
    assert RankInfo(1, 0, 2, 2, local_world_size=1).visible_position is None  # alone on its node
    assert RankInfo(1, 1, 2, local_world_size=2, devices=()).visible_position is None


def test_the_inner_launchers_variables_win_over_sruns() -> None:
    env = srun_env(rank=0, local_rank=0, tasks=1) | torchrun_env(rank=1, local_rank=1)
    launch = from_environment(env)
    assert launch is not None and launch.rank.global_rank == 1


def test_a_single_process_is_no_launch() -> None:
    assert from_environment({}) is None
    assert from_environment(torchrun_env(0, 0, world=1, local_world=1)) is None


@pytest.mark.parametrize(
    "env",
    [
        {"RANK": "2", "WORLD_SIZE": "2"},
        {"RANK": "x", "WORLD_SIZE": "2"},
        {"RANK": "1", "LOCAL_RANK": "2", "WORLD_SIZE": "4"},
        {"RANK": "1", "LOCAL_RANK": "1", "WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "1"},
    ],
)
def test_contradicting_variables_are_refused(env: Mapping[str, str]) -> None:
    with pytest.raises(LauncherError):
        from_environment(env)


def test_a_tracker_warns_on_contradicting_variables_and_measures_a_single_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RANK", "5")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.warns(UserWarning, match=r"RANK/WORLD_SIZE.*rank=RankInfo"):
        tracker = Tracker(write_log=False)
    assert tracker.rank == RankInfo()
    assert "distributed" not in tracker.context


def test_the_rank_argument_overrides_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in torchrun_env(rank=1, local_rank=1).items():
        monkeypatch.setenv(name, value)
    from_env = Tracker(write_log=False)
    assert from_env.rank.global_rank == 1
    assert from_env.context["distributed"]["measures_host"] is False  # type: ignore[index]
    single = Tracker(write_log=False, rank=RankInfo())
    assert single.rank == RankInfo()
    assert "distributed" not in single.context
    given = Tracker(write_log=False, rank=RankInfo(global_rank=0, local_rank=0, world_size=2))
    assert given.context["distributed"]["launcher"] == "rank= argument"  # type: ignore[index]
    assert given.run_id == from_env.run_id  # still the launcher's job identity


@pytest.mark.parametrize(
    ("rank", "error"),
    [
        (RankInfo(global_rank=2, world_size=2), ValueError),
        (RankInfo(global_rank=0, local_rank=1, world_size=2), ValueError),
        (RankInfo(world_size=2, num_nodes=3), ValueError),
        (RankInfo(global_rank=1, local_rank=1, world_size=2, local_world_size=1), ValueError),
        (RankInfo(world_size=2, local_world_size=3), ValueError),
        ({"global_rank": 1}, TypeError),
    ],
)
def test_an_inconsistent_rank_argument_fails_at_construction(
    rank: object, error: type[Exception]
) -> None:
    with pytest.raises(error, match="RankInfo"):
        Tracker(write_log=False, rank=rank)  # type: ignore[arg-type]


# -- real processes -------------------------------------------------------------------------


def launch(
    command: list[str], envs: list[dict[str, str]], tmp_path: Path, between: object = None
) -> list[str]:
    """Start one process per env, wait until every rank's tracker runs, call ``between``, go."""
    sync = tmp_path / "sync"
    sync.mkdir()
    base = os.environ | {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    script = [str(ROOT / "tests" / "tracker_launch_run.py"), "--sync", str(sync)]
    script += ["--out", str(tmp_path / "runs")]
    outputs = [tmp_path / f"output-{n}.txt" for n in range(len(envs))]
    processes = []
    for env, output in zip(envs, outputs, strict=True):
        with output.open("w") as file:
            processes.append(
                subprocess.Popen(
                    [*command, *script],
                    env=base | env,
                    cwd=tmp_path,
                    stdout=file,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
    deadline = time.monotonic() + CHILD_TIMEOUT_S
    try:
        marks = [sync / f"ready-{rank}" for rank in range(RANKS)]
        while not all(mark.exists() for mark in marks):
            if any(p.poll() not in (None, 0) for p in processes) or time.monotonic() > deadline:
                pytest.fail("\n".join(o.read_text() for o in outputs))
            time.sleep(0.01)
        if callable(between):
            between()
        (sync / "go").touch()
        for process in processes:
            process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    texts = [output.read_text() for output in outputs]
    assert all(p.returncode == 0 for p in processes), texts
    return texts


def rank_logs(tmp_path: Path) -> list[dict[str, object]]:
    paths = sorted((tmp_path / "runs").glob("*.jsonl"))
    assert [path.name.rsplit("-", 1)[1] for path in paths] == ["rank0.jsonl", "rank1.jsonl"]
    headers = [read_run_log(path).header for path in paths]
    assert all(header is not None for header in headers)
    return headers  # type: ignore[return-value]


TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(RANKS)]
ACCELERATE = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu"]
ACCELERATE += ["--num_processes", str(RANKS), "--main_process_port", "0"]  # CPU: no GPU here


@pytest.mark.parametrize(
    ("command", "run_id_from"),
    [
        ([*TORCHRUN, "--standalone"], "TORCHELASTIC_RUN_ID"),
        (ACCELERATE, "MASTER_ADDR:MASTER_PORT+launcher start"),  # a static rendezvous: no id
    ],
    ids=["torchrun", "accelerate"],
)
def test_launched_ranks_count_the_host_once_and_report_one_run(
    command: list[str], run_id_from: str, tmp_path: Path
) -> None:
    powercap = FakePowercap(tmp_path / "fs")
    powercap.add_zone("intel-rapl:0", "package-0", energy_uj=1_000_000)
    env = {"CARBON_CALLBACKS_POWERCAP_ROOT": str(powercap.class_root)}
    launch(
        command,
        [env],
        tmp_path,
        between=lambda: powercap.add_energy("intel-rapl:0", int(PACKAGE_J * 1e6)),
    )

    headers = rank_logs(tmp_path)
    assert len({header["run_id"] for header in headers}) == 1  # derived alike, no collective
    roles = [header["context"]["distributed"] for header in headers]  # type: ignore[index]
    assert [(r["global_rank"], r["local_rank"], r["measures_host"]) for r in roles] == [
        (0, 0, True),
        (1, 1, False),
    ]
    assert {r["launcher"] for r in roles} == {"RANK/WORLD_SIZE"}
    assert {r["run_id_from"] for r in roles} == {run_id_from}
    channels = [[(c["id"], c["scope"]) for c in h["channels"]] for h in headers]  # type: ignore[attr-defined]
    assert channels == [[("cpu:package-0", "host")], []]

    report = build_report(tmp_path / "runs")
    assert len(report.runs) == 1
    run = report.runs[0]
    assert run.world_size == RANKS and run.ranks_found == (0, 1)
    assert run.measurement is not None
    assert run.measurement.energy_j == pytest.approx(PACKAGE_J, abs=1e-6)  # once, not 2 x
    summaries = [read_run_log(p).summary for p in sorted((tmp_path / "runs").glob("*.jsonl"))]
    durations = [float(s["duration_s"]) for s in summaries if s is not None]
    assert run.measurement.duration_s == max(durations)  # wall time once
    assert report.totals.duration_s == max(durations)


def test_srun_tasks_each_count_their_own_cpu_estimate(tmp_path: Path) -> None:
    no_rapl = {"CARBON_CALLBACKS_POWERCAP_ROOT": str(tmp_path / "no-rapl")}
    envs = [no_rapl | srun_env(rank, rank) for rank in range(RANKS)]
    launch([sys.executable], envs, tmp_path)

    headers = rank_logs(tmp_path)
    assert len({header["run_id"] for header in headers}) == 1
    for header in headers:
        channels = [(c["id"], c["scope"]) for c in header["channels"]]  # type: ignore[attr-defined]
        assert channels == [("cpu:estimate", "process")]
        assert header["context"]["distributed"]["run_id_from"] == (  # type: ignore[index]
            "SLURM_JOB_ID+SLURM_STEP_ID"
        )
    logs = [read_run_log(p) for p in sorted((tmp_path / "runs").glob("*.jsonl"))]
    per_rank = [float(log.summary["energy_j"]) for log in logs if log.summary]
    assert len(per_rank) == RANKS and all(j > 0 for j in per_rank)
    report = build_report(tmp_path / "runs")
    assert len(report.runs) == 1
    assert report.runs[0].measurement is not None
    assert report.runs[0].measurement.energy_j == pytest.approx(sum(per_rank), rel=1e-9)
