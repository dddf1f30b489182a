"""Which carbon intensity a run uses, and why: settings merged and checked, the resolution order.

The settings themselves (each option, its keyword and flag) are declared in
``carbon_callbacks.intensity.settings``.

Order, first match wins:

1. ``intensity_g_per_kwh=``: a constant given by the user;
2. a live provider for the configured zone, when ``live=True`` (its gaps fall back to 3-5);
3. the cloud region table (``cloud=`` + ``region=``);
4. the country's latest yearly value (``country=`` or the country part of ``zone=``);
5. without any of those: the region named by the cloud's instance metadata service, when DMI says
   the machine is an AWS, Google Cloud or Azure one (``intensity.cloud``; looked up in the
   background once the run starts, see ``intensity.located``);
6. the country guessed offline from the system time zone, flagged as guessed (also what a cloud
   run uses until, or unless, the metadata service answers);
7. the World value, with the location marked unknown.

No IP geolocation. Unknown codes fail at construction with close matches in the message, which
names where the value came from (the argument or the ``CARBON_CALLBACKS_*`` variable) and shows what
to write there instead.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from carbon_callbacks._internal.env import ENV_PREFIX, env_flag, env_number, env_text
from carbon_callbacks.intensity import static
from carbon_callbacks.intensity.base import (
    MAX_G_PER_KWH,
    ConstantIntensity,
    IntensityProvider,
    IntensityValue,
    LiveSource,
    check_g_per_kwh,
)
from carbon_callbacks.intensity.cloud import CloudLookup, cloud_lookup
from carbon_callbacks.intensity.settings import (
    FIELD_OF,
    OPTIONS,
    IntensityOptions,
    IntensitySettings,
    Option,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "IntensitySettings",
    "Resolution",
    "intensity_settings",
    "named_zone",
    "provider_for",
    "resolve",
]

TOKEN_ENV = "ELECTRICITYMAPS_API_TOKEN"
UK_ZONE = "GB"
DK_ZONES = {"DK-DK1": "DK1", "DK-DK2": "DK2"}
_PLACES = ("country", "zone", "cloud", "uk_postcode")
"""The settings that say where the run is: any of them comes before the cloud metadata."""
_CLOUD_EXAMPLES = {"aws": "eu-north-1", "gcp": "europe-north1", "azure": "swedencentral"}
"""A region of each cloud, to show in messages."""


def intensity_settings(
    *, environ: Mapping[str, str] | None = None, **options: Unpack[IntensityOptions]
) -> IntensitySettings:
    """Merge arguments and ``CARBON_CALLBACKS_*`` variables into checked settings.

    An option given as None, and a variable set to nothing, count as unset. The token comes
    from the argument, else ``CARBON_CALLBACKS_ELECTRICITYMAPS_TOKEN``, else
    ``ELECTRICITYMAPS_API_TOKEN``.

    Raises:
        ValueError, TypeError: A value or a combination is invalid, or an option is unknown; the
            message names where the value came from and says what to write.
    """
    env = os.environ if environ is None else environ
    given: Mapping[str, object] = options
    unknown = sorted(given.keys() - FIELD_OF.keys())
    if unknown:
        raise TypeError(f"unknown option {unknown[0]!r}; the options are {', '.join(FIELD_OF)}")
    sources: dict[str, str] = {}
    values = {
        FIELD_OF[option.keyword]: _read(option, given.get(option.keyword), env, sources)
        for option in OPTIONS
    }
    settings = IntensitySettings(**values, sources=sources)  # type: ignore[arg-type]
    _check_combination(settings, env)
    return settings


def _read(option: Option, value: object, env: Mapping[str, str], sources: dict[str, str]) -> object:
    """One option: the argument when given, else its variable (blank is unset), checked."""
    name = option.keyword
    if option.kind == "number":
        if value is not None:
            return check_g_per_kwh(value, name)
        number = env_number(name, env, minimum=0.0, maximum=MAX_G_PER_KWH, example="250")
        _note_source(name, number, sources)
        return number
    if option.kind == "switch":
        if value is not None:
            return value
        _note_source(name, env_text(name, env), sources)
        return env_flag(name, env, default=False)
    if option.kind == "secret":
        token = value or env_text(name, env)
        if not value:
            _note_source(name, token, sources)
        if token is None and (env.get(TOKEN_ENV) or "").strip():
            token, sources[name] = env[TOKEN_ENV], TOKEN_ENV
        return token
    return _text(name, value, env, sources, upper=option.kind == "code")


@dataclass(frozen=True)
class Resolution:
    """The outcome of resolving settings: the static value and, when asked for, a live source.

    Attributes:
        static: The value used where no live data covers the time (or always, without live);
            with ``cloud``, the value used until the metadata service names the region.
        live: The live API client, or None.
        cloud: The region lookup to make when no location was given and DMI names a cloud
            vendor; None otherwise, or with ``CARBON_CALLBACKS_CLOUD_METADATA=0``.
    """

    static: IntensityValue
    live: LiveSource | None = None
    cloud: CloudLookup | None = None


def resolve(settings: IntensitySettings, environ: Mapping[str, str] | None = None) -> Resolution:
    """Apply the resolution order to ``settings``.

    Raises:
        ValueError: Unknown country, zone, cloud or region, or live data asked for where no
            provider can give it; the message names close matches or what to write.
    """
    if settings.g_per_kwh is not None:
        return Resolution(IntensityValue(settings.g_per_kwh, "user-supplied constant"))
    static_value = _static_value(settings, environ)
    if settings.live:
        return Resolution(static_value, _live_source(settings, environ))
    located = any(getattr(settings, name) is not None for name in _PLACES)
    lookup = None if located else cloud_lookup(os.environ if environ is None else environ)
    return Resolution(static_value, cloud=lookup)


def provider_for(
    resolution: Resolution, environ: Mapping[str, str] | None = None
) -> IntensityProvider:
    """The provider a tracker asks: the constant, a live one over it, or a cloud lookup's.

    With a cloud lookup, the constant serves until the metadata service names the region.
    """
    if resolution.cloud is not None:
        from carbon_callbacks.intensity.located import CloudLocated

        return CloudLocated(resolution.cloud, resolution.static)
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
        yearly = _zone_country(settings, os.environ if environ is None else environ)
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
        from carbon_callbacks.intensity.providers.electricitymaps import ElectricityMaps

        return ElectricityMaps(
            zone,
            settings.electricitymaps_token,
            token_source=_named(settings, "electricitymaps_token"),
            environ=environ,
        )
    if zone == UK_ZONE:
        from carbon_callbacks.intensity.providers.uk import UkCarbonIntensity

        return UkCarbonIntensity(settings.uk_postcode, environ=environ)
    if zone in DK_ZONES:
        from carbon_callbacks.intensity.providers.energidataservice import EnergiDataService

        return EnergiDataService(DK_ZONES[zone], environ=environ)
    if zone == "DK":
        by_variable = bool({"zone", "country"} & settings.sources.keys())
        raise ValueError(
            f"live data for Denmark needs a price area: write "
            f"{_assignment('zone', 'DK-DK1', by_variable)} (west) or "
            f"{_assignment('zone', 'DK-DK2', by_variable)} (east)"
        )
    raise ValueError(
        f"live data for {zone} needs an Electricity Maps token: set {TOKEN_ENV} or pass "
        "electricitymaps_token=...; without a token, live data covers zone='GB' (UK Carbon "
        "Intensity API) and zone='DK-DK1' or 'DK-DK2' (Energi Data Service)"
    )


def named_zone(settings: IntensitySettings) -> str | None:
    """The grid zone the settings name on purpose (never the time-zone guess); None if none."""
    if settings.uk_postcode is not None:
        return UK_ZONE
    if settings.zone is not None:
        return settings.zone
    if settings.country is not None:
        return static.country(settings.country).code
    if settings.cloud is not None and settings.region is not None:
        return static.cloud_region(settings.cloud, settings.region).country
    return None


def _live_zone(settings: IntensitySettings) -> str:
    zone = named_zone(settings)
    if zone is not None:
        return zone
    by_variable = "live" in settings.sources
    examples = [
        _assignment(name, value, by_variable)
        for name, value in (("zone", "DK-DK1"), ("country", "GB"), ("cloud", "aws"))
    ]
    raise ValueError(
        f"{_named(settings, 'live') if by_variable else 'live=True'} needs a location: write "
        f"e.g. {examples[0]}, {examples[1]} or {examples[2]} with "
        f"{_assignment('region', 'eu-north-1', by_variable)}"
    )


def _check_combination(settings: IntensitySettings, env: Mapping[str, str]) -> None:
    """Refuse contradictory settings and unknown places, naming where each value came from."""
    places = [name for name in ("country", "zone", "cloud") if getattr(settings, name) is not None]
    if len(places) > 1:
        named = " and ".join(_given(settings, name, env) for name in places)
        raise ValueError(
            f"give one location, not {named}: keep one of them, e.g. a country ('SE'), a zone "
            "('SE-SE3'), or a cloud with its region ('aws' and 'eu-north-1')"
        )
    if settings.cloud is not None and settings.region is None:
        example = _region_example(settings.cloud)
        raise ValueError(
            f"{_given(settings, 'cloud', env)} needs a region: cloud and region go together; "
            f"write e.g. {_assignment('region', example, 'cloud' in settings.sources)} with it"
        )
    if settings.region is not None and settings.cloud is None:
        example = next(iter(_clouds_with(settings.region)), "aws")
        raise ValueError(
            f"{_given(settings, 'region', env)} needs a cloud: cloud and region go together; "
            f"write e.g. {_assignment('cloud', example, 'region' in settings.sources)} with it"
        )
    if settings.g_per_kwh is not None and settings.live:
        live = _given(settings, "live", env) if "live" in settings.sources else "live=True"
        raise ValueError(
            f"{_named(settings, 'intensity_g_per_kwh')} overrides every other source, so {live} "
            "would do nothing; drop one of them"
        )
    _check_place(settings, env)
    if settings.uk_postcode is not None:
        _check_postcode(settings, env, places)


def _check_place(settings: IntensitySettings, env: Mapping[str, str]) -> None:
    """Refuse an unknown zone, country, cloud or region; a region of another cloud names it."""
    if settings.zone is not None:
        _zone_country(settings, env)
    elif settings.country is not None:
        try:
            static.country(settings.country)
        except static.UnknownLocationError as error:
            raise _from_variable(error, settings, env, "country") from None
    elif settings.cloud is not None and settings.region is not None:
        try:
            static.cloud_region(settings.cloud, settings.region)
        except static.UnknownLocationError as error:
            holders = _clouds_with(settings.region)
            if not holders:
                raise _from_variable(error, settings, env, "cloud", "region") from None
            raise static.UnknownLocationError(
                f"{_given(settings, 'cloud', env)} has no region {settings.region!r}, which is a "
                f"region of {' and '.join(holders)}: write e.g. "
                f"{_write(settings, 'cloud', holders[0])}"
            ) from None


def _check_postcode(settings: IntensitySettings, env: Mapping[str, str], places: list[str]) -> None:
    """Refuse a UK postcode of the wrong form, or with a place outside Great Britain.

    Checked here, not only when live data is asked for (the only use of the postcode), so a
    mistake shows at once.
    """
    from carbon_callbacks.intensity.providers.uk import outward_code

    try:
        outward_code(settings.uk_postcode or "")
    except ValueError:
        if "uk_postcode" not in settings.sources:
            raise
        raise ValueError(
            f"{_given(settings, 'uk_postcode', env)} is not a UK postcode; write e.g. "
            f"{_write(settings, 'uk_postcode', 'RG10')} (a postcode's outward part, the letters "
            "and digits before the space), or leave it unset for national figures"
        ) from None
    in_gb = settings.zone == UK_ZONE or (
        settings.country is not None and static.country(settings.country).code == UK_ZONE
    )
    if places and not in_gb:
        raise ValueError(
            f"{_named(settings, 'uk_postcode')} is for runs in Great Britain; drop it or "
            f"{_given(settings, places[0], env)}"
        )


def _zone_country(settings: IntensitySettings, env: Mapping[str, str]) -> static.YearlyIntensity:
    """The country a zone lies in (its part before the first ``-``); unknown ones fail clearly."""
    zone = settings.zone or ""
    try:
        return static.country(zone.split("-")[0])
    except static.UnknownLocationError as error:
        reason = str(error).split(";")[0]
        what = (
            f"{_given(settings, 'zone', env)} is not a known zone"
            if "zone" in settings.sources
            else f"unknown zone {zone!r}"
        )
        raise static.UnknownLocationError(
            f"{what}: a zone starts with its country's ISO code ({reason}); write e.g. "
            f"{_write(settings, 'zone', 'DK-DK1')}, or one such as 'SE-SE3' or 'US-CAL-CISO'"
        ) from None


def _clouds_with(region: str) -> list[str]:
    """The clouds that have a region of this name."""
    found = []
    for cloud in _CLOUD_EXAMPLES:
        try:
            static.cloud_region(cloud, region)
        except static.UnknownLocationError:
            continue
        found.append(cloud)
    return found


def _region_example(cloud: str) -> str:
    """A region of ``cloud`` (any of its names), for a message; an AWS one when it is unknown."""
    for example in _CLOUD_EXAMPLES.values():
        try:
            return static.cloud_region(cloud, example).region
        except static.UnknownLocationError:
            continue
    return _CLOUD_EXAMPLES["aws"]


def _from_variable(
    error: static.UnknownLocationError,
    settings: IntensitySettings,
    env: Mapping[str, str],
    *names: str,
) -> static.UnknownLocationError:
    """``error`` as is for arguments; for variables, naming them and written in their form.

    The lookup's message says e.g. ``write country='SE'``: for a value from
    ``CARBON_CALLBACKS_COUNTRY`` that becomes ``write CARBON_CALLBACKS_COUNTRY=SE``.
    """
    from_variables = [name for name in names if name in settings.sources]
    if not from_variables:
        return error
    text = str(error)
    for name in from_variables:
        text = re.sub(rf"\b{name}='([^']*)'", rf"{settings.sources[name]}=\1", text)
    given = ", ".join(_given(settings, name, env) for name in from_variables)
    return static.UnknownLocationError(f"{given}: {text}")


def _named(settings: IntensitySettings, name: str) -> str:
    """Where a setting came from: its variable, else the argument ``name``."""
    return settings.sources.get(name, name)


def _given(settings: IntensitySettings, name: str, env: Mapping[str, str]) -> str:
    """``CARBON_CALLBACKS_ZONE='QQ-1'`` (as written) or ``zone='QQ-1'``: a value and its source."""
    variable = settings.sources.get(name)
    if variable is not None:
        return f"{variable}={env.get(variable)!r}"
    return f"{name}={getattr(settings, name)!r}"


def _write(settings: IntensitySettings, name: str, value: str) -> str:
    """What to write for the setting ``name``, in the form (variable or argument) it came in."""
    return _assignment(name, value, name in settings.sources)


def _assignment(name: str, value: str, by_variable: bool) -> str:
    """``CARBON_CALLBACKS_ZONE=DK-DK1`` or ``zone='DK-DK1'``."""
    return f"{ENV_PREFIX}{name.upper()}={value}" if by_variable else f"{name}={value!r}"


def _note_source(name: str, value: object, sources: dict[str, str]) -> None:
    """Record that the setting ``name`` came from its variable, when the variable gave a value."""
    if value is not None:
        sources[name] = ENV_PREFIX + name.upper()


def _text(
    name: str, value: object, env: Mapping[str, str], sources: dict[str, str], *, upper: bool
) -> str | None:
    """A location argument, else its variable (blank is unset), stripped; codes upper-cased."""
    raw = value
    if raw is None:
        raw = env_text(name, env)
        _note_source(name, raw, sources)
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise TypeError(f"{name} must be a string, got {raw!r}; write e.g. {name}='SE'")
    text = raw.strip()
    if not text:
        return None
    return text.upper() if upper else text
