"""One bounded HTTP GET for the live grid APIs, and the parsing helpers their clients share.

Every failure becomes a ``ProviderError`` whose reason is a few words safe to show and to log: it
never holds a header value (the Electricity Maps token travels in one) nor a query string. The GET
does not retry; the background fetcher that calls the clients owns retries and their pacing.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import suppress
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter

from carbon_callbacks._internal.env import in_range, range_text
from carbon_callbacks._version import __version__
from carbon_callbacks.intensity.base import MAX_G_PER_KWH, IntensitySlot, ProviderError

DEFAULT_TIMEOUT = (2.0, 5.0)
"""Seconds to connect and to wait for each read; their sum also bounds a whole request."""
MAX_BYTES = 1_048_576

_CHUNK_BYTES = 16_384
_ERROR_BODY_BYTES = 16_384
_MESSAGE_CHARS = 120
_PUBLIC_HEADERS = frozenset({"accept", "user-agent"})
_STATUS_WORDS = {
    400: "bad request",
    401: "unauthorised",
    403: "forbidden",
    404: "not found",
    429: "rate limited",
}
_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?"
    r"(Z|[+-]\d{2}:?\d{2})?",
    re.IGNORECASE,
)


def new_session() -> requests.Session:
    """A session that names this library in its User-Agent and never retries by itself."""
    session = requests.Session()
    session.headers["User-Agent"] = f"carbon-callbacks/{__version__}"
    adapter = HTTPAdapter(max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


class LazySession:
    """The HTTP session of one API client, made at its first request and closed by ``close``.

    A client built but never asked (a tracker configured and not started) holds no session, and a
    stopped run leaves no idle keep-alive connection open.

    Args:
        session: A session to use instead of a new one (tests, proxies).
    """

    def __init__(self, session: requests.Session | None = None) -> None:
        self._session = session

    def get(self) -> requests.Session:
        """The session, made now if there is none."""
        if self._session is None:
            self._session = new_session()
        return self._session

    def close(self) -> None:
        """Close the idle connections; a later ``get`` makes a new session."""
        session, self._session = self._session, None
        if session is not None:
            session.close()


def get_json(
    session: requests.Session,
    provider: str,
    url: str,
    *,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    max_bytes: int = MAX_BYTES,
) -> object:
    """GET ``url`` and decode its JSON body, within bounded time and size (see ``get_body``).

    Raises:
        ProviderError: Connection, timeout, HTTP status, size or decoding failure.
    """
    body = get_body(
        session, provider, url, params=params, headers=headers, timeout=timeout, max_bytes=max_bytes
    )
    return _decode(body, provider)


def get_body(
    session: requests.Session,
    provider: str,
    url: str,
    *,
    method: str = "GET",
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    max_bytes: int = MAX_BYTES,
) -> bytes:
    """Send one request and return the body of its 200 answer, within bounded time and size.

    The connect and read timeouts bound each wait; their sum bounds the whole request, since a
    server that trickles bytes never trips a read timeout. Redirects are not followed, so a header
    (a token) is never sent to an address it was not meant for.

    Args:
        session: The session to send with (see ``new_session``).
        provider: The provider's display name, used in errors.
        url: The address, without a query string.
        method: The HTTP method (``PUT`` for the AWS metadata token).
        params: Query parameters.
        headers: Extra request headers; their values (but Accept's) never appear in an error.
        timeout: Seconds to connect and to wait for each read.
        max_bytes: The largest body accepted.

    Raises:
        ProviderError: Connection, timeout, HTTP status or size failure.
    """
    secrets = [v for k, v in (headers or {}).items() if v and k.lower() not in _PUBLIC_HEADERS]
    deadline = time.monotonic() + sum(timeout)
    try:
        response = session.request(
            method,
            url,
            params=params,
            headers=headers,
            timeout=timeout,
            stream=True,
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        raise ProviderError(provider, _request_failure(exc, url, timeout)) from None
    with response:
        if response.status_code != 200:
            raise ProviderError(provider, _status_failure(response, deadline, secrets))
        return _read_body(response, provider, max_bytes, deadline, timeout)


def parse_utc(text: object) -> float:
    """Seconds since the epoch for an ISO 8601 time as the grid APIs write it.

    Accepts ``2024-05-01T12:00Z``, ``2024-05-01T12:00:00.000Z``, ``+00:00`` or other offsets, and
    naive times, which are taken as UTC (Energi Data Service writes its UTC column that way).

    Raises:
        ValueError: Not a string in one of those forms, or not a real date and time.
    """
    match = _TIME.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"not an ISO 8601 time: {str(text)[:40]!r}")
    year, month, day, hour, minute, second = (int(part or 0) for part in match.groups()[:6])
    fraction = float(f"0.{match.group(7)}") if match.group(7) else 0.0
    when = datetime(year, month, day, hour, minute, second, tzinfo=_zone(match.group(8)))
    return when.timestamp() + fraction


def number(value: object) -> float:
    """A finite intensity from 0 to ``MAX_G_PER_KWH``, from a JSON number or numeric string.

    The upper bound is the one run logs are read with, so a figure an API gives can always be
    reported.

    Raises:
        ValueError: None, a bool, NaN, infinite, out of range or not numeric.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"not a number: {value!r}")
    try:
        result = float(value)
    except OverflowError:  # an integer past the float range, as JSON allows
        raise ValueError(f"not a finite number: {str(value)[:20]}...") from None
    if not in_range(result, 0.0, MAX_G_PER_KWH):
        raise ValueError(f"not a finite number {range_text(0.0, MAX_G_PER_KWH, False)}: {value!r}")
    return result


