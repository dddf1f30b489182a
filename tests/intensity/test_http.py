from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from requests.adapters import HTTPAdapter
from werkzeug import Response

from carbon_callbacks._version import __version__
from carbon_callbacks.intensity.base import MAX_G_PER_KWH, IntensitySlot, ProviderError
from carbon_callbacks.intensity.http import (
    api_url,
    get_json,
    new_session,
    number,
    parse_utc,
    safe_url,
    select_slots,
    spans,
)
from tests.intensity.servers import (
    HOLD_S,
    TRICKLE_S,
    closed_port,
    cut_off,
    declare_large,
    raw_server,
    silent,
    stall,
    trickle,
)
from tests.secret_tokens import TOKEN

FAST = (0.5, 0.5)


def fetch(url: str, **kwargs: object) -> object:
    return get_json(new_session(), "Test API", url, **kwargs)  # type: ignore[arg-type]


def failure(url: str, **kwargs: object) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        fetch(url, **kwargs)
    assert caught.value.provider == "Test API"
    assert str(caught.value) == f"Test API: {caught.value.reason}"
    return caught.value


def test_json_answer_is_decoded_and_request_names_the_library(httpserver_ipv4: HTTPServer) -> None:
    httpserver_ipv4.expect_request("/a", query_string={"zone": "DE"}).respond_with_json({"x": [1]})
    assert fetch(httpserver_ipv4.url_for("/a"), params={"zone": "DE"}) == {"x": [1]}
    request, _ = httpserver_ipv4.log[0]
    assert request.headers["User-Agent"] == f"carbon-callbacks/{__version__}"


def test_session_does_not_retry() -> None:
    adapter = new_session().get_adapter("https://api.example")
    assert isinstance(adapter, HTTPAdapter)
    assert adapter.max_retries.total == 0


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (
            401,
            {"error": "Unauthorized", "message": "Invalid auth-token"},
            "HTTP 401 (unauthorised: Invalid auth-token)",
        ),
        (401, {"error": "Invalid auth-token"}, "HTTP 401 (unauthorised: Invalid auth-token)"),
        (
            403,
            {"error": "Forbidden", "message": "Plan does not include forecasts"},
            "HTTP 403 (forbidden: Plan does not include forecasts)",
        ),
        (429, {}, "HTTP 429 (rate limited)"),
        (
            500,
            {"error": {"code": "500", "message": "Internal"}},
            "HTTP 500 (server error: Internal)",
        ),
        (404, {"detail": "no such\nzone\t\x00 X"}, "HTTP 404 (not found: no such zone X)"),
    ],
)
def test_http_errors_have_short_reasons(
    httpserver_ipv4: HTTPServer, status: int, body: dict[str, object], reason: str
) -> None:
    httpserver_ipv4.expect_request("/e").respond_with_json(body, status=status)
    assert failure(httpserver_ipv4.url_for("/e")).reason == reason


def test_error_pages_that_are_not_json_give_the_status_only(httpserver_ipv4: HTTPServer) -> None:
    page = "<html><body><h1>502 Bad Gateway</h1></body></html>"
    httpserver_ipv4.expect_request("/e").respond_with_data(page, 502, content_type="text/html")
    assert failure(httpserver_ipv4.url_for("/e")).reason == "HTTP 502 (server error)"


def test_server_message_is_shortened_and_never_echoes_header_values(
    httpserver_ipv4: HTTPServer,
) -> None:
    secret = TOKEN
    message = f"token {secret} is not valid " + "x" * 500
    httpserver_ipv4.expect_request("/e").respond_with_json({"message": message}, status=401)
    error = failure(httpserver_ipv4.url_for("/e"), headers={"auth-token": secret})
    assert secret not in str(error)
    assert error.reason.startswith("HTTP 401 (unauthorised: token *** is not valid xxx")
    assert len(error.reason) <= len("HTTP 401 (unauthorised: )") + 120


def test_redirects_are_not_followed(httpserver_ipv4: HTTPServer) -> None:
    elsewhere = httpserver_ipv4.url_for("/elsewhere")
    httpserver_ipv4.expect_request("/r").respond_with_data("", 302, headers={"Location": elsewhere})
    error = failure(httpserver_ipv4.url_for("/r"), headers={"auth-token": TOKEN})
    assert error.reason == "HTTP 302 (redirected elsewhere; not followed)"
    assert [request.path for request, _ in httpserver_ipv4.log] == ["/r"]


def test_connection_refused_names_the_address_without_its_query() -> None:
    port = closed_port()
    error = failure(f"http://127.0.0.1:{port}/v3/x", params={"secret": "s3cr3t"})
    assert error.reason == f"connection refused by http://127.0.0.1:{port}/v3/x"
    assert "s3cr3t" not in str(error)


def test_unusable_url_fails_as_provider_error() -> None:
    assert failure("api.example/v3").reason == "request failed (MissingSchema)"


