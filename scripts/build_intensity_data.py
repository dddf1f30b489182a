"""Derive the package's static intensity tables from the raw, dated source files in ``data/raw``.

The tables under ``carbon_callbacks/intensity/data`` are never edited by hand: this script rebuilds
them, byte for byte, from the unmodified published files, so every figure can be traced to its
source. Run from the repository root::

    python scripts/build_intensity_data.py           # rewrite the tables
    python scripts/build_intensity_data.py --check   # exit 1 when the committed tables differ

``pycountry`` is a development-only dependency (the ``test`` extra): it maps OWID's ISO 3166
alpha-3 codes to alpha-2 codes and English names here, at build time. The package never imports it.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import re
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pycountry

ROOT = Path(__file__).resolve().parent.parent
RAW_DIR = ROOT / "data" / "raw"
OUT_DIR = ROOT / "carbon_callbacks" / "intensity" / "data"
COMMAND = "python scripts/build_intensity_data.py"

OWID_FILE = "owid-carbon-intensity-electricity.csv"
GOOGLE_FILE = "google-cloud-region-carbon-2025.csv"
GOOGLE_YEAR = 2025
SOURCES_FILE = "DATA-SOURCES.md"
ZONE_TAB = "tz/zone.tab"
TZDATA_ZI = "tz/tzdata.zi"

OWID_VALUE_COLUMN = "Carbon intensity of electricity - gCO2/kWh"
GOOGLE_VALUE_COLUMN = "Grid carbon intensity (gCO2eq / kWh)"

# OWID rows that are not ISO countries but are kept, as (code in OWID, entity) -> (code, name).
OWID_SPECIAL = {
    ("OWID_WRL", "World"): ("WORLD", "World"),
    ("", "European Union (27)"): ("EU", "European Union (27)"),
}
# Kosovo has no ISO 3166 code; XK is the user-assigned alpha-2 code in common use (no alpha-3).
OWID_KOSOVO = ("OWID_KOS", "XK", "Kosovo")

# Google Cloud regions: region -> (Location as published, country alpha-2, location to write).
# The published Location is checked, so a renamed or new region fails the build until mapped.
GCP_REGIONS: dict[str, tuple[str, str, str]] = {
    "africa-south1": ("Johannesburg", "ZA", "Johannesburg"),
    "asia-east1": ("Taiwan", "TW", "Taiwan"),
    "asia-east2": ("Hong Kong", "HK", "Hong Kong"),
    "asia-northeast1": ("Tokyo", "JP", "Tokyo"),
    "asia-northeast2": ("Osaka", "JP", "Osaka"),
    "asia-northeast3": ("Seoul", "KR", "Seoul"),
    "asia-south1": ("Mumbai", "IN", "Mumbai"),
    "asia-south2": ("Delhi", "IN", "Delhi"),
    "asia-southeast1": ("Singapore", "SG", "Singapore"),
    "asia-southeast2": ("Jakarta", "ID", "Jakarta"),
    "asia-southeast3": ("Bangkok", "TH", "Bangkok"),
    "australia-southeast1": ("Sydney", "AU", "Sydney"),
    "australia-southeast2": ("Melbourne", "AU", "Melbourne"),
    "europe-central2": ("Warsaw", "PL", "Warsaw"),
    "europe-north1": ("Finland", "FI", "Finland"),
    "europe-north2": ("Stockholm", "SE", "Stockholm"),
    "europe-southwest1": ("Madrid", "ES", "Madrid"),
    "europe-west1": ("Belgium", "BE", "Belgium"),
    "europe-west2": ("London", "GB", "London"),
    "europe-west3": ("Frankfurt", "DE", "Frankfurt"),
    "europe-west4": ("Eemshaven", "NL", "Eemshaven"),
    # Published without a location. Its figures (CFE 0.7, 275.81 g/kWh) are those of europe-west3
    # and europe-west10, which Google gives per grid, so it is on the German grid. Zurich is
    # europe-west6 (21.2 g/kWh).
    "europe-west5": ("N/A", "DE", "N/A (German grid)"),
    "europe-west6": ("Zürich", "CH", "Zürich"),
    "europe-west8": ("Milan", "IT", "Milan"),
    "europe-west9": ("Paris", "FR", "Paris"),
    "europe-west10": ("Berlin", "DE", "Berlin"),
    "europe-west12": ("Turin", "IT", "Turin"),
    "me-central1": ("Doha", "QA", "Doha"),
    "me-central2": ("Dammam", "SA", "Dammam"),
    "me-west1": ("Tel Aviv", "IL", "Tel Aviv"),
    "northamerica-northeast1": ("Montréal", "CA", "Montréal"),
    "northamerica-northeast2": ("Toronto", "CA", "Toronto"),
    "northamerica-south1": ("Mexico", "MX", "Mexico"),
    "southamerica-east1": ("Sāo Paulo", "BR", "São Paulo"),
    "southamerica-west1": ("Santiago", "CL", "Santiago"),
    "us-central1": ("Iowa", "US", "Iowa"),
    "us-central2": ("Oklahoma", "US", "Oklahoma"),
    "us-east1": ("South Carolina", "US", "South Carolina"),
    "us-east2": ("Georgia", "US", "Georgia (US state)"),
    "us-east4": ("Northern Virginia", "US", "Northern Virginia"),
    "us-east5": ("Columbus", "US", "Columbus"),
    "us-east7": ("Alabama and Tennessee", "US", "Alabama and Tennessee"),
    "us-south1": ("Dallas", "US", "Dallas"),
    "us-west1": ("Oregon", "US", "Oregon"),
    "us-west2": ("Los Angeles", "US", "Los Angeles"),
    "us-west3": ("Salt Lake City", "US", "Salt Lake City"),
    "us-west4": ("Las Vegas", "US", "Las Vegas"),
}

# AWS regions (commercial, GovCloud and China partitions): region -> (country, AWS region name).
AWS_REGIONS: dict[str, tuple[str, str]] = {
    "af-south-1": ("ZA", "Africa (Cape Town)"),
    "ap-east-1": ("HK", "Asia Pacific (Hong Kong)"),
    "ap-east-2": ("TW", "Asia Pacific (Taipei)"),
    "ap-northeast-1": ("JP", "Asia Pacific (Tokyo)"),
    "ap-northeast-2": ("KR", "Asia Pacific (Seoul)"),
    "ap-northeast-3": ("JP", "Asia Pacific (Osaka)"),
    "ap-south-1": ("IN", "Asia Pacific (Mumbai)"),
    "ap-south-2": ("IN", "Asia Pacific (Hyderabad)"),
    "ap-southeast-1": ("SG", "Asia Pacific (Singapore)"),
    "ap-southeast-2": ("AU", "Asia Pacific (Sydney)"),
    "ap-southeast-3": ("ID", "Asia Pacific (Jakarta)"),
    "ap-southeast-4": ("AU", "Asia Pacific (Melbourne)"),
    "ap-southeast-5": ("MY", "Asia Pacific (Malaysia)"),
    "ap-southeast-6": ("NZ", "Asia Pacific (New Zealand)"),
    "ap-southeast-7": ("TH", "Asia Pacific (Thailand)"),
    "ca-central-1": ("CA", "Canada (Central)"),
    "ca-west-1": ("CA", "Canada West (Calgary)"),
    "cn-north-1": ("CN", "China (Beijing)"),
    "cn-northwest-1": ("CN", "China (Ningxia)"),
    "eu-central-1": ("DE", "Europe (Frankfurt)"),
    "eu-central-2": ("CH", "Europe (Zurich)"),
    "eu-north-1": ("SE", "Europe (Stockholm)"),
    "eu-south-1": ("IT", "Europe (Milan)"),
    "eu-south-2": ("ES", "Europe (Spain)"),
    "eu-west-1": ("IE", "Europe (Ireland)"),
    "eu-west-2": ("GB", "Europe (London)"),
    "eu-west-3": ("FR", "Europe (Paris)"),
    "il-central-1": ("IL", "Israel (Tel Aviv)"),
    "me-central-1": ("AE", "Middle East (UAE)"),
    "me-south-1": ("BH", "Middle East (Bahrain)"),
    "mx-central-1": ("MX", "Mexico (Central)"),
    "sa-east-1": ("BR", "South America (São Paulo)"),
    "us-east-1": ("US", "US East (N. Virginia)"),
    "us-east-2": ("US", "US East (Ohio)"),
    "us-gov-east-1": ("US", "AWS GovCloud (US-East)"),
    "us-gov-west-1": ("US", "AWS GovCloud (US-West)"),
    "us-west-1": ("US", "US West (N. California)"),
    "us-west-2": ("US", "US West (Oregon)"),
}

# Azure regions (public, US Government and China clouds): region -> (country, "Name (place)").
AZURE_REGIONS: dict[str, tuple[str, str]] = {
    "australiacentral": ("AU", "Australia Central (Canberra)"),
    "australiacentral2": ("AU", "Australia Central 2 (Canberra)"),
    "australiaeast": ("AU", "Australia East (New South Wales)"),
    "australiasoutheast": ("AU", "Australia Southeast (Victoria)"),
    "brazilsouth": ("BR", "Brazil South (São Paulo State)"),
    "brazilsoutheast": ("BR", "Brazil Southeast (Rio de Janeiro)"),
    "canadacentral": ("CA", "Canada Central (Toronto)"),
    "canadaeast": ("CA", "Canada East (Quebec City)"),
    "centralindia": ("IN", "Central India (Pune)"),
    "centralus": ("US", "Central US (Iowa)"),
    "chilecentral": ("CL", "Chile Central (Santiago)"),
    "chinaeast": ("CN", "China East (Shanghai)"),
    "chinaeast2": ("CN", "China East 2 (Shanghai)"),
    "chinaeast3": ("CN", "China East 3 (Jiangsu)"),
    "chinanorth": ("CN", "China North (Beijing)"),
    "chinanorth2": ("CN", "China North 2 (Beijing)"),
    "chinanorth3": ("CN", "China North 3 (Hebei)"),
    "eastasia": ("HK", "East Asia (Hong Kong)"),
    "eastus": ("US", "East US (Virginia)"),
    "eastus2": ("US", "East US 2 (Virginia)"),
    "francecentral": ("FR", "France Central (Paris)"),
    "francesouth": ("FR", "France South (Marseille)"),
    "germanynorth": ("DE", "Germany North (Berlin)"),
    "germanywestcentral": ("DE", "Germany West Central (Frankfurt)"),
    "indonesiacentral": ("ID", "Indonesia Central (Jakarta)"),
    "israelcentral": ("IL", "Israel Central (Israel)"),
    "italynorth": ("IT", "Italy North (Milan)"),
    "japaneast": ("JP", "Japan East (Tokyo, Saitama)"),
    "japanwest": ("JP", "Japan West (Osaka)"),
    "jioindiacentral": ("IN", "Jio India Central (Nagpur)"),
    "jioindiawest": ("IN", "Jio India West (Jamnagar)"),
    "koreacentral": ("KR", "Korea Central (Seoul)"),
    "koreasouth": ("KR", "Korea South (Busan)"),
    "malaysiawest": ("MY", "Malaysia West (Kuala Lumpur)"),
    "mexicocentral": ("MX", "Mexico Central (Querétaro State)"),
    "newzealandnorth": ("NZ", "New Zealand North (Auckland)"),
    "northcentralus": ("US", "North Central US (Illinois)"),
    "northeurope": ("IE", "North Europe (Ireland)"),
    "norwayeast": ("NO", "Norway East (Oslo)"),
    "norwaywest": ("NO", "Norway West (Stavanger)"),
    "polandcentral": ("PL", "Poland Central (Warsaw)"),
    "qatarcentral": ("QA", "Qatar Central (Doha)"),
    "southafricanorth": ("ZA", "South Africa North (Johannesburg)"),
    "southafricawest": ("ZA", "South Africa West (Cape Town)"),
    "southcentralus": ("US", "South Central US (Texas)"),
    "southeastasia": ("SG", "Southeast Asia (Singapore)"),
    "southindia": ("IN", "South India (Chennai)"),
    "spaincentral": ("ES", "Spain Central (Madrid)"),
    "swedencentral": ("SE", "Sweden Central (Gävle)"),
    "swedensouth": ("SE", "Sweden South (Staffanstorp)"),
    "switzerlandnorth": ("CH", "Switzerland North (Zurich)"),
    "switzerlandwest": ("CH", "Switzerland West (Geneva)"),
    "uaecentral": ("AE", "UAE Central (Abu Dhabi)"),
    "uaenorth": ("AE", "UAE North (Dubai)"),
    "uksouth": ("GB", "UK South (London)"),
    "ukwest": ("GB", "UK West (Cardiff)"),
    "usgovarizona": ("US", "US Gov Arizona"),
    "usgovtexas": ("US", "US Gov Texas"),
    "usgovvirginia": ("US", "US Gov Virginia"),
    "westcentralus": ("US", "West Central US (Wyoming)"),
    "westeurope": ("NL", "West Europe (Netherlands)"),
    "westindia": ("IN", "West India (Mumbai)"),
    "westus": ("US", "West US (California)"),
    "westus2": ("US", "West US 2 (Washington)"),
    "westus3": ("US", "West US 3 (Arizona)"),
}

# Link names whose tzdata target lies in another country (zones merged across borders since
# 2022): the link's own place decides. Names not in this map take their target's country.
TZ_LINK_COUNTRY = {
    "Africa/Asmera": "ER",  # -> Africa/Nairobi (KE)
    "Africa/Timbuktu": "ML",  # -> Africa/Abidjan (CI)
    "America/Coral_Harbour": "CA",  # -> America/Panama (PA)
    "America/Virgin": "VI",  # -> America/Puerto_Rico (PR)
    "Antarctica/South_Pole": "AQ",  # -> Pacific/Auckland (NZ)
    "Atlantic/Jan_Mayen": "SJ",  # -> Europe/Berlin (DE)
    "Iceland": "IS",  # -> Africa/Abidjan (CI)
    "Pacific/Johnston": "UM",  # -> Pacific/Honolulu (US)
    "Pacific/Ponape": "FM",  # -> Pacific/Guadalcanal (SB)
    "Pacific/Truk": "FM",  # -> Pacific/Port_Moresby (PG)
    "Pacific/Yap": "FM",  # -> Pacific/Port_Moresby (PG)
}


class BuildError(Exception):
    """The raw files do not match what this script expects; the mapping needs a human."""


@dataclass(frozen=True)
class CountryRow:
    """One row of countries.csv."""

    alpha2: str
    alpha3: str
    name: str
    year: int
    g_per_kwh: Decimal
    entity: str


def read_csv(path: Path) -> list[dict[str, str]]:
    """Read a CSV file (any line endings) into dicts keyed by the header."""
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def write_csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Render rows as CSV text with LF line endings, so the output is the same on every OS."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def round2(text: str) -> Decimal:
    """Round a decimal string to 2 places, half up, exactly (no binary floating point)."""
    return Decimal(text).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def country_name(country: pycountry.db.Country) -> str:
    """English short name from a pycountry record: its common name when it has one."""
    common = getattr(country, "common_name", None)
    return str(common) if common is not None else country.name


def latest_positive(rows: list[dict[str, str]]) -> dict[tuple[str, str], tuple[int, Decimal]]:
    """Latest year with a value > 0 for each (code, entity); zeros are gaps, not clean grids."""
    latest: dict[tuple[str, str], tuple[int, Decimal]] = {}
    for row in rows:
        value = Decimal(row[OWID_VALUE_COLUMN])
        if value <= 0:
            continue
        key = (row["Code"], row["Entity"])
        year = int(row["Year"])
        if key not in latest or year > latest[key][0]:
            latest[key] = (year, round2(row[OWID_VALUE_COLUMN]))
    return latest


def zero_entities(raw: Path) -> list[str]:
    """OWID countries that report 0 in some year: the years skipped for them."""
    rows = read_csv(raw / OWID_FILE)
    return sorted(
        {row["Entity"] for row in rows if row["Code"] and Decimal(row[OWID_VALUE_COLUMN]) <= 0}
    )


def owid_countries(raw: Path) -> tuple[list[CountryRow], list[tuple[str, str, str]]]:
    """Rows of countries.csv, and the ISO countries OWID has no positive value for."""
    rows = read_csv(raw / OWID_FILE)
    latest = latest_positive(rows)
    result: list[CountryRow] = []
    for (code, entity), (year, value) in latest.items():
        if (code, entity) in OWID_SPECIAL:
            special, name = OWID_SPECIAL[code, entity]
            result.append(CountryRow(special, "", name, year, value, entity))
        elif code == OWID_KOSOVO[0]:
            result.append(CountryRow(OWID_KOSOVO[1], "", OWID_KOSOVO[2], year, value, entity))
        elif code.startswith("OWID_"):
            raise BuildError(f"unexpected OWID code {code!r} ({entity}): map it or skip it")
        elif code:
            country = pycountry.countries.get(alpha_3=code)
            if country is None:
                raise BuildError(f"{code!r} ({entity}) is not an ISO 3166 alpha-3 code")
            name = country_name(country)
            result.append(CountryRow(country.alpha_2, code, name, year, value, entity))
    missing = [key for key in OWID_SPECIAL if key not in latest]
    if missing:
        raise BuildError(f"OWID rows not found: {missing}")
    result.sort(key=lambda row: row.alpha2)
    present = {row.alpha2 for row in result}
    if len(present) != len(result):
        raise BuildError("two OWID entities map to the same alpha-2 code")
    without = sorted(
        (c.alpha_2, c.alpha_3, country_name(c))
        for c in pycountry.countries
        if c.alpha_2 not in present
    )
    return result, without


def cloud_regions(raw: Path, countries: dict[str, CountryRow]) -> list[tuple[str, ...]]:
    """Rows of cloud_regions.csv: Google's figures, then AWS and Azure regions by country."""
    out: list[tuple[str, ...]] = []
    seen: set[str] = set()
    for row in read_csv(raw / GOOGLE_FILE):
        region = row["Google Cloud Region"]
        if region not in GCP_REGIONS:
            raise BuildError(f"Google region {region!r} is not mapped to a country in this script")
        published, alpha2, location = GCP_REGIONS[region]
        if row["Location"] != published:
            raise BuildError(f"{region}: Location {row['Location']!r}, expected {published!r}")
        value = Decimal(row[GOOGLE_VALUE_COLUMN])
        out.append(("gcp", region, alpha2, location, str(value), str(GOOGLE_YEAR), "direct"))
        seen.add(region)
    stale = sorted(set(GCP_REGIONS) - seen)
    if stale:
        raise BuildError(f"mapped Google regions absent from {GOOGLE_FILE}: {stale}")
    for cloud, mapping in (("aws", AWS_REGIONS), ("azure", AZURE_REGIONS)):
        for region, (alpha2, location) in sorted(mapping.items()):
            if alpha2 not in countries:
                raise BuildError(f"{cloud} {region}: no OWID value for country {alpha2}")
            out.append((cloud, region, alpha2, location, "", "", ""))
    for cloud_row in out:
        if pycountry.countries.get(alpha_2=cloud_row[2]) is None:
            raise BuildError(f"{cloud_row[0]} {cloud_row[1]}: {cloud_row[2]} is not ISO alpha-2")
    return out


