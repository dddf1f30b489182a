"""UK Carbon Intensity API answers in the recorded shape, with slots where a test needs them."""

from __future__ import annotations

import math
import re
import time

from pytest_httpserver import HTTPServer

from carbon_callbacks.intensity.providers.uk import URL_ENV, UkCarbonIntensity
from carbon_callbacks.tracking.tracker import Tracker


def stamp(unix: float) -> str:
    """The API's timestamp form (``2024-05-01T12:00Z``), with seconds when the time has them."""
    whole = time.gmtime(unix)
    if unix % 60:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", whole)
    return time.strftime("%Y-%m-%dT%H:%MZ", whole)


def national(*slots: tuple[float, float, float, float | None]) -> dict[str, object]:
    """``{"data": [...]}`` from (start, end, forecast, actual-or-None) tuples."""
    return {
        "data": [
            {
                "from": stamp(start),
                "to": stamp(end),
                "intensity": {"forecast": forecast, "actual": actual, "index": "moderate"},
            }
            for start, end, forecast, actual in slots
        ]
    }


def uk_url(server: HTTPServer) -> dict[str, str]:
    """The environment that points the UK client at ``server``."""
    return {URL_ENV: server.url_for("/")}


LIVE_WAIT_S = 60.0
"""A hang guard for the first live answer (milliseconds from a local server), never a timing."""


def serve_dip(server: HTTPServer, saving: float, dip_in_s: float = 600.0) -> float:
    """Serve a national forecast of 300 gCO2e/kWh that drops by ``saving`` ``dip_in_s`` from now.

    The lower level lasts 30 h, beyond the live source's 24 h horizon. Returns the drop's time.
    """
    now = math.floor(time.time())
    dip = now + dip_in_s
    server.expect_request(re.compile("^/intensity/")).respond_with_json(
        national((now - 3600, dip, 300, None), (dip, dip + 30 * 3600, 300 * (1 - saving), None))
    )
    return dip


def wait_for_live(tracker: Tracker | None) -> None:
    """Wait until the run's live source has its first answer, as training would after a while.

    The fetch runs in its own thread from the run's start; a test that needs its answer before
    the first forecast waits for it here (in a training step), bounded by ``LIVE_WAIT_S``.
    """
    deadline = time.monotonic() + LIVE_WAIT_S
    while tracker is not None and time.monotonic() < deadline:
        ahead = tracker.intensity_ahead(1.0)
        if ahead is not None and ahead.source == UkCarbonIntensity.name:
            return
        time.sleep(0.01)
    raise AssertionError(f"no live answer within {LIVE_WAIT_S} s (or no tracker running)")
