from __future__ import annotations

import json
import math
import re
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from carbon_callbacks.intensity.base import IntensitySlot, LiveSource, ProviderError
from carbon_callbacks.intensity.http import parse_utc
from carbon_callbacks.intensity.providers.energidataservice import URL_ENV, EnergiDataService
from tests.intensity.servers import ANSWER_TIMEOUT

PAYLOADS = Path(__file__).parents[1] / "payloads"
NOON = parse_utc("2024-05-01T12:00Z")
FIVE_MIN = 300.0
HOUR = 3600.0
MEASURED = "/dataset/CO2Emis"
FORECAST = "/dataset/CO2EmisProg"


def payload(name: str) -> object:
    return json.loads((PAYLOADS / name).read_text())


def source(server: HTTPServer, area: str = "DK1") -> EnergiDataService:
    """A client pointed at the test server through the environment variable."""
    return EnergiDataService(area, environ={URL_ENV: server.url_for("/")}, timeout=ANSWER_TIMEOUT)


def naive(unix: float) -> str:
    """The API's way of writing a UTC time: no zone designator."""
    return datetime.fromtimestamp(unix, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def rows(first: float, values: list[float], area: str = "DK1") -> dict[str, object]:
    """An answer with one row per five minutes from ``first``, newest first as the API sorts."""
    records = [
        {
            "Minutes5UTC": naive(first + i * FIVE_MIN),
            "Minutes5DK": naive(first + i * FIVE_MIN + 2 * HOUR),
            "PriceArea": area,
            "CO2Emission": value,
        }
        for i, value in enumerate(values)
    ]
    return {"total": len(records), "dataset": "CO2Emis", "records": records[::-1]}


def test_past_range_reads_measurements_only(httpserver_ipv4: HTTPServer) -> None:
    httpserver_ipv4.expect_request(
        MEASURED,
        query_string={
            "start": "2024-05-01T11:55",
            "end": "2024-05-01T15:05",
            "filter": '{"PriceArea":["DK1"]}',
            "limit": "78",
        },
    ).respond_with_json(payload("eds_co2emis.json"))
    eds: LiveSource = source(httpserver_ipv4)
    assert (eds.name, eds.zone, eds.basis) == ("Energi Data Service", "DK-DK1", "direct")
    slots = eds.fetch(NOON, NOON + HOUR)
    values = [68, 67, 67, 66, 64, 63, 63, 61, 60, 60, 59, 58]
    assert slots == [
        IntensitySlot(NOON + i * FIVE_MIN, NOON + (i + 1) * FIVE_MIN, value, False)
        for i, value in enumerate(values)
    ]
    assert [request.path for request, _ in httpserver_ipv4.log] == [MEASURED]


def test_range_around_now_merges_measurements_and_forecasts(httpserver_ipv4: HTTPServer) -> None:
    slot0 = math.floor(time.time() / FIVE_MIN) * FIVE_MIN
    # Measurements lag: they stop an hour ago. Forecasts run from two hours ago to two ahead.
    measured = [100.0 + i for i in range(24)]  # slot0 - 3 h ... slot0 - 1 h
    forecast = [200.0 + i for i in range(48)]  # slot0 - 2 h ... slot0 + 2 h
    httpserver_ipv4.expect_request(MEASURED).respond_with_json(rows(slot0 - 3 * HOUR, measured))
    httpserver_ipv4.expect_request(FORECAST).respond_with_json(rows(slot0 - 2 * HOUR, forecast))
    slots = source(httpserver_ipv4).fetch(slot0 - 3 * HOUR, slot0 + HOUR - 1)
    assert len(slots) == 48
    assert [s.start_unix for s in slots] == [slot0 - 3 * HOUR + i * FIVE_MIN for i in range(48)]
    assert [(s.g_per_kwh, s.forecast) for s in slots[:24]] == [(v, False) for v in measured]
    assert [(s.g_per_kwh, s.forecast) for s in slots[24:]] == [(v, True) for v in forecast[12:36]]
    assert {request.path for request, _ in httpserver_ipv4.log} == {MEASURED, FORECAST}


def test_future_range_reads_forecasts_only(httpserver_ipv4: HTTPServer) -> None:
    slot0 = math.floor(time.time() / FIVE_MIN) * FIVE_MIN
    httpserver_ipv4.expect_request(FORECAST).respond_with_json(rows(slot0, [50.0] * 36))
    slots = source(httpserver_ipv4).fetch(slot0 + HOUR, slot0 + 2 * HOUR)
    assert [(s.g_per_kwh, s.forecast) for s in slots] == [(50.0, True)] * 12
    assert [request.path for request, _ in httpserver_ipv4.log] == [FORECAST]


def test_a_range_from_now_asks_for_measurements_only_once_a_slot_of_it_has_ended(
    httpserver_ipv4: HTTPServer,
) -> None:
    """A plan from now starts in the current slot: nothing of it can be measured yet."""
    slot0 = math.floor(time.time() / FIVE_MIN) * FIVE_MIN
    httpserver_ipv4.expect_request(MEASURED).respond_with_json(rows(slot0 - FIVE_MIN, [10.0]))
    httpserver_ipv4.expect_request(FORECAST).respond_with_json(rows(slot0, [50.0] * 24))
    eds = EnergiDataService(
        "DK1",
        environ={URL_ENV: httpserver_ipv4.url_for("/")},
        timeout=ANSWER_TIMEOUT,
        clock=lambda: slot0 + 120.0,
    )
    eds.fetch(slot0 + 119.0, slot0 + HOUR)
    assert [request.path for request, _ in httpserver_ipv4.log] == [FORECAST]
    httpserver_ipv4.clear_log()
    slots = eds.fetch(slot0 - 1.0, slot0 + HOUR)
    assert {request.path for request, _ in httpserver_ipv4.log} == {MEASURED, FORECAST}
    assert (slots[0].start_unix, slots[0].g_per_kwh, slots[0].forecast) == (
        slot0 - FIVE_MIN,
        10.0,
        False,
    )


def test_measurements_win_for_the_same_five_minutes(httpserver_ipv4: HTTPServer) -> None:
    slot0 = math.floor(time.time() / FIVE_MIN) * FIVE_MIN
    httpserver_ipv4.expect_request(MEASURED).respond_with_json(rows(slot0 - HOUR, [10.0] * 12))
    httpserver_ipv4.expect_request(FORECAST).respond_with_json(rows(slot0 - HOUR, [90.0] * 24))
    slots = source(httpserver_ipv4).fetch(slot0 - HOUR, slot0 + HOUR - 1)
    assert [s.g_per_kwh for s in slots] == [10.0] * 12 + [90.0] * 12


def test_unusable_rows_and_other_areas_are_skipped(httpserver_ipv4: HTTPServer) -> None:
    records: list[object] = [
        {"Minutes5UTC": "2024-05-01T12:00:00", "PriceArea": "DK2", "CO2Emission": 999},
        {"Minutes5UTC": "2024-05-01T12:00:00", "PriceArea": "DK1", "CO2Emission": None},
        {"Minutes5UTC": "2024-05-01T12:00:00", "PriceArea": "DK1", "CO2Emission": "n/a"},
        {"Minutes5UTC": "2024-05-01T12:00:00", "PriceArea": "DK1"},
        {"Minutes5UTC": None, "PriceArea": "DK1", "CO2Emission": 5},
        {"PriceArea": "DK1", "CO2Emission": 5},
        {"Minutes5UTC": "2024-05-01T12:00:00", "CO2Emission": 5},
        ["2024-05-01T12:00:00", "DK1", 5],
        {"Minutes5UTC": "2024-05-01T12:05:00Z", "PriceArea": "DK1", "CO2Emission": 71.5},
        {"Minutes5UTC": "2024-05-01T12:10:00", "PriceArea": "DK1", "CO2Emission": "72"},
    ]
    httpserver_ipv4.expect_request(MEASURED).respond_with_json({"records": records})
    assert source(httpserver_ipv4).fetch(NOON, NOON + 15 * 60) == [
        IntensitySlot(NOON + FIVE_MIN, NOON + 2 * FIVE_MIN, 71.5, False),
        IntensitySlot(NOON + 2 * FIVE_MIN, NOON + 3 * FIVE_MIN, 72.0, False),
    ]


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ({"records": []}, "no usable data in the answer (CO2Emis)"),
        (
            {"records": [{"Minutes5UTC": "2024-05-01T12:00:00", "PriceArea": "DK2"}]},
            "no usable data in the answer (CO2Emis)",
        ),
        ({"total": 0}, "unexpected answer: no list of rows under 'records'"),
        ({"records": None}, "unexpected answer: no list of rows under 'records'"),
        ([1, 2], "unexpected answer: no list of rows under 'records'"),
    ],
)
def test_answers_without_usable_rows(
    httpserver_ipv4: HTTPServer, answer: object, reason: str
) -> None:
    httpserver_ipv4.expect_request(MEASURED).respond_with_json(answer)
    with pytest.raises(ProviderError) as caught:
        source(httpserver_ipv4).fetch(NOON, NOON + HOUR)
    assert (caught.value.provider, caught.value.reason) == ("Energi Data Service", reason)


