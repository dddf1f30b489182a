"""benchmarks/gpu_check.py runs whole against fake GPUs, on the CPU, and records every stage.

The children see the fake through ``tests/fake_gpu_site`` on ``PYTHONPATH`` (its sitecustomize
installs ``tests.meters.clocked_pynvml``): GPU 0 draws a constant 300 W and has the energy
counter, GPU 1 draws 150 W and reports power only. With ``CLOCKED_FAKE_VENDOR=amd`` it installs
``tests.meters.clocked_amdsmi`` instead: two AMD GPUs, likewise one with the energy counter and
one with socket power only, and no NVML. Bounds on energies come from times the script itself
measured, never from a guess about how fast this machine is.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import CHILD_TIMEOUT_S
from tests.meters import clocked_amdsmi, fake_amdsmi
from tests.meters.clocked_pynvml import DRIVER_VERSION, GPUS, HIDE_VARIABLE, VENDOR_VARIABLE

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import gpu_check  # noqa: E402
import gpu_check_report  # noqa: E402
from gpu_check_stages import WORKLOADS, percentiles  # noqa: E402

FAKE_SITE = ROOT / "tests" / "fake_gpu_site"
COUNTER_W, POWER_ONLY_W = GPUS[0].power_w, GPUS[1].power_w
READ_ROUNDING_J = 0.001
"""The counter is whole millijoules: at most half of one off at each end of a window."""
AMD_COUNTER, AMD_POWER_ONLY = clocked_amdsmi.GPUS
AMD_ROUNDING_J = AMD_COUNTER.resolution_uj * 1e-6
"""The AMD counter counts whole ``counter_resolution``: at most half of one off at each end."""
AMD_STAGES = ("devices", "environment", "run", "lightning", "counter_vs_power")
"""The stages run against the fake AMD GPUs: those whose figures depend on the GPU meters."""


def run_check(
    out: Path, *args: str, hide: str = "", vendor: str = "nvidia"
) -> subprocess.CompletedProcess[str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("CARBON_CALLBACKS_", "ELECTRICITYMAPS_"))
    }
    env["PYTHONPATH"] = os.pathsep.join([str(FAKE_SITE), str(ROOT)])
    env[HIDE_VARIABLE] = hide
    env[VENDOR_VARIABLE] = vendor
    for variable in ("CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES"):
        env.pop(variable, None)
    env["KERAS_BACKEND"] = "torch"
    command = [sys.executable, "benchmarks/gpu_check.py", "--device", "cpu", "--quick"]
    return subprocess.run(
        [*command, "--out", str(out), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
    )


def gpu_channels(measurement: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in measurement["channels"] if c["kind"] == "gpu"}


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path, str]:
    """One whole check, Keras hidden as on the GPU machine: its report, folder and stdout."""
    out = tmp_path_factory.mktemp("gpu-check")
    done = run_check(out, hide="keras")
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads((out / "gpu_check.json").read_text()), out, done.stdout


def test_every_stage_runs_and_keras_is_skipped_saying_why(
    checked: tuple[dict[str, Any], Path, str],
) -> None:
    report, out, stdout = checked
    stages = report["stages"]
    assert list(stages) == list(gpu_check.TIMEOUTS_S)
    assert {name: r["status"] for name, r in stages.items() if name != "keras"} == {
        name: "ok" for name in stages if name != "keras"
    }
    assert stages["keras"]["status"] == "skipped"
    assert "Keras is not installed" in stages["keras"]["reason"]
    assert report["command"].startswith("PYTHONPATH=. python benchmarks/gpu_check.py")
    assert report["machine"]["logical_cpus"] == os.cpu_count()
    assert stages["environment"]["figures"]["drivers"]["nvidia"] == DRIVER_VERSION
    assert all((out / r["log"]).exists() for r in stages.values() if r["status"] != "skipped")
    assert "gpu:0" in stdout.split("== environment")[0]  # the devices listing was printed


def test_devices_lists_the_fake_gpus_with_their_method(
    checked: tuple[dict[str, Any], Path, str],
) -> None:
    report, _, _ = checked
    figures = report["stages"]["devices"]["figures"]
    listed = {c["id"]: c for c in figures["json"]["channels"] if c["kind"] == "gpu"}
    assert {key: c["device"] for key, c in listed.items()} == {
        "gpu:0": GPUS[0].name,
        "gpu:1": GPUS[1].name,
    }
    assert "energy counter" in listed["gpu:0"]["how"] and "power" in listed["gpu:1"]["how"]
    assert GPUS[0].name in figures["text"]


@pytest.mark.parametrize("stage", ["run", "lightning", "transformers"])
def test_the_workload_is_measured_on_the_fake_gpus(
    checked: tuple[dict[str, Any], Path, str], stage: str
) -> None:
    report, _, _ = checked
    record = report["stages"][stage]
    figures = record["figures"]
    work = WORKLOADS["quick"]
    assert figures["steps"] == work.steps
    assert figures["workload"] == {
        "size": work.size,
        "steps": work.steps,
        "hook_idle_steps": work.hook_idle_steps,
        "idle_s": work.idle_s,
        "bursts": work.bursts,
        "dtype": "float32",
        "device": "cpu",
    }
    measurement = figures["measurement"]
    assert measurement["duration_s"] >= figures["workload_s"] > 0
    gpus = gpu_channels(measurement)
    # every read lies inside the stage's child process, and every step inside the window
    for key, watts in (("gpu:0", COUNTER_W), ("gpu:1", POWER_ONLY_W)):
        energy = gpus[key]["energy_j"]
        low = watts * figures["workload_s"] - READ_ROUNDING_J
        assert low <= energy <= watts * record["seconds"] + READ_ROUNDING_J
        assert not gpus[key]["partial"]


def test_counter_and_power_integration_agree_within_when_the_reads_happened(
    checked: tuple[dict[str, Any], Path, str],
) -> None:
    report, _, _ = checked
    assert_counter_vs_power(
        report["stages"]["counter_vs_power"]["figures"],
        counter=("gpu:0", COUNTER_W, READ_ROUNDING_J),
        power_only=("gpu:1", POWER_ONLY_W),
    )


def assert_counter_vs_power(
    figures: dict[str, Any],
    counter: tuple[str, float, float],
    power_only: tuple[str, float],
) -> None:
    """Both methods within what constant power allows between the window's inner and outer reads.

    Args:
        figures: The stage's figures.
        counter: The counting GPU's channel id, watts and counter rounding (J) at each end.
        power_only: The power-only GPU's channel id and watts (read exactly).
    """
    counter_id, counter_w, rounding_j = counter
    power_id, power_w = power_only
    windows = {w["name"]: w for w in figures["windows"]}
    assert list(windows) == ["idle", "busy", "bursty", "whole"]
    assert windows["idle"]["inner_s"] >= WORKLOADS["quick"].idle_s
    assert figures["notes"] == []  # every GPU meter offered its power-only twin
    for window in windows.values():
        inner, outer = window["inner_s"], window["outer_s"]
        assert 0 < inner <= window["duration_s"] <= outer
        counted, powered = window["gpus"]
        assert (counted["id"], powered["id"]) == (counter_id, power_id)
        for joules in (counted["counter_j"], counted["power_j"]):
            assert counter_w * inner - rounding_j <= joules <= counter_w * outer + rounding_j
        allowed = (outer - inner) / inner + 2 * rounding_j / (counter_w * inner)
        assert abs(counted["relative_difference"]) <= allowed + 1e-9
        assert "energy counter" in counted["counter_how"]
        assert "power_only=True" in counted["power_how"]
        assert powered["counter_j"] is None and powered["relative_difference"] is None
        assert powered["note"] == "no energy counter: only power integration"
        assert power_w * inner <= powered["power_j"] <= power_w * outer


def test_step_hook_timings_cover_every_call(checked: tuple[dict[str, Any], Path, str]) -> None:
    report, _, _ = checked
    figures = report["stages"]["step_hook"]["figures"]
    work = WORKLOADS["quick"]
    for state, steps in (("idle", work.hook_idle_steps), ("busy", work.steps)):
        timings = figures[state]
        assert timings["wall"]["steps"] == steps
        for series in gpu_check_report.HOOK_SERIES:
            expected = steps // figures["log_every"] if series.endswith("metrics") else steps
            assert timings[series]["calls"] == expected
            assert 0 < timings[series]["median_ns"] <= timings[series]["p99_ns"]


def test_markdown_is_written_printed_and_rendered_from_the_json(
    checked: tuple[dict[str, Any], Path, str],
) -> None:
    report, out, stdout = checked
    text = (out / "gpu_check.md").read_text()
    assert text == gpu_check_report.markdown(report)
    assert text in stdout
    assert text.startswith("## GPU check (`benchmarks/gpu_check.py`): quick run on `cpu`")
    for heading in ("### Stages", "### The fixed workload", "### Energy counter", "### Per-step"):
        assert heading in text
    assert f"Drivers: nvidia {DRIVER_VERSION}" in text
    assert "| keras | skipped: Keras is not installed" in text
    assert f"| whole | gpu:0 {GPUS[0].name} |" in text
    assert "nan" not in text.lower()
    lines = text.splitlines()
    run_row = next(
        line for line in lines if line.startswith("| `carbon-callbacks run --json` | ok")
    )
    assert "unknown" not in run_row


def test_keras_stage_trains_under_the_callback_where_keras_is_installed(tmp_path: Path) -> None:
    done = run_check(tmp_path, "--stages", "keras")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert list(report["stages"]) == ["keras"]
    figures = report["stages"]["keras"]["figures"]
    assert figures["backend"] == "torch" and figures["steps"] == WORKLOADS["quick"].steps
    energy = gpu_channels(figures["measurement"])["gpu:0"]["energy_j"]
    assert COUNTER_W * figures["workload_s"] - READ_ROUNDING_J <= energy
    assert energy <= COUNTER_W * report["stages"]["keras"]["seconds"] + READ_ROUNDING_J


def test_a_failing_stage_is_recorded_and_the_next_one_still_runs(tmp_path: Path) -> None:
    done = run_check(tmp_path, "--stages", "environment,devices", hide="torch")
    assert done.returncode == 1  # a stage failed
    stages = json.loads((tmp_path / "gpu_check.json").read_text())["stages"]
    assert stages["environment"]["status"] == "failed"
    assert stages["environment"]["figures"] is None
    assert "import of torch halted" in stages["environment"]["reason"]
    assert stages["devices"]["status"] == "ok"
    text = (tmp_path / "gpu_check.md").read_text()
    assert "| environment | failed: ModuleNotFoundError: import of torch halted" in text


def test_a_failing_child_is_recorded_with_the_end_of_its_stderr(tmp_path: Path) -> None:
    code = "import sys; print('partial'); sys.stderr.write('the driver said no\\n'); sys.exit(3)"
    outcome = gpu_check.run_child(
        [sys.executable, "-c", code], 60, tmp_path / "x.log", dict(os.environ)
    )
    assert outcome.status == "failed"
    assert outcome.reason is not None and outcome.reason.startswith("exit status 3:")
    assert outcome.reason.endswith("the driver said no")
    assert outcome.stdout == "partial\n"
    assert "partial" in (tmp_path / "x.log").read_text()  # the log keeps both streams


def test_a_hanging_child_and_its_own_children_are_killed_at_the_timeout(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    code = (
        "import subprocess, sys, time; "
        "g = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); "
        f"open({str(pid_file)!r}, 'w').write(str(g.pid)); time.sleep(600)"
    )
    outcome = gpu_check.run_child(
        [sys.executable, "-c", code], 2.0, tmp_path / "hang.log", dict(os.environ)
    )
    assert outcome.status == "timed_out" and outcome.reason == "stopped after 2 s"
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + CHILD_TIMEOUT_S
    while time.monotonic() < deadline:  # killed at once; a zombie until init reaps it
        try:
            if psutil.Process(grandchild).status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the stage's own child outlived the timeout")


def test_a_stage_without_time_left_is_skipped_and_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = gpu_check.main(
        [
            "--device",
            "cpu",
            "--quick",
            "--out",
            str(tmp_path),
            "--deadline-s",
            "1",
            "--stages",
            "devices,step_hook",
        ]
    )
    assert status == 0
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    for record in report["stages"].values():
        assert record["status"] == "skipped"
        assert record["reason"] == "out of time: the whole check is limited to 1 s"
    text = (tmp_path / "gpu_check.md").read_text()
    assert "| step_hook | skipped: out of time" in text
    assert "Torch sees: no GPU" in text and "Workload: unknown" in text
    assert "Stage skipped: out of time" in text  # the per-step table says why it is empty
    assert text in capsys.readouterr().out


def test_the_cpu_fallback_needs_quick_and_stages_must_exist(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        gpu_check.parse_args(["--device", "cpu"])
    assert "--device cpu runs only the small workload: add --quick" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        gpu_check.parse_args(["--stages", "run,lightnin"])
    assert "unknown stage(s) lightnin" in capsys.readouterr().err


def test_an_unknown_figure_is_shown_as_unknown_never_zero() -> None:
    measurement = {
        "duration_s": 10.0,
        "channels": [
            {"id": "gpu:0", "kind": "gpu", "device": "X", "how": "counter", "energy_j": 100.0},
            {"id": "gpu:1", "kind": "gpu", "device": "Y", "how": "counter", "energy_j": None},
            {"id": "cpu:estimate", "kind": "cpu", "device": "CPU", "how": "e", "energy_j": 5.0},
        ],
    }
    summary = gpu_check_report.gpu_summary(measurement)
    assert summary["energy_j"] is None and summary["mean_power_w"] is None
    assert summary["host_j"] == 5.0
    assert gpu_check_report.number(summary["energy_j"]) == "unknown"
    assert gpu_check_report.percent(None) == "unknown"
    assert percentiles([]) == {"median_ns": None, "p99_ns": None, "calls": 0}
    assert percentiles([5, 1, 3, 2]) == {"median_ns": 2.5, "p99_ns": 5.0, "calls": 4}


# --- the same check against fake AMD GPUs (amdsmi), NVML absent ----------------------------------


@pytest.fixture(scope="module")
def checked_amd(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    """The stages that read the GPU meters, against the fake AMD GPUs: report and stdout."""
    out = tmp_path_factory.mktemp("gpu-check-amd")
    done = run_check(out, "--stages", ",".join(AMD_STAGES), vendor="amd")
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads((out / "gpu_check.json").read_text()), done.stdout


def test_amd_gpus_are_listed_with_their_method_and_driver(
    checked_amd: tuple[dict[str, Any], str],
) -> None:
    report, stdout = checked_amd
    stages = report["stages"]
    assert list(stages) == list(AMD_STAGES)
    assert {r["status"] for r in stages.values()} == {"ok"}
    listed = {
        c["id"]: c for c in stages["devices"]["figures"]["json"]["channels"] if c["kind"] == "gpu"
    }
    assert {key: c["device"] for key, c in listed.items()} == {
        "gpu:amd0": AMD_COUNTER.name,
        "gpu:amd1": AMD_POWER_ONLY.name,
    }
    assert "amdsmi energy counter" in listed["gpu:amd0"]["how"]
    assert "current_socket_power" in listed["gpu:amd1"]["how"]
    assert stages["environment"]["figures"]["drivers"]["amdgpu"] == fake_amdsmi.DRIVER_VERSION
    assert f"amdgpu {fake_amdsmi.DRIVER_VERSION}" in stdout
    assert f"| whole | gpu:amd0 {AMD_COUNTER.name} |" in stdout


@pytest.mark.parametrize("stage", ["run", "lightning"])
def test_the_workload_is_measured_on_the_fake_amd_gpus(
    checked_amd: tuple[dict[str, Any], str], stage: str
) -> None:
    report, _ = checked_amd
    record = report["stages"][stage]
    figures = record["figures"]
    assert figures["steps"] == WORKLOADS["quick"].steps
    gpus = gpu_channels(figures["measurement"])
    assert set(gpus) == {"gpu:amd0", "gpu:amd1"}
    for key, watts in (("gpu:amd0", AMD_COUNTER.power_w), ("gpu:amd1", AMD_POWER_ONLY.power_w)):
        energy = gpus[key]["energy_j"]
        low = watts * figures["workload_s"] - AMD_ROUNDING_J
        assert low <= energy <= watts * record["seconds"] + AMD_ROUNDING_J
        assert not gpus[key]["partial"]


def test_amd_counter_and_power_integration_agree_within_when_the_reads_happened(
    checked_amd: tuple[dict[str, Any], str],
) -> None:
    report, _ = checked_amd
    assert_counter_vs_power(
        report["stages"]["counter_vs_power"]["figures"],
        counter=("gpu:amd0", AMD_COUNTER.power_w, AMD_ROUNDING_J),
        power_only=("gpu:amd1", AMD_POWER_ONLY.power_w),
    )
