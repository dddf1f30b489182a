"""Which carbon intensity a run uses, and why: settings, location and the resolution order.

Order, first match wins:

1. ``intensity_g_per_kwh=``: a constant given by the user;
2. a live provider for the configured zone, when ``live=True`` (its gaps fall back to 3-5);
3. the cloud region table (``cloud=`` + ``region=``);
4. the country's latest yearly value (``country=``, the country part of ``zone=``, or the country
   guessed offline from the system time zone, flagged as guessed);
5. the World value, with the location marked unknown.

No IP geolocation. Unknown codes fail at construction with close matches in the message.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from carbon_callbacks._env import ENV_PREFIX, env_flag
from carbon_callbacks.intensity import static
from carbon_callbacks.intensity.base import (
    ConstantIntensity,
    IntensityProvider,
    IntensityValue,
    LiveSource,
    check_g_per_kwh,
)

TOKEN_ENV = "ELECTRICITYMAPS_API_TOKEN"
UK_ZONE = "GB"
DK_ZONES = {"DK-DK1": "DK1", "DK-DK2": "DK2"}


@dataclass(frozen=True)
class IntensitySettings:
    """Where the run is and how its intensity should be found. Holds the token, never shows it.

    Attributes:
        g_per_kwh: A constant that overrides every other source.
        country: ISO 3166 alpha-2 or alpha-3 code (any case) or English name.
        zone: A grid zone, e.g. ``"DK-DK1"``, ``"GB"``, ``"US-CAL-CISO"`` (Electricity Maps names).
        cloud: ``"gcp"``, ``"aws"`` or ``"azure"``; needs ``region``.
        region: The cloud region, e.g. ``"eu-north-1"``.
        uk_postcode: Outward UK postcode for regional UK data, e.g. ``"RG10"``.
        live: Use live grid data for the zone.
        electricitymaps_token: Electricity Maps API token (live data outside GB and DK).
    """

    g_per_kwh: float | None = None
    country: str | None = None
    zone: str | None = None
    cloud: str | None = None
    region: str | None = None
    uk_postcode: str | None = None
    live: bool = False
    electricitymaps_token: str | None = field(default=None, repr=False)

    def public_dict(self) -> dict[str, object]:
        """The settings as JSON-ready values, without the token (only whether one is set)."""
        return {
            "intensity_g_per_kwh": self.g_per_kwh,
            "country": self.country,
            "zone": self.zone,
            "cloud": self.cloud,
            "region": self.region,
            "uk_postcode": self.uk_postcode,
            "live": self.live,
            "electricitymaps_token_set": self.electricitymaps_token is not None,
        }


def intensity_settings(
    *,
    intensity_g_per_kwh: float | None = None,
    country: str | None = None,
    zone: str | None = None,
    cloud: str | None = None,
    region: str | None = None,
    uk_postcode: str | None = None,
    live: bool | None = None,
    electricitymaps_token: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> IntensitySettings:
    """Merge arguments and ``CARBON_CALLBACKS_*`` variables into checked settings.

    Raises:
        ValueError, TypeError: A value or a combination is invalid; the message says what to write.
    """
    env = os.environ if environ is None else environ
    g_per_kwh = intensity_g_per_kwh
    if g_per_kwh is None and env.get(ENV_PREFIX + "INTENSITY_G_PER_KWH"):
        raw = env[ENV_PREFIX + "INTENSITY_G_PER_KWH"]
        try:
            g_per_kwh = float(raw)
        except ValueError:
            raise ValueError(
                f"{ENV_PREFIX}INTENSITY_G_PER_KWH={raw!r} is not a number; "
                f"write e.g. {ENV_PREFIX}INTENSITY_G_PER_KWH=250"
            ) from None
    if g_per_kwh is not None:
        g_per_kwh = check_g_per_kwh(g_per_kwh, "intensity_g_per_kwh")
    token = electricitymaps_token or env.get(ENV_PREFIX + "ELECTRICITYMAPS_TOKEN") or None
    settings = IntensitySettings(
        g_per_kwh=g_per_kwh,
        country=_text("country", country, env),
        zone=_text("zone", zone, env),
        cloud=_text("cloud", cloud, env),
        region=_text("region", region, env),
        uk_postcode=_text("uk_postcode", uk_postcode, env),
        live=live if live is not None else env_flag("live", env, default=False),
        electricitymaps_token=token or env.get(TOKEN_ENV) or None,
    )
    _check_combination(settings)
    return settings


@dataclass(frozen=True)
class Resolution:
    """The outcome of resolving settings: the static value and, when asked for, a live source.

    Attributes:
        static: The value used where no live data covers the time (or always, without live).
        live: The live API client, or None.
    """

    static: IntensityValue
    live: LiveSource | None = None


def resolve(settings: IntensitySettings, environ: Mapping[str, str] | None = None) -> Resolution:
    """Apply the resolution order to ``settings``.

    Raises:
        ValueError: Unknown country, zone, cloud or region, or live data asked for where no
            provider can give it; the message names close matches or what to write.
    """
    if settings.g_per_kwh is not None:
        return Resolution(IntensityValue(settings.g_per_kwh, "user-supplied constant"))
    static_value = _static_value(settings, environ)
    if not settings.live:
        return Resolution(static_value)
    return Resolution(static_value, _live_source(settings, environ))


def provider_for(
    resolution: Resolution, environ: Mapping[str, str] | None = None
) -> IntensityProvider:
    """The provider a tracker asks: the constant, or a live one falling back to the constant."""
    if resolution.live is None:
        return ConstantIntensity(value=resolution.static)
    from carbon_callbacks.intensity.cache import IntensityCache, default_cache_dir
    from carbon_callbacks.intensity.live import LiveIntensity

    cache = IntensityCache(default_cache_dir(environ), resolution.live.name, resolution.live.zone)
    return LiveIntensity(resolution.live, resolution.static, cache=cache)


def _static_value(settings: IntensitySettings, environ: Mapping[str, str] | None) -> IntensityValue:
    if settings.cloud is not None and settings.region is not None:
        return static.cloud_region(settings.cloud, settings.region).value()
    if settings.country is not None:
        return static.country(settings.country).value()
    if settings.zone is not None:
        yearly = _zone_country(settings.zone)
        if yearly.code == settings.zone:
            return yearly.value()
        return yearly.value(
            fallback=f"no yearly data for zone {settings.zone}: country {yearly.code} used"
        )
    if settings.uk_postcode is not None:
        return static.country(UK_ZONE).value()
    guessed, tz_name = static.guess_country(environ)
    if guessed is not None:
        try:
            return static.country(guessed).value(guessed_location=True)
        except ValueError:
            pass
    where = (
        f"system time zone {tz_name} names no country with data"
        if tz_name
        else "no system time zone"
    )
    return static.world().value(
        fallback=f"location unknown ({where}); set country=, zone= or cloud= and region="
    )


def _live_source(settings: IntensitySettings, environ: Mapping[str, str] | None) -> LiveSource:
    zone = _live_zone(settings)
    if settings.electricitymaps_token is not None:
        from carbon_callbacks.intensity.electricitymaps import ElectricityMaps

        return ElectricityMaps(zone, settings.electricitymaps_token, environ=environ)
    if zone == UK_ZONE:
        from carbon_callbacks.intensity.uk import UkCarbonIntensity

        return UkCarbonIntensity(settings.uk_postcode, environ=environ)
    if zone in DK_ZONES:
        from carbon_callbacks.intensity.energidataservice import EnergiDataService

        return EnergiDataService(DK_ZONES[zone], environ=environ)
    if zone == "DK":
        raise ValueError(
            "live data for Denmark needs a price area: write zone='DK-DK1' (west) or "
            "zone='DK-DK2' (east)"
        )
    raise ValueError(
        f"live data for {zone} needs an Electricity Maps token: set {TOKEN_ENV} or pass "
        "electricitymaps_token=...; without a token, live data covers zone='GB' (UK Carbon "
        "Intensity API) and zone='DK-DK1' or 'DK-DK2' (Energi Data Service)"
    )


def _live_zone(settings: IntensitySettings) -> str:
    if settings.uk_postcode is not None:
        return UK_ZONE
    if settings.zone is not None:
        return settings.zone
    if settings.country is not None:
        return static.country(settings.country).code
    if settings.cloud is not None and settings.region is not None:
        return static.cloud_region(settings.cloud, settings.region).country
    raise ValueError(
        "live=True needs a location: write e.g. zone='DK-DK1', country='GB' or "
        "cloud='aws', region='eu-north-1'"
    )


def _check_combination(settings: IntensitySettings) -> None:
    places = [
        name
        for name, value in (
            ("country", settings.country),
            ("zone", settings.zone),
            ("cloud", settings.cloud),
        )
        if value is not None
    ]
    if len(places) > 1:
        raise ValueError(
            f"give one location, not {' and '.join(places)}: e.g. country='SE', or zone='SE-SE3', "
            "or cloud='aws' with region='eu-north-1'"
        )
    if (settings.cloud is None) != (settings.region is None):
        raise ValueError(
            "cloud and region go together: write e.g. cloud='aws', region='eu-north-1'"
        )
    if settings.uk_postcode is not None and places:
        in_gb = settings.zone == UK_ZONE or (
            settings.country is not None and static.country(settings.country).code == UK_ZONE
        )
        if not in_gb:
            raise ValueError(
                "uk_postcode is for runs in Great Britain; drop it or the other location"
            )
    if settings.g_per_kwh is not None and settings.live:
        raise ValueError(
            "intensity_g_per_kwh overrides every other source, so live=True would do nothing; "
            "drop one of them"
        )
    if settings.zone is not None:
        _zone_country(settings.zone)
    elif settings.country is not None:
        static.country(settings.country)
    elif settings.cloud is not None and settings.region is not None:
        static.cloud_region(settings.cloud, settings.region)


def _zone_country(zone: str) -> static.YearlyIntensity:
    """The country a zone lies in (its part before the first ``-``); unknown ones fail clearly."""
    country_code = zone.split("-")[0]
    try:
        return static.country(country_code)
    except static.UnknownLocationError as error:
        raise static.UnknownLocationError(
            f"unknown zone {zone!r}: a zone starts with its country's ISO code, as in 'DK-DK1', "
            f"'SE-SE3' or 'US-CAL-CISO' ({error})"
        ) from None


def _text(name: str, value: str | None, env: Mapping[str, str]) -> str | None:
    raw = value if value is not None else env.get(ENV_PREFIX + name.upper())
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise TypeError(f"{name} must be a string, got {raw!r}; write e.g. {name}='SE'")
    text = raw.strip()
    if not text:
        return None
    return text.upper() if name in {"zone", "uk_postcode"} else text
