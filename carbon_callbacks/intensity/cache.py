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

from carbon_callbacks.intensity.base import IntensitySlot

CACHE_DIR_ENV = "CARBON_CALLBACKS_CACHE_DIR"
CACHE_VERSION = 1


@dataclass(frozen=True)
class CachedSeries:
    """What a cache file held: when it was fetched and the slots."""

    fetched_unix: float
    slots: tuple[IntensitySlot, ...]


def default_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The cache folder: the variable, else the XDG cache home, else ``~/.cache``."""
    env = os.environ if environ is None else environ
    if env.get(CACHE_DIR_ENV):
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
        """The cached series, or None when there is none or it is unreadable."""
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
            if document.get("version") != CACHE_VERSION:
                return None
            slots = tuple(
                IntensitySlot(float(s), float(e), float(g), bool(f))
                for s, e, g, f in document["slots"]
            )
            return CachedSeries(float(document["fetched_unix"]), slots)
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
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
