from __future__ import annotations

import json
import re
import socket
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from carbon_callbacks._internal.warnings import CarbonCallbacksWarning
from carbon_callbacks.intensity.base import Basis, IntensitySlot, IntensityValue
from carbon_callbacks.intensity.cache import IntensityCache
from carbon_callbacks.intensity.live import LiveIntensity
from carbon_callbacks.intensity.providers.uk import URL_ENV, UkCarbonIntensity
from tests.intensity.servers import ANSWER_TIMEOUT, raw_server
from tests.intensity.uk_payloads import national, uk_url

NOW = 1_780_000_200.0  # a fixed wall clock: 2026-05-28T20:30Z
SLOT = 1800.0
START = NOW - NOW % SLOT
FALLBACK = IntensityValue(250.0, "yearly", zone="GB", basis="lifecycle", year=2024)
ANY_INTENSITY = re.compile(r"^/intensity/")
HANG_GUARD_S = 60.0
"""Backstop for waits on the fetch thread: a working one gets there in milliseconds (its three
tries are bounded by ANSWER_TIMEOUT); only a broken one lasts this long, and then the test fails
instead of hanging."""


def live(
    server: HTTPServer,
    tmp_path: Path | None = None,
    timeout: tuple[float, float] = ANSWER_TIMEOUT,
    **kwargs: object,
) -> LiveIntensity:
    cache = None if tmp_path is None else IntensityCache(tmp_path, "uk", "GB")
    source = UkCarbonIntensity(environ=uk_url(server), timeout=timeout)
    return LiveIntensity(
        source,
        FALLBACK,
        cache=cache,
        clock=lambda: NOW,
        backoff_s=0.01,
        **kwargs,  # type: ignore[arg-type]
    )


def test_before_any_answer_the_fallback_covers_everything(httpserver: HTTPServer) -> None:
    value = live(httpserver).intensity(NOW, NOW + 60)
    assert value.g_per_kwh == 250.0
    assert value.fallback == "UK Carbon Intensity API: no live data for this time"


def test_live_slots_replace_the_fallback_and_are_time_weighted(httpserver: HTTPServer) -> None:
    httpserver.expect_request(ANY_INTENSITY).respond_with_json(
        national((START, START + SLOT, 110, 100), (START + SLOT, START + 2 * SLOT, 300, None))
    )
    provider = live(httpserver)
    assert provider.refresh()
    first = provider.intensity(START, START + SLOT)
    assert (first.g_per_kwh, first.source, first.basis) == (
        100,
        "UK Carbon Intensity API",
        "direct",
    )
    assert not first.estimated and first.fallback is None
    assert provider.intensity(START + SLOT, START + SLOT).estimated  # a forecast
    half_and_half = provider.intensity(START + SLOT / 2, START + 1.5 * SLOT)
    assert half_and_half.g_per_kwh == pytest.approx(200.0)
    assert provider.change_points(START, START + 2 * SLOT) == [START + SLOT]
    beyond = provider.intensity(START + SLOT, START + 3 * SLOT)  # half forecast, half uncovered
    assert beyond.g_per_kwh == pytest.approx((300 + 250) / 2)
    assert beyond.basis == "mixed" and beyond.fallback is not None


def test_a_measured_value_is_never_replaced_by_a_forecast(httpserver: HTTPServer) -> None:
    httpserver.expect_ordered_request(ANY_INTENSITY).respond_with_json(
        national((START, START + SLOT, 110, 100))
    )
    httpserver.expect_ordered_request(ANY_INTENSITY).respond_with_json(
        national((START, START + SLOT, 120, None))
    )
    provider = live(httpserver)
    assert provider.refresh() and provider.refresh()
    assert provider.slot_at(START) == IntensitySlot(START, START + SLOT, 100, False)


