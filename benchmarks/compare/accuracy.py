"""Accuracy against ground truth: carbon-callbacks vs CodeCarbon vs Carbontracker.

Every tool measures the same sleeping workload on synthetic hardware whose true energy is known:
a fake ``pynvml`` (``fakes/pynvml.py``; GPU 0 has the total-energy counter, GPU 1 is pre-Volta and
reports power only), or in the ``amd_`` scenarios a fake ``amdsmi`` (``fakes/amdsmi.py``; GPU 0
has the energy accumulator, GPU 1 socket power only), and a fake RAPL package counter
(``fakes/powercap.py``) that wraps during the run. Their power follows a scripted trace over time
since the tool's start (``scenarios.py``): constant, bursty with sub-second spikes, or a short
burst and a long idle tail. The truth is the trace's integral over the
workload (from just after the tool's start returns to just before its stop is called); the energy
over the start and stop calls themselves is shown as the uncertainty band.

Each tool runs in its own subprocess with the fakes first on ``PYTHONPATH``. CodeCarbon and
Carbontracker read ``/sys/class/powercap`` only, so (as root) each run happens inside
``unshare -m`` with the fake tree bind-mounted over ``/sys/class``; ``--no-mount`` skips that, and
only carbon-callbacks (``CARBON_CALLBACKS_POWERCAP_ROOT``) then sees the CPU counter.

    .venv-compare/bin/python benchmarks/compare/accuracy.py \
        --json benchmarks/results/compare_accuracy.json
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from scenarios import SCENARIOS, Scenario, Trace

HERE = Path(__file__).resolve().parent
FAKES = HERE / "fakes"
SCENARIO_ENV = "ACCURACY_SCENARIO"
CHANNELS = ("gpu_counter", "gpu_power_only", "gpu_total", "cpu_package")
CHANNEL_LABELS = {
    "gpu_counter": "GPU 0, energy counter",
    "gpu_power_only": "GPU 1, power only (pre-Volta)",
    "gpu_total": "GPUs, tool's own total",
    "cpu_package": "CPU package (RAPL, wraps)",
}
AMD_LABELS = {**CHANNEL_LABELS, "gpu_power_only": "GPU 1, socket power only (no counter)"}
OUR_GPU_IDS = {"nvidia": ("gpu:0", "gpu:1"), "amd": ("gpu:amd0", "gpu:amd1")}
"""Our channel ids of the counting GPU and the power-only GPU, by the scenario's vendor."""
NVIDIA_ONLY = "not run: Carbontracker 2.4.7 reads NVIDIA GPUs only (components/gpu/nvidia.py)"
SMI_TOOLS = {"nvidia": "nvidia-smi", "amd": "rocm-smi"}
"""CodeCarbon looks for a vendor's GPUs only where this command's ``--help`` runs."""
TOOLS = ("ours", "codecarbon-1s", "codecarbon-15s", "carbontracker")
CPU_RANGE_UJ = 1_000_000_000
"""The fake package counter wraps after 1000 J: once in every scenario, never twice between two
reads 15 s apart (the trace never averages 67 W over 15 s)."""
CPU_HEADROOM_J = 100.0
"""The counter starts this far below its wrap point, so it wraps within seconds."""
INTENSITY_G_PER_KWH = 50.0
MOUNT_SCRIPT = """set -e
fake="$1"; shift
for entry in /sys/class/*; do
  name="${entry##*/}"
  [ "$name" = powercap ] && continue
  mkdir -p "$fake/$name"
  mount --bind "$entry" "$fake/$name"
done
mount --rbind "$fake" /sys/class
exec "$@"
"""
CHILD_BOOT = "import sys, accuracy; sys.exit(accuracy.child_main(sys.argv[1:]))"


# -- the simulated hardware's clock (used by the fakes inside a tool's subprocess) ---------------

_LOADED = time.monotonic()
_origin: float | None = None


@cache
def active_scenario() -> Scenario:
    """The scenario named by ``$ACCURACY_SCENARIO`` (the fakes' hardware)."""
    return SCENARIOS[os.environ.get(SCENARIO_ENV, "constant")]


