"""The tracker's CO2e: location-resolved static factors, provenance in results and run logs."""

from __future__ import annotations

import re
import time
import warnings
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from carbon_callbacks import CarbonCallbacksWarning, Tracker, read_run_log
from carbon_callbacks.intensity import static
from carbon_callbacks.intensity.electricitymaps import URL_ENV as EM_URL_ENV
from carbon_callbacks.intensity.uk import URL_ENV as UK_URL_ENV
from tests.intensity.uk_payloads import national
from tests.meters.fake_powercap import FakePowercap
from tests.secret_tokens import TOKEN

ONE_WH_UJ = 3_600_000_000


def co2e_of_one_wh(powercap: FakePowercap, **location: str) -> tuple[float, Tracker]:
    with Tracker(**location) as tracker:  # type: ignore[arg-type]
        tracker.begin_window("w")
        powercap.add_energy("intel-rapl:0", ONE_WH_UJ)
        window = tracker.end_window("w")
    assert window is not None and window.co2e_kg is not None
    return window.co2e_kg, tracker


def test_sweden_and_poland_follow_the_embedded_yearly_data(powercap: FakePowercap) -> None:
    sweden, _ = co2e_of_one_wh(powercap, country="SE")
    poland, _ = co2e_of_one_wh(powercap, country="PL")
    se, pl = static.country("SE"), static.country("PL")
    assert sweden == pytest.approx(se.g_per_kwh / 1000 / 1000)  # 1 Wh at g/kWh, in kg
    assert poland == pytest.approx(pl.g_per_kwh / 1000 / 1000)
    assert poland / sweden == pytest.approx(pl.g_per_kwh / se.g_per_kwh)
    assert poland / sweden > 10


def test_pue_is_applied_to_energy_before_intensity(powercap: FakePowercap) -> None:
    with Tracker(country="SE", pue=1.5) as tracker:
        tracker.begin_window("w")
        powercap.add_energy("intel-rapl:0", ONE_WH_UJ)
        window = tracker.end_window("w")
    assert window is not None and window.co2e_kg is not None
    assert window.co2e_kg == pytest.approx(0.0015 * static.country("SE").g_per_kwh / 1000)


def test_run_log_carries_co2e_and_where_the_factor_came_from(powercap: FakePowercap) -> None:
    _, tracker = co2e_of_one_wh(powercap, cloud="aws", region="eu-north-1")
    assert tracker.log_path is not None
    log = read_run_log(tracker.log_path)
    assert log.header is not None
    assert log.header["intensity"]["zone"] == "SE"
    assert log.header["config"]["intensity"]["cloud"] == "aws"
    window = log.windows[0]
    assert window["co2e_kg"] is not None
    provenance = window["intensity"]
    assert provenance["source"].startswith(static.OWID_SOURCE)
    assert provenance["basis"] == "lifecycle" and provenance["year"] == 2024
    assert log.summary is not None and log.summary["co2e_kg"] is not None


def test_without_a_location_the_guess_is_flagged(
    powercap: FakePowercap, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "Europe/Stockholm")
    with Tracker(write_log=False) as tracker:
        pass
    summary = tracker.summary
    assert summary is not None and summary.intensity is not None
    assert summary.intensity.zone == "SE" and summary.intensity.guessed_location
    monkeypatch.setenv("TZ", "Etc/UTC")
    with Tracker(write_log=False) as tracker:
        pass
    assert tracker.summary is not None and tracker.summary.intensity is not None
    assert tracker.summary.intensity.zone == "WORLD"
    assert "location unknown" in (tracker.summary.intensity.fallback or "")


def wait_until(unix: float) -> None:
    while time.time() < unix:
        time.sleep(0.02)


