"""A GPU check in one command: what the library measures on a GPU machine, and at what cost.

Run from the repository root, on the machine with the GPU(s)::

    PYTHONPATH=. python benchmarks/gpu_check.py --out gpu-check

It needs torch with CUDA or ROCm, Lightning and transformers (Keras is used when importable and
skipped, saying so, when not), no network and nothing installed while it runs. The workload is
fixed, so its time depends on the GPU; the check never runs past ``--deadline-s`` (285 s). Its
stages, each a child process with its own timeout, so a failure or a hang in one is recorded and
the others still run:

1. ``devices``: ``carbon-callbacks devices`` as printed, and its ``--json``;
2. ``environment``: torch's CUDA/HIP build, the devices it sees, the driver versions;
3. ``run``: the fixed workload (``gpu_check_stages.WORKLOADS``: float16 products of two
   8192 x 8192 matrices, 4000 steps) under ``carbon-callbacks run --json``;
4. ``lightning``, ``transformers``, ``keras``: the same workload trained under each callback;
5. ``counter_vs_power``: idle, busy and bursty windows measured at once by the library's GPU
   meters (the energy counter where the GPU has one) and by their ``power_only=True`` twins
   (the power draw, integrated at 10 Hz), with the relative difference;
6. ``step_hook``: median and 99th percentile ns per call of the per-step path, device idle and busy.

It writes ``gpu_check.json`` (every figure, with the machine, versions, command and date) and
``gpu_check.md`` (a section for ``benchmarks/RESULTS.md``) under ``--out``, the run logs of the
measured stages under ``--out/runs`` and each stage's output under ``--out/logs``. Exit status 0
when every stage ran or was skipped, 1 when one failed or ran out of time. ``--device cpu
--quick`` runs the small workload on the CPU: the tests run it against a fake GPU.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
STAGES_SCRIPT = Path(__file__).resolve().parent / "gpu_check_stages.py"
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gpu_check_report import markdown  # noqa: E402

SCHEMA = 1
DEADLINE_S = 285.0
TIMEOUTS_S = {
    "devices": 60.0,
    "environment": 90.0,
    "run": 150.0,
    "lightning": 180.0,
    "transformers": 180.0,
    "keras": 180.0,
    "counter_vs_power": 150.0,
    "step_hook": 150.0,
}
"""Each stage's own limit (a wedged driver hangs a stage, not the check); ``DEADLINE_S`` caps
the sum. A stage left with under ``MIN_STAGE_S`` is skipped, saying so."""
MIN_STAGE_S = 10.0
PACKAGES = (
    "torch", "lightning", "pytorch-lightning", "transformers", "accelerate", "keras",
    "nvidia-ml-py", "amdsmi", "psutil", "requests",
)  # fmt: skip
TAIL_CHARS = 2000


@dataclass
class Outcome:
    """How one child process ended: ``ok``, ``failed`` or ``timed_out``, with its output."""

    status: str
    seconds: float
    stdout: str
    reason: str | None = None


def run_child(argv: list[str], timeout_s: float, log: Path, env: dict[str, str]) -> Outcome:
    """Run ``argv`` in a session of its own; kill the whole session when it runs out of time.

    stdout is returned; stdout and stderr are kept in ``log``. A nonzero exit is ``failed``
    with the end of stderr as the reason.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with log.open("w") as err:
        child = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=err, env=env, start_new_session=True, text=True
        )
        try:
            stdout, _ = child.communicate(timeout=timeout_s)
            status, reason = "ok", None
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            stdout, _ = child.communicate()
            status, reason = "timed_out", f"stopped after {timeout_s:.0f} s"
    seconds = time.monotonic() - started
    if status == "ok" and child.returncode != 0:
        tail = log.read_text(errors="replace")[-TAIL_CHARS:].strip()
        status, reason = "failed", f"exit status {child.returncode}: {tail}"
    with log.open("a") as err:
        err.write(f"\n--- stdout ---\n{stdout}")
    return Outcome(status, seconds, stdout, reason)