def select_slots(
    slots: Iterable[IntensitySlot], start_unix: float, end_unix: float
) -> list[IntensitySlot]:
    """The slots sharing time with [start_unix, end_unix], one per start time, sorted by start.

    When ``start_unix == end_unix`` that is the slot holding the instant. Where two slots share a
    start time (a measurement and a forecast, or overlapping answers), a measured value beats a
    forecast; otherwise the first one seen is kept.
    """
    chosen: dict[float, IntensitySlot] = {}
    for slot in slots:
        if not _shares_time(slot, start_unix, end_unix):
            continue
        held = chosen.get(slot.start_unix)
        if held is None or (held.forecast and not slot.forecast):
            chosen[slot.start_unix] = slot
    return [chosen[start] for start in sorted(chosen)]


def gathered(
    fetches: Iterable[Callable[[], Iterable[IntensitySlot]]], start_unix: float, end_unix: float
) -> list[IntensitySlot]:
    """The slots for [start_unix, end_unix] from several requests (history, forecast, ...).

    A request that fails costs its part only; the first failure is raised when no usable slot
    came back at all.

    Raises:
        ProviderError: No request gave a usable slot (the first failure, if any).
    """
    slots: list[IntensitySlot] = []
    failures: list[ProviderError] = []
    for fetch in fetches:
        try:
            slots.extend(fetch())
        except ProviderError as exc:
            failures.append(exc)
    chosen = select_slots(slots, start_unix, end_unix)
    if failures and not chosen:
        raise failures[0]
    return chosen


def spans(start_unix: float, end_unix: float, longest_s: float) -> list[tuple[float, float]]:
    """Split [start_unix, end_unix] into consecutive pieces no longer than ``longest_s``."""
    pieces = []
    begin = start_unix
    while True:
        finish = min(begin + longest_s, end_unix)
        pieces.append((begin, finish))
        if finish >= end_unix:
            return pieces
        begin = finish


def api_url(base_url: str | None, variable: str, environ: Mapping[str, str], default: str) -> str:
    """A live API's address: ``base_url``, else ``variable`` (blank is unset), else ``default``.

    Checked when a client is built, so a mistyped override fails before any training.

    Raises:
        ValueError: Not an ``http://`` or ``https://`` address with a host; the message names
            where the value came from (the argument or the variable) and shows what to write.
    """
    raw = base_url if base_url is not None else environ.get(variable, "")
    if base_url is None and not raw.strip():
        return default
    try:
        parts = urlsplit(raw.strip())
        usable = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
        usable = usable and (parts.port is None or parts.port > 0)
    except ValueError:  # an unclosed IPv6 bracket, a port that is not a number
        usable = False
    if not usable:
        given, example = (
            (f"{variable}={raw!r}", f"{variable}={default}")
            if base_url is None
            else (f"base_url={raw!r}", f"base_url={default!r}")
        )
        raise ValueError(f"{given} is not an http(s) URL; write e.g. {example}")
    return raw.strip().rstrip("/")


def safe_url(url: str) -> str:
    """``url`` without credentials, query string or fragment, fit for a message."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _shares_time(slot: IntensitySlot, start_unix: float, end_unix: float) -> bool:
    """Whether the slot overlaps [start_unix, end_unix] for some time, or holds the instant."""
    if end_unix <= start_unix:
        return slot.start_unix <= start_unix < slot.end_unix
    return slot.start_unix < end_unix and slot.end_unix > start_unix


def _zone(offset: str | None) -> timezone:
    """The fixed offset written after a time: ``Z``, ``+01:00``, ``-0500``; none means UTC."""
    if offset is None or offset.upper() == "Z":
        return timezone.utc
    digits = offset[1:].replace(":", "")
    size = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return timezone(-size if offset.startswith("-") else size)


def _request_failure(exc: requests.RequestException, url: str, timeout: tuple[float, float]) -> str:
    """Why a request got no answer, from the exception chain (never its text, which has the URL)."""
    if isinstance(exc, requests.ConnectTimeout):
        return f"timed out connecting to {safe_url(url)} (after {timeout[0]:g} s)"
    if isinstance(exc, requests.ReadTimeout) or _caused_by(exc, TimeoutError):
        return _no_answer(timeout)
    if _caused_by(exc, ConnectionRefusedError):
        return f"connection refused by {safe_url(url)}"
    if isinstance(exc, requests.exceptions.SSLError):
        return f"TLS failure talking to {safe_url(url)}"
    if isinstance(exc, requests.ConnectionError):
        return f"connection to {safe_url(url)} failed"
    return f"request failed ({type(exc).__name__})"


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    """Whether ``kind`` appears among the causes, contexts, reasons or arguments of ``exc``."""
    pending: list[object] = [exc]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        if isinstance(current, kind):
            return True
        seen.add(id(current))
        pending.extend([current.__cause__, current.__context__, getattr(current, "reason", None)])
        pending.extend(current.args)
    return False


def _status_failure(response: requests.Response, deadline: float, secrets: list[str]) -> str:
    """``HTTP 401 (unauthorised: <the server's message>)`` and the like."""
    code = response.status_code
    if 300 <= code < 400:
        return f"HTTP {code} (redirected elsewhere; not followed)"
    word = _STATUS_WORDS.get(code, "server error" if code >= 500 else "unexpected status")
    message = _server_message(response, deadline, secrets)
    return f"HTTP {code} ({word}: {message})" if message else f"HTTP {code} ({word})"


def _server_message(response: requests.Response, deadline: float, secrets: list[str]) -> str:
    """The ``message`` or ``error`` of a JSON error body, cleaned, scrubbed and shortened."""
    try:
        body = _read_capped(response, _ERROR_BODY_BYTES, deadline)
        payload = json.loads(body)
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError, ValueError):
        return ""
    text = _message_of(payload)
    for secret in secrets:
        text = text.replace(secret, "***")
    text = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    return text if len(text) <= _MESSAGE_CHARS else text[: _MESSAGE_CHARS - 1] + "…"


