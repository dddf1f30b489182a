"""Electricity Maps (API v3): hourly lifecycle carbon intensity for zones worldwide, with a token.

The past comes from ``history`` (the last 24 hours) and ``latest`` (the current hour), the future
from ``forecast``, which many plans do not include: a refused part is tolerated while another part
covers the range. Lifecycle emission factors are asked for, and an answer in another basis is
refused rather than mixed in. Estimated hours (``isEstimated``) count as forecasts.

The token travels only in the ``auth-token`` header and is kept out of every message and repr.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Mapping

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
)

DEFAULT_URL = "https://api.electricitymap.org"
URL_ENV = "CARBON_CALLBACKS_ELECTRICITYMAPS_URL"
TOKEN_ENV = "ELECTRICITYMAPS_API_TOKEN"
EMISSION_FACTOR_TYPE = "lifecycle"

_HOUR_S = 3600.0
_ZONE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]+)*")
_TOKEN = re.compile(r"[\x21-\x7e]+")  # printable ASCII without spaces: fit for a header


class ElectricityMaps:
    """Live intensity for one Electricity Maps zone.

    Args:
        zone: The zone key, e.g. ``"DE"``, ``"DK-DK1"``, ``"US-CAL-CISO"``.
        token: The API token (``$ELECTRICITYMAPS_API_TOKEN``); never shown anywhere.
        token_source: Where the token came from (an argument or a variable's name), named in the
            message about a token that cannot be used.
        base_url: The API's address; default ``$CARBON_CALLBACKS_ELECTRICITYMAPS_URL`` (blank is
            unset), else the public API.
        session: The HTTP session to use; a new one by default.
        timeout: Seconds to connect and to wait for each read.
        environ: The environment to read the URL override from; ``os.environ`` by default.
        clock: Wall clock in seconds since the epoch, which tells past from future (injectable
            for tests).

    Raises:
        ValueError: No token, a token that cannot be sent in a header, a malformed zone, or an
            address that is not an http(s) URL.
    """

    name = "Electricity Maps"
    basis: Basis = "lifecycle"

    def __init__(
        self,
        zone: str,
        token: str,
        *,
        token_source: str = "token",
        base_url: str | None = None,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        secret = (token or "").strip()
        if not secret:
            raise ValueError(
                f"Electricity Maps needs an API token, and the one given ({token_source}) is "
                f"empty: set {TOKEN_ENV} (a free one comes from https://portal.electricitymaps.com)"
            )
        if not _TOKEN.fullmatch(secret):
            raise ValueError(
                f"the Electricity Maps token ({token_source}) holds spaces or unusual characters "
                "(it is not shown here); copy it again from "
                "https://portal.electricitymaps.com"
            )
        if not _ZONE.fullmatch(zone.strip()):
            raise ValueError(
                f"{zone!r} is not an Electricity Maps zone key; write one such as 'DE', 'DK-DK1' "
                "or 'US-CAL-CISO'"
            )
        env = os.environ if environ is None else environ
        self.zone = zone.strip()
        self._headers = {"auth-token": secret, "Accept": "application/json"}
        self._base_url = api_url(base_url, URL_ENV, env, DEFAULT_URL)
        self._http = LazySession(session)
        self._timeout = timeout
        self._clock = clock

    def fetch(self, start_unix: float, end_unix: float) -> list[IntensitySlot]:
        """Hourly slots overlapping [start_unix, end_unix], measured, estimated or forecast.

        Raises:
            ProviderError: Every request needed failed or was refused, an answer was malformed or
                not in lifecycle terms, or nothing usable came back.
        """
        slots: list[IntensitySlot] = []
        failures: list[ProviderError] = []
        for endpoint in _endpoints(start_unix, end_unix, self._clock()):
            try:
                payload = self._get(endpoint)
            except ProviderError as exc:
                failures.append(exc)
                continue
            slots.extend(self._slots(endpoint, payload))
        if not slots and not failures:
            raise ProviderError(self.name, "no usable data in the answer")
        chosen = select_slots(slots, start_unix, end_unix)
        if failures and not chosen:
            raise failures[0]
        return chosen

    def close(self) -> None:
        """Close the idle HTTP connections; a later ``fetch`` opens new ones."""
        self._http.close()

    def __repr__(self) -> str:
        return (
            f"ElectricityMaps(zone={self.zone!r}, token=<hidden>, "
            f"base_url={safe_url(self._base_url)!r})"
        )

    def _get(self, endpoint: str) -> object:
        """One ``/v3/carbon-intensity/<endpoint>`` answer for this zone, in lifecycle terms."""
        return get_json(
            self._http.get(),
            self.name,
            f"{self._base_url}/v3/carbon-intensity/{endpoint}",
            params={
                "zone": self.zone,
                "emissionFactorType": EMISSION_FACTOR_TYPE,
                "disableCallerLookup": "true",
            },
            headers=self._headers,
            timeout=self._timeout,
        )

    def _slots(self, endpoint: str, payload: object) -> list[IntensitySlot]:
        """The usable hours of one answer.

        Raises:
            ProviderError: The answer is not shaped as documented, or not in lifecycle terms.
        """
        entries = self._entries(endpoint, payload)
        self._check_basis([payload, *entries])
        forecast = endpoint == "forecast"
        return [slot for slot in (_slot(entry, forecast) for entry in entries) if slot is not None]

    def _entries(self, endpoint: str, payload: object) -> list[object]:
        """The hourly entries: the answer itself for ``latest``, else its list of hours."""
        if not isinstance(payload, dict):
            raise ProviderError(self.name, f"unexpected answer from {endpoint}: not an object")
        if endpoint == "latest":
            return [payload]
        entries = payload.get(endpoint)
        if not isinstance(entries, list):
            raise ProviderError(self.name, f"unexpected answer: no list under {endpoint!r}")
        return entries

    def _check_basis(self, items: list[object]) -> None:
        """Refuse an answer whose ``emissionFactorType`` is not lifecycle."""
        for item in items:
            factor = item.get("emissionFactorType") if isinstance(item, dict) else None
            if factor is not None and factor != EMISSION_FACTOR_TYPE:
                raise ProviderError(
                    self.name, f"answered {str(factor)[:20]!r} emission factors, not lifecycle"
                )


def _endpoints(start_unix: float, end_unix: float, now: float) -> list[str]:
    """Which endpoints cover the range: history before this hour, latest for it, forecast after."""
    hour = now - now % _HOUR_S
    endpoints = []
    if start_unix < hour:
        endpoints.append("history")
    if start_unix <= now and end_unix >= hour:
        endpoints.append("latest")
    if end_unix > now:
        endpoints.append("forecast")
    return endpoints


def _slot(entry: object, forecast: bool) -> IntensitySlot | None:
    """One hourly entry as a slot, a forecast when asked or when estimated; None if unusable."""
    if not isinstance(entry, dict):
        return None
    try:
        start = parse_utc(entry.get("datetime"))
        value = number(entry.get("carbonIntensity"))
    except ValueError:
        return None
    return IntensitySlot(
        start, start + _HOUR_S, value, forecast or entry.get("isEstimated") is True
    )