class Check:
    """The stages in order, each under its own timeout, all within one deadline."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.out = Path(args.out).resolve()
        self.deadline = time.monotonic() + args.deadline_s
        self.env = child_environment(self.out)

    def stage_argv(self, stage: str, result: Path) -> list[str]:
        """The command line of a stage of ``gpu_check_stages.py``."""
        quick = ["--quick"] if self.args.quick else []
        return [
            sys.executable, str(STAGES_SCRIPT), stage, "--device", self.args.device, *quick,
            "--result", str(result),
        ]  # fmt: skip

    def run_stage(self, stage: str) -> dict[str, Any]:
        """Run one stage and return its record: status, seconds, reason and figures."""
        remaining = self.deadline - time.monotonic()
        limit = min(TIMEOUTS_S[stage], remaining)
        if limit < MIN_STAGE_S:
            reason = f"out of time: the whole check is limited to {self.args.deadline_s:.0f} s"
            return {"status": "skipped", "seconds": 0.0, "timeout_s": limit, "reason": reason}
        runners: dict[str, Callable[[str, float], tuple[Outcome, dict[str, Any] | None]]] = {
            "devices": self.devices,
            "run": self.measured_run,
        }
        runner = runners.get(stage, self.child)
        try:
            outcome, figures = runner(stage, limit)
        except Exception as error:  # the harness itself must not lose the other stages
            outcome, figures = Outcome("failed", 0.0, "", f"{type(error).__name__}: {error}"), None
        record: dict[str, Any] = {
            "status": outcome.status,
            "seconds": round(outcome.seconds, 3),
            "timeout_s": round(limit, 1),
            "reason": outcome.reason,
            "log": str(Path("logs") / f"{stage}.log"),
        }
        if figures is not None and "skipped" in figures:
            record["status"], record["reason"] = "skipped", figures.pop("skipped")
        record["figures"] = figures
        return record

    def log(self, stage: str, part: str = "") -> Path:
        return self.out / "logs" / f"{stage}{part}.log"

    def devices(self, stage: str, limit: float) -> tuple[Outcome, dict[str, Any] | None]:
        """``carbon-callbacks devices``, printed, and ``--json``, parsed."""
        cli = [sys.executable, "-m", "carbon_callbacks", "devices"]
        text = run_child(cli, limit, self.log(stage), self.env)
        print(text.stdout, end="", flush=True)
        if text.status != "ok":
            return text, None
        rest = max(limit - text.seconds, 1.0)
        listed = run_child([*cli, "--json"], rest, self.log(stage, "-json"), self.env)
        outcome = Outcome(listed.status, text.seconds + listed.seconds, "", listed.reason)
        if listed.status != "ok":
            return outcome, {"text": text.stdout}
        return outcome, {"text": text.stdout, "json": json.loads(listed.stdout)}

    def measured_run(self, stage: str, limit: float) -> tuple[Outcome, dict[str, Any] | None]:
        """The bare workload under ``carbon-callbacks run --json``."""
        result = self.out / "stages" / "workload.json"
        result.parent.mkdir(parents=True, exist_ok=True)
        runs = self.out / "runs" / stage
        cli = [sys.executable, "-m", "carbon_callbacks", "run", "--json", "--output-dir", str(runs)]
        outcome = run_child(
            [*cli, "--", *self.stage_argv("workload", result)], limit, self.log(stage), self.env
        )
        if outcome.status != "ok":
            return outcome, None
        figures = json.loads(result.read_text())
        figures["measurement"] = json.loads(outcome.stdout)
        return outcome, figures

    def child(self, stage: str, limit: float) -> tuple[Outcome, dict[str, Any] | None]:
        """A stage of ``gpu_check_stages.py``, its run logs kept under ``runs/<stage>``."""
        result = self.out / "stages" / f"{stage}.json"
        result.parent.mkdir(parents=True, exist_ok=True)
        env = self.env | {"CARBON_CALLBACKS_OUTPUT_DIR": str(self.out / "runs" / stage)}
        outcome = run_child(self.stage_argv(stage, result), limit, self.log(stage), env)
        if outcome.status != "ok":
            return outcome, None
        return outcome, json.loads(result.read_text())


def child_environment(out: Path) -> dict[str, str]:
    """The children's environment: this tree importable, everything offline, logs under out."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.setdefault("KERAS_BACKEND", "torch")
    env["CARBON_CALLBACKS_OUTPUT_DIR"] = str(out / "runs")
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        env[name] = "1"
    env["TOKENIZERS_PARALLELISM"] = "false"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def machine() -> dict[str, Any]:
    """The host: OS, CPU model and count, memory, Python."""
    import psutil

    cpu_model = None
    with_cpuinfo = Path("/proc/cpuinfo")
    if with_cpuinfo.exists():
        for line in with_cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                cpu_model = line.partition(":")[2].strip()
                break
    return {
        "platform": platform.platform(),
        "cpu": cpu_model or platform.processor() or None,
        "logical_cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
    }


