"""The first forecast's cleaner-start hint, decided once in the monitor from the live forecast.

A local server answers in the UK API's shape with a forecast that drops 10 minutes after the run
starts; the run's own forecast length is a fraction of a second, so the cleanest start is the drop
and the saving is the drop's depth.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from functools import partial

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from carbon_callbacks import read_run_log
from carbon_callbacks.reporting.text import format_forecast_line
from carbon_callbacks.training import TrainingMonitor
from carbon_callbacks.training.outcome import ForecastFigures
from tests.intensity.uk_payloads import LIVE_WAIT_S, national, serve_dip, uk_url, wait_for_live
from tests.meters.fake_powercap import FakePowercap


@pytest.fixture
def uk_api(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> HTTPServer:
    """The fake UK API, made the live source's address."""
    for name, value in uk_url(httpserver).items():
        monkeypatch.setenv(name, value)
    return httpserver


def first_forecast(
    monitor: TrainingMonitor, powercap: FakePowercap, total_steps: int = 120
) -> list[ForecastFigures]:
    """One epoch of 40 steps (1 J each) once live data has arrived; the forecasts announced."""
    announced: list[ForecastFigures] = []
    monitor.announce = announced.append
    monitor.set_total_steps(total_steps)
    monitor.start()
    if monitor.tracker is not None and monitor.tracker.config.intensity.live:
        wait_for_live(monitor.tracker)
    train_epoch(monitor, powercap)
    monitor.stop()
    return announced


def train_epoch(monitor: TrainingMonitor, powercap: FakePowercap) -> None:
    """One epoch of 40 steps of 1 J each."""
    monitor.begin_epoch()
    for _ in range(40):
        monitor.step()
        powercap.add_energy("intel-rapl:0", 1_000_000)
        time.sleep(0.003)
    monitor.end_epoch()


def live_monitor(**options: object) -> TrainingMonitor:
    return TrainingMonitor(interval_s=0.005, warmup_steps=2, zone="GB", live=True, **options)  # type: ignore[arg-type]


def prediction_records(monitor: TrainingMonitor) -> list[dict[str, object]]:
    assert monitor.tracker is not None and monitor.tracker.log_path is not None
    return [dict(record) for record in read_run_log(monitor.tracker.log_path).predictions]


@pytest.mark.parametrize("saving", [0.6, 0.2])
def test_a_start_saving_a_fifth_or_more_is_announced_and_recorded(
    powercap: FakePowercap, uk_api: HTTPServer, saving: float
) -> None:
    dip = serve_dip(uk_api, saving)
    monitor = live_monitor()
    announced = first_forecast(monitor, powercap)
    assert len(announced) == 1
    hint = announced[0].cleaner_start
    assert hint is not None
    assert (hint.start_unix, hint.started_g_per_kwh) == (dip, 300)
    assert hint.g_per_kwh == pytest.approx(300 * (1 - saving))
    assert hint.saving_fraction == pytest.approx(saving)
    assert monitor.tracker is not None
    started = read_run_log(monitor.tracker.log_path).header["started_unix"]  # type: ignore[arg-type,index]
    assert hint.run_start_unix == pytest.approx(started, abs=1e-3)
    minute = time.gmtime(round(dip / 60) * 60)  # the line gives the nearest minute
    same_day = minute[:3] == time.gmtime(started)[:3]
    at = time.strftime("%H:%M UTC" if same_day else "%Y-%m-%d %H:%M UTC", minute)
    lines = format_forecast_line(announced[0]).splitlines()
    assert len(lines) == 2 and lines[0].startswith("carbon-callbacks: predicted for 120 steps")
    assert lines[1] == (
        f"carbon-callbacks: starting at {at} would have emitted about {saving:.0%} less CO2e "
        f"(forecast {300 * (1 - saving):.0f} gCO2e/kWh vs 300 for the start it had; "
        "information only)"
    )
    records = prediction_records(monitor)
    assert records[0]["cleaner_start"] == hint.to_dict()
    assert all("cleaner_start" not in record for record in records[1:])


def test_a_smaller_saving_is_not_mentioned(powercap: FakePowercap, uk_api: HTTPServer) -> None:
    serve_dip(uk_api, 0.19)
    monitor = live_monitor()
    announced = first_forecast(monitor, powercap)
    assert len(announced) == 1 and announced[0].cleaner_start is None
    assert "\n" not in format_forecast_line(announced[0])
    assert all("cleaner_start" not in record for record in prediction_records(monitor))


def test_no_hint_when_the_forecast_does_not_cover_the_run(
    powercap: FakePowercap, uk_api: HTTPServer
) -> None:
    """A hundred million steps of 3 ms or more take days; the forecast reaches about 30 h."""
    serve_dip(uk_api, 0.6)
    monitor = live_monitor()
    announced = first_forecast(monitor, powercap, total_steps=100_000_000)
    assert len(announced) == 1 and announced[0].duration_s is not None
    assert announced[0].duration_s > 40 * 3600
    assert announced[0].cleaner_start is None


def test_live_data_after_the_first_forecast_brings_the_hint_once_at_a_later_one(
    powercap: FakePowercap, uk_api: HTTPServer
) -> None:
    """The server holds its answer until the first forecast is out; the next epoch's has it."""
    now = math.floor(time.time())
    dip = now + 600.0
    forecast = national((now - 3600, dip, 300, None), (dip, dip + 30 * 3600, 120, None))
    answer = threading.Event()
    uk_api.expect_request(re.compile("^/intensity/")).respond_with_handler(
        partial(_held, answer, json.dumps(forecast))
    )
    monitor = live_monitor()
    announced: list[ForecastFigures] = []
    monitor.announce = announced.append
    monitor.set_total_steps(400)
    try:
        monitor.start()
        for epoch in range(3):
            train_epoch(monitor, powercap)
            if epoch == 0:
                assert [figures.cleaner_start for figures in announced] == [None]
                answer.set()
                wait_for_live(monitor.tracker)
        monitor.stop()
    finally:
        answer.set()
    assert len(announced) == 2
    hint = announced[1].cleaner_start
    assert hint is not None and hint.start_unix == dip
    assert hint.saving_fraction == pytest.approx(0.6)
    records = prediction_records(monitor)
    assert "cleaner_start" not in records[0]
    assert [r["cleaner_start"] for r in records if "cleaner_start" in r] == [hint.to_dict()]


def _held(answer: threading.Event, body: str, request: Request) -> Response:
    """``body`` as JSON once ``answer`` is set (bounded by the live-data hang guard)."""
    answer.wait(LIVE_WAIT_S)
    return Response(body, content_type="application/json")


def test_no_hint_without_live_data(powercap: FakePowercap) -> None:
    monitor = TrainingMonitor(interval_s=0.005, warmup_steps=2, intensity_g_per_kwh=300.0)
    announced = first_forecast(monitor, powercap)
    assert len(announced) == 1 and announced[0].cleaner_start is None


def test_quiet_announces_nothing_but_the_hint_is_still_recorded(
    powercap: FakePowercap, uk_api: HTTPServer
) -> None:
    dip = serve_dip(uk_api, 0.6)
    monitor = live_monitor(quiet=True)
    assert first_forecast(monitor, powercap) == []
    records = prediction_records(monitor)
    assert records[0]["cleaner_start"]["start_unix"] == dip  # type: ignore[index]
