"""Checks of a tracker's arguments (other than its settings), and the run id it makes.

A mistake in an argument fails at construction with a message that says what to write instead;
a custom intensity provider's wrong answer is refused here too, and the tracker warns once.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping, Sequence

from carbon_callbacks.intensity.base import IntensityProvider, IntensityValue
from carbon_callbacks.intensity.settings import IntensitySettings
from carbon_callbacks.meters.base import Unavailable

_RUN_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")


def new_run_id(unix_seconds: int | None = None, nonce: int | None = None) -> str:
    """A run id: ``<UTC time>-<6 hex digits>``, e.g. ``20250301T120000Z-0a1b2c``.

    Args:
        unix_seconds: The time in it (default now).
        nonce: The 24-bit number after it (default random), which keeps runs started in the
            same second apart.
    """
    seconds = int(time.time()) if unix_seconds is None else unix_seconds
    number = int.from_bytes(os.urandom(3), "big") if nonce is None else nonce
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(seconds)) + f"-{number:06x}"


def checked_run_id(run_id: object) -> str:
    """``run_id=``: it names the log file, so letters, digits, ``.``, ``_`` and ``-`` only."""
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
        raise ValueError(
            f"run_id must be 1 to 128 letters, digits, '.', '_' or '-' (it names the log file), "
            f"got {run_id!r}; write e.g. run_id='20250301T120000Z-0a1b2c' or leave it out"
        )
    return run_id


def checked_pids(pids: object) -> tuple[int, ...]:
    """``exclude_pids=``: process ids, sorted, each once."""
    if isinstance(pids, str | bytes) or not isinstance(pids, Sequence):
        raise TypeError(f"exclude_pids must be a list of process ids, got {pids!r}")
    if not all(isinstance(pid, int) and not isinstance(pid, bool) and pid > 0 for pid in pids):
        raise ValueError(f"exclude_pids must hold process ids (ints > 0), got {pids!r}")
    return tuple(sorted(set(pids)))


def checked_provider(intensity: object) -> IntensityProvider:
    """``intensity=``: an object with an ``.intensity(start_unix, end_unix)`` method."""
    if isinstance(intensity, int | float):
        raise TypeError(
            f"intensity= takes a provider object; for a constant write "
            f"intensity_g_per_kwh={intensity!r}"
        )
    if not callable(getattr(intensity, "intensity", None)):
        raise TypeError(
            f"intensity must have an .intensity(start_unix, end_unix) method, got {intensity!r}; "
            "for a constant write intensity_g_per_kwh=250.0"
        )
    return intensity  # type: ignore[return-value]


def checked_value(value: object) -> IntensityValue:
    """A provider's answer, which must be an ``IntensityValue`` (a custom provider may err).

    Raises:
        TypeError: Anything else; the tracker warns once and leaves CO2e out.
    """
    if not isinstance(value, IntensityValue):
        raise TypeError(
            f"the intensity provider returned {type(value).__name__}, not an IntensityValue; "
            "return e.g. IntensityValue(250.0, 'my source')"
        )
    return value


def describe_unavailable(item: Unavailable) -> str:
    """The warning for a source found but not usable, with its fix."""
    fix = f" To fix: {item.fix}" if item.fix else ""
    instead = (
        f"{item.stand_in} stands in"
        if item.stand_in
        else "the figures it would give are estimated or missing"
    )
    return f"carbon-callbacks: {item.source}: {item.reason}; {instead}.{fix}"


def checked_settings(settings: object, options: Mapping[str, object]) -> IntensitySettings | None:
    """``intensity_settings=`` when given alone, else None (the keyword options are used).

    Raises:
        ValueError: Both the object and keyword options are given.
        TypeError: The object is not an ``IntensitySettings``.
    """
    if settings is None:
        return None
    given = [f"{name}=" for name, value in options.items() if value is not None]
    if given:
        raise ValueError(
            f"intensity_settings= holds the location and intensity options; give "
            f"{', '.join(given)} inside it or leave intensity_settings out"
        )
    if not isinstance(settings, IntensitySettings):
        raise TypeError(
            f"intensity_settings must be an IntensitySettings, got {settings!r}; "
            "or pass the options themselves, e.g. country='SE'"
        )
    return settings
