"""Strict decoding of run-log records: untrusted data turned into figures, or refused.

A log may hold anything a JSON file can. The reader (``runlog.reader``) checks field types; the
functions here check values: numbers finite and within the limits below (so sums, ratios and
formatting downstream stay finite), names from the sets the writer uses, and build the figures
(``Measurement``, ``IntensityValue``) the reports work on. Each raises on a value it cannot take,
and the caller skips the record and says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from carbon_callbacks.intensity.base import MAX_G_PER_KWH, IntensityValue
from carbon_callbacks.meters.base import Channel, Scope
from carbon_callbacks.tracking.measurement import (
    JOULES_PER_KWH,
    MAX_PUE,
    ChannelEnergy,
    Measurement,
)

# What a record's figures may be. Logs are untrusted: a value outside these ranges makes its record
# malformed (skipped, and said), so sums, ratios and formatting downstream stay finite.
MAX_UNIX = 1e11
"""Latest time accepted, seconds since the epoch (year 5138)."""
MAX_DURATION_S = 1e10
"""Longest duration accepted (317 years)."""
MAX_ENERGY_J = 1e18
"""Most energy accepted for one channel in one record (278 TWh)."""
MAX_COUNT = 2**53
"""Largest step count accepted (exact as a float)."""
MAX_CO2E_KG = MAX_ENERGY_J / JOULES_PER_KWH * MAX_G_PER_KWH / 1000.0
"""Most CO2e accepted in one record: the most energy at the dirtiest grid."""


def intensity_from_dict(data: Mapping[str, Any]) -> IntensityValue:
    """An ``IntensityValue`` from its ``to_dict`` form.

    Raises:
        KeyError, TypeError, ValueError: A field is missing, of the wrong type or out of range.
    """
    if not isinstance(data, Mapping):
        raise TypeError(f"an intensity is an object, not {type(data).__name__}")
    basis = data.get("basis")
    if basis not in (None, "lifecycle", "direct", "mixed"):
        raise ValueError(f"unknown basis {basis!r}")
    year = data.get("year")
    return IntensityValue(
        g_per_kwh=bounded_number(data["g_per_kwh"], 0.0, MAX_G_PER_KWH),
        source=str(data["source"]),
        zone=text(data.get("zone")),
        basis=basis,
        year=None if year is None else count(year),
        estimated=bool(data.get("estimated", False)),
        guessed_location=bool(data.get("guessed_location", False)),
        fallback=text(data.get("fallback")),
    )


def measurement_from_record(
    record: Mapping[str, Any], scopes: Mapping[str, Scope] | None = None
) -> Measurement:
    """A ``Measurement`` from a window or summary record (its ``to_dict`` form).

    Args:
        record: The record.
        scopes: Channel id to its scope, from the header (the record does not repeat it);
            a channel not in it is a device's.

    Raises:
        KeyError, TypeError, ValueError: A field is missing, of the wrong type or out of range
            (see ``MAX_ENERGY_J`` and the other limits).
    """
    channels = []
    for item in record["channels"]:
        method = item["method"]
        kind = item["kind"]
        if method not in ("measured", "estimated") or kind not in ("gpu", "cpu", "dram"):
            raise ValueError(f"unknown channel kind or method: {kind!r}, {method!r}")
        channel = Channel(
            id=str(item["id"]),
            kind=kind,
            device=str(item["device"]),
            method=method,
            how=str(item["how"]),
            scope=(scopes or {}).get(str(item["id"]), "device"),
        )
        energy, fault = item.get("energy_j"), item.get("fault")
        if fault is not None and not isinstance(fault, str):
            raise TypeError(f"a channel's fault is text, not {type(fault).__name__}")
        joules = None if energy is None else bounded_number(energy, 0.0, MAX_ENERGY_J)
        channels.append(ChannelEnergy(channel, joules, fault))
    intensity = record.get("intensity")
    steps = record.get("steps")
    return Measurement(
        name=str(record.get("name", "run")),
        start_unix=bounded_number(record["start_unix"], 0.0, MAX_UNIX),
        duration_s=bounded_number(record["duration_s"], 0.0, MAX_DURATION_S),
        channels=tuple(channels),
        pue=bounded_number(record["pue"], 1.0, MAX_PUE),
        steps=None if steps is None else count(steps),
        intensity=None if intensity is None else intensity_from_dict(intensity),
        unmeasured=tuple(str(item) for item in record.get("unmeasured", ())),
    )


def checkpoint_from_record(
    record: Mapping[str, Any], scopes: Mapping[str, Scope] | None = None
) -> tuple[Measurement, float]:
    """A checkpoint's figures (the run from its start) and when it was taken (``t_unix``).

    Raises:
        KeyError, TypeError, ValueError: As ``measurement_from_record``; ``t_unix`` too.
    """
    measurement = measurement_from_record(record, scopes)
    return measurement, bounded_number(record["t_unix"], measurement.start_unix, MAX_UNIX)


def bounded_number(value: object, low: float = -math.inf, high: float = math.inf) -> float:
    """A finite number in [low, high] from untrusted data (true and false are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"not a finite number: {value!r}")
    try:
        number = float(value)
    except OverflowError:  # an integer beyond the float range
        raise ValueError(f"not a finite number: {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"not a finite number: {value!r}")
    if not low <= number <= high:
        raise ValueError(f"{number!r} is outside [{low:g}, {high:g}]")
    return number


def count(value: object) -> int:
    """A whole number in [0, MAX_COUNT]: steps, a year."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
        raise ValueError(f"not a count: {value!r}")
    return value


def maybe_number(value: object) -> float | None:
    """A finite number, or None for anything else."""
    try:
        return bounded_number(value)
    except ValueError:
        return None


def triple(value: object, high: float) -> tuple[float, float, float]:
    """``[low, mid, high]`` figures of a forecast, each in [0, high]."""
    if not isinstance(value, list | tuple) or len(value) != 3:
        raise ValueError(f"not a [low, mid, high] triple: {value!r}")
    low, mid, top = (bounded_number(v, 0.0, high) for v in value)
    return low, mid, top


def text(value: object) -> str | None:
    """Non-empty text, or None for anything else."""
    return value if isinstance(value, str) and value else None
