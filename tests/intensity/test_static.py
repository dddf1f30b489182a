"""The embedded yearly, cloud-region and time-zone lookups, checked against the raw source files."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from carbon_callbacks.intensity import static
from carbon_callbacks.intensity.base import IntensityValue

ROOT = Path(__file__).resolve().parents[2]
RAW = ROOT / "data" / "raw"
OWID_COLUMN = "Carbon intensity of electricity - gCO2/kWh"
GOOGLE_COLUMN = "Grid carbon intensity (gCO2eq / kWh)"


def raw_rows(name: str) -> list[dict[str, str]]:
    with (RAW / name).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def owid_latest() -> dict[tuple[str, str], tuple[int, float]]:
    """(code, entity) -> (latest year with a value > 0, that value), read from the raw file."""
    latest: dict[tuple[str, str], tuple[int, float]] = {}
    for row in raw_rows("owid-carbon-intensity-electricity.csv"):
        key = (row["Code"], row["Entity"])
        year, value = int(row["Year"]), float(row[OWID_COLUMN])
        if value > 0 and (key not in latest or year > latest[key][0]):
            latest[key] = (year, value)
    return latest


def owid_code(code: str) -> tuple[int, float]:
    return next(value for (c, _entity), value in owid_latest().items() if c == code)


def test_sweden_and_poland_match_the_raw_file() -> None:
    se_year, se_raw = owid_code("SWE")
    pl_year, pl_raw = owid_code("POL")
    se, pl = static.country("SE"), static.country("PL")
    assert (se.code, se.alpha3, se.name, se.year) == ("SE", "SWE", "Sweden", se_year)
    assert (pl.code, pl.alpha3, pl.name, pl.year) == ("PL", "POL", "Poland", pl_year)
    assert se.g_per_kwh == round(se_raw, 2)
    assert pl.g_per_kwh == round(pl_raw, 2)
    assert se.g_per_kwh < 100 < 500 < pl.g_per_kwh
    assert pl.g_per_kwh / se.g_per_kwh == pytest.approx(pl_raw / se_raw, rel=1e-3)


def test_every_iso_country_is_its_latest_positive_year() -> None:
    """Zeros (Burundi, Central African Republic) are skipped, not taken as clean grids."""
    for (code, entity), (year, value) in owid_latest().items():
        if not code or code.startswith("OWID_"):
            continue
        entry = static.country(code)
        assert (entry.alpha3, entry.year) == (code, year), entity
        assert entry.g_per_kwh == pytest.approx(value, abs=0.005), entity
    assert static.country("CAF").g_per_kwh > 0
    assert static.country("BDI").g_per_kwh > 0


def test_value_carries_provenance() -> None:
    se = static.country("SE")
    assert se.value() == IntensityValue(
        se.g_per_kwh,
        f"Our World in Data (Ember, Energy Institute), {se.year}",
        zone="SE",
        basis="lifecycle",
        year=se.year,
    )
    guessed = se.value(guessed_location=True, fallback="live API failed")
    assert (guessed.guessed_location, guessed.fallback, guessed.estimated) == (
        True,
        "live API failed",
        False,
    )


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("SE", "SE"),
        ("se", "SE"),
        ("SWE", "SE"),
        ("swe", "SE"),
        ("SWE ", "SE"),
        ("  Sweden ", "SE"),
        ("SWEDEN", "SE"),
        ("Türkiye", "TR"),
        ("turkiye", "TR"),
        ("Turkey", "TR"),
        ("Russia", "RU"),
        ("Russian Federation", "RU"),
        ("Côte d'Ivoire", "CI"),
        ("United Kingdom", "GB"),
        ("UK", "GB"),
        ("XK", "XK"),
        ("Kosovo", "XK"),
        ("world", "WORLD"),
        ("WORLD", "WORLD"),
        ("eu", "EU"),
        ("European Union (27)", "EU"),
        ("european union", "EU"),
    ],
)
def test_country_accepts_codes_and_names(query: str, code: str) -> None:
    assert static.country(query).code == code


def test_world_and_european_union_match_the_raw_file() -> None:
    latest = owid_latest()
    world_year, world_raw = latest["OWID_WRL", "World"]
    eu_year, eu_raw = latest["", "European Union (27)"]
    world, eu = static.world(), static.european_union()
    assert (world.code, world.alpha3, world.year) == ("WORLD", None, world_year)
    assert (eu.code, eu.alpha3, eu.year) == ("EU", None, eu_year)
    assert world.g_per_kwh == round(world_raw, 2)
    assert eu.g_per_kwh == round(eu_raw, 2)
    assert world.value().zone == "WORLD"
    assert static.country("World") == world


def test_mistyped_code_suggests_the_right_one() -> None:
    with pytest.raises(static.UnknownLocationError) as info:
        static.country("SWD")
    assert str(info.value) == (
        "unknown country 'SWD'; did you mean 'SE' (Sweden), 'SZ' (Eswatini) or 'SD' (Sudan)?"
        " write country='SE' (an ISO 3166 alpha-2 or alpha-3 code, an English name, 'WORLD'"
        " or 'EU')"
    )
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("query", ["XX", "", "Atlantis", "QQQ"])
def test_unknown_country_raises_saying_what_to_write(query: str) -> None:
    with pytest.raises(static.UnknownLocationError, match=r"unknown country .*write .*country="):
        static.country(query)


def test_misspelt_name_suggests_the_country() -> None:
    with pytest.raises(static.UnknownLocationError, match=r"did you mean 'DE' \(Germany\)"):
        static.country("Germny")


@pytest.mark.parametrize(("query", "name"), [("AQ", "Antarctica"), ("MCO", "Monaco")])
def test_iso_country_without_data_says_so(query: str, name: str) -> None:
    with pytest.raises(static.UnknownLocationError) as info:
        static.country(query)
    message = str(info.value)
    assert message.startswith(f"no carbon-intensity data for country {query!r} ({name}")
    assert "country='WORLD'" in message


def test_attributions_are_the_ones_the_sources_require() -> None:
    text = (RAW / "DATA-SOURCES.md").read_text(encoding="utf-8")
    quoted = re.findall(r'\*\*Attribution to show:\*\* "(.+)"', text)
    assert quoted == [static.OWID_ATTRIBUTION, static.GOOGLE_ATTRIBUTION]


def test_gcp_region_is_googles_own_figure() -> None:
    row = next(
        r
        for r in raw_rows("google-cloud-region-carbon-2025.csv")
        if r["Google Cloud Region"] == "europe-north1"
    )
    region = static.cloud_region("gcp", "europe-north1")
    assert region == static.cloud_region(" Google ", "Europe-North1")
    assert (region.cloud, region.country, region.year) == ("gcp", "FI", 2025)
    assert region.g_per_kwh == float(row[GOOGLE_COLUMN])
    assert region.value(fallback="why") == IntensityValue(
        float(row[GOOGLE_COLUMN]),
        "Google Cloud region carbon data, 2025",
        zone="gcp:europe-north1",
        basis="direct",
        year=2025,
        fallback="why",
    )


def test_every_gcp_region_in_the_raw_file_resolves() -> None:
    for row in raw_rows("google-cloud-region-carbon-2025.csv"):
        region = static.cloud_region("gcp", row["Google Cloud Region"])
        assert region.g_per_kwh == float(row[GOOGLE_COLUMN])
    # Published with Location N/A and the German regions' figures.
    assert static.cloud_region("gcp", "europe-west5").country == "DE"


def test_aws_region_takes_its_countrys_value() -> None:
    region = static.cloud_region("aws", "eu-north-1")
    assert region == static.cloud_region("Amazon", "EU-NORTH-1")
    assert (region.country, region.g_per_kwh, region.year) == ("SE", None, None)
    se = static.country("SE").value()
    value = region.value()
    assert (value.g_per_kwh, value.zone, value.basis, value.year) == (
        se.g_per_kwh,
        "SE",
        "lifecycle",
        se.year,
    )
    assert value.source == f"{se.source} (aws eu-north-1 -> SE)"


def test_azure_region_takes_its_countrys_value() -> None:
    region = static.cloud_region("Microsoft", "WestEurope")
    assert (region.cloud, region.region, region.country) == ("azure", "westeurope", "NL")
    value = region.value(fallback="no live data")
    assert value.g_per_kwh == static.country("NL").g_per_kwh
    assert (value.zone, value.fallback) == ("NL", "no live data")


@pytest.mark.parametrize(
    ("cloud", "region", "country"),
    [
        ("aws", "us-east-1", "US"),
        ("aws", "me-central-1", "AE"),
        ("aws", "il-central-1", "IL"),
        ("aws", "ap-southeast-5", "MY"),
        ("aws", "mx-central-1", "MX"),
        ("aws", "ca-west-1", "CA"),
        ("aws", "eu-central-2", "CH"),
        ("azure", "northeurope", "IE"),
        ("azure", "swedencentral", "SE"),
        ("azure", "eastus", "US"),
        ("azure", "uksouth", "GB"),
        ("gcp", "us-east2", "US"),
        ("gcp", "europe-west6", "CH"),
    ],
)
def test_cloud_region_country(cloud: str, region: str, country: str) -> None:
    assert static.cloud_region(cloud, region).country == country


def test_unknown_region_suggests_close_matches() -> None:
    with pytest.raises(static.UnknownLocationError) as info:
        static.cloud_region("aws", "eu-nort-1")
    message = str(info.value)
    assert message.startswith("unknown aws region 'eu-nort-1'; did you mean 'eu-north-1'")
    assert "write region='eu-north-1'" in message


def test_unknown_cloud_suggests_close_match() -> None:
    with pytest.raises(
        static.UnknownLocationError, match=r"unknown cloud 'gpc'; did you mean 'gcp'"
    ):
        static.cloud_region("gpc", "europe-north1")


@pytest.mark.parametrize(
    ("tz", "country"),
    [
        ("Europe/Stockholm", "SE"),
        ("Europe/Kiev", "UA"),
        ("Europe/Kyiv", "UA"),
        ("Asia/Calcutta", "IN"),
        ("US/Pacific", "US"),
        ("America/Argentina/Buenos_Aires", "AR"),
        ("Iceland", "IS"),
        ("Europe/Monaco", "MC"),
        ("Etc/UTC", None),
        ("UTC", None),
        ("GMT", None),
        ("Etc/GMT+2", None),
        ("CET", None),
        ("Nowhere/City", None),
    ],
)
def test_country_for_timezone(tz: str, country: str | None) -> None:
    assert static.country_for_timezone(tz) == country


@pytest.fixture
def missing(tmp_path: Path) -> str:
    return str(tmp_path / "missing")


def fake_localtime(tmp_path: Path, target: str) -> str:
    link = tmp_path / "localtime"
    link.symlink_to(target)
    return str(link)


@pytest.mark.parametrize(
    ("tz", "expected"),
    [
        ("Europe/Stockholm", "Europe/Stockholm"),
        (":Europe/Oslo", "Europe/Oslo"),
        ("/usr/share/zoneinfo/Asia/Tokyo", "Asia/Tokyo"),
        (":/usr/share/zoneinfo/posix/America/New_York", "America/New_York"),
        ("UTC", "UTC"),
        ("CET-1CEST,M3.5.0,M10.5.0/3", None),
        ("", None),
    ],
)
def test_system_timezone_from_tz_variable(tz: str, expected: str | None, missing: str) -> None:
    assert static.system_timezone({"TZ": tz}, missing, missing) == expected


def test_system_timezone_from_localtime_symlink(tmp_path: Path, missing: str) -> None:
    link = fake_localtime(tmp_path, "/usr/share/zoneinfo/Europe/Berlin")
    assert static.system_timezone({}, link, missing) == "Europe/Berlin"
    # A POSIX rule in TZ names no zone: the symlink still does.
    assert static.system_timezone({"TZ": "EST+5EDT,M3.2.0/2,M11.1.0/2"}, link, missing) == (
        "Europe/Berlin"
    )
    # TZ pointing at the symlink itself (a common speed-up) reads its target.
    assert static.system_timezone({"TZ": f":{link}"}, missing, missing) == "Europe/Berlin"


def test_system_timezone_from_relative_symlink(tmp_path: Path, missing: str) -> None:
    link = fake_localtime(tmp_path, "../usr/share/zoneinfo/America/Sao_Paulo")
    assert static.system_timezone({}, link, missing) == "America/Sao_Paulo"


def test_system_timezone_from_timezone_file(tmp_path: Path) -> None:
    regular = tmp_path / "localtime"
    regular.write_bytes(b"TZif2 not a symlink")
    timezone = tmp_path / "timezone"
    timezone.write_text("# comment\n\nEurope/Madrid\n", encoding="utf-8")
    assert static.system_timezone({}, str(regular), str(timezone)) == "Europe/Madrid"


def test_system_timezone_none_when_nothing_usable(tmp_path: Path, missing: str) -> None:
    assert static.system_timezone({}, missing, missing) is None
    garbage = tmp_path / "timezone"
    garbage.write_text("not a zone!\n", encoding="utf-8")
    assert static.system_timezone({}, missing, str(garbage)) is None


def test_system_timezone_reads_os_environ_by_default(
    monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    assert static.system_timezone(localtime=missing, timezone_file=missing) == "Asia/Tokyo"


def test_guess_country(tmp_path: Path, missing: str) -> None:
    assert static.guess_country({"TZ": "Europe/Stockholm"}, missing, missing) == (
        "SE",
        "Europe/Stockholm",
    )
    assert static.guess_country({}, missing, missing) == (None, None)
    utc = fake_localtime(tmp_path, "/usr/share/zoneinfo/Etc/UTC")
    assert static.guess_country({}, utc, missing) == (None, "Etc/UTC")
    timezone = tmp_path / "timezone"
    timezone.write_text("Europe/Kiev\n", encoding="utf-8")
    assert static.guess_country({}, missing, str(timezone)) == ("UA", "Europe/Kiev")
    # TZ wins over the symlink.
    assert static.guess_country({"TZ": "Asia/Calcutta"}, utc, str(timezone)) == (
        "IN",
        "Asia/Calcutta",
    )


def test_import_reads_no_file() -> None:
    """Tables are read on first lookup, through importlib.resources, not at import."""
    code = "\n".join(
        [
            "import importlib.resources as resources",
            "calls = []",
            "real = resources.files",
            "resources.files = lambda *a, **k: calls.append(a) or real(*a, **k)",
            "from carbon_callbacks.intensity import static",
            "assert calls == [], calls",
            "loaders = (static._countries, static._cloud_regions, static._timezones)",
            "assert [f.cache_info().currsize for f in loaders] == [0, 0, 0]",
            "static.country('SE')",
            "assert calls and static._countries.cache_info().currsize == 1",
            "static.country('PL')",
            "assert len(calls) == 2, calls",  # countries.csv and countries_without_data.csv, once
        ]
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env=env)
