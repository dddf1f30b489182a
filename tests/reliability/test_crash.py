"""Crash safety: a training killed, terminated or interrupted mid-epoch leaves a usable run log.

Each frontend (a plain ``Tracker`` loop, Lightning, Keras, the Hugging Face ``Trainer``) trains in
a subprocess (``tests/reliability/programs``) over its own fake RAPL tree, adding a known amount
of energy every step. Once the program is mid-epoch after a full epoch it writes a marker file;
only then does the test send the signal, so timing never depends on sleeping and hoping.

- SIGKILL: nothing of ours runs, yet the log reads back up to its last record (every finished
  epoch exact, no summary), and ``carbon-callbacks report`` says the run did not finish.
- SIGTERM (what SLURM and Kubernetes send before preemption) and SIGINT (Ctrl-C): the run is
  closed as ``"interrupted"`` with its epochs so far, and the process ends with the same return
  code as the same program without our callback under the same signal: we neither swallow the
  signal nor change the exit status.

The five runs of a frontend start together: most of their time is interpreter and framework
start-up, which then overlaps.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from carbon_callbacks import read_run_log
from carbon_callbacks.cli import main as cli_main
from carbon_callbacks.runlog.reader import RunLog
from tests.meters.fake_powercap import FakePowercap
from tests.reliability.programs.common import JOULES_PER_STEP, STEPS_PER_EPOCH

ROOT = Path(__file__).resolve().parents[2]
PROGRAMS = Path(__file__).resolve().parent / "programs"
MARKER_TIMEOUT_S = 300.0
"""Generous: five framework start-ups share two busy cores."""
EXIT_TIMEOUT_S = 120.0
EPOCH_J = STEPS_PER_EPOCH * JOULES_PER_STEP
TRUNCATED = "truncated last record"
STDERR_ALARMS = ("Exception ignored", "Error in atexit")
"""Python's reports of an error it could not raise (in a signal handler, at exit, in __del__)."""

FRONTENDS = [
    pytest.param("plain_loop", id="plain"),
    pytest.param("lightning_fit", id="lightning", marks=pytest.mark.slow),
    pytest.param("keras_fit", id="keras", marks=pytest.mark.slow),
    pytest.param("hf_trainer", id="transformers", marks=pytest.mark.slow),
]
SCENARIOS: dict[str, tuple[signal.Signals, bool]] = {
    "kill": (signal.SIGKILL, True),
    "term": (signal.SIGTERM, True),
    "term-without": (signal.SIGTERM, False),
    "int": (signal.SIGINT, True),
    "int-without": (signal.SIGINT, False),
}
"""Scenario name -> (the signal sent mid-epoch, whether the program runs with our callback)."""


@dataclass
class Run:
    """One program run: its files, and how it ended."""

    folder: Path
    process: subprocess.Popen[bytes]
    signum: signal.Signals
    signalled: bool = False
    returncode: int | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def marker(self) -> Path:
        """Written by the program once it is mid-epoch after a full epoch."""
        return self.folder / "marker"

    @property
    def runs(self) -> Path:
        """The program's run-log folder."""
        return self.folder / "runs"

    @property
    def stderr(self) -> str:
        """What the program wrote to stderr (tracebacks, Python's own error reports)."""
        return (self.folder / "stderr").read_text(errors="replace")

    def log(self) -> RunLog:
        """The one run log the program wrote."""
        paths = sorted(self.runs.glob("*.jsonl"))
        assert len(paths) == 1, f"expected one run log in {self.runs}, found {paths}"
        return read_run_log(paths[0])

    def check_ended(self) -> None:
        """Fail with the program's stderr unless its signal came mid-training and ended it."""
        assert not self.errors, "\n".join(self.errors) + "\n--- stderr ---\n" + self.stderr[-4000:]
        finished = self.marker.with_name(self.marker.name + ".finished")
        assert not finished.exists(), f"training ran to its end: {self.signum.name} had no effect"


