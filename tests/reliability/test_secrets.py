"""An API token never reaches disk, logs, warnings, output or a repr, even when its API fails.

What this proves:

- a live ``Tracker`` given an Electricity Maps token (as an argument or through either variable)
  and pointed at a local server that answers 401 echoing the token, 500 with the token in the
  body, malformed JSON holding it, or a good answer, reports the failures (so the error paths
  ran) and the token is in none of: warnings, stdout and stderr (file descriptors), log records
  at DEBUG, the run log, the intensity cache, ``repr`` of the tracker and of its configuration;
- nothing the whole test session wrote under its base temporary folder holds any token of
  ``tests.secret_tokens.TEST_TOKENS`` (every test that passes a token takes it from there); this
  test is moved to the end of the session by ``tests/conftest.py``;
- the search behind that check finds a token planted in a binary file, across its read chunks,
  in UTF-16, and in a file name, so its silence means something.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from carbon_callbacks import Tracker
from carbon_callbacks.intensity.http import DEFAULT_TIMEOUT
from carbon_callbacks.intensity.providers.electricitymaps import URL_ENV
from tests.intensity.providers.test_electricitymaps import serve_all, this_hour
from tests.meters.fake_powercap import FakePowercap
from tests.secret_tokens import TEST_TOKENS, TOKEN

CHUNK_BYTES = 1 << 16


def files_holding(root: Path, tokens: Iterable[str]) -> list[str]:
    """``"path: token"`` for each regular file under ``root`` whose bytes or name hold a token.

    Reads every regular file, binary-safe, in chunks that overlap by the longest needle, so a token
    split across two reads is found. Links are not followed (what they point at is not the
    session's). Each token is looked for as UTF-8 and as UTF-16.
    """
    needles = {
        token: [token.encode(), token.encode("utf-16-le"), token.encode("utf-16-be")]
        for token in tokens
    }
    overlap = max(len(n) for forms in needles.values() for n in forms) - 1
    found = []
    for folder, subfolders, names in os.walk(root):
        subfolders.sort()
        for name in sorted(names):
            path = Path(folder) / name
            hits = {token for token in needles if token in name}
            if stat.S_ISREG(path.lstat().st_mode):
                hits |= tokens_in_file(path, needles, overlap)
            found += [f"{path}: {token}" for token in sorted(hits)]
    return found


def tokens_in_file(path: Path, needles: dict[str, list[bytes]], overlap: int) -> set[str]:
    hits: set[str] = set()
    tail = b""
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK_BYTES):
            window = tail + chunk
            hits |= {token for token, forms in needles.items() if any(n in window for n in forms)}
            tail = window[-overlap:]
    return hits


# -- the search can fail --------------------------------------------------------------------------


def test_the_search_finds_a_planted_token_and_only_then() -> None:
    with tempfile.TemporaryDirectory() as temp:  # outside the session's folder: nothing to leak
        root = Path(temp)
        (root / "deep" / "er").mkdir(parents=True)
        (root / "clean.bin").write_bytes(os.urandom(3 * CHUNK_BYTES))
        assert files_holding(root, TEST_TOKENS) == []
        split = CHUNK_BYTES - len(TOKEN) // 2  # the token straddles two reads
        blob = os.urandom(split) + TOKEN.encode() + os.urandom(CHUNK_BYTES)
        (root / "deep" / "er" / "cache.bin").write_bytes(blob)
        (root / "wide.txt").write_text(f"x{TEST_TOKENS[1]}x", encoding="utf-16")
        (root / f"named-{TOKEN}").write_bytes(b"")
        (root / "link").symlink_to(root / "deep" / "er" / "cache.bin")
        assert files_holding(root, TEST_TOKENS) == [
            f"{root / f'named-{TOKEN}'}: {TOKEN}",
            f"{root / 'wide.txt'}: {TEST_TOKENS[1]}",
            f"{root / 'deep' / 'er' / 'cache.bin'}: {TOKEN}",
        ]


# -- a live tracker and a failing API -------------------------------------------------------------

Fault = Callable[[Request], Response]


def unauthorised_echoing_the_token(request: Request) -> Response:
    body = f'{{"error": "Unauthorized", "message": "auth-token {TOKEN} is not valid"}}'
    return Response(body, status=401, content_type="application/json")


def server_error_holding_the_token(request: Request) -> Response:
    return Response(f"Traceback: KeyError({TOKEN!r})", status=500, content_type="text/plain")


def malformed_json_holding_the_token(request: Request) -> Response:
    return Response(f'{{"history": [{{"zone": "{TOKEN}", "carbonIntensity": ', status=200)


def wrong_shape_holding_the_token(request: Request) -> Response:
    return Response(f'{{"history": "{TOKEN}", "zone": ["{TOKEN}"]}}', status=200)


FAULTS = [
    unauthorised_echoing_the_token,
    server_error_holding_the_token,
    malformed_json_holding_the_token,
    wrong_shape_holding_the_token,
]


FETCH_BOUND_S = 3 * sum(DEFAULT_TIMEOUT)
"""The longest one fetch of the live thread may take: Electricity Maps is asked for history,
latest and forecast, each request bounded by the client's connect and read timeouts."""


def wait_for(condition: Callable[[], bool]) -> None:
    """Poll until ``condition()`` holds or one fetch's time bound has passed (the caller asserts).

    The live thread fetches on its own schedule; how soon it runs depends on the machine's load,
    but its first fetch ends within the client's own timeouts.
    """
    deadline = time.monotonic() + FETCH_BOUND_S
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)


