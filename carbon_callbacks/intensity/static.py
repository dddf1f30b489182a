"""Embedded, dated intensity data: yearly country averages, cloud regions and time zones.

The tables in ``intensity/data`` are derived from cited source files by
``scripts/build_intensity_data.py``; ``intensity/data/DATA.md`` gives each one's source, licence,
year and basis. They are read on first use and cached, so importing this module reads no file.
Lookups fail fast with :class:`UnknownLocationError`, whose message says what to write instead.
"""

from __future__ import annotations

import difflib
import functools
import itertools
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TypeVar

from carbon_callbacks.intensity.base import IntensityValue

OWID_ATTRIBUTION = (
    "Source: Ember; Energy Institute \u2013 Statistical Review of World Energy \u2013 with major"
    " processing by Our World in Data (CC BY 4.0)."
    " https://ourworldindata.org/grapher/carbon-intensity-electricity"
)
"""Attribution to show wherever a figure from the OWID country table is shown (CC BY 4.0)."""

GOOGLE_ATTRIBUTION = (
    "Source: Google Cloud region carbon data (2025), Apache License 2.0."
    " https://cloud.google.com/sustainability/region-carbon"
)
"""Attribution to show wherever a Google Cloud region figure is shown."""

OWID_SOURCE = "Our World in Data (Ember, Energy Institute)"
"""Short source name for ``IntensityValue.source``; the year is appended."""

GOOGLE_SOURCE = "Google Cloud region carbon data"
"""Short source name for ``IntensityValue.source``; the year is appended."""

_CLOUDS = {
    "gcp": "gcp",
    "google": "gcp",
    "aws": "aws",
    "amazon": "aws",
    "azure": "azure",
    "microsoft": "azure",
}
# ISO 3166-1 exceptionally reserved codes in everyday use.
_CODE_ALIASES = {"UK": "GB"}
_COUNTRY_FORMS = "an ISO 3166 alpha-2 or alpha-3 code, an English name, 'WORLD' or 'EU'"
_T = TypeVar("_T")
_TZ_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+)*")


class UnknownLocationError(ValueError):
    """A country, cloud or region that the embedded data does not know, or has no figure for."""


@dataclass(frozen=True)
class YearlyIntensity:
    """A yearly average carbon intensity of electricity generation (OWID, lifecycle basis).

    Attributes:
        code: ISO 3166 alpha-2 code, or ``"WORLD"`` / ``"EU"`` for the aggregates.
        alpha3: ISO 3166 alpha-3 code; None for the aggregates and Kosovo (``XK``).
        name: English short name.
        year: The year the figure is for: the latest one published for this country.
        g_per_kwh: Grams of CO2e per kWh, lifecycle basis.
    """

    code: str
    alpha3: str | None
    name: str
    year: int
    g_per_kwh: float

    def value(
        self, *, guessed_location: bool = False, fallback: str | None = None
    ) -> IntensityValue:
        """The figure with its provenance, as the tracker records it."""
        return IntensityValue(
            self.g_per_kwh,
            f"{OWID_SOURCE}, {self.year}",
            zone=self.code,
            basis="lifecycle",
            year=self.year,
            estimated=False,
            guessed_location=guessed_location,
            fallback=fallback,
        )


@dataclass(frozen=True)
class CloudRegion:
    """A cloud provider's region and where it is.

    Attributes:
        cloud: ``"gcp"``, ``"aws"`` or ``"azure"``.
        region: The provider's region name, e.g. ``"europe-north1"``, ``"eu-north-1"``.
        country: ISO 3166 alpha-2 code of the country the region is in.
        location: Where the region is, in words.
        g_per_kwh: Google's own figure for the region's grid (operational basis); None for AWS and
            Azure, whose regions take their country's yearly figure.
        year: The year of ``g_per_kwh``; None when it is None.
    """

    cloud: str
    region: str
    country: str
    location: str
    g_per_kwh: float | None
    year: int | None

    def value(self, *, fallback: str | None = None) -> IntensityValue:
        """The region's figure with its provenance: Google's own, else its country's."""
        if self.g_per_kwh is not None and self.year is not None:
            return IntensityValue(
                self.g_per_kwh,
                f"{GOOGLE_SOURCE}, {self.year}",
                zone=f"{self.cloud}:{self.region}",
                basis="direct",
                year=self.year,
                fallback=fallback,
            )
        base = country(self.country).value(fallback=fallback)
        return replace(base, source=f"{base.source} ({self.cloud} {self.region} -> {self.country})")