def child_environment(powercap_root: Path) -> dict[str, str]:
    """This environment without any carbon-callbacks setting, plus the fake tree and the repo."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("CARBON_CALLBACKS_") and name != "ELECTRICITYMAPS_API_TOKEN"
    }
    return env | {
        "PYTHONPATH": str(ROOT),
        "KERAS_BACKEND": "torch",
        "CARBON_CALLBACKS_POWERCAP_ROOT": str(powercap_root),
        "CARBON_CALLBACKS_CACHE_DIR": str(powercap_root.parent / "cache"),
    }


def launch(program: str, folder: Path, signum: signal.Signals, callback: bool) -> Run:
    """Start ``program`` in ``folder`` over a fake RAPL tree of its own."""
    tree = FakePowercap(folder / "fs")
    tree.add_zone("intel-rapl:0", "package-0", energy_uj=1_000_000)
    tree.add_zone("intel-rapl:0:0", "dram", energy_uj=500_000)
    command = [
        sys.executable,
        str(PROGRAMS / f"{program}.py"),
        str(folder / "runs"),
        "--with-callback" if callback else "--without-callback",
        "--marker", str(folder / "marker"),
        "--counter", str(tree.energy_path("intel-rapl:0")),
    ]  # fmt: skip
    with (folder / "stdout").open("wb") as out, (folder / "stderr").open("wb") as err:
        process = subprocess.Popen(
            command, env=child_environment(tree.class_root), cwd=folder, stdout=out, stderr=err
        )
    return Run(folder, process, signum)


def signal_when_marked(runs: list[Run]) -> None:
    """Send each run its signal as soon as its marker exists; note runs that end or hang first."""
    deadline = time.monotonic() + MARKER_TIMEOUT_S
    waiting = list(runs)
    while waiting and time.monotonic() < deadline:
        for run in list(waiting):
            if run.marker.exists():
                run.process.send_signal(run.signum)
                run.signalled = True
                waiting.remove(run)
            elif run.process.poll() is not None:
                run.errors.append(f"ended ({run.process.returncode}) before its marker")
                waiting.remove(run)
        time.sleep(0.01)
    for run in waiting:
        run.errors.append(f"no marker after {MARKER_TIMEOUT_S:.0f} s")


def wait_for_exit(run: Run) -> None:
    """Record the return code; kill a run that outlives its signal by far (it swallowed it)."""
    try:
        run.returncode = run.process.wait(timeout=EXIT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        run.process.kill()
        run.process.wait()
        run.errors.append(f"still running {EXIT_TIMEOUT_S:.0f} s after {run.signum.name}")


@pytest.fixture(scope="module", params=FRONTENDS)
def runs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Run]]:
    """Every scenario of one frontend, started together, signalled mid-epoch, ended."""
    program: str = request.param
    base = tmp_path_factory.mktemp(program)
    started: dict[str, Run] = {}
    try:
        for name, (signum, callback) in SCENARIOS.items():
            folder = base / name
            folder.mkdir()
            started[name] = launch(program, folder, signum, callback)
        signal_when_marked(list(started.values()))
        for run in started.values():
            wait_for_exit(run)
        yield started
    finally:
        for run in started.values():
            if run.process.poll() is None:
                run.process.kill()
                run.process.wait()


def check_epochs(log: RunLog) -> None:
    """At least one epoch was logged, and each logged epoch is whole and exact."""
    assert log.header is not None
    assert log.windows, "no epoch window: the signal came before the first epoch ended"
    for window in log.windows:
        assert window["name"] == "epoch"
        assert window["steps"] == STEPS_PER_EPOCH
        assert window["energy_j"] == pytest.approx(EPOCH_J, rel=1e-9)
        assert window["co2e_kg"] is not None and window["co2e_kg"] > 0


def test_sigkill_leaves_a_log_readable_up_to_the_last_epoch(
    runs: dict[str, Run], capsys: pytest.CaptureFixture[str]
) -> None:
    run = runs["kill"]
    run.check_ended()
    assert run.returncode == -signal.SIGKILL
    log = run.log()
    check_epochs(log)
    assert log.summary is None
    assert all(TRUNCATED in problem for problem in log.problems), log.problems
    assert len(log.problems) <= 1

    capsys.readouterr()
    assert cli_main(["report", str(run.runs)]) == 0
    report = capsys.readouterr().out
    assert ": unfinished" in report, report
    assert "no summary record" in report, report


@pytest.mark.parametrize("scenario", ["term", "int"])
def test_sigterm_and_ctrl_c_close_the_run_as_interrupted_and_keep_the_exit_status(
    runs: dict[str, Run], scenario: str
) -> None:
    run, without = runs[scenario], runs[f"{scenario}-without"]
    run.check_ended()
    without.check_ended()
    assert run.returncode == without.returncode, (run.stderr[-4000:], without.stderr[-4000:])
    for alarm in STDERR_ALARMS:
        assert alarm not in run.stderr or alarm in without.stderr, run.stderr[-4000:]

    log = run.log()
    check_epochs(log)
    assert log.problems == []
    assert log.summary is not None, "no summary: the run was not closed"
    assert log.summary["status"] == "interrupted"
    # Mid-epoch: past every logged epoch, short of one more than that (the signal may come after
    # a step burned its energy and before the step was counted).
    steps = log.summary["steps"]
    logged = len(log.windows) * STEPS_PER_EPOCH
    assert logged <= steps <= logged + STEPS_PER_EPOCH
    assert steps * JOULES_PER_STEP <= log.summary["energy_j"] <= (steps + 1) * JOULES_PER_STEP
    assert log.summary["co2e_kg"] is not None