def test_intensity_change_mid_run_weights_each_part_by_its_own_energy(
    powercap: FakePowercap, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(UK_URL_ENV, httpserver.url_for("/"))
    change = time.time() + 1.0
    httpserver.expect_request(re.compile("^/intensity/")).respond_with_json(
        national((change - 1800, change, 110, 100), (change, change + 1800, 310, 300))
    )
    with Tracker(country="GB", live=True) as tracker:
        tracker.begin_window("epoch")
        powercap.add_energy("intel-rapl:0", ONE_WH_UJ)  # 1 Wh at 100 g/kWh
        tracker.so_far(exact=True)  # a sample before the change, however busy the machine
        wait_until(change + 0.5)  # the counter stays flat across the change
        tracker.so_far(exact=True)  # and one after it, before the next energy
        powercap.add_energy("intel-rapl:0", 3 * ONE_WH_UJ)  # 3 Wh at 300 g/kWh
        time.sleep(0.2)
        window = tracker.end_window("epoch")
    assert window is not None and window.co2e_kg is not None and window.intensity is not None
    assert window.energy_kwh == pytest.approx(0.004)
    assert window.co2e_kg == pytest.approx((0.001 * 100 + 0.003 * 300) / 1000, rel=1e-6)
    time_weighted = (1.0 * 100 + (window.duration_s - 1.0) * 300) / window.duration_s
    assert window.co2e_kg != pytest.approx(0.004 * time_weighted / 1000, rel=0.01)
    assert window.intensity.source == "UK Carbon Intensity API"
    assert window.intensity.basis == "direct" and not window.intensity.estimated
    assert tracker.summary is not None and tracker.summary.co2e_kg == pytest.approx(
        window.co2e_kg, rel=1e-6
    )


def test_live_api_failure_leaves_the_run_on_the_fallback_with_one_warning(
    powercap: FakePowercap, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(UK_URL_ENV, httpserver.url_for("/"))
    httpserver.expect_request(re.compile("^/intensity/")).respond_with_data(
        "<html>maintenance</html>", content_type="text/html"
    )
    with (
        pytest.warns(CarbonCallbacksWarning) as caught,
        Tracker(country="GB", live=True) as tracker,
    ):
        deadline = time.monotonic() + 5
        while not httpserver.log and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.1)
        powercap.add_energy("intel-rapl:0", ONE_WH_UJ)
    live_warnings = [str(w.message) for w in caught if "live carbon intensity" in str(w.message)]
    assert len(live_warnings) == 1
    assert "UK Carbon Intensity API" in live_warnings[0] and "HTML" in live_warnings[0]
    summary = tracker.summary
    assert summary is not None and summary.intensity is not None
    assert summary.intensity.g_per_kwh == static.country("GB").g_per_kwh
    assert summary.intensity.fallback is not None and "HTML" in summary.intensity.fallback
    assert summary.co2e_kg is not None


def test_the_token_appears_nowhere(
    powercap: FakePowercap,
    httpserver: HTTPServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    token = TOKEN
    monkeypatch.setenv(EM_URL_ENV, httpserver.url_for("/"))
    monkeypatch.setenv("ELECTRICITYMAPS_API_TOKEN", token)
    httpserver.expect_request(re.compile("^/v3/")).respond_with_json(
        {"error": "Invalid auth-token", "message": f"token {token} is not valid"}, status=401
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with Tracker(zone="DE", live=True) as tracker:
            deadline = time.monotonic() + 5
            while len(httpserver.log) < 3 and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(0.1)
            texts = [repr(tracker), repr(tracker.config), str(tracker.config.public_dict())]
    assert httpserver.log and httpserver.log[0][0].headers["auth-token"] == token
    assert tracker.summary is not None and tracker.summary.intensity is not None
    assert "HTTP 401" in (tracker.summary.intensity.fallback or "")
    texts += [str(w.message) for w in caught]
    texts += [str(tracker.summary.to_dict())]
    texts += [p.read_text() for p in tmp_path.rglob("*") if p.is_file()]
    captured = capsys.readouterr()
    texts += [captured.out, captured.err]
    assert any("HTTP 401" in text for text in texts)  # the failure was reported...
    assert not [text for text in texts if token in text]  # ...without the token