def start_clock() -> float:
    """Start the traces now (before, every device draws its trace's first power); return now."""
    global _origin
    _origin = time.monotonic()
    return _origin


def _since_load_j(trace: Trace, now: float) -> float:
    """Joules the trace has drawn since this module was loaded."""
    if _origin is None:
        return trace.segments[0][1] * (now - _LOADED)
    return trace.energy_j(now - _origin) - trace.energy_j(_LOADED - _origin)


def gpu_power_w() -> float:
    """Each fake GPU's power now."""
    since_origin = -1.0 if _origin is None else time.monotonic() - _origin
    return active_scenario().gpu.power_w(since_origin)


def gpu_energy_j(ago_s: float = 0.0) -> float:
    """Joules each fake GPU has used since load, as of ``ago_s`` seconds ago."""
    return _since_load_j(active_scenario().gpu, time.monotonic() - ago_s)


def cpu_energy_j() -> float:
    """Joules the fake CPU package has used since load."""
    return _since_load_j(active_scenario().cpu, time.monotonic())


# -- the tools, inside the subprocess -------------------------------------------------------------


@dataclass
class Outcome:
    """What one tool reported (joules per channel, or why not) and the instants around it."""

    measured: dict[str, float | None]
    notes: dict[str, str]
    version: str
    marks: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)


def _timed(
    start: Callable[[], object], stop: Callable[[], object], seconds: float
) -> tuple[float, float, float, float]:
    """Run ``start``, sleep, ``stop``; return the monotonic instants around both calls."""
    m0 = start_clock()
    start()
    m1 = time.monotonic()
    time.sleep(seconds)
    m2 = time.monotonic()
    stop()
    return m0, m1, m2, time.monotonic()


def run_ours(seconds: float, workdir: Path) -> Outcome:
    """carbon-callbacks' Tracker: per-channel joules from its summary."""
    from carbon_callbacks import Tracker

    tracker = Tracker(gpu_ids=None, write_log=False, intensity_g_per_kwh=INTENSITY_G_PER_KWH)
    marks = _timed(tracker.start, tracker.stop, seconds)
    summary = tracker.summary
    assert summary is not None
    by_id = {c.channel.id: c for c in summary.channels}
    measured: dict[str, float | None] = {}
    notes: dict[str, str] = {}
    counter_id, power_id = OUR_GPU_IDS[active_scenario().vendor]
    for channel, channel_id in (
        ("gpu_counter", counter_id),
        ("gpu_power_only", power_id),
        ("cpu_package", "cpu:package-0"),
    ):
        figure = by_id.get(channel_id)
        measured[channel] = None if figure is None else figure.energy_j
        if figure is None:
            notes[channel] = f"no channel {channel_id}: " + "; ".join(
                u.reason for u in tracker.unavailable
            )
        elif figure.fault:
            notes[channel] = figure.fault
    gpus = [measured["gpu_counter"], measured["gpu_power_only"]]
    measured["gpu_total"] = sum(g for g in gpus if g is not None) if None not in gpus else None
    return Outcome(measured, notes, metadata.version("carbon-callbacks"), marks)


