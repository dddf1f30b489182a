from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_main_job_measures_the_plain_python_training(tmp_path: Path) -> None:
    """The README's first command, run as the CLI would run it."""
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [
            sys.executable, "-m", "carbon_callbacks", "run", "--json",
            "--output-dir", str(tmp_path), "--",
            sys.executable, str(ROOT / "integrations" / "plain_python.py"), "--epochs", "2",
        ],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "epoch 1: loss" in result.stderr
    report = json.loads(result.stdout)
    assert report["energy_j"] > 0
    assert len(list(tmp_path.glob("*.jsonl"))) == 1


def test_tracker_api_example_reports_each_epoch(tmp_path: Path) -> None:
    env = os.environ | {"PYTHONPATH": str(ROOT), "CARBON_CALLBACKS_OUTPUT_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, str(ROOT / "integrations" / "plain_python.py"), "--tracker",
         "--epochs", "2"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("epoch 0: loss") and "energy" in lines[0]
    assert "not measured" not in result.stdout
    assert lines[-2].startswith("total:")
    assert lines[-1].startswith("CO2e:") and "Our World in Data" in lines[-1]


def test_the_installed_package_carries_its_data_tables(tmp_path: Path) -> None:
    """Run outside the checkout, so the installed package (the wheel under tox) is the one used."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    code = (
        "import carbon_callbacks.intensity.static as s; "
        "print(s.country('SE').year, s.cloud_region('aws', 'eu-north-1').country, "
        "s.country_for_timezone('Europe/Warsaw'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["2024", "SE", "PL"]
