"""The accuracy harness runs end to end with carbon-callbacks only (no peer is installed here).

It drives the real Tracker in a subprocess against the fake pynvml and a fake RAPL tree whose
counter wraps during the run, and checks the figures against the scripted ground truth.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks" / "compare"))

import accuracy  # noqa: E402


def test_ours_matches_the_scripted_truth(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(accuracy, "CPU_HEADROOM_J", 10.0)  # wrap within the short run
    out = tmp_path / "accuracy.json"
    argv = ["--tools", "ours", "--scenarios", "constant", "bursty", "--seconds", "1.0"]
    assert accuracy.main([*argv, "--no-mount", "--json", str(out)]) == 0

    payload = json.loads(out.read_text())
    results = {r["scenario"]: r for r in payload["results"]}
    assert set(results) == {"constant", "bursty"}
    for result in results.values():
        assert result["tool"] == "ours"
        assert result["truth_j"]["cpu_package"] > 10.0  # the package counter wrapped
        for channel in ("gpu_counter", "cpu_package"):
            assert abs(accuracy.error_pct(result, channel) or 100.0) < 1.0, channel
    assert abs(accuracy.error_pct(results["constant"], "gpu_power_only") or 100.0) < 1.0
    assert "codecarbon" not in sys.modules and "carbontracker" not in sys.modules
    printed = capsys.readouterr().out
    assert "| constant | GPU 0, energy counter |" in printed