def versions() -> dict[str, str | None]:
    """Installed versions of the packages the check uses, None where absent."""
    from carbon_callbacks._version import __version__

    found: dict[str, str | None] = {"carbon-callbacks": __version__}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def git_commit() -> str | None:
    """The tree's commit, with ``+changes`` when it has uncommitted ones; None outside git."""
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    if head.returncode != 0:
        return None
    return head.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line; the CPU fallback without ``--quick`` is refused (it would take hours)."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] if __doc__ else None,
        epilog="Example: PYTHONPATH=. python benchmarks/gpu_check.py --out gpu-check",
    )
    parser.add_argument("--out", default="gpu-check", help="folder for the results")
    parser.add_argument("--quick", action="store_true", help="the small workload (a first look)")
    parser.add_argument(
        "--device",
        default="cuda",
        choices=("cuda", "cpu"),
        help="where the workload runs: cuda (also ROCm) or cpu (tests)",
    )
    parser.add_argument(
        "--deadline-s",
        type=float,
        default=DEADLINE_S,
        help=f"limit for the whole check (default {DEADLINE_S:.0f})",
    )
    parser.add_argument(
        "--stages",
        default=",".join(TIMEOUTS_S),
        help="comma-separated stages to run (default: all, in order)",
    )
    args = parser.parse_args(argv)
    if args.device == "cpu" and not args.quick:
        parser.error("--device cpu runs only the small workload: add --quick")
    args.stage_list = [name.strip() for name in args.stages.split(",") if name.strip()]
    unknown = [name for name in args.stage_list if name not in TIMEOUTS_S]
    if unknown:
        parser.error(f"unknown stage(s) {', '.join(unknown)}; known: {', '.join(TIMEOUTS_S)}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the stages, write the JSON and the Markdown, print the Markdown."""
    args = parse_args(argv)
    check = Check(args)
    check.out.mkdir(parents=True, exist_ok=True)
    command = shlex.join(["python", "benchmarks/gpu_check.py", *sys.argv[1:]])
    report: dict[str, Any] = {
        "schema": SCHEMA,
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": f"PYTHONPATH=. {command}",
        "commit": git_commit(),
        "machine": machine(),
        "versions": versions(),
        "device": args.device,
        "quick": args.quick,
        "stages": {},
    }
    for stage in args.stage_list:
        print(f"== {stage}", flush=True)
        record = check.run_stage(stage)
        report["stages"][stage] = record
        reason = "" if record["reason"] is None else f": {record['reason'].splitlines()[-1]}"
        print(f"   {record['status']} in {record['seconds']:.1f} s{reason}", flush=True)
    text = markdown(report)
    (check.out / "gpu_check.json").write_text(json.dumps(report, indent=2) + "\n")
    (check.out / "gpu_check.md").write_text(text)
    print(text, end="")
    print(f"\nwritten: {check.out / 'gpu_check.json'}, {check.out / 'gpu_check.md'}")
    failed = [s for s, r in report["stages"].items() if r["status"] in ("failed", "timed_out")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
