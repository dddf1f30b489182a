"""Fake Linux powercap sysfs trees in a temporary folder, for testing the RAPL meter.

The tree mirrors real sysfs: zone directories nest under their control type in
``sys/devices/virtual/powercap`` (the nested layout) and ``sys/class/powercap`` holds one relative
symlink per control type and per zone (the flat layout). Each zone also has a ``subsystem`` symlink
back to the class directory, as in sysfs, so a walker that follows every link would loop. The meter
reads these real files; only their content is fake.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_RANGE_UJ = 262143328850
"""A common ``max_energy_range_uj`` (Intel client and server packages)."""


class FakePowercap:
    """Builds and edits a fake powercap tree under ``base``.

    Zones are named as in sysfs, ``<control type>:<n>`` for a top-level zone and
    ``<control type>:<n>:<m>`` for a subzone; add a parent before its subzones.
    """

    def __init__(self, base: Path) -> None:
        self.class_root = base / "sys" / "class" / "powercap"
        self.devices_root = base / "sys" / "devices" / "virtual" / "powercap"
        self.class_root.mkdir(parents=True)
        self.devices_root.mkdir(parents=True)
        self._zones: dict[str, Path] = {}

    def add_zone(
        self,
        zone: str,
        name: str,
        energy_uj: int = 0,
        max_energy_range_uj: int = DEFAULT_RANGE_UJ,
    ) -> Path:
        """Create zone ``zone`` (e.g. ``"intel-rapl:0:2"``) named ``name``; return its real dir."""
        parent_zone = zone.rsplit(":", 1)[0]
        is_subzone = ":" in parent_zone
        parent = self._zones[parent_zone] if is_subzone else self._control_type(parent_zone)
        directory = parent / zone
        directory.mkdir()
        (directory / "name").write_text(f"{name}\n")
        (directory / "max_energy_range_uj").write_text(f"{max_energy_range_uj}\n")
        (directory / "enabled").write_text("1\n")
        _link(directory / "subsystem", self.class_root)
        _link(self.class_root / zone, directory)
        self._zones[zone] = directory
        self.set_energy(zone, energy_uj)
        return directory

    def energy_path(self, zone: str) -> Path:
        """Return the real path of a zone's ``energy_uj`` file."""
        return self._zones[zone] / "energy_uj"

    def set_energy(self, zone: str, energy_uj: int) -> None:
        """Set a zone's counter atomically (a concurrent reader never sees a half-written file),
        creating the file again if it was removed."""
        path = self.energy_path(zone)
        partial = path.with_name(path.name + ".tmp")
        partial.write_text(f"{energy_uj}\n")
        os.replace(partial, path)

    def add_energy(self, zone: str, delta_uj: int) -> None:
        """Advance a zone's counter by ``delta_uj``, wrapping like the hardware does."""
        directory = self._zones[zone]
        range_uj = int((directory / "max_energy_range_uj").read_text())
        current = int(self.energy_path(zone).read_text())
        self.set_energy(zone, (current + delta_uj) % (range_uj + 1))

    def remove(self, zone: str, file: str = "energy_uj") -> None:
        """Delete one of a zone's files, as when a driver goes away mid-run."""
        (self._zones[zone] / file).unlink()

    def _control_type(self, control_type: str) -> Path:
        """Return the control type directory (e.g. ``intel-rapl``), creating it on first use."""
        directory = self.devices_root / control_type
        if not directory.exists():
            directory.mkdir()
            (directory / "enabled").write_text("1\n")
            _link(directory / "subsystem", self.class_root)
            _link(self.class_root / control_type, directory)
        return directory


def _link(link: Path, target: Path) -> None:
    """Create ``link`` as a relative symlink to ``target``, as sysfs does."""
    link.symlink_to(os.path.relpath(target, link.parent))
