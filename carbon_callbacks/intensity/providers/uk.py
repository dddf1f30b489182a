"""The UK Carbon Intensity API (NESO): half-hourly CO2 intensity for Great Britain, no token needed.

National figures carry a measured ``actual`` once a half hour is over and a ``forecast`` always;
regional figures (chosen by the outward part of a postcode) are forecasts only. The API counts CO2
from generation only, an operational figure, so its basis is ``"direct"``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timezone

import requests

from carbon_callbacks.intensity.base import Basis, IntensitySlot, ProviderError
from carbon_callbacks.intensity.http import (
    DEFAULT_TIMEOUT,
    LazySession,
    api_url,
    get_json,
    number,
    parse_utc,
    safe_url,
    select_slots,
    spans,
)

DEFAULT_URL = "https://api.carbonintensity.org.uk"
URL_ENV = "CARBON_CALLBACKS_UK_API_URL"

_SLOT_S = 1800.0
_LONGEST_S = 13 * 86400.0  # the API answers at most 14 days per request
_OUTWARD = re.compile(r"[A-Z]{1,2}[0-9][A-Z0-9]?")
_FULL = re.compile(r"([A-Z]{1,2}[0-9][A-Z0-9]?) ?[0-9][A-Z]{2}")


class UkCarbonIntensity:
    """Live intensity for Great Britain, national or for the region of a postcode.

    Args:
        postcode: A postcode's outward code (``"RG10"``, ``"SW1A"``, ``"EC1"``) or a full postcode,
            whose outward part is used; None for national figures.
        base_url: The API's address; default ``$CARBON_CALLBACKS_UK_API_URL`` (blank is unset), else
            the public API.
        session: The HTTP session to use; a new one by default.
        timeout: Seconds to connect and to wait for each read.
        environ: The environment to read the URL override from; ``os.environ`` by default.

    Raises:
        ValueError: ``postcode`` is not a UK postcode or outward code, or the address is not an
            http(s) URL.
    """

    name = "UK Carbon Intensity API"
    basis: Basis = "direct"

    def __init__(
        self,
        postcode: str | None = None,
        *,
        base_url: str | None = None,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        self._postcode = None if postcode is None else outward_code(postcode)
        self.zone = "GB" if self._postcode is None else f"GB {self._postcode}"
        self._base_url = api_url(base_url, URL_ENV, env, DEFAULT_URL)
        self._http = LazySession(session)
        self._timeout = timeout

    def fetch(self, start_unix: float, end_unix: float) -> list[IntensitySlot]:
        """Half-hour slots overlapping [start_unix, end_unix]: actuals where known, else forecasts.

        Raises:
            ProviderError: The API failed or answered no usable figure.
        """
        slots: list[IntensitySlot] = []
        # Widen by a slot each side: the API's own idea of which half hours a range covers varies.
        for begin, finish in spans(start_unix - _SLOT_S, end_unix + _SLOT_S, _LONGEST_S):
            slots.extend(self._fetch_span(begin, finish))
        return select_slots(slots, start_unix, end_unix)

    def close(self) -> None:
        """Close the idle HTTP connections; a later ``fetch`` opens new ones."""
        self._http.close()

    def __repr__(self) -> str:
        return f"UkCarbonIntensity(zone={self.zone!r}, base_url={safe_url(self._base_url)!r})"

    def _fetch_span(self, begin: float, finish: float) -> list[IntensitySlot]:
        """The usable slots of one request covering [begin, finish]."""
        window = f"{_minute(begin, math.floor)}/{_minute(finish, math.ceil)}"
        if self._postcode is None:
            url = f"{self._base_url}/intensity/{window}"
        else:
            url = f"{self._base_url}/regional/intensity/{window}/postcode/{self._postcode}"
        payload = get_json(
            self._http.get(),
            self.name,
            url,
            headers={"Accept": "application/json"},
            timeout=self._timeout,
        )
        slots = [slot for slot in map(_slot, _entries(payload, self.name)) if slot is not None]
        if not slots:
            raise ProviderError(self.name, "no usable data in the answer")
        return slots


def outward_code(postcode: str) -> str:
    """The outward code of a UK postcode: ``"rg10 9xx"`` -> ``"RG10"``, ``"SW1A"`` -> ``"SW1A"``.

    Raises:
        ValueError: Neither a full postcode nor an outward code; the message says what to write.
    """
    text = " ".join(postcode.upper().split())
    full = _FULL.fullmatch(text)
    if full is not None:
        return full.group(1)
    if _OUTWARD.fullmatch(text):
        return text
    raise ValueError(
        f"{postcode!r} is not a UK postcode; write its outward part, the letters and digits before "
        "the space, e.g. 'RG10' or 'SW1A' (or no postcode for national figures)"
    )


def _minute(unix: float, rounding: Callable[[float], int]) -> str:
    """``2024-05-01T12:00Z``: the API's form of ``unix`` rounded to a whole minute."""
    whole = rounding(unix / 60) * 60
    return datetime.fromtimestamp(whole, timezone.utc).strftime("%Y-%m-%dT%H:%MZ")


def _entries(payload: object, provider: str) -> list[object]:
    """The list of half-hour entries: ``data`` nationally, ``data.data`` for a region."""
    data = payload.get("data") if isinstance(payload, dict) else None
    if isinstance(data, dict):
        data = data.get("data")
    if not isinstance(data, list):
        raise ProviderError(provider, "unexpected answer: no list of half hours under 'data'")
    return data


def _slot(entry: object) -> IntensitySlot | None:
    """One entry as a slot: the actual when it is a number, else the forecast; None if unusable."""
    if not isinstance(entry, dict) or not isinstance(entry.get("intensity"), dict):
        return None
    intensity = entry["intensity"]
    try:
        start, end = parse_utc(entry.get("from")), parse_utc(entry.get("to"))
    except ValueError:
        return None
    if end <= start:
        return None
    for key, forecast in (("actual", False), ("forecast", True)):
        try:
            return IntensitySlot(start, end, number(intensity.get(key)), forecast)
        except ValueError:
            continue
    return None
