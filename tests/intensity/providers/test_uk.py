from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from carbon_callbacks.intensity.base import IntensitySlot, LiveSource, ProviderError
from carbon_callbacks.intensity.http import parse_utc
from carbon_callbacks.intensity.providers.uk import URL_ENV, UkCarbonIntensity, outward_code
from tests.intensity.servers import ANSWER_TIMEOUT

PAYLOADS = Path(__file__).parents[1] / "payloads"
NOON = parse_utc("2024-05-01T12:00Z")
HALF_HOUR = 1800.0


def payload(name: str) -> object:
    return json.loads((PAYLOADS / name).read_text())


def source(server: HTTPServer, postcode: str | None = None) -> UkCarbonIntensity:
    """A client pointed at the test server through the environment variable."""
    return UkCarbonIntensity(
        postcode, environ={URL_ENV: server.url_for("/")}, timeout=ANSWER_TIMEOUT
    )


def slot(offset_slots: int, value: float, forecast: bool) -> IntensitySlot:
    start = NOON + offset_slots * HALF_HOUR
    return IntensitySlot(start, start + HALF_HOUR, value, forecast)


def test_national_actuals_then_forecasts(httpserver_ipv4: HTTPServer) -> None:
    path = "/intensity/2024-05-01T11:30Z/2024-05-01T14:30Z"
    httpserver_ipv4.expect_request(path).respond_with_json(payload("uk_national.json"))
    uk: LiveSource = source(httpserver_ipv4)
    assert (uk.name, uk.zone, uk.basis) == ("UK Carbon Intensity API", "GB", "direct")
    assert uk.fetch(NOON, NOON + 4 * HALF_HOUR) == [
        slot(0, 176, False),
        slot(1, 177, False),
        slot(2, 170, False),
        slot(3, 169, True),
    ]
    request, _ = httpserver_ipv4.log[0]
    assert request.headers["Accept"] == "application/json"


def test_instant_gives_the_half_hour_holding_it(httpserver_ipv4: HTTPServer) -> None:
    httpserver_ipv4.expect_request(re.compile("/intensity/.*")).respond_with_json(
        payload("uk_national.json")
    )
    assert source(httpserver_ipv4).fetch(NOON + 60, NOON + 60) == [slot(0, 176, False)]


def test_regional_forecasts_by_postcode_with_explicit_base_url(httpserver_ipv4: HTTPServer) -> None:
    path = "/regional/intensity/2024-05-01T11:30Z/2024-05-01T13:30Z/postcode/RG10"
    httpserver_ipv4.expect_request(path).respond_with_json(payload("uk_regional.json"))
    uk = UkCarbonIntensity("rg10 9xx", base_url=httpserver_ipv4.url_for("/"))
    assert uk.zone == "GB RG10"
    assert uk.fetch(NOON, NOON + 2 * HALF_HOUR) == [slot(0, 139, True), slot(1, 136, True)]


def test_explicit_base_url_beats_the_environment(httpserver_ipv4: HTTPServer) -> None:
    httpserver_ipv4.expect_request(re.compile("/intensity/.*")).respond_with_json(
        payload("uk_national.json")
    )
    uk = UkCarbonIntensity(
        base_url=httpserver_ipv4.url_for("/"), environ={URL_ENV: "http://x.invalid"}
    )
    assert len(uk.fetch(NOON, NOON + HALF_HOUR)) == 1


@pytest.mark.parametrize(
    ("given", "outward"),
    [
        ("RG10", "RG10"),
        ("sw1a", "SW1A"),
        ("EC1", "EC1"),
        (" W1 ", "W1"),
        ("ec1a 1bb", "EC1A"),
        ("RG10 9XX", "RG10"),
        ("RG109XX", "RG10"),
        ("M1  1AE", "M1"),
    ],
)
def test_postcodes_become_outward_codes(given: str, outward: str) -> None:
    assert outward_code(given) == outward
    assert UkCarbonIntensity(given).zone == f"GB {outward}"


@pytest.mark.parametrize(
    "given", ["", "   ", "12345", "RG10 9XX 7", "Reading", "R", "ABC1", "RG10-9XX"]
)
def test_bad_postcodes_say_what_to_write(given: str) -> None:
    with pytest.raises(ValueError, match=r"write its outward part.*'RG10'"):
        UkCarbonIntensity(given)