def tz_version(raw: Path) -> str:
    """The tzdb release named on the first line of tzdata.zi, e.g. ``2025b``."""
    first = (raw / TZDATA_ZI).read_text(encoding="utf-8").splitlines()[0]
    match = re.fullmatch(r"# version (\S+)", first)
    if match is None:
        raise BuildError(f"{TZDATA_ZI}: no version line, got {first!r}")
    return match.group(1)


def timezones(raw: Path) -> list[tuple[str, str]]:
    """Rows of timezones.csv: zone.tab names, then links to them (``Europe/Kiev`` -> UA)."""
    mapping: dict[str, str] = {}
    for line in (raw / ZONE_TAB).read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            alpha2, _coordinates, name = line.split("\t")[:3]
            mapping[name] = alpha2
    links: dict[str, str] = {}
    for line in (raw / TZDATA_ZI).read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[0] == "L":
            links[fields[2]] = fields[1]
    stale = sorted(set(TZ_LINK_COUNTRY) - set(links))
    if stale:
        raise BuildError(f"TZ_LINK_COUNTRY names that are no longer links: {stale}")
    zone_tab = dict(mapping)
    for link, target in links.items():
        if link in zone_tab or target not in zone_tab:
            continue
        mapping[link] = TZ_LINK_COUNTRY.get(link, zone_tab[target])
    return sorted(mapping.items())


