from __future__ import annotations

import json
import logging
import math
import re
import time
import traceback
import warnings
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from carbon_callbacks.intensity.base import IntensitySlot, LiveSource, ProviderError
from carbon_callbacks.intensity.providers.electricitymaps import URL_ENV, ElectricityMaps
from tests.intensity.servers import ANSWER_TIMEOUT, HOLD_S, closed_port, raw_server, silent
from tests.secret_tokens import OTHER_TOKEN, TOKEN

PAYLOADS = Path(__file__).parents[1] / "payloads"
HOUR = 3600.0
PARAMS = {"zone": "DE", "emissionFactorType": "lifecycle", "disableCallerLookup": "true"}
HISTORY = "/v3/carbon-intensity/history"
LATEST = "/v3/carbon-intensity/latest"
FORECAST = "/v3/carbon-intensity/forecast"


def this_hour() -> float:
    return math.floor(time.time() / HOUR) * HOUR


@pytest.fixture
def hour0() -> float:
    """The hour the tests build their answers around; ``source(server, hour0)`` gives the client
    a clock that stands half-way through it.

    The client reads the clock to choose its endpoints (history before this hour, latest for it,
    forecast after now): with one instant for both, no hour can turn between the two reads.
    """
    return this_hour()


def iso(unix: float) -> str:
    return datetime.fromtimestamp(unix, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def payload(name: str, first_hour: float) -> dict[str, object]:
    """A recorded answer with its hours moved to start at ``first_hour``, one hour apart."""
    answer: dict[str, object] = json.loads((PAYLOADS / name).read_text())
    series = answer.get("history", answer.get("forecast", [answer]))
    assert isinstance(series, list)
    for i, entry in enumerate(series):
        entry["datetime"] = iso(first_hour + i * HOUR)
    return answer


def source(server: HTTPServer, hour0: float | None = None) -> ElectricityMaps:
    """A client pointed at the test server through the environment variable; given ``hour0``,
    its clock stands still half-way through that hour."""
    return ElectricityMaps(
        "DE",
        TOKEN,
        environ={URL_ENV: server.url_for("/")},
        timeout=ANSWER_TIMEOUT,
        clock=time.time if hour0 is None else lambda: hour0 + HOUR / 2,
    )


def serve_all(server: HTTPServer, hour0: float) -> None:
    """History for the last 24 hours, latest for this hour, forecast from this hour on."""
    headers = {"auth-token": TOKEN}
    answers = {
        HISTORY: payload("em_history.json", hour0 - 24 * HOUR),
        LATEST: payload("em_latest.json", hour0),
        FORECAST: payload("em_forecast.json", hour0),
    }
    for path, answer in answers.items():
        server.expect_request(path, query_string=PARAMS, headers=headers).respond_with_json(answer)


def test_range_around_now_uses_history_latest_and_forecast(
    httpserver_ipv4: HTTPServer, hour0: float
) -> None:
    serve_all(httpserver_ipv4, hour0)
    em: LiveSource = source(httpserver_ipv4, hour0)
    assert (em.name, em.zone, em.basis) == ("Electricity Maps", "DE", "lifecycle")
    slots = em.fetch(hour0 - 5 * HOUR, hour0 + 2 * HOUR - 1)
    # History's last four hours are estimated; latest (this hour) is estimated; then forecasts.
    expected = [(-5, 322, False), (-4, 335, True), (-3, 347, True), (-2, 351, True)]
    expected += [(-1, 348, True), (0, 302, True), (1, 298, True)]
    assert slots == [
        IntensitySlot(hour0 + h * HOUR, hour0 + (h + 1) * HOUR, value, forecast)
        for h, value, forecast in expected
    ]
    assert sorted(request.path for request, _ in httpserver_ipv4.log) == [FORECAST, HISTORY, LATEST]


def test_past_range_asks_history_only(httpserver_ipv4: HTTPServer, hour0: float) -> None:
    serve_all(httpserver_ipv4, hour0)
    slots = source(httpserver_ipv4, hour0).fetch(hour0 - 24 * HOUR, hour0 - 22 * HOUR)
    assert [(s.g_per_kwh, s.forecast) for s in slots] == [(388, False), (392, False)]
    assert [request.path for request, _ in httpserver_ipv4.log] == [HISTORY]


def test_future_range_asks_forecast_only(httpserver_ipv4: HTTPServer, hour0: float) -> None:
    serve_all(httpserver_ipv4, hour0)
    slots = source(httpserver_ipv4, hour0).fetch(hour0 + 2 * HOUR, hour0 + 4 * HOUR)
    assert [(s.g_per_kwh, s.forecast) for s in slots] == [(287, True), (270, True)]
    assert [request.path for request, _ in httpserver_ipv4.log] == [FORECAST]


def test_refused_forecast_is_not_fatal(httpserver_ipv4: HTTPServer, hour0: float) -> None:
    refusal = json.loads((PAYLOADS / "em_refused.json").read_text())
    httpserver_ipv4.expect_request(FORECAST).respond_with_json(refusal, status=403)
    serve_all(httpserver_ipv4, hour0)
    slots = source(httpserver_ipv4, hour0).fetch(hour0 - HOUR, hour0 + 3 * HOUR)
    assert [(s.start_unix, s.g_per_kwh) for s in slots] == [(hour0 - HOUR, 348), (hour0, 302)]


def test_everything_refused_raises(httpserver_ipv4: HTTPServer, hour0: float) -> None:
    body = {"error": "Unauthorized", "message": "Invalid auth-token"}
    httpserver_ipv4.expect_request(re.compile("/v3/.*")).respond_with_json(body, status=401)
    with pytest.raises(ProviderError) as caught:
        source(httpserver_ipv4, hour0).fetch(hour0 - HOUR, hour0 + HOUR)
    assert str(caught.value) == "Electricity Maps: HTTP 401 (unauthorised: Invalid auth-token)"
    assert len(httpserver_ipv4.log) == 3


def test_other_emission_factors_are_refused(httpserver_ipv4: HTTPServer, hour0: float) -> None:
    latest = payload("em_latest.json", hour0)
    latest["emissionFactorType"] = "direct"
    httpserver_ipv4.expect_request(LATEST).respond_with_json(latest)
    serve_all(httpserver_ipv4, hour0)
    with pytest.raises(ProviderError, match="answered 'direct' emission factors, not lifecycle"):
        source(httpserver_ipv4, hour0).fetch(hour0 - HOUR, hour0 + HOUR)


def test_unusable_hours_are_skipped(httpserver_ipv4: HTTPServer, hour0: float) -> None:
    history: list[object] = [
        {"datetime": iso(hour0 - 6 * HOUR), "carbonIntensity": None},
        {"datetime": iso(hour0 - 6 * HOUR), "carbonIntensity": "high"},
        {"datetime": iso(hour0 - 6 * HOUR)},
        {"carbonIntensity": 100},
        {"datetime": "yesterday", "carbonIntensity": 100},
        "not an object",
        {"datetime": "2000-01-01T00:00:00+00:00", "carbonIntensity": 100},  # outside the range
        {"datetime": iso(hour0 - 5 * HOUR)[:19], "carbonIntensity": 250.5, "isEstimated": False},
        {"datetime": iso(hour0 - 4 * HOUR)[:19] + "+00:00", "carbonIntensity": 240},
    ]
    httpserver_ipv4.expect_request(HISTORY).respond_with_json({"zone": "DE", "history": history})
    slots = source(httpserver_ipv4, hour0).fetch(hour0 - 6 * HOUR, hour0 - 3 * HOUR)
    assert slots == [
        IntensitySlot(hour0 - 5 * HOUR, hour0 - 4 * HOUR, 250.5, False),
        IntensitySlot(hour0 - 4 * HOUR, hour0 - 3 * HOUR, 240, False),
    ]


@pytest.mark.parametrize(
    ("path", "answer", "reason"),
    [
        (HISTORY, {"zone": "DE"}, "unexpected answer: no list under 'history'"),
        (HISTORY, {"history": None}, "unexpected answer: no list under 'history'"),
        (HISTORY, [1], "unexpected answer from history: not an object"),
        (HISTORY, {"history": [{"carbonIntensity": None}]}, "no usable data in the answer"),
        (LATEST, {"zone": "DE", "carbonIntensity": None}, "no usable data in the answer"),
        (FORECAST, {"forecast": {}}, "unexpected answer: no list under 'forecast'"),
    ],
)
def test_malformed_answers(
    httpserver_ipv4: HTTPServer, hour0: float, path: str, answer: object, reason: str
) -> None:
    httpserver_ipv4.expect_request(path).respond_with_json(answer)
    window = {HISTORY: (-3, -2), LATEST: (0, 0), FORECAST: (2, 3)}[path]
    with pytest.raises(ProviderError) as caught:
        source(httpserver_ipv4, hour0).fetch(
            hour0 + window[0] * HOUR + 1, hour0 + window[1] * HOUR + 1
        )
    assert caught.value.reason == reason


def test_several_megabytes_are_refused(httpserver_ipv4: HTTPServer, hour0: float) -> None:
    entry = {"datetime": "2024-05-01T12:00:00.000Z", "carbonIntensity": 300, "zone": "DE"}
    httpserver_ipv4.expect_request(HISTORY).respond_with_json({"history": [entry] * 50_000})
    with pytest.raises(ProviderError, match="response larger than 1 MiB"):
        source(httpserver_ipv4, hour0).fetch(hour0 - 3 * HOUR, hour0 - 2 * HOUR)


Scenario = Callable[[HTTPServer], ElectricityMaps]


def _echoing_401(server: HTTPServer) -> ElectricityMaps:
    body = {"error": "Unauthorized", "message": f"auth-token {TOKEN} is not valid"}
    server.expect_request(re.compile(".*")).respond_with_json(body, status=401)
    return source(server)


def _refused_403(server: HTTPServer) -> ElectricityMaps:
    server.expect_request(re.compile(".*")).respond_with_json({"error": TOKEN}, status=403)
    return source(server)


def _server_error(server: HTTPServer) -> ElectricityMaps:
    server.expect_request(re.compile(".*")).respond_with_data(f"oops {TOKEN}", status=500)
    return source(server)


def _html(server: HTTPServer) -> ElectricityMaps:
    server.expect_request(re.compile(".*")).respond_with_data(f"<html>{TOKEN}</html>")
    return source(server)


def _truncated(server: HTTPServer) -> ElectricityMaps:
    server.expect_request(re.compile(".*")).respond_with_data('{"forecast": [{"datetime": "')
    return source(server)


def _refused_connection(server: HTTPServer) -> ElectricityMaps:
    return ElectricityMaps("DE", TOKEN, base_url=f"http://127.0.0.1:{closed_port()}")


@pytest.mark.parametrize(
    "scenario", [_echoing_401, _refused_403, _server_error, _html, _truncated, _refused_connection]
)
def test_token_never_shows(
    httpserver_ipv4: HTTPServer, hour0: float, caplog: pytest.LogCaptureFixture, scenario: Scenario
) -> None:
    caplog.set_level(logging.DEBUG)
    em = scenario(httpserver_ipv4)
    with (
        warnings.catch_warnings(record=True) as caught_warnings,
        pytest.raises(ProviderError) as caught,
    ):
        warnings.simplefilter("always")
        em.fetch(hour0 + 2 * HOUR, hour0 + 3 * HOUR)
    shown = [
        str(caught.value),
        repr(caught.value),
        "".join(traceback.format_exception(caught.value)),
        repr(em),
        caplog.text,
        *(str(w.message) for w in caught_warnings),
    ]
    assert all(TOKEN not in text for text in shown)
    for request, _ in httpserver_ipv4.log:
        assert request.headers["auth-token"] == TOKEN
        assert TOKEN not in request.url


def test_token_never_shows_when_the_server_never_answers(
    hour0: float, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with raw_server(silent) as port:
        em = ElectricityMaps("DE", TOKEN, base_url=f"http://127.0.0.1:{port}", timeout=(0.5, 0.5))
        began = time.monotonic()
        with pytest.raises(ProviderError) as caught:
            em.fetch(hour0 + 2 * HOUR, hour0 + 3 * HOUR)
    assert time.monotonic() - began < HOLD_S  # it gave up before the server did
    assert caught.value.reason == "timed out waiting for an answer (after 0.5 s)"
    assert TOKEN not in "".join(traceback.format_exception(caught.value)) + caplog.text


@pytest.mark.parametrize("token", ["", "   "])
def test_missing_token_names_the_variable(token: str) -> None:
    with pytest.raises(ValueError, match="ELECTRICITYMAPS_API_TOKEN"):
        ElectricityMaps("DE", token)


@pytest.mark.parametrize(
    ("source", "named"),
    [(None, "(token)"), ("CARBON_CALLBACKS_ELECTRICITYMAPS_TOKEN", "(CARBON_CALLBACKS_")],
)
def test_token_unfit_for_a_header_is_refused_naming_its_source_without_showing_it(
    source: str | None, named: str
) -> None:
    with pytest.raises(ValueError) as caught:
        if source is None:
            ElectricityMaps("DE", f"{TOKEN} {OTHER_TOKEN}\n")
        else:
            ElectricityMaps("DE", f"{TOKEN} {OTHER_TOKEN}\n", token_source=source)
    assert TOKEN not in str(caught.value) and OTHER_TOKEN not in str(caught.value)
    assert named in str(caught.value)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "api.electricitymap.org", "https://"])
def test_an_address_that_is_not_http_is_refused_naming_its_source(url: str) -> None:
    with pytest.raises(ValueError, match=rf"^base_url='{re.escape(url)}' is not an http\(s\) URL"):
        ElectricityMaps("DE", TOKEN, base_url=url)
    with pytest.raises(ValueError, match=rf"^{URL_ENV}='{re.escape(url)}' is not an http\(s\) URL"):
        ElectricityMaps("DE", TOKEN, environ={URL_ENV: url})


@pytest.mark.parametrize("zone", ["", "D", "Germany!", "DE DK1", "-DE"])
def test_bad_zones_are_refused(zone: str) -> None:
    with pytest.raises(ValueError, match="'US-CAL-CISO'"):
        ElectricityMaps(zone, TOKEN)


def test_repr_hides_the_token() -> None:
    em = ElectricityMaps("US-CAL-CISO", f"  {TOKEN}  ")
    assert repr(em) == (
        "ElectricityMaps(zone='US-CAL-CISO', token=<hidden>, "
        "base_url='https://api.electricitymap.org')"
    )