def test_failed_forecast_leaves_the_measurements(httpserver_ipv4: HTTPServer) -> None:
    slot0 = math.floor(time.time() / FIVE_MIN) * FIVE_MIN
    httpserver_ipv4.expect_request(MEASURED).respond_with_json(rows(slot0 - 3 * HOUR, [7.0] * 24))
    httpserver_ipv4.expect_request(FORECAST).respond_with_data("", 503)
    slots = source(httpserver_ipv4).fetch(slot0 - 3 * HOUR, slot0 + HOUR)
    assert [s.g_per_kwh for s in slots] == [7.0] * 24


def test_both_failing_raises_the_first_failure(httpserver_ipv4: HTTPServer) -> None:
    slot0 = math.floor(time.time() / FIVE_MIN) * FIVE_MIN
    httpserver_ipv4.expect_request(MEASURED).respond_with_json({}, status=429)
    httpserver_ipv4.expect_request(FORECAST).respond_with_data("<html></html>", 200)
    with pytest.raises(
        ProviderError, match=re.escape("Energi Data Service: HTTP 429 (rate limited)")
    ):
        source(httpserver_ipv4).fetch(slot0 - 3 * HOUR, slot0 + HOUR)


@pytest.mark.parametrize(
    ("respond", "reason"),
    [
        (lambda s: s.respond_with_data("<!doctype html><p>Down</p>"), "answered HTML, not JSON"),
        (lambda s: s.respond_with_data('{"records": [{"Minutes5UTC": "20'), "truncated JSON"),
        (lambda s: s.respond_with_json({"error": "Bad filter"}, 400), "HTTP 400 (bad request: Bad"),
        (lambda s: s.respond_with_json({}, 401), "HTTP 401 (unauthorised)"),
    ],
)
def test_bad_answers(httpserver_ipv4: HTTPServer, respond: object, reason: str) -> None:
    respond(httpserver_ipv4.expect_request(MEASURED))  # type: ignore[operator]
    with pytest.raises(ProviderError, match=re.escape(reason)):
        source(httpserver_ipv4).fetch(NOON, NOON + HOUR)