def test_server_that_never_answers_fails_within_the_read_timeout() -> None:
    with raw_server(silent) as port:
        began = time.monotonic()
        error = failure(f"http://127.0.0.1:{port}/", timeout=FAST)
        elapsed = time.monotonic() - began
    assert error.reason == "timed out waiting for an answer (after 0.5 s)"
    assert elapsed < HOLD_S  # it gave up before the server did


def test_server_falling_silent_mid_answer_fails_within_the_read_timeout() -> None:
    # The bound on the whole answer (connect + read timeout) is far off, so only the read
    # timeout can end the wait, however late the answer's first half arrived.
    timeout = (5.0, 0.3)
    with raw_server(stall) as port:
        began = time.monotonic()
        error = failure(f"http://127.0.0.1:{port}/", timeout=timeout)
        elapsed = time.monotonic() - began
    assert error.reason == "timed out waiting for an answer (after 0.3 s)"
    assert elapsed < HOLD_S  # it gave up before the server did


def test_trickling_server_fails_within_the_total_bound() -> None:
    timeout = (0.25, 0.75)  # a read timeout 15 times the trickle's pause: bytes always come in time
    assert timeout[1] >= 15 * TRICKLE_S
    with raw_server(trickle) as port:
        began = time.monotonic()
        error = failure(f"http://127.0.0.1:{port}/", timeout=timeout)
        elapsed = time.monotonic() - began
    assert error.reason == "timed out: the answer took longer than 1 s"
    assert 0.9 * sum(timeout) < elapsed < HOLD_S


def test_answer_cut_off_mid_body() -> None:
    with raw_server(cut_off) as port:
        assert failure(f"http://127.0.0.1:{port}/", timeout=FAST).reason == (
            "answer cut off (truncated)"
        )


@pytest.mark.parametrize("content_type", ["text/html; charset=utf-8", "application/json"])
def test_html_instead_of_json(httpserver_ipv4: HTTPServer, content_type: str) -> None:
    page = "\n  <!DOCTYPE html><html><head><title>Sign in to Wi-Fi</title></head></html>"
    httpserver_ipv4.expect_request("/p").respond_with_data(page, content_type=content_type)
    assert failure(httpserver_ipv4.url_for("/p")).reason == "answered HTML, not JSON"


@pytest.mark.parametrize(
    "body",
    [
        '{"data": [{"from": "2024-05-01T12:00Z", "to"',
        '{"data": [{"from": "2024-05-01T1',
        '{"data": [1, 2,',
        '{"records": [',
        "[",
    ],
)
def test_truncated_json(httpserver_ipv4: HTTPServer, body: str) -> None:
    httpserver_ipv4.expect_request("/t").respond_with_data(body, content_type="application/json")
    assert failure(httpserver_ipv4.url_for("/t")).reason == "answer is truncated JSON"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            b"{'a': 1}",
            "answer is not valid JSON (Expecting property name enclosed in double quotes)",
        ),
        (b"OK", "answer is not valid JSON (Expecting value)"),
        (b"\x80\x81{", "answer is not valid JSON (undecodable text)"),
        (b"", "empty answer, not JSON"),
        (b"  \n", "empty answer, not JSON"),
    ],
)
def test_other_bodies_that_are_not_json(
    httpserver_ipv4: HTTPServer, body: bytes, reason: str
) -> None:
    httpserver_ipv4.expect_request("/j").respond_with_data(body, content_type="application/json")
    assert failure(httpserver_ipv4.url_for("/j")).reason == reason


def test_declared_large_response_is_refused_before_reading() -> None:
    # The server sends no body at all: a client that read any would time out instead.
    with raw_server(declare_large) as port:
        error = failure(f"http://127.0.0.1:{port}/", timeout=FAST)
    assert error.reason == "response larger than 1 MiB"


def in_flight_ceiling_bytes() -> int:
    """The most a local TCP connection can hold unread: its largest send plus receive buffer."""
    total = 0
    for name in ("tcp_wmem", "tcp_rmem"):
        try:
            total += int(Path(f"/proc/sys/net/ipv4/{name}").read_text().split()[2])
        except (OSError, ValueError, IndexError):  # not Linux: a generous guess
            total += 64 * 2**20
    return total


def test_streamed_large_response_is_cut_at_the_limit(httpserver_ipv4: HTTPServer) -> None:
    chunk = b'"' + b"x" * 32_768 + b'",'
    # Past the limit the client stops reading and hangs up; until then the server can have sent
    # at most the limit plus what the socket buffers hold. Offer twice that, with no declared
    # length: only a client that read everything would take it all.
    offered = 2 * (1_048_576 + in_flight_ceiling_bytes()) // len(chunk)
    sent = []

    def chunks() -> Iterator[bytes]:
        yield b'{"records": ['
        for _ in range(offered):
            sent.append(1)
            yield chunk
        yield b'""]}'

    response = Response(chunks(), content_type="application/json")
    httpserver_ipv4.expect_request("/big").respond_with_response(response)
    assert failure(httpserver_ipv4.url_for("/big")).reason == "response larger than 1 MiB"
    assert len(sent) < offered


