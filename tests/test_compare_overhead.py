"""Smoke test of benchmarks/compare/overhead.py: our variants only, in this process, tiny sizes.

The peers (CodeCarbon, Carbontracker) live in a separate benchmark environment; this test must not
import them, and checks that the harness does not either.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

pytest.importorskip("lightning")

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "compare" / "overhead.py"


def load_harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location("compare_overhead", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_harness_runs_none_empty_ours_and_reports_them() -> None:
    harness = load_harness()
    variants = ["none", "empty", "ours"]
    steps = 5
    started = time.perf_counter()
    results = harness.run(variants, rounds=1, steps=steps, epochs=2, probes=1, isolate=False)
    # Every figure is a part of this call: in seconds, none can exceed its whole length (however
    # slow a loaded machine makes it).
    whole_s = time.perf_counter() - started
    results |= {
        "variants": variants,
        "command": "test",
        "date": "today",
        "machine": harness.machine(),
        "versions": harness.versions(),
    }
    results["summary"] = harness.summarize(results)

    assert [run["variant"] for run in results["runs"]] == variants
    for run in results["runs"]:
        assert len(run["seconds_per_step"]) == 2
        assert all(seconds > 0 for seconds in run["seconds_per_step"])
        # each epoch's steps are timed inside the fit, which is timed inside the whole run
        assert sum(run["seconds_per_step"]) * steps <= run["fit_s"]
        assert whole_s >= run["end_to_end_s"] >= run["fit_s"] > 0
    ours = results["runs"][2]
    assert whole_s > ours["import_s"] > 0
    assert "import_s" not in results["runs"][0]
    # Ours takes its first sample inside start(): a positive wait.
    assert list(results["startup"]) == ["ours"]
    assert whole_s > results["startup"]["ours"]["first_sample_s"][0] > 0
    assert results["summary"]["none"]["step_s"] > 0

    text = harness.report(results)
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| variant | step (us) | ratio |")
    assert [row.split(" | ")[0] for row in rows[2:]] == ["| none", "| empty", "| ours"]
    assert rows[2].split(" | ")[2] == "1.000"
    assert "carbon-callbacks" in text
    assert "codecarbon" not in sys.modules
    assert "carbontracker" not in sys.modules