def attributions(raw: Path) -> dict[str, str]:
    """The "Attribution to show" text of each source file, keyed by its file name."""
    text = (raw / SOURCES_FILE).read_text(encoding="utf-8")
    found: dict[str, str] = {}
    current = ""
    for line in text.splitlines():
        heading = re.fullmatch(r"## (\S+)", line)
        if heading:
            current = heading.group(1)
        quote = re.fullmatch(r'- \*\*Attribution to show:\*\* "(.+)"', line)
        if quote:
            found[current] = quote.group(1)
    for name in (OWID_FILE, GOOGLE_FILE):
        if name not in found:
            raise BuildError(f"{SOURCES_FILE}: no attribution for {name}")
    return found


def data_md(
    raw: Path,
    countries: list[CountryRow],
    without: list[tuple[str, str, str]],
    regions: list[tuple[str, ...]],
    zones: list[tuple[str, str]],
) -> str:
    """DATA.md: where each table comes from, under which licence, for which years, how built."""
    attribution = attributions(raw)
    iso = [row for row in countries if row.alpha3]
    years = Counter(row.year for row in iso)
    year_text = ", ".join(
        f"{year} ({count})" for year, count in sorted(years.items(), reverse=True)
    )
    old = ", ".join(f"{row.name} {row.year}" for row in iso if row.year < 2020)
    special = ", ".join(
        f"{row.alpha2} = OWID {row.entity!r} ({row.year}: {row.g_per_kwh})"
        for row in countries
        if row.alpha2 in {code for code, _name in OWID_SPECIAL.values()}
    )
    per_cloud = Counter(region[0] for region in regions)
    owid_sha = sha256(raw / OWID_FILE)
    google_sha = sha256(raw / GOOGLE_FILE)
    lines = [
        "# Embedded carbon-intensity data",
        "",
        "Generated by `scripts/build_intensity_data.py` from the unmodified source files in the",
        "repository's `data/raw/`; do not edit by hand. To rebuild, or to check the committed",
        "tables, run from the repository root:",
        "",
        f"    {COMMAND}",
        f"    {COMMAND} --check",
        "",
        "Names and alpha-2 codes come from ISO 3166-1 via the pycountry package (build time only).",
        "The two sources use different bases (lifecycle vs operational), so do not compare",
        "their figures directly.",
        "",
        "## countries.csv",
        "",
        "Columns: `alpha2, alpha3, name, year, g_per_kwh, owid_entity`: the latest yearly",
        "carbon intensity of electricity for each country, in gCO2e per kWh generated. `name` is",
        "the ISO 3166-1 short name (its common form when pycountry has one); `owid_entity` is",
        "the row's name in the OWID file, which lookups also accept (e.g. `Russia`, `Turkey`).",
        "",
        '- **Source:** Our World in Data, "Carbon intensity of electricity"',
        "  (https://ourworldindata.org/grapher/carbon-intensity-electricity), file",
        f"  `{OWID_FILE}`.",
        "- **Publisher:** Our World in Data, based on Ember (Yearly Electricity Data) and the",
        "  Energy Institute (Statistical Review of World Energy).",
        "- **Licence:** CC BY 4.0 (the original providers' terms also apply).",
        "- **Basis:** lifecycle (Ember methodology).",
        f"- **Years:** the latest year with a value above zero for each country: {year_text}.",
        f"  Older than 2020: {old}.",
        f"- **Zeros skipped:** {' and '.join(zero_entities(raw))} report 0 in some years; a",
        "  zero is treated as missing data, so the latest year with a positive value is used.",
        "- **Rounding:** values rounded to 2 decimals (half up) from the published figures.",
        f"- **Rows:** {len(iso)} ISO countries, plus Kosovo as `XK` (OWID `OWID_KOS`, no",
        f"  alpha-3) and two aggregates without alpha-3: {special}.",
        f'- **Attribution:** "{attribution[OWID_FILE]}"',
        f"- **SHA-256 of the source file:** `{owid_sha}`",
        f"- **Rebuilt with:** `{COMMAND}`",
        "",
        "## countries_without_data.csv",
        "",
        "Columns: `alpha2, alpha3, name`: the ISO 3166-1 countries that have no positive value in",
        f"the OWID file above ({len(without)}), so that a valid code is told apart from a typo.",
        "Source: ISO 3166-1 as packaged by pycountry (LGPL-2.1; the list of codes and names is",
        "factual data). Rebuilt with the same command.",
        "",
        "## cloud_regions.csv",
        "",
        "Columns: `cloud, region, country, location, g_per_kwh, year, basis`.",
        "",
        f"- **gcp ({per_cloud['gcp']} regions):** Google Cloud region carbon data, {GOOGLE_YEAR}",
        "  (https://cloud.google.com/sustainability/region-carbon;",
        f"  https://github.com/GoogleCloudPlatform/region-carbon-info), file `{GOOGLE_FILE}`.",
        "  - **Publisher:** Google Cloud.",
        "  - **Licence:** Apache License 2.0.",
        f"  - **Year:** {GOOGLE_YEAR}.",
        "  - **Basis:** `direct`: average operational (gross) emissions of the local grid,",
        "    location-based; Google's clean-energy purchases are not counted. The figure is the",
        "    file's grid carbon intensity column, unrounded.",
        "  - **Country and location:** mapped by hand in the script from the published Location.",
        "    europe-west5 is published with Location N/A; its figures equal those of",
        "    europe-west3 and europe-west10, so it is mapped to the German grid (DE).",
        f'  - **Attribution:** "{attribution[GOOGLE_FILE]}"',
        f"  - **SHA-256 of the source file:** `{google_sha}`",
        f"  - **Rebuilt with:** `{COMMAND}`",
        f"- **aws ({per_cloud['aws']} regions) and azure ({per_cloud['azure']} regions):** a",
        "  hand-written mapping in the script of each region to its country (ISO alpha-2) and",
        "  location, from the providers' public region lists. They carry no figure of their",
        "  own: their intensity is their country's row in countries.csv (OWID, lifecycle), with",
        "  that source's attribution. Regions whose location was uncertain are left out.",
        "",
        "## timezones.csv",
        "",
        f"Columns: `tz, country`: {len(zones)} IANA time-zone names and the ISO alpha-2 code of",
        "the country they belong to, used to guess a country from the system time zone.",
        "",
        f"- **Source:** the IANA tz database, release {tz_version(raw)}: `zone.tab` (one row per",
        "  country and zone) plus each link (`L target name` in `tzdata.zi`) whose target is in",
        "  zone.tab, so old names such as `Europe/Kiev` or `US/Pacific` resolve. A link that",
        "  tzdb points across a border (e.g. `Iceland` -> `Africa/Abidjan`) takes its own place's",
        "  country, from a short list in the script. Names with no country (`UTC`, `Etc/*`,",
        "  `GMT`, `CET`, `EST5EDT`, ...) are omitted.",
        "- **Licence:** public domain.",
        f"- **SHA-256 of the source files:** zone.tab `{sha256(raw / ZONE_TAB)}`;",
        f"  tzdata.zi `{sha256(raw / TZDATA_ZI)}`",
        f"- **Rebuilt with:** `{COMMAND}`",
        "",
    ]
    return "\n".join(lines)


