"""The packaged tables are exactly what scripts/build_intensity_data.py derives from data/raw."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pycountry")  # the build script's development-only dependency

ROOT = Path(__file__).resolve().parents[2]
RAW = ROOT / "data" / "raw"
OUT = ROOT / "carbon_callbacks" / "intensity" / "data"
SCRIPT = ROOT / "scripts" / "build_intensity_data.py"


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=ROOT, check=False
    )


def test_committed_tables_are_current() -> None:
    result = run_script("--check")
    assert result.returncode == 0, result.stderr


def test_check_fails_when_a_raw_value_changes(tmp_path: Path) -> None:
    raw, out = tmp_path / "raw", tmp_path / "out"
    shutil.copytree(RAW, raw)
    shutil.copytree(OUT, out)
    owid = raw / "owid-carbon-intensity-electricity.csv"
    data = owid.read_bytes()
    old, new = b"\r\nSweden,SWE,2024,35.823833\r\n", b"\r\nSweden,SWE,2024,99.823833\r\n"
    assert data.count(old) == 1
    owid.write_bytes(data.replace(old, new))

    result = run_script("--check", "--raw", str(raw), "--out", str(out))
    assert result.returncode == 1
    assert "countries.csv" in result.stderr
    assert "DATA.md" in result.stderr  # its SHA-256 of the raw file changed too

    assert run_script("--raw", str(raw), "--out", str(out)).returncode == 0
    assert run_script("--check", "--raw", str(raw), "--out", str(out)).returncode == 0
    assert "SE,SWE,Sweden,2024,99.82," in (out / "countries.csv").read_text(encoding="utf-8")


def test_raw_files_are_the_published_bytes() -> None:
    """SHA-256 as recorded in DATA-SOURCES.md: git kept the CRLF line endings."""
    text = (RAW / "DATA-SOURCES.md").read_text(encoding="utf-8")
    recorded = dict(re.findall(r"## (\S+\.csv)\n.*?\*\*SHA-256:\*\* `([0-9a-f]{64})`", text, re.S))
    assert set(recorded) == {
        "owid-carbon-intensity-electricity.csv",
        "google-cloud-region-carbon-2025.csv",
    }
    for name, digest in recorded.items():
        data = (RAW / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest, name
        assert b"\r\n" in data


def test_data_md_cites_each_raw_file() -> None:
    data_md = (OUT / "DATA.md").read_text(encoding="utf-8")
    for name in (
        "owid-carbon-intensity-electricity.csv",
        "google-cloud-region-carbon-2025.csv",
        "tz/zone.tab",
        "tz/tzdata.zi",
    ):
        assert hashlib.sha256((RAW / name).read_bytes()).hexdigest() in data_md, name
    assert "CC BY 4.0" in data_md
    assert "Apache License 2.0" in data_md
    assert "python scripts/build_intensity_data.py" in data_md