def run_codecarbon(seconds: float, workdir: Path, measure_power_secs: float) -> Outcome:
    """CodeCarbon's OfflineEmissionsTracker; per-GPU joules from its own per-device deltas."""
    codecarbon: Any = importlib.import_module("codecarbon")
    gpu_device: Any = importlib.import_module("codecarbon.core.gpu_device")

    per_gpu: dict[int, float] = {}
    original_delta = gpu_device.GPUDevice.delta

    def recording_delta(self: Any, duration: Any) -> Any:
        details = original_delta(self, duration)
        index = details["gpu_index"]
        per_gpu[index] = per_gpu.get(index, 0.0) + details["delta_energy_consumption"].kWh * 3.6e6
        return details

    gpu_device.GPUDevice.delta = recording_delta
    tracker = codecarbon.OfflineEmissionsTracker(
        country_iso_code="SWE",
        measure_power_secs=measure_power_secs,
        save_to_file=False,
        output_dir=str(workdir),
        log_level="error",
        tracking_mode="machine",
        allow_multiple_runs=True,
    )
    marks = _timed(tracker.start, tracker.stop, seconds)
    data = tracker.final_emissions_data
    hardware = [type(h).__name__ + ":" + str(getattr(h, "_mode", "")) for h in tracker._hardware]
    measured: dict[str, float | None] = {
        "gpu_counter": per_gpu.get(0),
        "gpu_power_only": per_gpu.get(1),
        "gpu_total": data.gpu_energy * 3.6e6,
    }
    notes = {
        "gpu_total": "emissions data gpu_energy",
        "cpu_package": "hardware: " + ", ".join(hardware),
    }
    cpu_rapl = any("intel_rapl" in h for h in hardware)
    measured["cpu_package"] = data.cpu_energy * 3.6e6 if cpu_rapl else None
    if not cpu_rapl:
        notes["cpu_package"] = (
            "not measured: CPU not tracked through RAPL (" + notes["cpu_package"] + ")"
        )
    return Outcome(measured, notes, metadata.version("codecarbon"), marks)


def run_carbontracker(seconds: float, workdir: Path) -> Outcome:
    """Carbontracker, one epoch around the workload; per-device joules from its power samples.

    Its own figure per component is mean(power samples) x epoch duration x PUE, where the samples of
    all devices are pooled; per device we apply the same formula to that device's samples alone.
    """
    constants: Any = importlib.import_module("carbontracker.constants")
    carbontracker: Any = importlib.import_module("carbontracker.tracker")
    tracker = carbontracker.CarbonTracker(
        epochs=1, update_interval=1, log_dir=str(workdir), verbose=0, components="all"
    )
    thread = tracker.tracker  # deleted from ``tracker`` after the last epoch
    marks = _timed(tracker.epoch_start, tracker.epoch_end, seconds)
    pue = float(constants.PUE_2023)
    duration = thread.epoch_times[0]
    measured: dict[str, float | None] = dict.fromkeys(CHANNELS)
    notes: dict[str, str] = {}
    found = {comp.name: comp for comp in thread.components}
    gpu = found.get("gpu")
    if gpu is not None and gpu.power_usages:
        samples = [float(s) for s in gpu.power_usages[0]]
        count = _fake_gpu_count()
        for index, channel in enumerate(("gpu_counter", "gpu_power_only")[:count]):
            own = samples[index::count]
            measured[channel] = sum(own) / len(own) * duration if own else None
        measured["gpu_total"] = float(gpu.energy_usage([duration])[0]) * 3.6e6
        notes["gpu_total"] = (
            f"its own figure, before its PUE {pue}: mean of the {len(samples)} pooled samples of "
            f"{count} GPUs x {duration:.2f} s"
        )
        notes["gpu_counter"] = "power samples only: Carbontracker never reads the energy counter"
    else:
        notes["gpu_power_only"] = notes["gpu_counter"] = "not measured: no GPU component"
    cpu = found.get("cpu")
    if cpu is not None and type(cpu.handler).__name__ == "IntelCPU" and cpu.power_usages:
        measured["cpu_package"] = float(cpu.energy_usage([duration])[0]) * 3.6e6
        zeros = sum(1 for s in cpu.power_usages[0] if float(s) == 0.0)
        notes["cpu_package"] = f"{len(cpu.power_usages[0])} 1-s power samples, {zeros} of them 0 W"
    else:
        notes["cpu_package"] = "not measured: no RAPL CPU component"
    return Outcome(measured, notes, metadata.version("carbontracker"), marks)


def _fake_gpu_count() -> int:
    """How many GPUs the fake ``pynvml`` simulates (the handles are gone after shutdown)."""
    import pynvml

    return len(pynvml.GPUS)


