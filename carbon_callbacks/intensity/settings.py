"""The location and intensity settings: each option declared once, with its keyword and its flag.

``IntensitySettings`` is the one object these options travel in, from the command line, the
callbacks and ``Tracker`` to ``carbon_callbacks.intensity.resolve``, which merges the
``CARBON_CALLBACKS_*`` variables into it, checks it and finds the intensity. Each of its fields
names, in its metadata, the keyword argument that sets it and the command-line flag (if any);
``IntensityOptions`` is the same list typed as keyword arguments (a test keeps the two equal).

This module imports nothing heavy: the command line builds its flags from it before any data loads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Literal, TypedDict

Kind = Literal["number", "switch", "secret", "text", "code"]
"""How a value is read: a number, on/off, a secret text, a text, or a text read upper-case."""


@dataclass(frozen=True)
class Option:
    """How one setting is given: as a keyword argument and, unless it is a secret, as a flag.

    Attributes:
        keyword: The keyword argument (``Tracker``, the callbacks, ``intensity_settings``); its
            variable is ``CARBON_CALLBACKS_<KEYWORD>``.
        kind: How its value (argument or variable) is read and checked.
        flag: The command-line flag, or None where the value must not show in a process
            listing (a token).
        help: The flag's help text.
        metavar: The flag's value placeholder; None for an on/off flag.
        choices: The values the flag accepts, when they are few.
    """

    keyword: str
    kind: Kind
    flag: str | None
    help: str
    metavar: str | None = None
    choices: tuple[str, ...] | None = None


def _option(
    keyword: str,
    kind: Kind,
    flag: str | None,
    help: str,
    metavar: str | None = None,
    choices: tuple[str, ...] | None = None,
) -> dict[str, Option]:
    return {"option": Option(keyword, kind, flag, help, metavar, choices)}


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
        sources: The variable each setting read from the environment came from, by argument
            name (``{"zone": "CARBON_CALLBACKS_ZONE"}``), so that messages name it; settings
            given as arguments are not listed.
    """

    g_per_kwh: float | None = field(
        default=None,
        metadata=_option(
            "intensity_g_per_kwh",
            "number",
            "--intensity",
            "constant gCO2e/kWh (overrides all)",
            "G_PER_KWH",
        ),
    )
    country: str | None = field(
        default=None,
        metadata=_option("country", "text", "--country", "ISO country code, e.g. SE or SWE", "C"),
    )
    zone: str | None = field(
        default=None,
        metadata=_option("zone", "code", "--zone", "grid zone, e.g. DK-DK1, GB, US-CAL-CISO", "Z"),
    )
    cloud: str | None = field(
        default=None,
        metadata=_option(
            "cloud", "text", "--cloud", "cloud provider", choices=("gcp", "aws", "azure")
        ),
    )
    region: str | None = field(
        default=None,
        metadata=_option("region", "text", "--region", "cloud region, e.g. eu-north-1", "R"),
    )
    uk_postcode: str | None = field(
        default=None,
        metadata=_option(
            "uk_postcode", "code", "--uk-postcode", "outward UK postcode, e.g. RG10", "PC"
        ),
    )
    live: bool = field(
        default=False,
        metadata=_option("live", "switch", "--live", "use live grid data for the zone"),
    )
    electricitymaps_token: str | None = field(
        default=None,
        repr=False,
        metadata=_option("electricitymaps_token", "secret", None, "Electricity Maps API token"),
    )
    sources: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    def public_dict(self) -> dict[str, object]:
        """The settings as JSON-ready values, without the token (only whether one is set)."""
        values: dict[str, object] = {}
        for item in fields(self):
            option = item.metadata.get("option")
            if option is None:
                continue
            value = getattr(self, item.name)
            if option.flag is None:  # a secret: only whether it is set
                values[option.keyword + "_set"] = value is not None
            else:
                values[option.keyword] = value
        return values


class IntensityOptions(TypedDict, total=False):
    """The options of ``IntensitySettings`` as keyword arguments (None: not given)."""

    intensity_g_per_kwh: float | None
    country: str | None
    zone: str | None
    cloud: str | None
    region: str | None
    uk_postcode: str | None
    live: bool | None
    electricitymaps_token: str | None


OPTIONS: tuple[Option, ...] = tuple(
    item.metadata["option"] for item in fields(IntensitySettings) if "option" in item.metadata
)
"""Every location and intensity option, in the order the settings declare them."""
FIELD_OF: Mapping[str, str] = {
    item.metadata["option"].keyword: item.name
    for item in fields(IntensitySettings)
    if "option" in item.metadata
}
"""The settings field each keyword sets, e.g. ``intensity_g_per_kwh`` -> ``g_per_kwh``."""
