"""The live API that forecasts a place's grid, for choosing when to start; never a guess.

A forecast needs a place given on purpose (a time-zone guess is not enough to plan by) and a
provider with forecasts for it: the UK Carbon Intensity API for Great Britain and its regions,
Energi Data Service for Denmark's two price areas (neither needs a token), or Electricity Maps
anywhere with a token.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from carbon_callbacks.intensity.base import LiveSource
from carbon_callbacks.intensity.resolve import DK_ZONES, TOKEN_ENV, UK_ZONE, named_zone, resolve
from carbon_callbacks.intensity.settings import IntensitySettings

__all__ = ["TOKEN_FREE", "NoForecast", "forecast_source"]

TOKEN_FREE = (
    "zone='GB' (or uk_postcode='RG10' for a region of Great Britain), zone='DK-DK1' or "
    "zone='DK-DK2'"
)
"""The places with forecasts without a token, in the words of the options that name them."""


class NoForecast(ValueError):
    """No forecast provider serves the place given; the message says where one does."""


def forecast_source(
    settings: IntensitySettings, environ: Mapping[str, str] | None = None
) -> LiveSource:
    """The live API whose forecast covers the place in ``settings`` (live asked for or not).

    Raises:
        NoForecast: No place given, or a place with no token-free forecast and no Electricity
            Maps token; the message names the places that have one and how to set a token.
        ValueError: As ``resolve`` does (e.g. Denmark without a price area).
    """
    zone = _zone(settings)
    token_free = zone in (UK_ZONE, "DK", *DK_ZONES)
    if settings.electricitymaps_token is None and not token_free:
        raise NoForecast(
            f"no forecast for {zone} without an Electricity Maps token: set {TOKEN_ENV} (a free "
            "one comes from https://portal.electricitymaps.com; forecasts need a plan that "
            f"includes them), or plan for a place with a token-free forecast: {TOKEN_FREE}"
        )
    resolution = resolve(dataclasses.replace(settings, live=True), environ)
    assert resolution.live is not None  # resolve gives a live source or raises, when asked for one
    return resolution.live


def _zone(settings: IntensitySettings) -> str:
    """The grid zone the settings name; refused when they name none (no guessing)."""
    if settings.g_per_kwh is not None:
        raise NoForecast(
            "a constant intensity has no forecast: give a place instead, e.g. " + TOKEN_FREE
        )
    zone = named_zone(settings)
    if zone is not None:
        return zone
    raise NoForecast(
        "planning a start needs the place the run will draw power in (no guess from the time "
        f"zone): write e.g. {TOKEN_FREE}, or another zone with an Electricity Maps token"
    )