def child_main(argv: Sequence[str]) -> int:
    """Entry point of one tool's subprocess: run it, write its outcome and the truth as JSON."""
    parser = argparse.ArgumentParser()
    parser.add_argument("tool", choices=TOOLS)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--zone", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    from powercap import CounterWriter

    writer = CounterWriter(args.zone, cpu_energy_j)
    writer.start()
    workdir = args.out.parent
    try:
        if args.tool == "ours":
            outcome = run_ours(args.seconds, workdir)
        elif args.tool.startswith("codecarbon"):
            outcome = run_codecarbon(args.seconds, workdir, 1.0 if args.tool.endswith("1s") else 15)
        else:
            outcome = run_carbontracker(args.seconds, workdir)
    finally:
        writer.stop()
    args.out.write_text(json.dumps(_with_truth(outcome)))
    return 0


def _with_truth(outcome: Outcome) -> dict[str, Any]:
    """The outcome plus each channel's true joules over the workload and the start/stop band."""
    assert _origin is not None
    scenario = active_scenario()
    m0, m1, m2, m3 = (m - _origin for m in outcome.marks)
    truth, band = {}, {}
    for channel in CHANNELS:
        trace = scenario.cpu if channel == "cpu_package" else scenario.gpu
        count = 2 if channel == "gpu_total" else 1
        truth[channel] = count * (trace.energy_j(m2) - trace.energy_j(m1))
        band[channel] = count * (
            trace.energy_j(m1) - trace.energy_j(m0) + trace.energy_j(m3) - trace.energy_j(m2)
        )
    return {
        "measured": outcome.measured,
        "notes": outcome.notes,
        "version": outcome.version,
        "truth_j": truth,
        "band_j": band,
        "start_s": m1 - m0,
        "stop_s": m3 - m2,
    }


# -- the harness ----------------------------------------------------------------------------------


def _can_mount() -> bool:
    """True when ``unshare -m`` with a bind mount works here (root, mount namespaces allowed)."""
    if shutil.which("unshare") is None:
        return False
    with tempfile.TemporaryDirectory() as scratch:
        probe = subprocess.run(
            ["unshare", "-m", "sh", "-c", f"mount --bind {scratch} {scratch}"],
            capture_output=True,
            check=False,
        )
    return probe.returncode == 0


