"""A worker killed outright leaves a run log that still reports its figures, up to when.

Under Ray, one failing worker makes Ray end the others; an out-of-memory kill or a lost node does
the same to one process: SIGKILL, before any window closed and with no summary. Each program here
(``tests/reliability/programs``: a plain ``Tracker`` loop, a Lightning ``fit``) trains over its own
fake RAPL tree, burning a known 1 J a step, with checkpoints every 0.2 s (the 30 s interval set
lower inside the program). At its third step of the first epoch it waits until its run log's
latest checkpoint holds every joule burnt so far, writes a marker, and waits; the test then sends
SIGKILL. ``report`` must give those figures, exact, marked partial, and say up to when.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from carbon_callbacks import read_run_log
from carbon_callbacks.cli import main as cli_main
from tests.meters.fake_powercap import FakePowercap
from tests.reliability.programs.common import CHECKPOINT_STEP, JOULES_PER_STEP, SIGNAL_WAIT_S
from tests.reliability.test_crash import EXIT_TIMEOUT_S, PROGRAMS, child_environment

CHECKPOINT_S = 0.2
BURNT_J = (CHECKPOINT_STEP + 1) * JOULES_PER_STEP
"""What the program burnt when it was killed: the steps of the first epoch up to the marked one."""
MARKER_TIMEOUT_S = SIGNAL_WAIT_S + 300.0
"""Start-up on two busy cores, then the program's own wait for a checkpoint."""


def run_and_kill(program: str, folder: Path) -> tuple[int, float]:
    """Run ``program`` until its marker, SIGKILL it; return its exit status and the kill's time."""
    tree = FakePowercap(folder / "fs")
    tree.add_zone("intel-rapl:0", "package-0", energy_uj=1_000_000)
    tree.add_zone("intel-rapl:0:0", "dram", energy_uj=500_000)
    marker = folder / "marker"
    command = [
        sys.executable,
        str(PROGRAMS / f"{program}.py"),
        str(folder / "runs"),
        "--marker", str(marker),
        "--counter", str(tree.energy_path("intel-rapl:0")),
        "--mark-at-checkpoint", str(CHECKPOINT_S),
    ]  # fmt: skip
    with (folder / "stderr").open("wb") as err:
        process = subprocess.Popen(
            command, env=child_environment(tree.class_root), cwd=folder, stderr=err
        )
    try:
        deadline = time.monotonic() + MARKER_TIMEOUT_S
        while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert marker.exists(), (folder / "stderr").read_text()[-4000:]
        killed_unix = time.time()
        process.send_signal(signal.SIGKILL)
        return process.wait(timeout=EXIT_TIMEOUT_S), killed_unix
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize(
    ("program", "steps"),
    [
        pytest.param("plain_loop", CHECKPOINT_STEP + 1, id="tracker"),
        # Lightning counts a step at its batch's end, after the marked training_step burnt.
        pytest.param("lightning_fit", CHECKPOINT_STEP, id="lightning"),
    ],
)
def test_a_killed_worker_reports_its_figures_up_to_its_last_checkpoint(
    program: str, steps: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    returncode, killed_unix = run_and_kill(program, tmp_path)
    assert returncode == -signal.SIGKILL
    (path,) = (tmp_path / "runs").glob("*.jsonl")
    log = read_run_log(path)
    assert log.header is not None and log.summary is None
    assert log.windows == []  # killed in the first epoch: nothing but checkpoints to go by
    assert log.checkpoints, "no checkpoint was written"

    capsys.readouterr()
    assert cli_main(["report", str(path), "--json"]) == 0
    (run,) = json.loads(capsys.readouterr().out)["runs"]
    assert run["status"] == "unfinished"
    assert run["basis"] == "checkpoint"
    figures = run["figures"]
    assert figures["energy_j"] == pytest.approx(BURNT_J, rel=1e-9)
    assert figures["steps"] == steps
    assert figures["co2e_kg"] is not None and figures["co2e_kg"] > 0
    assert figures["partial"] is True
    started = log.header["started_unix"]
    assert started < run["up_to_unix"] <= killed_unix

    assert cli_main(["report", str(path)]) == 0
    text = capsys.readouterr().out
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(run["up_to_unix"]))
    assert f"figures are up to {stamp}, its last checkpoint" in text, text
    assert "partial" in text, text
