from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from carbon_callbacks import read_run_log
from carbon_callbacks.intensity.uk import URL_ENV as UK_URL_ENV
from tests.intensity.uk_payloads import national

ROOT = Path(__file__).resolve().parents[1]
BUSY_THEN_EXIT_3 = """
import time
print('from the child')
start = time.process_time()
while time.process_time() - start < 0.3:
    pass
raise SystemExit(3)
"""


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "carbon_callbacks", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


def test_devices_says_what_is_measured_and_what_is_estimated(powercap: object) -> None:
    result = cli("devices", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    ids = {c["id"]: c for c in report["channels"]}
    assert ids["cpu:package-0"]["method"] == "measured"
    assert "gpu" not in {c["kind"] for c in report["channels"]} or os.path.exists("/dev/nvidia0")
    human = cli("devices")
    assert "cpu:package-0" in human.stdout and "Not usable:" in human.stdout


def test_devices_on_a_machine_without_rapl_reports_the_estimate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARBON_CALLBACKS_POWERCAP_ROOT", str(tmp_path / "nothing"))
    result = cli("devices", "--json")
    report = json.loads(result.stdout)
    estimate = next(c for c in report["channels"] if c["id"] == "cpu:estimate")
    assert estimate["method"] == "estimated"
    assert "per busy core" in estimate["how"]
    assert any(u["source"] == "rapl" for u in report["unavailable"])
    human = cli("devices").stdout
    assert "estimated" in human and "rapl:" in human


def test_run_json_reports_the_command_and_exits_with_its_status(tmp_path: Path) -> None:
    result = cli(
        "run",
        "--json",
        "--output-dir",
        str(tmp_path),
        "--intensity",
        "300",
        "--",
        sys.executable,
        "-c",
        BUSY_THEN_EXIT_3,
    )
    assert result.returncode == 3
    assert "from the child" in result.stderr  # the child's stdout goes to stderr with --json
    report = json.loads(result.stdout)
    assert report["exit_code"] == 3 and report["status"] == "failed"
    assert report["duration_s"] > 0
    assert report["energy_kwh"] is not None and report["energy_kwh"] > 0
    assert report["co2e_kg"] == report["energy_kwh"] * 300 / 1000
    assert {"id", "kind", "method", "energy_j"} <= set(report["channels"][0])
    log = read_run_log(report["log_path"])
    assert log.summary is not None and log.summary["status"] == "failed"


def test_run_human_summary_says_the_cpu_figure_is_estimated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARBON_CALLBACKS_POWERCAP_ROOT", str(tmp_path / "nothing"))
    result = cli("run", "--no-log", "--", sys.executable, "-c", "print('hello')")
    assert result.returncode == 0
    assert result.stdout == "hello\n"
    assert "cpu:estimate" in result.stderr and "estimated" in result.stderr
    assert "run log" not in result.stderr
    assert not list(tmp_path.glob("**/*.jsonl"))


def test_busy_command_measures_more_than_a_sleeping_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARBON_CALLBACKS_POWERCAP_ROOT", str(tmp_path / "nothing"))
    busy = "import time\nt = time.time()\nwhile time.time() - t < 1.5: pass"
    idle = "import time\ntime.sleep(1.5)"
    energies = {}
    for name, code in (("busy", busy), ("idle", idle)):
        result = cli("run", "--json", "--no-log", "--", sys.executable, "-c", code)
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["estimated"] is True
        energies[name] = report["energy_j"]
    assert energies["busy"] > 2 * energies["idle"]
    assert energies["busy"] > 1.0 * 12 * 0.8  # ~1.5 CPU-seconds at 12 W per busy core


def test_bad_input_gets_one_line_and_a_nonzero_exit() -> None:
    cases = {
        ("run", "--bogus", "--", "true"): 2,
        ("run",): 2,
        ("run", "--"): 2,
        ("run", "--", "no-such-command-anywhere"): 127,
        ("frobnicate",): 2,
        ("run", "--pue", "0.5", "--", "true"): 2,
    }
    for args, code in cases.items():
        result = cli(*args)
        assert result.returncode == code, (args, result.stderr)
        assert result.stderr.count("\n") == 1, (args, result.stderr)
        assert result.stderr.startswith("carbon-callbacks: error:"), (args, result.stderr)
        assert result.stdout == ""


def test_sigterm_is_passed_to_the_command_and_the_run_closed_as_interrupted(
    tmp_path: Path,
) -> None:
    import signal

    env = os.environ | {"PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [
            sys.executable, "-m", "carbon_callbacks", "run", "--json",
            "--output-dir", str(tmp_path), "--",
            sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    assert process.stderr is not None
    assert process.stderr.readline().strip() == "up"  # the child's stdout, sent to stderr
    process.send_signal(signal.SIGTERM)
    stdout, _ = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM
    report = json.loads(stdout)
    assert report["status"] == "interrupted" and report["exit_code"] == 143
    log = read_run_log(report["log_path"])
    assert log.summary is not None and log.summary["status"] == "interrupted"


def test_intensity_for_a_country_works_offline_as_json() -> None:
    from carbon_callbacks.intensity import static

    result = cli("intensity", "--country", "dk", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    denmark = static.country("DK")
    assert report["g_per_kwh"] == denmark.g_per_kwh
    assert report["zone"] == "DK" and report["basis"] == "lifecycle"
    assert report["year"] == denmark.year and report["datetime"] is None
    assert report["estimated"] is False and report["guessed_location"] is False
    assert report["source"].startswith(static.OWID_SOURCE)
    assert report["attribution"] == static.OWID_ATTRIBUTION


def test_intensity_for_a_cloud_region_prints_its_source_and_attribution() -> None:
    result = cli("intensity", "--cloud", "gcp", "--region", "europe-north1")
    assert result.returncode == 0, result.stderr
    assert "Google Cloud region carbon data, 2025" in result.stdout
    assert "Apache License 2.0" in result.stdout


def test_intensity_without_location_says_the_guess(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Europe/Warsaw")
    report = json.loads(cli("intensity", "--json").stdout)
    assert report["zone"] == "PL" and report["guessed_location"] is True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--country", "Swedn"], "did you mean 'SE'"),
        (["--live", "--country", "PL"], "needs an Electricity Maps token"),
        (["--cloud", "aws"], "cloud and region go together"),
    ],
)
def test_intensity_mistakes_are_one_line_errors(args: list[str], message: str) -> None:
    result = cli("intensity", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_intensity_live_reports_the_current_half_hour(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = time.time()
    start = now - now % 1800
    monkeypatch.setenv(UK_URL_ENV, httpserver.url_for("/"))
    httpserver.expect_request(re.compile("^/intensity/")).respond_with_json(
        national((start, start + 1800, 150, None), (start + 1800, start + 3600, 150, None))
    )  # two half hours with one value: the test passes even if a half hour ends meanwhile
    result = cli("intensity", "--country", "GB", "--live", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["g_per_kwh"] == 150 and report["source"] == "UK Carbon Intensity API"
    assert report["estimated"] is True and report["basis"] == "direct"
    slot_starts = [time.gmtime(start), time.gmtime(start + 1800)]
    assert report["datetime"] in [time.strftime("%Y-%m-%dT%H:%M:%SZ", t) for t in slot_starts]
    assert report["fallback"] is None and report["attribution"] is None


def test_intensity_live_failure_falls_back_and_says_why(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(UK_URL_ENV, httpserver.url_for("/"))
    httpserver.expect_request(re.compile("^/intensity/")).respond_with_data("down", status=503)
    result = cli("intensity", "--country", "GB", "--live")
    assert result.returncode == 0, result.stderr
    assert "UK Carbon Intensity API: HTTP 503" in result.stdout
    assert "Our World in Data" in result.stdout