def test_size_limit_is_adjustable(httpserver_ipv4: HTTPServer) -> None:
    httpserver_ipv4.expect_request("/j").respond_with_json({"k": "v" * 100})
    assert failure(httpserver_ipv4.url_for("/j"), max_bytes=50).reason == (
        "response larger than 50 bytes"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01T12:00Z", 1_714_564_800.0),
        ("2024-05-01T12:00:00Z", 1_714_564_800.0),
        ("2024-05-01T12:00:00.000Z", 1_714_564_800.0),
        ("2024-05-01T12:00:00.5z", 1_714_564_800.5),
        ("2024-05-01T12:00:00+00:00", 1_714_564_800.0),
        ("2024-05-01T14:00:00+02:00", 1_714_564_800.0),
        ("2024-05-01T07:00-0500", 1_714_564_800.0),
        ("2024-05-01T12:00:00", 1_714_564_800.0),
        ("2024-05-01T12:00", 1_714_564_800.0),
        ("2024-05-01 12:00:00", 1_714_564_800.0),
        (" 2024-05-01T12:05:00 ", 1_714_565_100.0),
    ],
)
def test_parse_utc_forms(text: str, expected: float) -> None:
    assert parse_utc(text) == expected


@pytest.mark.parametrize(
    "text", ["", "2024-05-01", "12:00", "2024-13-01T00:00Z", "2024-05-01T12:00+5", "now", None, 17]
)
def test_parse_utc_rejects(text: object) -> None:
    with pytest.raises(ValueError):
        parse_utc(text)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(5, 5.0), (0, 0.0), (68.5, 68.5), ("68.000000", 68.0), (MAX_G_PER_KWH, MAX_G_PER_KWH)],
)
def test_number_accepts(value: object, expected: float) -> None:
    assert number(value) == expected


@pytest.mark.parametrize(
    "value",
    [None, True, False, math.nan, math.inf, -1, "-3", "abc", "", "nan", [], {}, "2e6", 10**400],
)
def test_number_rejects(value: object) -> None:
    with pytest.raises(ValueError):
        number(value)


def test_select_slots_keeps_overlapping_ones_and_prefers_measurements() -> None:
    measured = IntensitySlot(100.0, 200.0, 1.0, False)
    forecast_same = IntensitySlot(100.0, 200.0, 2.0, True)
    forecast_next = IntensitySlot(200.0, 300.0, 3.0, True)
    before = IntensitySlot(0.0, 100.0, 4.0, False)
    after = IntensitySlot(400.0, 500.0, 5.0, False)
    chosen = select_slots([forecast_next, forecast_same, after, measured, before], 100.0, 250.0)
    assert chosen == [measured, forecast_next]
    assert select_slots([measured], 150.0, 150.0) == [measured]


def test_spans_split_long_ranges() -> None:
    assert spans(0.0, 10.0, 4.0) == [(0.0, 4.0), (4.0, 8.0), (8.0, 10.0)]
    assert spans(0.0, 3.0, 4.0) == [(0.0, 3.0)]


def test_safe_url_drops_credentials_and_query() -> None:
    assert safe_url("https://user:pw@api.example:8443/v3/x?token=abc#f") == (
        "https://api.example:8443/v3/x"
    )


DEFAULT = "https://api.example.org"
VARIABLE = "CARBON_CALLBACKS_TEST_URL"


@pytest.mark.parametrize(
    ("base_url", "environ", "expected"),
    [
        (None, {}, DEFAULT),
        (None, {VARIABLE: ""}, DEFAULT),
        (None, {VARIABLE: "  "}, DEFAULT),
        (None, {VARIABLE: " http://127.0.0.1:8080/ "}, "http://127.0.0.1:8080"),
        ("HTTPS://[::1]:8443/api/", {VARIABLE: "http://ignored.example"}, "HTTPS://[::1]:8443/api"),
    ],
)
def test_api_url_takes_the_argument_then_the_variable_then_the_default(
    base_url: str | None, environ: dict[str, str], expected: str
) -> None:
    assert api_url(base_url, VARIABLE, environ, DEFAULT) == expected


BAD_URLS = [
    "file:///etc/passwd",
    "ftp://example.org/",
    "example.org",
    "https://",
    "https://:8080/",
    "http://[::1/",
    "http://example.org:port/",
    "http://example.org:0/",
    "",
    " ",
]


@pytest.mark.parametrize("url", BAD_URLS)
def test_api_url_refuses_what_is_not_http_naming_the_argument(url: str) -> None:
    with pytest.raises(ValueError) as caught:
        api_url(url, VARIABLE, {}, DEFAULT)
    assert str(caught.value) == (
        f"base_url={url!r} is not an http(s) URL; write e.g. base_url={DEFAULT!r}"
    )


@pytest.mark.parametrize("url", [url for url in BAD_URLS if url.strip()])
def test_api_url_refuses_what_is_not_http_naming_the_variable(url: str) -> None:
    with pytest.raises(ValueError) as caught:
        api_url(None, VARIABLE, {VARIABLE: url}, DEFAULT)
    assert str(caught.value) == (
        f"{VARIABLE}={url!r} is not an http(s) URL; write e.g. {VARIABLE}={DEFAULT}"
    )
