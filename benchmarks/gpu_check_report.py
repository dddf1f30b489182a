"""The Markdown section ``gpu_check.py`` writes for ``benchmarks/RESULTS.md``, from its JSON.

Pure functions of the report dictionary, so a saved ``gpu_check.json`` can be rendered again:
``python benchmarks/gpu_check_report.py gpu-check/gpu_check.json``. An unknown figure is shown
as ``unknown``, never as 0; a stage that did not run says why.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

WORKLOAD_STAGES = {
    "run": "`carbon-callbacks run --json`",
    "lightning": "Lightning `CarbonCallback`",
    "transformers": "Hugging Face `CarbonCallback`",
    "keras": "Keras `CarbonCallback`",
}
HOOK_SERIES = (
    "empty call",
    "Tracker.step",
    "TrainingMonitor.step",
    "TrainingMonitor.step_metrics",
)
UNKNOWN = "unknown"


def number(value: object, digits: int = 1) -> str:
    """A figure with ``digits`` decimals, or ``unknown``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return UNKNOWN
    return f"{value:,.{digits}f}"


def percent(value: object) -> str:
    """A ratio as a signed percentage with two decimals, or ``unknown``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return UNKNOWN
    return f"{value * 100:+.2f}%"


def gpu_summary(measurement: Mapping[str, Any] | None) -> dict[str, Any]:
    """A measurement's GPU channels summed: energy (None if any is unknown) and mean power.

    Returns:
        ``energy_j``, ``mean_power_w``, ``host_j`` (every other channel summed, or None),
        ``gpus`` (device names) and ``how`` (the distinct methods).
    """
    if not measurement:
        return {"energy_j": None, "mean_power_w": None, "host_j": None, "gpus": [], "how": []}
    channels = measurement.get("channels") or []
    gpus = [c for c in channels if c.get("kind") == "gpu"]
    others = [c for c in channels if c.get("kind") != "gpu"]
    energy = _sum([c.get("energy_j") for c in gpus]) if gpus else None
    duration = measurement.get("duration_s")
    power = energy / duration if energy is not None and duration else None
    return {
        "energy_j": energy,
        "mean_power_w": power,
        "host_j": _sum([c.get("energy_j") for c in others]) if others else None,
        "gpus": [c.get("device") for c in gpus],
        "how": sorted({str(c.get("how")) for c in gpus}),
    }


def _sum(values: Sequence[object]) -> float | None:
    if any(isinstance(v, bool) or not isinstance(v, int | float) for v in values):
        return None
    return float(sum(values))  # type: ignore[arg-type]


def _status(record: Mapping[str, Any] | None) -> str:
    if record is None:
        return "not run"
    reason = record.get("reason")
    if record.get("status") == "ok" or not reason:
        return str(record.get("status"))
    return f"{record.get('status')}: {str(reason).strip().splitlines()[-1][:120]}"


def _figures(report: Mapping[str, Any], stage: str) -> dict[str, Any]:
    record = report["stages"].get(stage) or {}
    return record.get("figures") or {}


def header_lines(report: Mapping[str, Any]) -> list[str]:
    """Date, machine, GPUs, drivers, versions, command."""
    machine, versions = report["machine"], report["versions"]
    environment = _figures(report, "environment")
    devices = (_figures(report, "devices").get("json") or {}).get("channels", [])
    gpus = [f"{c['id']} {c['device']} ({c['method']})" for c in devices if c.get("kind") == "gpu"]
    drivers = environment.get("drivers") or {}
    build = ", ".join(
        f"{name} {value}"
        for name, value in (
            ("CUDA", environment.get("torch_cuda")),
            ("HIP", environment.get("torch_hip")),
        )
        if value
    )
    installed = ", ".join(f"{name} {value}" for name, value in versions.items() if value)
    absent = ", ".join(name for name, value in versions.items() if not value)
    return [
        f"Run {report['date_utc']} with `{report['command']}`"
        + (f" at commit `{report['commit']}`." if report.get("commit") else "."),
        "",
        f"- Machine: {machine['platform']}; {machine['cpu'] or UNKNOWN} "
        f"({machine['logical_cpus']} logical CPUs), {machine['memory_gib']} GiB, "
        f"Python {machine['python']}",
        f"- GPUs as `carbon-callbacks devices` lists them: {'; '.join(gpus) or 'none'}",
        f"- Torch sees: {', '.join(environment.get('torch_devices') or []) or 'no GPU'}"
        + (f" (built for {build})" if build else ""),
        f"- Drivers: {', '.join(f'{k} {v}' for k, v in drivers.items()) or UNKNOWN}",
        f"- Installed: {installed}" + (f"; not installed: {absent}" if absent else ""),
        f"- Workload: {workload_text(report)}",
    ]


def workload_text(report: Mapping[str, Any]) -> str:
    """The workload's parameters, from whichever stage ran it."""
    for stage in ("run", "lightning", "transformers", "counter_vs_power", "step_hook"):
        work = _figures(report, stage).get("workload")
        if work:
            return (
                f"{work['steps']} steps of a {work['size']} x {work['size']} {work['dtype']} "
                f"matrix product on `{work['device']}`, each step waited for"
            )
    return UNKNOWN


