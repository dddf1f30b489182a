"""Where a cloud machine is, asked of the machine itself: no IP geolocation, no third party.

The vendor comes from DMI (``/sys/class/dmi/id``), read offline; the region comes from that
vendor's instance metadata service, a link-local address answered by the host the machine runs
on, asked only when DMI names the vendor. ``CARBON_CALLBACKS_CLOUD_METADATA=0`` turns the lookup
off; ``CARBON_CALLBACKS_CLOUD_METADATA_URL`` points it elsewhere (tests, a relay).

The lookup itself runs in a background thread (``intensity.located``), within ``DEADLINE_S``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from carbon_callbacks._internal.env import env_flag, env_text
from carbon_callbacks.intensity import static
from carbon_callbacks.intensity.base import IntensityValue, ProviderError

if TYPE_CHECKING:
    import requests

Vendor = Literal["aws", "gcp", "azure"]

DMI_ROOT = "/sys/class/dmi/id"
"""Where Linux shows the firmware's DMI strings (world-readable)."""
DMI_ROOT_ENV = "CARBON_CALLBACKS_DMI_ROOT"
"""Environment variable that overrides where the DMI strings are read (tests)."""
URL_ENV = "CARBON_CALLBACKS_CLOUD_METADATA_URL"
DEFAULT_URL = "http://169.254.169.254"
"""The instance metadata address of all three vendors (by IP: no DNS lookup to wait for)."""
DEADLINE_S = 0.3
"""Seconds the whole lookup may take (the AWS token and the region together)."""
AZURE_API_VERSION = "2021-02-01"
AWS_TOKEN_TTL_S = 60
"""Lifetime asked for the AWS session token: it serves one request."""
AZURE_CHASSIS_TAG = "7783-7084-3265-9085"
"""The chassis asset tag of Azure VMs; a Hyper-V VM elsewhere shows the same vendor and product."""

_DMI_FILES = ("sys_vendor", "product_name", "board_vendor", "bios_vendor", "chassis_asset_tag")
_MAX_ANSWER_BYTES = 4096
_COMPASS = re.compile(r"(?:north|south|east|west|central)+$")
_REGION = re.compile(r"[a-z][a-z0-9-]{1,48}")
_NAMES: dict[Vendor, str] = {
    "aws": "AWS instance metadata",
    "gcp": "Google Cloud metadata server",
    "azure": "Azure Instance Metadata Service",
}


@dataclass(frozen=True)
class CloudLookup:
    """A region lookup to make: the vendor DMI named and the metadata service's address.

    Attributes:
        vendor: ``"aws"``, ``"gcp"`` or ``"azure"``.
        base_url: The metadata service, ``http://169.254.169.254`` unless overridden.
    """

    vendor: Vendor
    base_url: str = DEFAULT_URL


def cloud_lookup(environ: Mapping[str, str]) -> CloudLookup | None:
    """The lookup to make on this machine, or None: switched off, or DMI names no cloud vendor.

    Reads only local files. The switch is checked on every machine, the address where it would be
    used (DMI names a vendor), so a mistyped variable fails at construction, not in the lookup.

    Raises:
        ValueError: ``CARBON_CALLBACKS_CLOUD_METADATA`` is not a boolean, or the URL override is
            not an http(s) address; the message says what to write.
    """
    if not env_flag("cloud_metadata", environ, default=True):  # =0: the lookup is off
        return None
    vendor = dmi_vendor(env_text("dmi_root", environ) or DMI_ROOT)
    if vendor is None:
        return None
    from carbon_callbacks.intensity.http import api_url  # requests: only on a cloud machine

    return CloudLookup(vendor, api_url(None, URL_ENV, environ, DEFAULT_URL))


def dmi_vendor(root: str | Path = DMI_ROOT) -> Vendor | None:
    """The cloud vendor the DMI strings under ``root`` name, or None (another vendor, no DMI).

    AWS writes ``Amazon EC2`` (system, board or BIOS vendor); Google ``Google`` and the product
    ``Google Compute Engine``; Azure ``Microsoft Corporation`` with the product
    ``Virtual Machine`` and, where readable, Azure's chassis asset tag.
    """
    found = {name: _read_dmi(Path(root) / name) for name in _DMI_FILES}
    vendors = {found["sys_vendor"], found["board_vendor"], found["bios_vendor"]}
    if any(vendor.startswith("Amazon EC2") for vendor in vendors):
        return "aws"
    if "Google" in vendors or found["product_name"] == "Google Compute Engine":
        return "gcp"
    tag = found["chassis_asset_tag"]
    if (
        found["sys_vendor"] == "Microsoft Corporation"
        and found["product_name"] == "Virtual Machine"
        and tag in ("", AZURE_CHASSIS_TAG)
    ):
        return "azure"
    return None


