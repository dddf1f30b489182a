"""UK Carbon Intensity API answers in the recorded shape, with slots where a test needs them."""

from __future__ import annotations

import time

from pytest_httpserver import HTTPServer

from carbon_callbacks.intensity.providers.uk import URL_ENV


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