def run_live(
    server: HTTPServer, powercap: FakePowercap, token: str | None = None
) -> tuple[Tracker, list[str]]:
    """One short live run against ``server``; the warnings it raised, once the fetch had failed.

    Waits for the live-intensity warning itself: a warning of another kind (the fake DRAM counter
    never moves, so it is reported stalled once 5 s have passed) says nothing about the fetch.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        live = Tracker(gpu_ids=[], zone="DE", live=True, electricitymaps_token=token)
        with live as tracker:
            tracker.begin_window("epoch 0")
            powercap.add_energy("intel-rapl:0", 5_000_000)
            wait_for(lambda: any("live carbon intensity" in str(w.message) for w in caught))
            tracker.step()
            tracker.end_window("epoch 0")
    return tracker, [str(w.message) for w in caught]


def everything_shown(
    tracker: Tracker,
    messages: list[str],
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> str:
    """All text the run showed or wrote, in one string."""
    out, err = capfd.readouterr()
    assert tracker.log_path is not None and tracker.summary is not None
    texts = [*messages, out, err, caplog.text, repr(tracker), repr(tracker.config)]
    texts += [str(tracker.config.public_dict()), str(tracker.summary.to_dict())]
    texts += [path.read_text(errors="replace") for path in tmp_path.rglob("*") if path.is_file()]
    return "\n".join(texts)


@pytest.mark.parametrize("fault", FAULTS)
def test_a_failing_api_never_shows_the_token(
    httpserver: HTTPServer,
    powercap: FakePowercap,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    fault: Fault,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv(URL_ENV, httpserver.url_for("/"))
    httpserver.expect_request(re.compile("^/v3/")).respond_with_handler(fault)
    tracker, messages = run_live(httpserver, powercap, TOKEN)
    assert httpserver.log[0][0].headers["auth-token"] == TOKEN  # the token was in play
    assert any("live carbon intensity" in message for message in messages)  # the failure ran
    assert tracker.summary is not None and tracker.summary.intensity is not None
    assert "Electricity Maps" in (tracker.summary.intensity.fallback or "")
    shown = everything_shown(tracker, messages, capfd, caplog, tmp_path)
    assert tracker.log_path is not None and tracker.log_path.read_bytes() in shown.encode()
    assert TOKEN not in shown


@pytest.mark.parametrize(
    "variable", ["ELECTRICITYMAPS_API_TOKEN", "CARBON_CALLBACKS_ELECTRICITYMAPS_TOKEN"]
)
def test_a_token_from_the_environment_is_kept_as_quiet(
    httpserver: HTTPServer,
    powercap: FakePowercap,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    variable: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv(URL_ENV, httpserver.url_for("/"))
    monkeypatch.setenv(variable, TOKEN)
    httpserver.expect_request(re.compile("^/v3/")).respond_with_handler(
        unauthorised_echoing_the_token
    )
    tracker, messages = run_live(httpserver, powercap)
    assert httpserver.log[0][0].headers["auth-token"] == TOKEN
    assert any("HTTP 401" in message for message in messages)
    assert TOKEN not in everything_shown(tracker, messages, capfd, caplog, tmp_path)


def test_a_working_api_caches_slots_without_the_token(
    httpserver: HTTPServer,
    powercap: FakePowercap,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv(URL_ENV, httpserver.url_for("/"))
    serve_all(httpserver, this_hour())  # answers only requests that carry the token
    with Tracker(gpu_ids=[], zone="DE", live=True, electricitymaps_token=TOKEN) as tracker:
        wait_for(lambda: any(tmp_path.rglob("intensity-*.json")))
        powercap.add_energy("intel-rapl:0", 5_000_000)
    (cache,) = tmp_path.rglob("intensity-*.json")
    assert '"slots": [[' in cache.read_text()
    assert tracker.summary is not None and tracker.summary.intensity is not None
    assert "Electricity Maps" in tracker.summary.intensity.source
    assert TOKEN not in everything_shown(tracker, [], capfd, caplog, tmp_path)


# -- the whole session ----------------------------------------------------------------------------


def test_nothing_the_session_wrote_holds_a_test_token(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Runs last (see ``pytest_collection_modifyitems`` in ``tests/conftest.py``)."""
    assert files_holding(tmp_path_factory.getbasetemp(), TEST_TOKENS) == []