def query_region(
    lookup: CloudLookup, deadline: float, session: requests.Session | None = None
) -> str:
    """Ask the vendor's metadata service for the region, before ``deadline`` (``monotonic``).

    Raises:
        ProviderError: No usable answer: refused, timed out, or not a region name.
    """
    name = _NAMES[lookup.vendor]
    http = session if session is not None else _direct_session()
    try:
        if lookup.vendor == "aws":
            token = _text(
                http, lookup, "/latest/api/token", deadline, method="PUT",
                headers={"X-aws-ec2-metadata-token-ttl-seconds": str(AWS_TOKEN_TTL_S)},
            )  # fmt: skip
            answer = _text(
                http, lookup, "/latest/meta-data/placement/region", deadline,
                headers={"X-aws-ec2-metadata-token": token},
            )  # fmt: skip
        elif lookup.vendor == "gcp":
            zone = _text(
                http, lookup, "/computeMetadata/v1/instance/zone", deadline,
                headers={"Metadata-Flavor": "Google"},
            )  # fmt: skip
            answer = zone.rsplit("/", 1)[-1].rsplit("-", 1)[0]  # projects/N/zones/europe-west1-b
        else:
            answer = _text(
                http, lookup, "/metadata/instance/compute/location", deadline,
                headers={"Metadata": "true"},
                params={"api-version": AZURE_API_VERSION, "format": "text"},
            )  # fmt: skip
    finally:
        if session is None:
            http.close()
    region = answer.strip().lower()
    if not _REGION.fullmatch(region):
        raise ProviderError(name, "answered something that is not a region name")
    return region


def located_value(lookup: CloudLookup, region: str, fallback: IntensityValue) -> IntensityValue:
    """The intensity for a region the metadata service named, saying it was located that way.

    A region the cloud table does not know takes its country where every known region sharing its
    name's stem (``us-east-`` for ``us-east-7``) is in one country; else ``fallback`` stays, with
    the reason added.
    """
    vendor = lookup.vendor
    located = f"located: cloud metadata ({vendor} {region})"
    try:
        value = static.cloud_region(vendor, region).value()
    except static.UnknownLocationError:
        country = region_country(vendor, region)
        unknown = f"{vendor} region {region} is not in the cloud table"
        if country is None:
            return with_note(fallback, f"cloud metadata says {unknown}, nor is its country known")
        value = static.country(country).value(fallback=f"{unknown}: its country {country} used")
    return replace(value, source=f"{value.source}; {located}")


def region_country(vendor: str, region: str) -> str | None:
    """The country of a region not in the table, when its known namesakes agree on one.

    The stems tried are the name without its trailing number (``us-east``, ``westus``), without
    its trailing compass words (``swedennorth`` -> ``sweden``), then its first part (``us-``);
    None when no stem leads to exactly one country.
    """
    regions = static.cloud_regions(vendor)
    bare = region.lower().rstrip("0123456789").rstrip("-")
    stems = [bare, _COMPASS.sub("", bare)] + ([bare.split("-")[0] + "-"] if "-" in bare else [])
    for stem in stems:
        countries = {entry.country for name, entry in regions.items() if name.startswith(stem)}
        if stem and len(countries) == 1:
            return countries.pop()
    return None


def with_note(value: IntensityValue, note: str) -> IntensityValue:
    """``value`` with ``note`` first in its ``fallback``: why the preferred source was not used."""
    return replace(value, fallback=note if not value.fallback else f"{note}; {value.fallback}")


def service_name(vendor: Vendor) -> str:
    """The metadata service's display name, e.g. ``AWS instance metadata``."""
    return _NAMES[vendor]


def _text(
    session: requests.Session,
    lookup: CloudLookup,
    path: str,
    deadline: float,
    *,
    method: str = "GET",
    headers: Mapping[str, str],
    params: Mapping[str, str] | None = None,
) -> str:
    """One request's text answer; the time left before ``deadline`` bounds each wait."""
    from carbon_callbacks.intensity.http import get_body

    name = _NAMES[lookup.vendor]
    left = deadline - time.monotonic()
    if left <= 0:
        raise ProviderError(name, f"no answer within {DEADLINE_S:g} s")
    body = get_body(
        session, name, lookup.base_url + path, method=method, params=params, headers=headers,
        timeout=(left, left), max_bytes=_MAX_ANSWER_BYTES,
    )  # fmt: skip
    return body.decode("utf-8", errors="replace").strip()


def _direct_session() -> requests.Session:
    """A session that ignores proxy variables: the vendors ask that IMDS be reached directly."""
    from carbon_callbacks.intensity.http import new_session

    session = new_session()
    session.trust_env = False
    return session


def _read_dmi(path: Path) -> str:
    """One DMI string, stripped; empty when the file is missing or unreadable."""
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""
