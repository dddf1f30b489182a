"""Ranks started side by side by ``torchrun`` (siblings, not children), on CPU with gloo.

Without RAPL every rank's CPU estimate covers its own process tree only, so the callback's total
must be the sum over the ranks. The check reads each rank's CPU time from outside (psutil, from
this process) at the two points where the ranks wait for it: just before the callback starts and
just after it stops (see ``torchrun_run.py``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from carbon_callbacks import read_run_log
from carbon_callbacks.reporting.grouping import group_logs
from tests.conftest import CHILD_TIMEOUT_S

ROOT = Path(__file__).resolve().parents[1]
RANKS = 2
CPU_WATTS = 10.0  # torchrun_run.CPU_WATTS
TOLERANCE = 0.30
"""The summed estimate must be within 30% of the CPU time read from outside x the same watts."""


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system + times.children_user + times.children_system)


def wait_for(paths: list[Path], process: subprocess.Popen[str], deadline: float) -> None:
    """Until every path exists; a rank that dies or hangs fails the test (a hang guard only)."""
    while not all(path.exists() for path in paths):
        if process.poll() is not None:
            pytest.fail(f"torchrun ended ({process.returncode}) before {paths}")
        if time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)  # torchrun and its ranks
            pytest.fail(f"no {paths} within {CHILD_TIMEOUT_S} s")
        time.sleep(0.01)


def run_under_torchrun(framework: str, tmp_path: Path) -> dict[str, float]:
    """Run the job; return the callback's summed joules and the outside CPU-time joules."""
    sync = tmp_path / "sync"
    sync.mkdir()
    env = os.environ | {
        "PYTHONPATH": str(ROOT),
        "CARBON_CALLBACKS_POWERCAP_ROOT": str(tmp_path / "no-rapl"),  # the estimate on every rank
        "OMP_NUM_THREADS": "1",
    }
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(RANKS),
        "--standalone", str(ROOT / "tests" / "torchrun_run.py"),
        "--framework", framework, "--sync", str(sync),
    ]  # fmt: skip
    deadline = time.monotonic() + CHILD_TIMEOUT_S
    output_path = tmp_path / "output.txt"  # a file, not a pipe, which the ranks could fill
    with (
        output_path.open("w") as output_file,
        subprocess.Popen(
            command,
            env=env,
            cwd=tmp_path,
            stdout=output_file,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # a hang is ended with the whole group: torchrun and its ranks
        ) as process,
    ):
        readings = []
        for name, answer in (("ready", "go"), ("done", "exit")):
            marks = [sync / f"{name}-{rank}" for rank in range(RANKS)]
            wait_for(marks, process, deadline)
            readings.append(sum(cpu_seconds(int(mark.read_text())) for mark in marks))
            (sync / answer).touch()
        process.wait(timeout=max(1.0, deadline - time.monotonic()))
    output = output_path.read_text()
    assert process.returncode == 0, output
    assert output.count("carbon-callbacks: training completed") == 1, output
    totals = json.loads((sync / "totals.json").read_text())
    return {
        "summed_j": totals["carbon/energy_kwh"] * 3.6e6,
        "estimated": totals["carbon/estimated"],
        "outside_j": (readings[1] - readings[0]) * CPU_WATTS,
    }


@pytest.mark.parametrize("framework", ["transformers", "lightning"])
def test_the_cpu_estimate_is_summed_over_sibling_ranks(framework: str, tmp_path: Path) -> None:
    figures = run_under_torchrun(framework, tmp_path)
    ratio = figures["summed_j"] / figures["outside_j"]
    print(f"{framework}: {figures} ratio {ratio:.3f}")
    assert figures["estimated"] == 1.0
    assert abs(ratio - 1) <= TOLERANCE, figures

    logs = [read_run_log(path) for path in sorted((tmp_path / "runs").glob("*.jsonl"))]
    assert [log.path.name.rsplit("-", 1)[1] for log in logs] == ["rank0.jsonl", "rank1.jsonl"]
    headers = [log.header for log in logs]
    assert all(h is not None for h in headers)
    run_ids = {h["run_id"] for h in headers if h is not None}
    assert len(run_ids) == 1  # rank 0's id, in every rank's header
    for header in headers:
        assert header is not None
        assert [(c["id"], c["scope"]) for c in header["channels"]] == [("cpu:estimate", "process")]
        assert header["context"]["distributed"]["run_id"] in run_ids
    assert [len(group) for group in group_logs(logs)] == [RANKS]  # one run, by its id
