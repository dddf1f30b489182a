"""A small on-disk cache of live intensity slots, so a restarted run does not refetch at once.

One JSON file per provider and zone under ``$CARBON_CALLBACKS_CACHE_DIR`` (default
``$XDG_CACHE_HOME/carbon-callbacks`` or ``~/.cache/carbon-callbacks``). Files hold slots only,
never a token. A file that cannot be read or parsed is ignored; a failed write is reported to the
caller, which warns once and goes on.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeGuard

from carbon_callbacks._internal import strict_json
from carbon_callbacks.intensity.base import IntensitySlot

CACHE_DIR_ENV = "CARBON_CALLBACKS_CACHE_DIR"
CACHE_VERSION = 1
MAX_FILE_BYTES = 8 * 1024 * 1024
"""A larger file is not read: a year of five-minute slots is about 5 MB."""


@dataclass(frozen=True)
class CachedSeries:
    """What a cache file held: when it was fetched and the slots."""

    fetched_unix: float
    slots: tuple[IntensitySlot, ...]


def default_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The cache folder: the variable, else the XDG cache home, else ``~/.cache``."""
    env = os.environ if environ is None else environ
    if env.get(CACHE_DIR_ENV, "").strip():  # blank is unset, as for every variable
        return Path(env[CACHE_DIR_ENV])
    base = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "carbon-callbacks"


class IntensityCache:
    """Reads and writes the cached series of one provider and zone.

    Args:
        directory: The cache folder (created on first write).
        provider: Provider name, part of the file name.
        zone: Zone, part of the file name.
    """

    def __init__(self, directory: Path, provider: str, zone: str) -> None:
        slug = re.sub(r"[^A-Za-z0-9]+", "-", f"{provider}-{zone}").strip("-").lower()
        self.path = directory / f"intensity-{slug}.json"

    def load(self) -> CachedSeries | None:
        """The cached series, or None when there is none or it is unreadable or malformed.

        The file is data from disk, checked as strictly as an API answer and parsed as strictly as
        a run log (``_internal.strict_json``): every slot must be
        ``[start, end, g_per_kwh, forecast]`` with finite numbers, ``end > start``, an intensity
        >= 0 and a true/false flag; one bad slot refuses the whole file (it is refetched).
        """
        try:
            if self.path.stat().st_size > MAX_FILE_BYTES:
                return None
            document = strict_json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(document, dict):
                return None
            version, fetched, rows = (document.get(k) for k in ("version", "fetched_unix", "slots"))
            if type(version) is not int or version != CACHE_VERSION:
                return None
            if not _is_number(fetched) or not isinstance(rows, list):
                return None
            slots = tuple(_slot(row) for row in rows)
            return CachedSeries(float(fetched), slots)
        except (OSError, ValueError, RecursionError):
            return None

    def save(self, fetched_unix: float, slots: tuple[IntensitySlot, ...]) -> None:
        """Replace the file atomically.

        Raises:
            OSError: The folder or file could not be written.
        """
        import tempfile  # only a fetch thread writes: keep it out of the tracker's import

        self.path.parent.mkdir(parents=True, exist_ok=True)
        document = {
            "version": CACHE_VERSION,
            "fetched_unix": fetched_unix,
            "slots": [[s.start_unix, s.end_unix, s.g_per_kwh, s.forecast] for s in slots],
        }
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                json.dump(document, stream)
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


def _slot(row: object) -> IntensitySlot:
    """One cached slot, checked.

    Raises:
        ValueError: Not ``[start, end, g_per_kwh, forecast]`` with sane values.
    """
    if not isinstance(row, list) or len(row) != 4:
        raise ValueError("a slot is not [start, end, g_per_kwh, forecast]")
    start, end, g_per_kwh, forecast = row
    if not (_is_number(start) and _is_number(end) and _is_number(g_per_kwh)):
        raise ValueError("a slot holds a value that is not a number")
    if not isinstance(forecast, bool) or end <= start or g_per_kwh < 0:
        raise ValueError("a slot is empty, reversed, negative or has no forecast flag")
    return IntensitySlot(float(start), float(end), float(g_per_kwh), forecast)


def _is_number(value: object) -> TypeGuard[int | float]:
    """A number; JSON's true and false are not numbers here (``strict_json`` refused the rest)."""
    return isinstance(value, int | float) and not isinstance(value, bool)