@pytest.mark.parametrize(
    ("status", "reason"), [(401, "HTTP 401"), (429, "HTTP 429"), (500, "HTTP 500")]
)
def test_failures_warn_once_naming_provider_and_reason_and_keep_the_fallback(
    httpserver: HTTPServer, status: int, reason: str
) -> None:
    httpserver.expect_request(ANY_INTENSITY).respond_with_data("no", status=status)
    provider = live(httpserver, attempts=3)
    with pytest.warns(CarbonCallbacksWarning) as caught:
        assert not provider.refresh()
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1
    assert "UK Carbon Intensity API" in messages[0] and reason in messages[0]
    assert len(httpserver.log) == 3  # the bounded retry
    value = provider.intensity(NOW, NOW + 60)
    assert value.g_per_kwh == 250.0
    assert value.fallback is not None and reason in value.fallback


def test_results_are_cached_and_a_fresh_cache_skips_the_first_fetch(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    httpserver.expect_request(ANY_INTENSITY).respond_with_json(
        national((START, START + SLOT, 110, 100))
    )
    first = live(httpserver, tmp_path)
    first.start()
    assert first.wait_ready(HANG_GUARD_S)
    first.stop()
    assert len(httpserver.log) == 1
    second = live(httpserver, tmp_path)
    second.start()
    assert second.wait_ready(HANG_GUARD_S)
    second.stop()
    assert len(httpserver.log) == 1  # answered from the cache
    assert second.intensity(START, START + 60).g_per_kwh == 100


def test_a_stale_cache_is_used_until_the_fetch_answers(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    IntensityCache(tmp_path, "uk", "GB").save(
        NOW - 7200, (IntensitySlot(START - SLOT, START, 90.0, False),)
    )
    httpserver.expect_request(ANY_INTENSITY).respond_with_json(
        national((START, START + SLOT, 110, 100))
    )
    provider = live(httpserver, tmp_path)
    provider.start()
    assert provider.wait_ready(HANG_GUARD_S)
    provider.stop()
    assert len(httpserver.log) == 1
    assert provider.slot_at(START - 1) is not None and provider.slot_at(START) is not None


def test_an_unwritable_cache_warns_and_keeps_data_in_memory(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    httpserver.expect_request(ANY_INTENSITY).respond_with_json(
        national((START, START + SLOT, 110, 100))
    )
    provider = live(httpserver, blocker / "cache")
    with pytest.warns(CarbonCallbacksWarning, match="cannot write the intensity cache"):
        assert provider.refresh()
    assert provider.intensity(START, START + 1).g_per_kwh == 100


def test_stop_does_not_wait_for_a_slow_answer(httpserver: HTTPServer) -> None:
    arrived, answer_now, answered = threading.Event(), threading.Event(), threading.Event()

    def slow(request: Request) -> Response:
        arrived.set()
        answer_now.wait(HANG_GUARD_S)
        answered.set()
        answer = national((START, START + SLOT, 110, 100))
        return Response(json.dumps(answer), content_type="application/json")

    httpserver.expect_request(ANY_INTENSITY).respond_with_handler(slow)
    # The client waits longer than the server holds back its answer: a stop that waited for the
    # fetch would come back only after the answer.
    provider = live(httpserver, timeout=(HANG_GUARD_S, 2 * HANG_GUARD_S))
    provider.start()
    try:
        assert arrived.wait(HANG_GUARD_S)  # the fetch is in flight
        provider.stop()
        assert not answered.is_set()  # stop came back while the answer was still held back
    finally:
        answer_now.set()
        provider.wait_ready(HANG_GUARD_S)  # the fetch is over before the server is cleared


class AnswerInTurn:
    """A live source (no network) answering the next of its scripted slot lists at each fetch."""

    name = "scripted grid"
    zone = "GB"
    basis: Basis = "direct"

    def __init__(self, *answers: list[IntensitySlot]) -> None:
        self.answers = list(answers)

    def fetch(self, start_unix: float, end_unix: float) -> list[IntensitySlot]:
        return self.answers.pop(0)

    def close(self) -> None:
        """No connections to close."""


def test_a_reader_between_any_two_instructions_of_a_merge_sees_a_whole_table() -> None:
    """The fetch thread may be paused between any two bytecode instructions while the training
    thread reads: step through a merge one instruction at a time and read at every one.

    The slot covering NOW is known first; the merge adds an earlier one in front of it, so the
    slots and their start times, published apart, would point to the wrong slot.
    """
    covering = IntensitySlot(START, START + SLOT, 100.0, False)
    earlier = IntensitySlot(START - SLOT, START, 300.0, False)
    provider = LiveIntensity(AnswerInTurn([covering], [earlier]), FALLBACK, clock=lambda: NOW)
    assert provider.refresh()
    seen: list[IntensitySlot | None] = []

    def each_instruction(frame: FrameType, event: str, arg: Any) -> Any:
        frame.f_trace_opcodes = True
        if event == "opcode" and frame.f_code.co_name == "_merge":
            seen.append(provider.slot_at(NOW))
        return each_instruction

    sys.settrace(each_instruction)
    try:
        assert provider.refresh()
    finally:
        sys.settrace(None)
    assert len(seen) > 10  # the merge was stepped through
    assert set(seen) == {covering}
    assert provider.slot_at(START - 1) == earlier


def test_stop_closes_the_connections_the_run_opened() -> None:
    """A stopped provider keeps no idle keep-alive connection to the API open."""
    body = json.dumps(national((START, START + SLOT, 110, 100))).encode()
    client_closed = threading.Event()

    def keep_alive(conn: socket.socket, stop: threading.Event) -> None:
        conn.recv(65536)
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: keep-alive\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        conn.settimeout(HANG_GUARD_S)
        if conn.recv(65536) == b"":  # the client closed its end
            client_closed.set()

    with raw_server(keep_alive) as port:
        source = UkCarbonIntensity(environ={URL_ENV: f"http://127.0.0.1:{port}"})
        provider = LiveIntensity(source, FALLBACK, clock=lambda: NOW)
        provider.start()
        assert provider.wait_ready(HANG_GUARD_S)
        assert provider.intensity(START, START + 1).g_per_kwh == 100  # the answer arrived
        provider.stop()
        assert client_closed.wait(HANG_GUARD_S)


def test_the_cleanest_start_comes_from_the_slots_already_fetched(httpserver: HTTPServer) -> None:
    """Measured 300 now, a forecast of 100 from the next half hour: a 10-minute run is best
    started then. Nothing is asked of the API for it, and without a forecast there is no answer."""
    provider = live(httpserver)
    assert provider.cleanest_start(START, 600, 86400) is None  # nothing fetched yet
    httpserver.expect_request(ANY_INTENSITY).respond_with_json(
        national((START, START + SLOT, 300, 300), (START + SLOT, START + 4 * SLOT, 100, None))
    )
    assert provider.refresh()
    requests = len(httpserver.log)
    choice = provider.cleanest_start(START, 600, 86400)
    assert choice is not None
    assert (choice.start_unix, choice.g_per_kwh, choice.now_g_per_kwh) == (START + SLOT, 100, 300)
    assert provider.cleanest_start(START, 2 * SLOT, 0) is not None  # now only: still an answer
    assert provider.cleanest_start(START, 5 * SLOT, 86400) is None  # longer than the forecast
    assert provider.cleanest_start(START, 0.0, 86400) is None
    assert len(httpserver.log) == requests


def test_measured_slots_alone_give_no_cleanest_start(httpserver: HTTPServer) -> None:
    httpserver.expect_request(ANY_INTENSITY).respond_with_json(
        national((START - SLOT, START, 300, 290), (START, START + SLOT, 100, 90))
    )
    provider = live(httpserver)
    assert provider.refresh()
    assert provider.intensity(START, START + 60).g_per_kwh == 90  # the slots are there
    assert provider.cleanest_start(START - SLOT, 600, 86400) is None