def test_unusable_entries_are_skipped(httpserver_ipv4: HTTPServer) -> None:
    entries: list[object] = [
        {"from": "2024-05-01T12:00Z", "to": "2024-05-01T12:30Z"},  # no intensity
        {"from": "2024-05-01T12:00Z", "to": "2024-05-01T12:30Z", "intensity": None},
        {"from": "2024-05-01T12:00Z", "to": "2024-05-01T12:30Z", "intensity": {}},
        {"from": "2024-05-01T12:00Z", "to": "2024-05-01T12:30Z", "intensity": {"actual": "high"}},
        {"to": "2024-05-01T12:30Z", "intensity": {"actual": 100}},  # no start
        {"from": "soon", "to": "2024-05-01T12:30Z", "intensity": {"actual": 100}},
        {"from": "2024-05-01T12:30Z", "to": "2024-05-01T12:30Z", "intensity": {"actual": 100}},
        {"from": "2024-05-01T12:00Z", "to": "2024-05-01T12:30Z", "intensity": {"actual": -5}},
        "not an object",
        # Usable: a non-numeric actual falls back to the forecast; naive times count as UTC.
        {
            "from": "2024-05-01T12:30:00",
            "to": "2024-05-01T13:00:00",
            "intensity": {"forecast": 150, "actual": "n/a", "index": "moderate"},
        },
        {
            "from": "2024-05-01T13:00Z",
            "to": "2024-05-01T13:30Z",
            "intensity": {"forecast": None, "actual": 140.5},
        },
    ]
    httpserver_ipv4.expect_request(re.compile("/intensity/.*")).respond_with_json({"data": entries})
    assert source(httpserver_ipv4).fetch(NOON, NOON + 3 * HALF_HOUR) == [
        slot(1, 150, True),
        slot(2, 140.5, False),
    ]


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ({"data": []}, "no usable data in the answer"),
        (
            {"data": [{"from": None, "intensity": {"forecast": None}}]},
            "no usable data in the answer",
        ),
        ({"data": None}, "unexpected answer: no list of half hours under 'data'"),
        ({"data": {"regionid": 12}}, "unexpected answer: no list of half hours under 'data'"),
        ([], "unexpected answer: no list of half hours under 'data'"),
    ],
)
def test_answers_without_usable_data(
    httpserver_ipv4: HTTPServer, answer: object, reason: str
) -> None:
    httpserver_ipv4.expect_request(re.compile("/intensity/.*")).respond_with_json(answer)
    with pytest.raises(ProviderError) as caught:
        source(httpserver_ipv4).fetch(NOON, NOON + HALF_HOUR)
    assert (caught.value.provider, caught.value.reason) == ("UK Carbon Intensity API", reason)


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (429, "HTTP 429 (rate limited)"),
        (500, "HTTP 500 (server error)"),
        (403, "HTTP 403 (forbidden)"),
    ],
)
def test_http_failures(httpserver_ipv4: HTTPServer, status: int, reason: str) -> None:
    httpserver_ipv4.expect_request(re.compile(".*")).respond_with_data("", status)
    with pytest.raises(ProviderError, match=re.escape(f"UK Carbon Intensity API: {reason}")):
        source(httpserver_ipv4, "RG10").fetch(NOON, NOON + HALF_HOUR)


def test_html_and_truncated_answers(httpserver_ipv4: HTTPServer) -> None:
    uk = source(httpserver_ipv4)
    httpserver_ipv4.expect_oneshot_request(re.compile(".*")).respond_with_data(
        "<html>maintenance</html>", content_type="text/html"
    )
    with pytest.raises(ProviderError, match="answered HTML, not JSON"):
        uk.fetch(NOON, NOON + HALF_HOUR)
    text = json.dumps(payload("uk_national.json"))
    httpserver_ipv4.expect_oneshot_request(re.compile(".*")).respond_with_data(text[:200])
    with pytest.raises(ProviderError, match="answer is truncated JSON"):
        uk.fetch(NOON, NOON + HALF_HOUR)


def test_several_megabytes_are_refused(httpserver_ipv4: HTTPServer) -> None:
    entry = {"from": "2024-05-01T12:00Z", "to": "2024-05-01T12:30Z", "intensity": {"actual": 1}}
    httpserver_ipv4.expect_request(re.compile(".*")).respond_with_json({"data": [entry] * 60_000})
    with pytest.raises(ProviderError, match="response larger than 1 MiB"):
        source(httpserver_ipv4).fetch(NOON, NOON + HALF_HOUR)


def test_connection_refused_through_the_environment_override() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    uk = UkCarbonIntensity(environ={URL_ENV: f"http://127.0.0.1:{port}"})
    with pytest.raises(
        ProviderError, match=f"connection refused by http://127.0.0.1:{port}/intensity"
    ):
        uk.fetch(NOON, NOON + HALF_HOUR)


def test_long_ranges_are_asked_for_in_pieces_the_api_accepts(httpserver_ipv4: HTTPServer) -> None:
    httpserver_ipv4.expect_request(re.compile("/intensity/.*")).respond_with_json(
        payload("uk_national.json")
    )
    slots = source(httpserver_ipv4).fetch(NOON - 20 * 86400, NOON + HALF_HOUR)
    windows = [request.path for request, _ in httpserver_ipv4.log]
    assert windows == [
        "/intensity/2024-04-11T11:30Z/2024-04-24T11:30Z",
        "/intensity/2024-04-24T11:30Z/2024-05-01T13:00Z",
    ]
    assert slots[0] == IntensitySlot(NOON - HALF_HOUR, NOON, 185, False)  # duplicates merged
    assert len(slots) == 2


def test_repr_names_zone_and_address() -> None:
    uk = UkCarbonIntensity("RG10", base_url="https://user:pw@ci.example/api/?k=v")
    assert repr(uk) == "UkCarbonIntensity(zone='GB RG10', base_url='https://ci.example/api/')"