def build(raw: Path) -> dict[str, str]:
    """Every output file's name and text, derived from the raw directory."""
    countries, without = owid_countries(raw)
    by_code = {row.alpha2: row for row in countries}
    regions = cloud_regions(raw, by_code)
    zones = timezones(raw)
    return {
        "countries.csv": write_csv(
            ("alpha2", "alpha3", "name", "year", "g_per_kwh", "owid_entity"),
            ((r.alpha2, r.alpha3, r.name, r.year, r.g_per_kwh, r.entity) for r in countries),
        ),
        "countries_without_data.csv": write_csv(("alpha2", "alpha3", "name"), without),
        "cloud_regions.csv": write_csv(
            ("cloud", "region", "country", "location", "g_per_kwh", "year", "basis"), regions
        ),
        "timezones.csv": write_csv(("tz", "country"), zones),
        "DATA.md": data_md(raw, countries, without, regions, zones),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Rewrite the tables, or with ``--check`` report whether the committed ones are current."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 if the tables differ")
    parser.add_argument("--raw", type=Path, default=RAW_DIR, help="raw source directory")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="package data directory")
    args = parser.parse_args(argv)
    raw: Path = args.raw
    out: Path = args.out
    try:
        files = build(raw)
    except BuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.check:
        stale = [
            name
            for name, text in files.items()
            if not (out / name).is_file() or (out / name).read_bytes() != text.encode("utf-8")
        ]
        for name in stale:
            print(f"out of date: {out / name} (run {COMMAND})", file=sys.stderr)
        return 1 if stale else 0
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out / name).write_bytes(text.encode("utf-8"))
    print(f"wrote {len(files)} files to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