def test_several_megabytes_are_refused(httpserver_ipv4: HTTPServer) -> None:
    httpserver_ipv4.expect_request(MEASURED).respond_with_json(rows(NOON, [60.0] * 30_000))
    with pytest.raises(ProviderError, match="response larger than 1 MiB"):
        source(httpserver_ipv4).fetch(NOON, NOON + HOUR)


def test_connection_refused_with_explicit_base_url() -> None:
    from tests.intensity.servers import closed_port

    port = closed_port()
    eds = EnergiDataService("DK2", base_url=f"http://127.0.0.1:{port}/")
    with pytest.raises(ProviderError, match=re.escape("connection refused by http://127.0.0.1:")):
        eds.fetch(NOON, NOON + HOUR)


def test_long_ranges_are_asked_for_in_pieces(httpserver_ipv4: HTTPServer) -> None:
    httpserver_ipv4.expect_request(MEASURED).respond_with_json(payload("eds_co2emis.json"))
    slots = source(httpserver_ipv4).fetch(NOON - 10 * 86400, NOON + HOUR)
    starts = [request.args["start"] for request, _ in httpserver_ipv4.log]
    assert starts == ["2024-04-21T11:55", "2024-04-28T11:55"]
    assert len(slots) == 12


@pytest.mark.parametrize(
    ("given", "zone"), [("DK1", "DK-DK1"), ("dk2", "DK-DK2"), (" DK1 ", "DK-DK1")]
)
def test_price_areas(given: str, zone: str) -> None:
    assert EnergiDataService(given).zone == zone


@pytest.mark.parametrize("given", ["", "DK", "DK3", "DK-DK1", "SE3"])
def test_other_price_areas_are_refused(given: str) -> None:
    with pytest.raises(ValueError, match=r"must be 'DK1' .* or 'DK2'"):
        EnergiDataService(given)


def test_repr() -> None:
    assert repr(EnergiDataService("DK2")) == (
        "EnergiDataService(zone='DK-DK2', base_url='https://api.energidataservice.dk')"
    )
