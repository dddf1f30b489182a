"""``carbon-callbacks when`` against local fake APIs serving forecasts in the real payload shapes.

The recorded forecast payloads start at 2024-05-01 12:00 UTC; each test moves their times to the
current slot, so the command (which plans from the real clock) sees a live forecast.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from carbon_callbacks import read_run_log
from carbon_callbacks.cli import main
from carbon_callbacks.intensity.http import parse_utc
from carbon_callbacks.intensity.providers import electricitymaps, energidataservice, uk
from tests.intensity.uk_payloads import national
from tests.secret_tokens import TOKEN

PAYLOADS = Path(__file__).parent / "intensity" / "payloads"
RECORDED_START = parse_utc("2024-05-01T12:00Z")
RUNS = Path(__file__).parent / "data" / "runs"


def moved(name: str, slot_s: float, fields: Sequence[str], form: str) -> tuple[Any, float]:
    """A recorded payload with every time in ``fields`` moved so it starts at the current slot.

    Returns the payload and the new start.
    """
    now = time.time()
    start = now - now % slot_s
    shift = start - RECORDED_START
    payload = json.loads((PAYLOADS / name).read_text())

    def move(item: Any) -> Any:
        if isinstance(item, dict):
            return {
                key: time.strftime(form, time.gmtime(parse_utc(value) + shift))
                if key in fields
                else move(value)
                for key, value in item.items()
            }
        if isinstance(item, list):
            return [move(value) for value in item]
        return item

    return move(payload), start


def when(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(["when", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def best_aligned(values: Sequence[float], run_slots: int) -> tuple[int, float]:
    """The earliest slot index (from 1: slot 0 holds now) whose run has the lowest mean."""
    means = [
        (sum(values[i : i + run_slots]) / run_slots, i)
        for i in range(1, len(values) - run_slots + 1)
    ]
    lowest = min(mean for mean, _ in means)
    return next(i for mean, i in means if mean == lowest), lowest


def test_gb_half_hourly_forecast_as_json(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    payload, start = moved("uk_national_fw48h.json", 1800, ("from", "to"), "%Y-%m-%dT%H:%MZ")
    monkeypatch.setenv(uk.URL_ENV, httpserver.url_for("/"))
    httpserver.expect_request(re.compile("^/intensity/")).respond_with_json(payload)
    status, out, err = when(capsys, "--hours", "3", "--zone", "GB", "--energy-kwh", "40", "--json")
    assert status == 0, err
    answer = json.loads(out)
    values = [entry["intensity"]["forecast"] for entry in payload["data"]]
    index, mean = best_aligned(values, 6)
    assert answer["start_unix"] == start + index * 1800
    assert answer["start_iso"] == time.strftime(
        "%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(answer["start_unix"])
    )
    assert answer["g_per_kwh"] == pytest.approx(mean)
    # Now lies in slot 0 (or 1, should the half hour turn meanwhile): the mean of a run started
    # now lies between those of the runs started at the slots' edges.
    edges = [sum(values[i : i + 6]) / 6 for i in range(3)]
    assert min(edges) - 1e-9 <= answer["now_g_per_kwh"] <= max(edges) + 1e-9
    assert answer["saving_fraction"] == pytest.approx(1 - mean / answer["now_g_per_kwh"])
    assert answer["co2e_kg"] == pytest.approx(40 * mean / 1000)
    assert answer["now_co2e_kg"] == pytest.approx(40 * answer["now_g_per_kwh"] / 1000)
    assert (answer["zone"], answer["source"]) == ("GB", "UK Carbon Intensity API")
    assert answer["forecast_until_unix"] == start + 96 * 1800


def test_denmark_five_minute_prognosis_in_words_within_a_window(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fields = ("Minutes5UTC", "Minutes5DK")
    payload, start = moved("eds_co2emisprog_day.json", 300, fields, "%Y-%m-%dT%H:%M:%S")
    monkeypatch.setenv(energidataservice.URL_ENV, httpserver.url_for("/"))
    httpserver.expect_request("/dataset/CO2EmisProg").respond_with_json(payload)
    httpserver.expect_request("/dataset/CO2Emis").respond_with_json({"records": []})
    args = ("--hours", "1", "--within", "6", "--zone", "DK-DK1")
    status, out, err = when(capsys, *args, "--json")
    assert status == 0, err
    answer = json.loads(out)
    rows = sorted(payload["records"], key=lambda row: row["Minutes5UTC"])
    values = [row["CO2Emission"] for row in rows][: 6 * 12 + 12 + 1]  # starts within 6 h
    index, mean = best_aligned(values, 12)
    assert answer["start_unix"] == start + index * 300
    assert answer["g_per_kwh"] == pytest.approx(mean)
    assert answer["start_unix"] - time.time() <= 6 * 3600
    assert answer["co2e_kg"] is None and answer["zone"] == "DK-DK1"
    status, out, err = when(capsys, *args)
    assert status == 0, err
    lines = out.splitlines()
    assert re.fullmatch(
        r"Start at 20\d\d-\d\d-\d\d \d\d:\d\d UTC \(in [\d.]+ (min|h)\): a run of 1 h "
        r"meets \d+ gCO2e/kWh on average\.",
        lines[0],
    ), lines
    assert re.fullmatch(r"Started now: \d+ gCO2e/kWh; \d+% less by waiting\.", lines[1])
    assert lines[2].startswith("Forecast: Energi Data Service, zone DK-DK1, until ")


def test_electricity_maps_hourly_forecast_with_a_token(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    form = "%Y-%m-%dT%H:%M:%S.000Z"
    forecast, start = moved("em_forecast_day.json", 3600, ("datetime",), form)
    latest, _ = moved("em_latest.json", 3600, ("datetime",), form)
    latest["carbonIntensity"] = forecast["forecast"][0]["carbonIntensity"]
    monkeypatch.setenv(electricitymaps.URL_ENV, httpserver.url_for("/"))
    monkeypatch.setenv("ELECTRICITYMAPS_API_TOKEN", TOKEN)
    httpserver.expect_request("/v3/carbon-intensity/forecast").respond_with_json(forecast)
    httpserver.expect_request("/v3/carbon-intensity/latest").respond_with_json(latest)
    status, out, err = when(capsys, "--hours", "2", "--country", "DE", "--json")
    assert status == 0, err
    answer = json.loads(out)
    values = [entry["carbonIntensity"] for entry in forecast["forecast"]]
    index, mean = best_aligned(values, 2)
    assert (answer["start_unix"], answer["g_per_kwh"]) == (start + index * 3600, mean)
    assert (answer["zone"], answer["source"]) == ("DE", "Electricity Maps")
    assert TOKEN not in out + err
    request, _ = httpserver.log[0]
    assert request.headers["auth-token"] == TOKEN


def test_like_takes_the_length_and_energy_of_an_earlier_run(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    payload, _ = moved("uk_national_fw48h.json", 1800, ("from", "to"), "%Y-%m-%dT%H:%MZ")
    monkeypatch.setenv(uk.URL_ENV, httpserver.url_for("/"))
    httpserver.expect_request(re.compile("^/intensity/")).respond_with_json(payload)
    log = RUNS / "single.jsonl"
    status, out, err = when(capsys, "--like", str(log), "--zone", "GB", "--json")
    assert status == 0, err
    answer = json.loads(out)
    summary = next(json.loads(line) for line in log.read_text().splitlines() if '"summary"' in line)
    assert answer["hours"] == pytest.approx(summary["duration_s"] / 3600)
    assert answer["energy_kwh"] == pytest.approx(summary["energy_kwh"])
    assert answer["co2e_kg"] == pytest.approx(summary["energy_kwh"] * answer["g_per_kwh"] / 1000)

    # an energy given as well stands over the log's (the length still comes from the log)
    status, out, err = when(
        capsys, "--like", str(log), "--energy-kwh", "40", "--zone", "GB", "--json"
    )
    assert status == 0, err
    given = json.loads(out)
    assert given["hours"] == answer["hours"] and given["energy_kwh"] == 40.0
    assert given["co2e_kg"] == pytest.approx(40.0 * given["g_per_kwh"] / 1000)


def test_a_run_longer_than_the_forecast_is_an_error_naming_the_horizon(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    payload, start = moved("uk_national_fw48h.json", 1800, ("from", "to"), "%Y-%m-%dT%H:%MZ")
    monkeypatch.setenv(uk.URL_ENV, httpserver.url_for("/"))
    httpserver.expect_request(re.compile("^/intensity/")).respond_with_json(payload)
    status, out, err = when(capsys, "--hours", "60", "--zone", "GB")
    until = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(start + 48 * 3600))
    assert (status, out) == (2, "")
    assert f"a run of 60 h is longer than the forecast, which reaches {until}" in err
    assert "(UK Carbon Intensity API, zone GB)" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--hours", "3", "--country", "PL"], "no forecast for PL without an Electricity Maps"),
        (["--hours", "3"], "planning a start needs the place"),
        (["--zone", "GB"], "give the run's length: --hours 3, or --like RUN.jsonl"),
        (["--hours", "-1", "--zone", "GB"], "--hours must be a positive number"),
        (["--hours", "1", "--within", "-2", "--zone", "GB"], "--within must be 0 or more"),
        (["--hours", "1", "--zone", "DK"], "needs a price area: write --zone DK-DK1"),
    ],
)
def test_mistakes_are_one_line_errors_in_flags(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = when(capsys, *args)
    assert (status, out) == (2, "")
    assert message in err and err.count("\n") == 1, err


def test_no_forecast_names_the_token_free_zones_and_the_token(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, _, err = when(capsys, "--hours", "3", "--zone", "US-CAL-CISO")
    assert "set ELECTRICITYMAPS_API_TOKEN" in err
    assert "--zone GB (or --uk-postcode RG10 for a region of Great Britain)" in err
    assert "--zone DK-DK1 or --zone DK-DK2" in err


def test_the_api_failing_is_exit_status_1(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(uk.URL_ENV, httpserver.url_for("/"))
    httpserver.expect_request(re.compile("^/intensity/")).respond_with_data("down", status=503)
    status, out, err = when(capsys, "--hours", "3", "--zone", "GB")
    assert (status, out) == (1, "")
    assert "no forecast to plan by: UK Carbon Intensity API: HTTP 503" in err


# -- run --start-cleaner -----------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]


def start_cleaner(
    server: HTTPServer, tmp_path: Path, hours: str, *command: str
) -> subprocess.Popen[str]:
    """``carbon-callbacks run --start-cleaner`` in a real process, against the fake UK API.

    Ctrl-C reaches it as at a terminal: where the tests themselves run with SIGINT ignored (a
    background job of a non-interactive shell), the child would inherit that and ignore it too.
    """
    env = os.environ | {"PYTHONPATH": str(ROOT), uk.URL_ENV: server.url_for("/")}
    ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    if ignored:  # a handler is reset to the default by exec; an ignored signal stays ignored
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(
            [
                sys.executable, "-m", "carbon_callbacks", "run", "--start-cleaner", "--hours",
                hours, "--zone", "GB", "--json", "--output-dir", str(tmp_path), "--", *command,
            ],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
    finally:
        if ignored:
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def test_start_cleaner_waits_for_the_cleaner_start_then_runs_and_logs_the_plan(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """The forecast dips 3 s from now for 2 min: a 9 s run starts at the dip. On a machine so
    slow that the command plans after the dip began (its start-up alone can take seconds under
    load), the dip holds now, and it starts at once."""
    dip = math.ceil(time.time()) + 3.0
    httpserver.expect_request(re.compile("^/intensity/")).respond_with_json(
        national(
            (dip - 600, dip, 300, None),
            (dip, dip + 120, 100, None),
            (dip + 120, dip + 3600, 300, None),
        )
    )
    process = start_cleaner(httpserver, tmp_path, "0.0025", sys.executable, "-c", "pass")
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    report = json.loads(stdout)
    log = read_run_log(report["log_path"])
    assert log.header is not None
    plan = log.header["context"]["deferred_start"]
    expected_start = max(dip, plan["planned_unix"])
    assert plan["start_unix"] == expected_start
    assert log.header["started_unix"] >= expected_start
    assert (plan["forecast_g_per_kwh"], plan["zone"]) == (100, "GB")
    assert plan["source"] == "UK Carbon Intensity API" and plan["hours"] == 0.0025
    if plan["planned_unix"] < dip:
        assert 100 < plan["now_g_per_kwh"] <= 300
        saving = 1 - 100 / plan["now_g_per_kwh"]  # formatted as the line formats it
        line = f"vs {plan['now_g_per_kwh']:.0f} now, {saving:.0%} less"
        # the date comes first when the dip is past midnight UTC
        at = r"starting at (\d{4}-\d\d-\d\d )?\d\d:\d\d:\d\d UTC"
        assert re.search(at + ": forecast 100 gCO2e/kWh " + re.escape(line), stderr), stderr
    assert "starting in" not in stderr  # no countdown when stderr is not a terminal
    shown = main(["report", report["log_path"]])
    assert shown == 0


def test_report_sets_the_forecast_beside_the_intensity_met(
    httpserver: HTTPServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dip = math.ceil(time.time()) + 2.0
    httpserver.expect_request(re.compile("^/intensity/")).respond_with_json(
        national((dip - 600, dip, 300, None), (dip, dip + 3600, 100, None))
    )
    process = start_cleaner(httpserver, tmp_path, "0.5", sys.executable, "-c", "pass")
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    report = json.loads(stdout)
    assert main(["report", report["log_path"]]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "cleaner grid" in line]
    met = report["intensity"]["g_per_kwh"]
    assert (
        len(lines) == 1 and "started later for a cleaner grid: forecast 100 gCO2e/kWh" in lines[0]
    )
    assert (
        f"; met {met:.0f} gCO2e/kWh" in lines[0]
        and "(UK Carbon Intensity API, zone GB)" in lines[0]
    )
    assert main(["report", report["log_path"], "--json"]) == 0
    (run,) = json.loads(capsys.readouterr().out)["runs"]
    assert run["deferral"]["forecast_g_per_kwh"] == 100
    assert run["deferral"]["met_g_per_kwh"] == met
    assert run["deferral"]["source"] == "UK Carbon Intensity API, zone GB"


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_while_waiting_ends_the_wait_at_once(
    httpserver: HTTPServer, tmp_path: Path, signum: int, status: int
) -> None:
    later = math.ceil(time.time()) + 3600.0
    httpserver.expect_request(re.compile("^/intensity/")).respond_with_json(
        national((later - 7200, later, 300, None), (later, later + 3600, 100, None))
    )
    process = start_cleaner(httpserver, tmp_path, "0.5", sys.executable, "-c", "pass")
    assert process.stderr is not None
    announced = process.stderr.readline()
    assert "starting at" in announced and "forecast 100 gCO2e/kWh vs 300 now, 67% less" in announced
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=60)
    assert (process.returncode, stdout, stderr) == (status, "", "")
    assert not list(tmp_path.glob("*.jsonl"))  # nothing ran, so nothing was logged


def test_plan_flags_without_start_cleaner_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--hours", "3", "--", "true"]) == 2
    assert "--hours, --like and --within go with --start-cleaner" in capsys.readouterr().err