def stage_table(report: Mapping[str, Any]) -> list[str]:
    """Every stage: status and time."""
    lines = ["| stage | status | seconds (limit) |", "| --- | --- | ---: |"]
    for stage, record in report["stages"].items():
        lines.append(
            f"| {stage} | {_status(record)} | {number(record.get('seconds'))} "
            f"({number(record.get('timeout_s'), 0)}) |"
        )
    return lines


def workload_table(report: Mapping[str, Any]) -> list[str]:
    """The fixed workload as each way of measuring it saw it."""
    lines = [
        "| measured by | status | steps | steps took (s) | measured (s) | GPU energy (J) "
        "| GPUs' mean power (W) | other channels (J) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    methods: set[str] = set()
    for stage, label in WORKLOAD_STAGES.items():
        record = report["stages"].get(stage)
        if record is None:
            continue
        figures = record.get("figures") or {}
        measurement = figures.get("measurement")
        gpu = gpu_summary(measurement)
        methods.update(gpu["how"])
        lines.append(
            f"| {label} | {_status(record)} | {figures.get('steps', UNKNOWN)} "
            f"| {number(figures.get('workload_s'), 2)} "
            f"| {number((measurement or {}).get('duration_s'), 2)} | {number(gpu['energy_j'])} "
            f"| {number(gpu['mean_power_w'])} | {number(gpu['host_j'])} |"
        )
    lines += ["", "How the GPU figures were obtained: " + ("; ".join(sorted(methods)) or UNKNOWN)]
    return lines


def counter_table(report: Mapping[str, Any]) -> list[str]:
    """Counter against 10 Hz power integration, window by window and GPU by GPU."""
    record = report["stages"].get("counter_vs_power")
    if record is None:
        return ["Not run."]
    figures = record.get("figures") or {}
    if record.get("status") != "ok":
        return [f"Stage {_status(record)}."]
    lines = [
        "| window | GPU | window (s) | reads within (s) | counter (J) | power, 10 Hz (J) "
        "| power vs counter |",
        "| --- | --- | ---: | --- | ---: | ---: | ---: |",
    ]
    for window in figures.get("windows", []):
        for gpu in window["gpus"]:
            lines.append(
                f"| {window['name']} | {gpu['id']} {gpu['device']} "
                f"| {number(window['duration_s'], 3)} "
                f"| {number(window['inner_s'], 3)} to {number(window['outer_s'], 3)} "
                f"| {number(gpu['counter_j'], 2)} | {number(gpu['power_j'], 2)} "
                f"| {percent(gpu['relative_difference'])} |"
            )
    notes = [*figures.get("notes", [])]
    notes += sorted(
        {
            f"{g['id']}: {g['note']}"
            for w in figures.get("windows", [])
            for g in w["gpus"]
            if g["note"]
        }
    )
    return lines + ([""] + [f"- {note}" for note in notes] if notes else [])


def hook_table(report: Mapping[str, Any]) -> list[str]:
    """Median and p99 ns per call of each per-step path, device idle and busy."""
    record = report["stages"].get("step_hook")
    if record is None:
        return ["Not run."]
    if record.get("status") != "ok":
        return [f"Stage {_status(record)}."]
    figures = record["figures"]
    lines = [
        "| call | idle: median (ns) | idle: p99 (ns) | busy: median (ns) | busy: p99 (ns) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for series in HOOK_SERIES:
        idle, busy = figures["idle"].get(series, {}), figures["busy"].get(series, {})
        label = series + (
            f" (every {figures['log_every']} steps)" if series.endswith("metrics") else ""
        )
        lines.append(
            f"| {label} | {number(idle.get('median_ns'), 0)} | {number(idle.get('p99_ns'), 0)} "
            f"| {number(busy.get('median_ns'), 0)} | {number(busy.get('p99_ns'), 0)} |"
        )
    busy_wall = figures["busy"].get("wall", {})
    return [
        *lines,
        "",
        f"Busy: {busy_wall.get('steps', UNKNOWN)} products queued over "
        f"{number(busy_wall.get('seconds'), 2)} s, one before each step's calls, not waited for.",
    ]


def markdown(report: Mapping[str, Any]) -> str:
    """The whole section, ready to paste into ``benchmarks/RESULTS.md``."""
    title = "## GPU check (`benchmarks/gpu_check.py`)"
    if report.get("quick") or report.get("device") == "cpu":
        title += f": {'quick' if report.get('quick') else 'full'} run on `{report['device']}`"
    parts = [
        [title, "", *header_lines(report)],
        ["### Stages", "", *stage_table(report)],
        ["### The fixed workload, measured four ways", "", *workload_table(report)],
        [
            "### Energy counter and 10 Hz power integration, same windows",
            "",
            *counter_table(report),
        ],
        ["### Per-step path, ns per call", "", *hook_table(report)],
    ]
    return "\n\n".join("\n".join(part) for part in parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Print the Markdown of a saved ``gpu_check.json``."""
    paths = sys.argv[1:] if argv is None else argv
    if len(paths) != 1:
        print("usage: python benchmarks/gpu_check_report.py gpu-check/gpu_check.json")
        return 2
    print(markdown(json.loads(Path(paths[0]).read_text())), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
