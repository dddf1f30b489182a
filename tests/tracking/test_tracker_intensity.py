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
from carbon_callbacks.intensity.base import Basis, IntensitySlot, IntensityValue
from carbon_callbacks.intensity.live import LiveIntensity
from carbon_callbacks.intensity.providers.electricitymaps import URL_ENV as EM_URL_ENV
from carbon_callbacks.intensity.providers.uk import URL_ENV as UK_URL_ENV
from tests.meters.fake_powercap import FakePowercap
from tests.secret_tokens import TOKEN

ONE_WH_UJ = 3_600_000_000
HANG_GUARD_S = 60.0
"""Backstop for waits on the fetch thread: a working one gets there in milliseconds, so only a
broken one lasts this long, and the test then fails instead of hanging."""
CLOCK_SLACK_S = 0.5
"""How far from an intensity change the energy counter is kept flat. The tracker places the change
on the monotonic timeline through a wall-clock time taken one call apart from a monotonic one; a
thread descheduled between the two calls shifts the change by as long, which is harmless while
no energy is counted that close to it."""


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


def wait_for_live_warning(caught: list[warnings.WarningMessage]) -> None:
    """Wait until the fetch thread has warned that live data is unavailable.

    It records the failure before it warns, so from then on the figures carry it.
    """
    deadline = time.monotonic() + HANG_GUARD_S
    while time.monotonic() < deadline:
        if any("live carbon intensity" in str(w.message) for w in caught):
            return
        time.sleep(0.01)


class ScriptedGrid:
    """A live source answering what the test has set so far (nothing at first), with no network."""

    name = "scripted grid"
    zone = "GB"
    basis: Basis = "direct"

    def __init__(self) -> None:
        self.slots: list[IntensitySlot] = []

    def fetch(self, start_unix: float, end_unix: float) -> list[IntensitySlot]:
        return list(self.slots)

    def close(self) -> None:
        """No connections to close."""


def test_intensity_change_mid_run_weights_each_part_by_its_own_energy(
    powercap: FakePowercap,
) -> None:
    grid = ScriptedGrid()
    provider = LiveIntensity(grid, IntensityValue(250.0, "yearly fallback", zone="GB"))
    with Tracker(intensity=provider) as tracker:
        tracker.begin_window("epoch")
        powercap.add_energy("intel-rapl:0", ONE_WH_UJ)  # 1 Wh at 100 g/kWh
        tracker.so_far(exact=True)  # a sample holds it
        change = time.time() + CLOCK_SLACK_S  # the intensity changes only after that sample...
        grid.slots = [
            IntensitySlot(change - 1800, change, 100.0, False),
            IntensitySlot(change, change + 1800, 300.0, False),
        ]
        assert provider.refresh()  # fetched now, not whenever the fetch thread runs
        wait_until(change + CLOCK_SLACK_S)
        tracker.so_far(exact=True)  # ... and this sample, still flat, comes well after it
        powercap.add_energy("intel-rapl:0", 3 * ONE_WH_UJ)  # 3 Wh at 300 g/kWh
        window = tracker.end_window("epoch")
    assert window is not None and window.co2e_kg is not None and window.intensity is not None
    assert window.energy_kwh == pytest.approx(0.004)
    # Energy-weighted: (1 Wh x 100 + 3 Wh x 300) / 4 Wh = 250 g/kWh. A time-weighted mean would
    # give this only if the part after the change lasted exactly three times the part before.
    assert window.co2e_kg == pytest.approx((0.001 * 100 + 0.003 * 300) / 1000, rel=1e-6)
    assert window.intensity.source == "scripted grid"
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
        wait_for_live_warning(caught.list)  # the first fetch has failed
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
            wait_for_live_warning(caught)  # the first fetch has failed
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