@dataclass(frozen=True)
class _CountryTable:
    """The country table indexed for lookup by code and by folded name."""

    by_code: dict[str, YearlyIntensity]
    by_name: dict[str, YearlyIntensity]
    no_data: dict[str, tuple[str, str]]
    """ISO countries without a figure: upper-case code or folded name -> (alpha-2, name)."""


def _read_table(name: str) -> list[dict[str, str]]:
    """Rows of one packaged CSV table."""
    import csv  # the table loaders run once; importing these at module import would not
    import io
    from importlib import resources

    text = (resources.files("carbon_callbacks.intensity") / "data" / name).read_text("utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def _fold(text: str) -> str:
    """Case-, accent- and space-insensitive form of a name: ``"Türkiye"`` -> ``"turkiye"``."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(bare.casefold().split())


def _name_keys(name: str) -> list[str]:
    """Folded forms a name is found by: whole, and without a trailing ``(...)`` qualifier."""
    folded = _fold(name)
    short = re.sub(r"\s*\(.*\)$", "", folded)
    return [folded, short] if short and short != folded else [folded]


@functools.cache
def _countries() -> _CountryTable:
    """Load and index countries.csv and countries_without_data.csv, once."""
    by_code: dict[str, YearlyIntensity] = {}
    by_name: dict[str, YearlyIntensity] = {}
    for row in _read_table("countries.csv"):
        entry = YearlyIntensity(
            code=row["alpha2"],
            alpha3=row["alpha3"] or None,
            name=row["name"],
            year=int(row["year"]),
            g_per_kwh=float(row["g_per_kwh"]),
        )
        by_code[entry.code] = entry
        if entry.alpha3:
            by_code[entry.alpha3] = entry
        for key in (*_name_keys(entry.name), *_name_keys(row["owid_entity"])):
            by_name.setdefault(key, entry)
    no_data: dict[str, tuple[str, str]] = {}
    for row in _read_table("countries_without_data.csv"):
        found = (row["alpha2"], row["name"])
        for key in (row["alpha2"], row["alpha3"], *_name_keys(row["name"])):
            no_data.setdefault(key, found)
    return _CountryTable(by_code, by_name, no_data)


@functools.cache
def _cloud_regions() -> dict[str, dict[str, CloudRegion]]:
    """Load cloud_regions.csv, once: cloud -> region -> entry."""
    table: dict[str, dict[str, CloudRegion]] = {}
    for row in _read_table("cloud_regions.csv"):
        entry = CloudRegion(
            cloud=row["cloud"],
            region=row["region"],
            country=row["country"],
            location=row["location"],
            g_per_kwh=float(row["g_per_kwh"]) if row["g_per_kwh"] else None,
            year=int(row["year"]) if row["year"] else None,
        )
        table.setdefault(entry.cloud, {})[entry.region] = entry
    return table


@functools.cache
def _timezones() -> dict[str, str]:
    """Load timezones.csv, once: IANA name -> alpha-2."""
    return {row["tz"]: row["country"] for row in _read_table("timezones.csv")}


def _closest(candidates: Iterable[tuple[str, str, _T]], limit: int = 3) -> list[_T]:
    """Up to ``limit`` distinct items whose key is most like the query (difflib ratio >= 0.6).

    Each candidate is ``(query, key, item)``, so codes and names can be compared with the query
    normalised their own way (upper-case vs folded). Ties go to the longer common prefix, as
    typos tend to be late in a word: ``SWD`` ranks ``SWE`` before ``SDN``.
    """
    scored: list[tuple[float, str, _T]] = []
    for query, key, item in candidates:
        ratio = difflib.SequenceMatcher(None, query, key).ratio()
        if ratio >= 0.6:
            pairs = zip(query, key, strict=False)
            prefix = sum(1 for _ in itertools.takewhile(lambda pair: pair[0] == pair[1], pairs))
            scored.append((ratio + prefix / 1000, key, item))
    scored.sort(key=lambda entry: (-entry[0], entry[1]))
    picked: list[_T] = []
    for _ratio, _key, item in scored:
        if item not in picked:
            picked.append(item)
    return picked[:limit]


def _did_you_mean(options: list[str]) -> str:
    """``"did you mean 'SE' (Sweden) or 'SZ' (Eswatini)? "``, or nothing."""
    if not options:
        return ""
    listed = options[0] if len(options) == 1 else f"{', '.join(options[:-1])} or {options[-1]}"
    return f"did you mean {listed}? "


def country(code: str) -> YearlyIntensity:
    """The latest yearly figure for a country or aggregate.

    Args:
        code: ISO 3166 alpha-2 or alpha-3 code (any case, surrounding spaces ignored; ``UK`` is
            taken as ``GB``), an English name (case- and accent-insensitive; the ISO short name
            or OWID's, e.g. ``"Russia"``), ``"WORLD"`` or ``"EU"``.

    Raises:
        UnknownLocationError: Not a known code or name, or a real country with no published figure.
    """
    table = _countries()
    query = code.strip()
    upper = _CODE_ALIASES.get(query.upper(), query.upper())
    found = table.by_code.get(upper) or table.by_name.get(_fold(query))
    if found is not None:
        return found
    missing = table.no_data.get(upper) or table.no_data.get(_fold(query))
    if missing is not None:
        alpha2, name = missing
        raise UnknownLocationError(
            f"no carbon-intensity data for country {code!r} ({name}, {alpha2}) in {OWID_SOURCE};"
            " write country='WORLD' for the world average, or give the intensity in gCO2e/kWh"
            " yourself (intensity_g_per_kwh=...)"
        )
    # A code is compared with codes of its own length: "SWD" is a mistyped alpha-3, not "SD".
    candidates = [
        (upper, key, entry) for key, entry in table.by_code.items() if len(key) == len(upper)
    ]
    candidates += [(_fold(query), key, entry) for key, entry in table.by_name.items()]
    close = _closest(candidates)
    write = f"country={close[0].code!r}" if close else "e.g. country='SE'"
    raise UnknownLocationError(
        f"unknown country {code!r}; "
        + _did_you_mean([f"{entry.code!r} ({entry.name})" for entry in close])
        + f"write {write} ({_COUNTRY_FORMS})"
    )


def world() -> YearlyIntensity:
    """The world average (OWID ``World``)."""
    return country("WORLD")


def european_union() -> YearlyIntensity:
    """The European Union average (OWID ``European Union (27)``)."""
    return country("EU")


def cloud_region(cloud: str, region: str) -> CloudRegion:
    """A cloud region by provider and name.

    Args:
        cloud: ``gcp``/``google``, ``aws``/``amazon`` or ``azure``/``microsoft``, any case.
        region: The provider's region name, any case, e.g. ``"eu-north-1"``.

    Raises:
        UnknownLocationError: Unknown provider or region; the message lists close matches.
    """
    name = _CLOUDS.get(cloud.strip().lower())
    if name is None:
        alias = difflib.get_close_matches(cloud.strip().lower(), _CLOUDS, n=1)
        guess = _did_you_mean([repr(_CLOUDS[alias[0]])]) if alias else ""
        raise UnknownLocationError(
            f"unknown cloud {cloud!r}; {guess}write cloud='gcp', cloud='aws' or cloud='azure'"
        )
    regions = _cloud_regions()[name]
    query = region.strip().lower()
    found = regions.get(query)
    if found is not None:
        return found
    close = _closest((query, key, entry) for key, entry in regions.items())
    example = close[0].region if close else next(iter(regions))
    options = [f"{entry.region!r} ({entry.location}, {entry.country})" for entry in close]
    raise UnknownLocationError(
        f"unknown {name} region {region!r}; "
        + _did_you_mean(options)
        + f"write region={example!r} (the provider's region name; {len(regions)} known)"
    )


def cloud_regions(cloud: str) -> Mapping[str, CloudRegion]:
    """The known regions of ``cloud`` (``gcp``, ``aws``, ``azure`` or an alias), by name.

    Empty for an unknown cloud.
    """
    name = _CLOUDS.get(cloud.strip().lower())
    return dict(_cloud_regions().get(name, {})) if name is not None else {}


def country_for_timezone(tz_name: str) -> str | None:
    """The ISO alpha-2 code of the country an IANA time zone is in, e.g. ``Europe/Kiev`` -> UA.

    Returns:
        None for zones with no country (``UTC``, ``Etc/GMT+2``) and for unknown names.
    """
    return _timezones().get(tz_name.strip())


def system_timezone(
    environ: Mapping[str, str] | None = None,
    localtime: str = "/etc/localtime",
    timezone_file: str = "/etc/timezone",
) -> str | None:
    """The IANA name of this machine's time zone, found offline.

    Tries, in order: the ``TZ`` variable (``Europe/Oslo``, ``:Europe/Oslo`` or a path under a
    ``zoneinfo/`` directory; a POSIX rule such as ``CET-1CEST,M3.5.0,M10.5.0/3`` names no zone
    and is skipped), the target of the ``localtime`` symlink, then the ``timezone_file`` contents.

    Args:
        environ: Environment to read ``TZ`` from; ``os.environ`` when None.
        localtime: The symlink to a zoneinfo file, as on most Linux and macOS systems.
        timezone_file: A file holding the zone name, as on Debian and Ubuntu.

    Returns:
        The zone name, or None when nothing usable was found.
    """
    env = os.environ if environ is None else environ
    tz = env.get("TZ", "").strip().removeprefix(":")
    if tz.startswith("/"):
        from_tz = _zone_after_zoneinfo(tz) or _zone_from_link(tz)
    else:
        from_tz = tz if _TZ_NAME.fullmatch(tz) else None
    return from_tz or _zone_from_link(localtime) or _zone_from_file(timezone_file)


def guess_country(
    environ: Mapping[str, str] | None = None,
    localtime: str = "/etc/localtime",
    timezone_file: str = "/etc/timezone",
) -> tuple[str | None, str | None]:
    """Guess the country from the system time zone (see :func:`system_timezone`), offline.

    Returns:
        ``(alpha-2 code or None, time-zone name or None)``: the zone is returned even when it
        names no country (``Etc/UTC``), so the caller can say why the guess failed.
    """
    tz = system_timezone(environ, localtime, timezone_file)
    return (country_for_timezone(tz) if tz is not None else None), tz


def _zone_after_zoneinfo(path: str) -> str | None:
    """``/usr/share/zoneinfo/posix/Europe/Oslo`` -> ``Europe/Oslo``; None without ``zoneinfo/``."""
    marker = path.rfind("zoneinfo/")
    if marker < 0:
        return None
    name = path[marker + len("zoneinfo/") :]
    for prefix in ("posix/", "right/"):
        name = name.removeprefix(prefix)
    return name if _TZ_NAME.fullmatch(name) else None


def _zone_from_link(path: str) -> str | None:
    """The zone a symlink such as ``/etc/localtime`` points at; None if it is not one."""
    try:
        target = os.readlink(path)
    except OSError:
        return None
    return _zone_after_zoneinfo(target) or _zone_after_zoneinfo(os.path.realpath(path))


def _zone_from_file(path: str) -> str | None:
    """The zone named on the first meaningful line of a file such as ``/etc/timezone``."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = [line.strip() for line in handle]
    except (OSError, UnicodeDecodeError):
        return None
    for line in lines:
        if line and not line.startswith("#"):
            return line if _TZ_NAME.fullmatch(line) else None
    return None
