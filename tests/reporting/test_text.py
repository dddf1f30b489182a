from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from carbon_callbacks.intensity.base import IntensityValue
from carbon_callbacks.meters.base import Channel, Unavailable
from carbon_callbacks.reporting.report import build_report
from carbon_callbacks.reporting.text import (
    format_devices,
    format_energy,
    format_measurement,
    format_report,
    printable,
)
from carbon_callbacks.tracking.measurement import ChannelEnergy, Measurement

GPU = Channel("gpu:0", "gpu", "NVIDIA H100", "measured", "NVML total energy counter")
CPU = Channel("cpu:estimate", "cpu", "CPU", "estimated", "estimate: 12 W per busy core")


def test_missing_energy_is_never_shown_as_zero() -> None:
    assert format_energy(None) == "not measured"
    assert format_energy(0.0) == "0.0 J"
    assert format_energy(7_200_000.0) == "2 kWh"
    empty = Measurement("run", 0.0, 1.0, (ChannelEnergy(GPU, None, "GPU is lost"),), pue=1.0)
    lines = format_measurement(empty)
    assert lines[1] == "energy:   not measured"
    assert "not measured" in lines[2] and "[GPU is lost]" in lines[2]


def test_totals_say_pue_estimate_partial_and_intensity_source() -> None:
    run = Measurement(
        "run",
        0.0,
        10.0,
        (ChannelEnergy(GPU, 3600.0, "GPU is lost"), ChannelEnergy(CPU, 3600.0)),
        pue=1.5,
        intensity=IntensityValue(200.0, "user-supplied constant"),
    )
    lines = format_measurement(run)
    assert lines[1] == (
        "energy:   0.003 kWh (0.002 kWh x PUE 1.5; includes estimated figures; "
        "partial: some figures are incomplete)"
    )
    assert lines[-2:] == ["CO2e:     0.6 g at 200 gCO2e/kWh", "          (user-supplied constant)"]


def test_devices_list_fixes_under_the_source() -> None:
    lines = format_devices([CPU], [Unavailable("rapl", "permission denied", "chmod o+r x\nudev")])
    assert lines[1].startswith("  cpu:estimate") and "estimated" in lines[1]
    assert lines[-3:] == ["  rapl: permission denied", "    fix: chmod o+r x", "    fix: udev"]


ESCAPES = "\x1b]0;owned\x07\x1b[2J\r\u202e\x9b31m"
"""Terminal control: set the title, clear the screen, return, reverse the text, a C1 CSI."""


def with_escapes(record: dict[str, Any]) -> dict[str, Any]:
    """A committed run log's record with terminal control codes in every text a report shows."""
    if record["type"] == "header":
        record["run_name"] = f"evil{ESCAPES}"
    if record["type"] == "summary":
        record["channels"][0]["fault"] = f"lost{ESCAPES}"
        record["intensity"]["source"] = f"source{ESCAPES}"
        record["intensity"]["fallback"] = f"fallback{ESCAPES}"
    return record


def test_printable_escapes_what_a_terminal_would_act_on_and_keeps_the_rest() -> None:
    assert printable("plain, Ünïcode — ok\ttab\nnew line\u00a0") == (
        "plain, Ünïcode — ok\ttab\nnew line\u00a0"
    )
    assert printable(ESCAPES + "\udc80") == ("\\x1b]0;owned\\x07\\x1b[2J\\r\\u202e\\x9b31m\\udc80")


def test_a_report_shows_control_codes_from_a_log_as_escapes(tmp_path: Path) -> None:
    folder = tmp_path / f"runs{ESCAPES}"
    folder.mkdir()
    source = Path(__file__).parents[1] / "data" / "runs" / "single.jsonl"
    lines = [json.dumps(with_escapes(json.loads(line))) for line in source.read_text().splitlines()]
    (folder / f"single{ESCAPES}.jsonl").write_text("\n".join(lines) + "\n")
    (folder / f"broken{ESCAPES}.jsonl").write_bytes(b"\x1b[2J not a run log\n")
    text = "\n".join(format_report(build_report(folder)))
    assert not [c for c in text if not c.isprintable() and c != "\n"], text
    for shown in ("evil", "single", "lost", "source", "fallback", "broken"):
        assert f"{shown}\\x1b]0;owned\\x07" in text, shown