def _message_of(payload: object) -> str:
    """The first text under ``message``, ``error`` or ``detail``, one level of nesting deep."""
    if not isinstance(payload, dict):
        return ""
    for key in ("message", "error", "detail"):
        value = payload.get(key)
        if isinstance(value, dict):
            value = _message_of(value)
        if isinstance(value, str) and value.strip():
            return value
    return ""


def _read_body(
    response: requests.Response,
    provider: str,
    max_bytes: int,
    deadline: float,
    timeout: tuple[float, float],
) -> bytes:
    """The whole body, refused past ``max_bytes`` or past the deadline."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise ProviderError(provider, f"response larger than {_size(max_bytes)}")
    expired = threading.Event()
    try:
        body = _read_capped(response, max_bytes + 1, deadline, expired)
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        if expired.is_set():
            raise ProviderError(provider, _too_slow(timeout)) from None
        if _caused_by(exc, TimeoutError):
            raise ProviderError(provider, _no_answer(timeout)) from None
        raise ProviderError(provider, "answer cut off (truncated)") from None
    if expired.is_set():
        raise ProviderError(provider, _too_slow(timeout))
    if len(body) > max_bytes:
        raise ProviderError(provider, f"response larger than {_size(max_bytes)}")
    return body


def _read_capped(
    response: requests.Response,
    limit: int,
    deadline: float,
    expired: threading.Event | None = None,
) -> bytes:
    """Up to ``limit`` bytes of the body; the connection is shut at the deadline.

    Checking the clock between chunks is not enough: one chunk read can wait on a slow trickle far
    longer than the read timeout. A timer shuts the socket instead, which ends any pending read.
    """
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        if expired is not None:
            expired.set()
        return b""
    timer = threading.Timer(remaining, _shut, args=(response, expired))
    timer.daemon = True
    timer.start()
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_content(_CHUNK_BYTES):
            chunks.append(chunk)
            size += len(chunk)
            if size >= limit:
                break
    finally:
        timer.cancel()
    return b"".join(chunks)[:limit]


def _shut(response: requests.Response, expired: threading.Event | None) -> None:
    """Timer callback: mark the deadline as passed and shut the response's socket."""
    if expired is not None:
        expired.set()
    sock = getattr(getattr(response.raw, "connection", None), "sock", None)
    if isinstance(sock, socket.socket):
        # The plain-socket shutdown, also for TLS sockets: it wakes the blocked read without
        # touching the TLS state that the reading thread is using.
        with suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _decode(body: bytes, provider: str) -> object:
    """The JSON value of ``body``, or a ProviderError saying what came instead."""
    text = body.decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    if not text:
        raise ProviderError(provider, "empty answer, not JSON")
    if text.startswith("<"):
        raise ProviderError(provider, "answered HTML, not JSON")
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        if exc.msg.startswith("Unterminated") or exc.pos >= len(exc.doc.rstrip()):
            raise ProviderError(provider, "answer is truncated JSON") from None
        raise ProviderError(provider, f"answer is not valid JSON ({exc.msg})") from None
    except ValueError:
        raise ProviderError(provider, "answer is not valid JSON (undecodable text)") from None


def _no_answer(timeout: tuple[float, float]) -> str:
    return f"timed out waiting for an answer (after {timeout[1]:g} s)"


def _too_slow(timeout: tuple[float, float]) -> str:
    return f"timed out: the answer took longer than {sum(timeout):g} s"


def _size(count: int) -> str:
    """``1 MiB`` for whole mebibytes, else a byte count."""
    mib, rest = divmod(count, 1_048_576)
    return f"{mib} MiB" if mib and not rest else f"{count} bytes"
