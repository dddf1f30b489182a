"""Energi Data Service (Energinet): 5-minute CO2 intensity for Denmark's price areas, no token.

Two datasets are read: ``CO2Emis``, measured figures that arrive with some delay, and
``CO2EmisProg``, forecasts that also cover the last hours before the measurements catch up. A
measurement wins over a forecast for the same five minutes. The figures count CO2 from the power
plants' fuel (with the 125 % rule for combined heat and power), an operational figure: ``"direct"``.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from functools import partial

import requests

from carbon_callbacks.intensity.base import Basis, IntensitySlot, ProviderError
from carbon_callbacks.intensity.http import (
    DEFAULT_TIMEOUT,
    LazySession,
    api_url,
    gathered,
    get_json,
    number,
    parse_utc,
    safe_url,
    spans,
)

DEFAULT_URL = "https://api.energidataservice.dk"
URL_ENV = "CARBON_CALLBACKS_ENERGIDATASERVICE_URL"
MEASURED = "CO2Emis"
FORECAST = "CO2EmisProg"

_AREAS = ("DK1", "DK2")
_SLOT_S = 300.0
_LONGEST_S = 7 * 86400.0  # ~2,000 rows of ~110 bytes a request, far below the 1 MiB answer cap
_MEASURED_LAG_S = 2 * 3600.0  # measurements are published late; forecasts cover the gap
# ``start`` and ``end`` are read as Danish local time (UTC+1 or +2). Times are sent as UTC and the
# end is moved two hours later, so the answer covers the range whichever way they are read; the
# rows are then picked by their UTC column.
_DANISH_OFFSET_S = 2 * 3600.0


class EnergiDataService:
    """Live intensity for one Danish price area.

    Args:
        price_area: ``"DK1"`` (west of the Great Belt) or ``"DK2"`` (east).
        base_url: The API's address; default ``$CARBON_CALLBACKS_ENERGIDATASERVICE_URL`` (blank is
            unset), else the public API.
        session: The HTTP session to use; a new one by default.
        timeout: Seconds to connect and to wait for each read.
        environ: The environment to read the URL override from; ``os.environ`` by default.
        clock: Wall clock in seconds since the epoch, which tells past from future (injectable
            for tests).

    Raises:
        ValueError: ``price_area`` is neither DK1 nor DK2, or the address is not an http(s) URL.
    """

    name = "Energi Data Service"
    basis: Basis = "direct"

    def __init__(
        self,
        price_area: str,
        *,
        base_url: str | None = None,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        area = price_area.strip().upper()
        if area not in _AREAS:
            raise ValueError(
                f"Energi Data Service price area must be 'DK1' (western Denmark) or 'DK2' "
                f"(eastern Denmark), got {price_area!r}"
            )
        env = os.environ if environ is None else environ
        self._area = area
        self.zone = f"DK-{area}"
        self._base_url = api_url(base_url, URL_ENV, env, DEFAULT_URL)
        self._http = LazySession(session)
        self._timeout = timeout
        self._clock = clock

    def fetch(self, start_unix: float, end_unix: float) -> list[IntensitySlot]:
        """5-minute slots overlapping [start_unix, end_unix], measured where known, else forecast.

        Measurements are asked for up to now, when a slot of the range has ended (a range starting
        in the current slot, as a plan from now does, has none to measure); forecasts from a
        little before now on. One of the two failing is tolerated while the other yields slots.

        Raises:
            ProviderError: Nothing usable for the range, and a request failed.
        """
        now = self._clock()
        queries = []
        if math.floor(start_unix / _SLOT_S) * _SLOT_S + _SLOT_S <= now:
            queries.append((MEASURED, start_unix, min(end_unix, now)))
        if end_unix > now - _MEASURED_LAG_S:
            queries.append((FORECAST, max(start_unix, now - _MEASURED_LAG_S), end_unix))
        return gathered(
            (partial(self._fetch_dataset, *query) for query in queries), start_unix, end_unix
        )

    def close(self) -> None:
        """Close the idle HTTP connections; a later ``fetch`` opens new ones."""
        self._http.close()

    def __repr__(self) -> str:
        return f"EnergiDataService(zone={self.zone!r}, base_url={safe_url(self._base_url)!r})"

    def _fetch_dataset(self, dataset: str, begin: float, finish: float) -> list[IntensitySlot]:
        """The usable rows of ``dataset`` for this price area over [begin, finish]."""
        slots: list[IntensitySlot] = []
        for piece_start, piece_end in spans(begin, finish, _LONGEST_S):
            payload = get_json(
                self._http.get(),
                self.name,
                f"{self._base_url}/dataset/{dataset}",
                params=self._params(piece_start, piece_end),
                headers={"Accept": "application/json"},
                timeout=self._timeout,
            )
            for row in _records(payload, self.name):
                slot = _slot(row, self._area, forecast=dataset == FORECAST)
                if slot is not None:
                    slots.append(slot)
        if not slots:
            raise ProviderError(self.name, f"no usable data in the answer ({dataset})")
        return slots

    def _params(self, begin: float, finish: float) -> dict[str, str]:
        """Query parameters asking for this area's rows over [begin, finish], with margins."""
        first = begin - _SLOT_S
        last = finish + _SLOT_S + _DANISH_OFFSET_S
        rows = math.ceil((last - first) / _SLOT_S) + 1
        return {
            "start": _minute(first, math.floor),
            "end": _minute(last, math.ceil),
            "filter": json.dumps({"PriceArea": [self._area]}, separators=(",", ":")),
            "limit": str(2 * rows),  # room for both areas, should the filter be ignored
        }


def _minute(unix: float, rounding: Callable[[float], int]) -> str:
    """``2024-05-01T12:05``: the API's ``yyyy-MM-ddTHH:mm`` form of a UTC time, whole minutes."""
    whole = rounding(unix / 60) * 60
    return datetime.fromtimestamp(whole, timezone.utc).strftime("%Y-%m-%dT%H:%M")


def _records(payload: object, provider: str) -> list[object]:
    """The ``records`` list of a dataset answer."""
    rows = payload.get("records") if isinstance(payload, dict) else None
    if not isinstance(rows, list):
        raise ProviderError(provider, "unexpected answer: no list of rows under 'records'")
    return rows


def _slot(row: object, area: str, forecast: bool) -> IntensitySlot | None:
    """One row of ``area`` as a 5-minute slot; None for other areas and unusable rows."""
    if not isinstance(row, dict) or row.get("PriceArea") != area:
        return None
    try:
        start = parse_utc(row.get("Minutes5UTC"))
        value = number(row.get("CO2Emission"))
    except ValueError:
        return None
    return IntensitySlot(start, start + _SLOT_S, value, forecast)