def run_one(tool: str, scenario: str, seconds: float, mount: bool, scratch: Path) -> dict[str, Any]:
    """Run ``tool`` on a fresh fake machine for ``scenario``; return its result dict."""
    from powercap import build_tree

    run_dir = Path(tempfile.mkdtemp(prefix=f"{tool}-{scenario}-", dir=scratch))
    zone = build_tree(run_dir / "class", CPU_RANGE_UJ, CPU_RANGE_UJ - round(CPU_HEADROOM_J * 1e6))
    bin_dir = run_dir / "bin"
    bin_dir.mkdir()
    smi = bin_dir / SMI_TOOLS[SCENARIOS[scenario].vendor]
    smi.write_text("#!/bin/sh\nexit 0\n")
    smi.chmod(0o755)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(FAKES), str(HERE), os.environ.get("PYTHONPATH", "")]),
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        SCENARIO_ENV: scenario,
        "HOME": str(run_dir),
    }
    for variable in ("CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES"):
        env.pop(variable, None)
    if not mount:
        env["CARBON_CALLBACKS_POWERCAP_ROOT"] = str(zone.parent.parent)
    out = run_dir / "result.json"
    command = [sys.executable, "-c", CHILD_BOOT, tool, "--seconds", str(seconds)]
    command += ["--zone", str(zone), "--out", str(out)]
    if mount:
        command = [
            "unshare",
            "-m",
            "sh",
            "-c",
            MOUNT_SCRIPT,
            "sh",
            str(run_dir / "class"),
            *command,
        ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not out.exists():
        return {"error": (done.stderr or done.stdout)[-2000:], "tool": tool, "scenario": scenario}
    result: dict[str, Any] = json.loads(out.read_text())
    result.update(tool=tool, scenario=scenario, cpu_view="/sys/class/powercap" if mount else "env")
    if not mount and tool != "ours":
        result["measured"]["cpu_package"] = None
        result["notes"]["cpu_package"] = "not measured: run without the /sys/class mount"
    return result


def error_pct(result: dict[str, Any], channel: str) -> float | None:
    """Signed error of the tool's figure vs the truth, in percent; None when not measured."""
    measured = result.get("measured", {}).get(channel)
    truth = result.get("truth_j", {}).get(channel)
    if measured is None or not truth:
        return None
    return 100.0 * (float(measured) - float(truth)) / float(truth)


def table(results: list[dict[str, Any]], tools: Sequence[str]) -> list[str]:
    """Markdown: one row per scenario and channel, the tools' signed errors in the columns."""
    lines = [
        "| scenario | channel | true J | band J | " + " | ".join(tools) + " |",
        "|---|---|---:|---:|" + "---:|" * len(tools),
    ]
    by_key = {(r["scenario"], r["tool"]): r for r in results}
    for scenario in dict.fromkeys(r["scenario"] for r in results):
        labels = AMD_LABELS if SCENARIOS[scenario].vendor == "amd" else CHANNEL_LABELS
        for channel in CHANNELS:
            measured = [by_key.get((scenario, t), {}) for t in tools]
            reference = next((r for r in measured if "truth_j" in r), None)
            if reference is None:
                continue
            cells = []
            for tool in tools:
                result = by_key.get((scenario, tool), {})
                cells.append(_cell(result, channel))
            lines.append(
                f"| {scenario} | {labels[channel]} | {reference['truth_j'][channel]:.1f} | "
                f"{reference['band_j'][channel]:.1f} | " + " | ".join(cells) + " |"
            )
    return lines


def _cell(result: dict[str, Any], channel: str) -> str:
    """One table cell: the signed error, or why there is none."""
    if "error" in result:
        return "run failed"
    if "skipped" in result:
        return "not run"
    error = error_pct(result, channel)
    return "not measured" if error is None else f"{error:+.1f}%"


def versions() -> dict[str, str]:
    """Installed versions of the measuring packages and the interpreter."""
    found = {"python": sys.version.split()[0]}
    for package in ("carbon-callbacks", "codecarbon", "carbontracker", "nvidia-ml-py", "psutil"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def main(argv: Sequence[str] | None = None) -> int:
    """Run every tool on every scenario, print the error table, optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tools", nargs="+", choices=TOOLS, default=list(TOOLS))
    parser.add_argument("--scenarios", nargs="+", choices=list(SCENARIOS), default=list(SCENARIOS))
    parser.add_argument("--seconds", type=float, default=15.0, help="workload length per run")
    parser.add_argument("--no-mount", action="store_true", help="skip the unshare -m mount")
    parser.add_argument("--json", type=Path, help="write the raw results here")
    args = parser.parse_args(argv)
    sys.path[:0] = [str(FAKES)]
    mount = not args.no_mount and _can_mount()
    results = []
    with tempfile.TemporaryDirectory(prefix="carbon-accuracy-") as scratch:
        for scenario in args.scenarios:
            for tool in args.tools:
                if tool == "carbontracker" and SCENARIOS[scenario].vendor != "nvidia":
                    results.append({"tool": tool, "scenario": scenario, "skipped": NVIDIA_ONLY})
                    continue
                result = run_one(tool, scenario, args.seconds, mount, Path(scratch))
                results.append(result)
                if "error" in result:
                    print(f"{tool} on {scenario} failed:\n{result['error']}", file=sys.stderr)
    found = versions()
    command = " ".join([Path(sys.executable).name, *sys.argv]) if argv is None else str(argv)
    print(f"command: {command}")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in found.items()))
    print(f"CPU counter seen by peers: {'fake tree mounted on /sys/class' if mount else 'no'}")
    print("\n".join(table(results, args.tools)))
    for result in results:
        if "skipped" in result:
            print(f"- {result['tool']} / {result['scenario']}: {result['skipped']}")
        for channel, note in result.get("notes", {}).items():
            print(f"- {result['tool']} / {result['scenario']} / {channel}: {note}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "command": command,
            "versions": found,
            "mounted_sys_class": mount,
            "seconds": args.seconds,
            "scenarios": {n: SCENARIOS[n].description for n in args.scenarios},
            "results": results,
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
