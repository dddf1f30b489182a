"""Long run logs made from a real one: its records stretched in time, written by the real writer.

``stretched_log`` takes a log the Tracker wrote (``tests/data/runs/single.jsonl``: two epochs,
two H100 channels' worth of GPU, CPU package and DRAM) and writes, through ``RunLogWriter``, the
same run lasting ``hours``: the header as written (new run id, name and start), one sample row a
second whose power follows the original's with a slow wave and occasional spikes, the epochs'
windows and the summary with times and energies scaled to the new length (the power stays the
original's on average). Used by the HTML report's tests (long series) and ``bench_html.py``.
"""

from __future__ import annotations

import copy
import json
import math
import random
from pathlib import Path
from typing import Any

from carbon_callbacks.runlog.writer import RunLogWriter

SOURCE = Path(__file__).resolve().parents[2] / "data" / "runs" / "single.jsonl"


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def stretched_log(
    target: Path,
    *,
    run_id: str,
    name: str,
    start_unix: float,
    hours: float = 1.0,
    seed: int = 0,
    source: Path = SOURCE,
) -> Path:
    """Write ``source`` stretched to ``hours`` at ``target``; see the module docstring."""
    records = _records(source)
    header = next(r for r in records if r["type"] == "header")
    summary = next(r for r in records if r["type"] == "summary")
    windows = [r for r in records if r["type"] == "window"]
    samples = [r for r in records if r["type"] == "samples"]
    channels = samples[0]["channels"]
    last_row = samples[-1]["joules"][-1]
    old_s = float(summary["duration_s"])
    new_s = hours * 3600.0
    factor = new_s / old_s
    watts = [joules / old_s for joules in last_row]
    rng = random.Random(seed)

    def moved(record: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(record)
        out["run_id"] = run_id
        if "start_unix" in out:
            offset = float(out["start_unix"]) - float(header["started_unix"])
            out["start_unix"] = start_unix + offset * factor
        for key in ("duration_s", "energy_j", "energy_kwh", "co2e_kg"):
            if isinstance(out.get(key), int | float):
                out[key] = out[key] * factor
        for channel in out.get("channels", []):
            if isinstance(channel, dict) and isinstance(channel.get("energy_j"), int | float):
                channel["energy_j"] *= factor
        if "steps" in out and isinstance(out["steps"], int):
            out["steps"] = out["steps"] * round(factor)
        return out

    writer = RunLogWriter(target)
    head = copy.deepcopy(header)
    head.update(run_id=run_id, run_name=name, started_unix=start_unix)
    writer.write(head)
    seconds = int(new_s)
    window_ends = [
        (float(w["start_unix"]) - float(header["started_unix"]) + float(w["duration_s"])) * factor
        for w in windows
    ]
    cumulative = [0.0] * len(channels)
    rows: list[tuple[float, list[float]]] = [(0.0, list(cumulative))]
    for second in range(1, seconds + 1):
        wave = 1.0 + 0.15 * math.sin(second / 300.0) + rng.uniform(-0.03, 0.03)
        spike = 1.6 if rng.random() < 0.002 else 1.0
        cumulative = [c + w * wave * spike for c, w in zip(cumulative, watts, strict=True)]
        rows.append((float(second), [round(c, 3) for c in cumulative]))
    begin = 0
    for window, end in zip(windows, [*window_ends[:-1], float(seconds)], strict=True):
        chunk = [row for row in rows[begin:] if row[0] <= end]
        begin += len(chunk)
        writer.write(
            {
                "type": "samples",
                "run_id": run_id,
                "channels": channels,
                "t_s": [t for t, _ in chunk],
                "joules": [j for _, j in chunk],
            }
        )
        writer.write(moved(window))
    writer.write(moved(summary))
    writer.close()
    return target


def rewritten(source: Path, target: Path, **changes: Any) -> Path:
    """A copy of a log with header fields changed (``run_name=...``), every record kept."""
    lines = []
    for record in _records(source):
        if record["type"] == "header":
            record.update(changes)
        lines.append(json.dumps(record))
    target.write_text("\n".join(lines) + "\n")
    return target


def resumed_copy(source: Path, target: Path, *, run_id: str, name: str, shift_s: float) -> Path:
    """``source`` run again ``shift_s`` later as a run resumed from its checkpoint.

    The copy gets a new run id and a ``resume`` record naming ``source``'s run and carrying its
    totals, as a run restarted from that run's checkpoint writes one.
    """
    records = _records(source)
    header = next(r for r in records if r["type"] == "header")
    summary = next(r for r in records if r["type"] == "summary")
    lines = []
    for record in records:
        record = copy.deepcopy(record)
        record["run_id"] = run_id
        for key in ("started_unix", "start_unix", "t_unix"):
            if isinstance(record.get(key), int | float):
                record[key] += shift_s
        if record["type"] == "header":
            record["run_name"] = name
        lines.append(json.dumps(record))
        if record["type"] == "header":
            resume = {
                "type": "resume",
                "run_id": run_id,
                "t_unix": record["started_unix"],
                "resumes": header["run_id"],
                "energy_kwh": summary["energy_kwh"],
                "co2e_kg": summary["co2e_kg"],
                "steps": summary["steps"],
                "duration_s": summary["duration_s"],
            }
            lines.append(json.dumps(resume))
    target.write_text("\n".join(lines) + "\n")
    return target
