"""Linux powercap (RAPL) meter: CPU package and DRAM energy counters read from sysfs.

Intel and AMD CPUs expose their Running Average Power Limit energy counters through the powercap
framework as ``energy_uj`` files that count microjoules and wrap at ``max_energy_range_uj``. This
meter finds the package and DRAM zones, keeps one channel per physical counter (the same counter
can appear under several zones), unwraps the counters into cumulative joules since ``open`` and
reports stalled, vanished or unreadable counters instead of raising.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from carbon_callbacks.meters.base import Channel, ChannelKind, MeterBase, Reading, Unavailable

ROOT_ENV = "CARBON_CALLBACKS_POWERCAP_ROOT"
"""Environment variable that overrides where the powercap tree is looked for."""

_CLASS_ROOT = Path("/sys/class/powercap")
_DEVICES_ROOT = Path("/sys/devices/virtual/powercap")
_ZONE_DIR = re.compile(r"(?P<type>[A-Za-z0-9_-]+)(?P<indices>(?::\d+)+)")
_PACKAGE_NAME = re.compile(r"package-\d+(?:-die-\d+)?")
_MSR_TYPE = "intel-rapl"
_PSYS = "psys"
_STALL_S = 5.0
_MAX_PACKAGE_W = 1000.0
_MAX_PLAUSIBLE_W = 2000.0
"""A wrap implying more than this average power since the last read is no wrap but a reset."""
_PLAUSIBILITY_SLACK_S = 1.0
_SOURCE = "rapl"

_STALLED = (
    f"RAPL counter has stopped changing ({_STALL_S:g} s or more); it is probably not live (a CPU "
    "package never draws 0 W), e.g. in a virtual machine"
)
_WENT_BACKWARDS = (
    "RAPL counter went backwards without wrapping (it was reset); the energy of that interval "
    "is lost and counting goes on from the new value"
)

_NO_POWERCAP = (
    "no RAPL powercap interface at {root} (not Linux, no intel_rapl driver, or a VM without RAPL)"
)
_NO_ZONES = "no RAPL package or psys zone under {root} (no intel_rapl driver, or a VM without RAPL)"
_DENIED = "permission denied reading {path} (root-only since Linux 5.10, CVE-2020-8694)"
_DENIED_FIX = (
    "Allow reading the counters until the next reboot with "
    "`sudo chmod o+r /sys/class/powercap/*/energy_uj`, or for good with a udev rule: write the "
    'line `SUBSYSTEM=="powercap", ACTION=="add", TEST=="energy_uj", '
    'RUN+="/bin/chmod o+r /sys%p/energy_uj"` to /etc/udev/rules.d/99-powercap.rules, then run '
    "`sudo udevadm control --reload && sudo udevadm trigger --subsystem-match=powercap "
    "--action=add`. This lets every local user read CPU energy, which the CVE treats as a side "
    "channel; do it only on machines where that is acceptable."
)


def _read_text(path: Path) -> str:
    """Return the stripped content of one sysfs file: the only place this module reads files."""
    return path.read_text(encoding="utf-8").strip()


def _delta_uj(last_uj: int, raw_uj: int, range_uj: int, elapsed_s: float) -> int | None:
    """Return the energy counted between two raw readings, assuming at most one wrap between them.

    A counter lower than before has wrapped only if the energy that implies could have been drawn
    in the time since the last read; otherwise it was reset (a driver reload, a firmware quirk),
    and None is returned: counting a reset as a wrap would add almost a whole range of energy.

    Args:
        last_uj: The previous raw ``energy_uj`` value.
        raw_uj: The current raw ``energy_uj`` value.
        range_uj: The zone's ``max_energy_range_uj``, the largest value before the counter wraps.
        elapsed_s: Seconds since ``last_uj`` was read.
    """
    delta = raw_uj - last_uj
    if delta >= 0:
        return delta
    wrapped = delta + range_uj + 1
    plausible_uj = (max(elapsed_s, 0.0) + _PLAUSIBILITY_SLACK_S) * _MAX_PLAUSIBLE_W * 1e6
    return wrapped if wrapped <= plausible_uj else None


def _describe(exc: Exception) -> str:
    """Return a short reason for a failed read, without repeating the path."""
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


@dataclass(frozen=True)
class _Zone:
    """One powercap zone directory that has an ``energy_uj`` counter.

    Attributes:
        path: The shortest path under the root that leads to the zone (for messages and reads).
        dir_name: The zone's directory name, e.g. ``"intel-rapl:0:1"``, unique within sysfs.
        control_type: The prefix of ``dir_name``, e.g. ``"intel-rapl"`` or ``"intel-rapl-mmio"``.
        indices: The numbers in ``dir_name``: one for a top-level zone, two for a subzone.
        name: The content of the zone's ``name`` file, e.g. ``"package-0"`` or ``"dram"``.
        has_counter: Whether the zone has an ``energy_uj`` file (a driver going away removes it).
    """

    path: Path
    dir_name: str
    control_type: str
    indices: tuple[int, ...]
    name: str
    has_counter: bool = True

    @property
    def parent_dir_name(self) -> str:
        """Directory name of the zone this one is inside, e.g. ``"intel-rapl:0"``."""
        return self.dir_name.rsplit(":", 1)[0]

    def preference(self) -> tuple[bool, tuple[int, ...], str]:
        """Sort key: MSR zones first (preferred over MMIO duplicates), then by index."""
        return (self.control_type != _MSR_TYPE, self.indices, self.control_type)


def _zone_dirs(directory: Path) -> list[Path]:
    """Return the entries of ``directory`` named like a zone (``<type>:<n>[:<m>...]``), sorted."""
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    return [directory / name for name in names if _ZONE_DIR.fullmatch(name)]


def _collect(path: Path, found: dict[str, Path]) -> None:
    """Record the zone at ``path`` and its subzones, each real directory once, shortest path kept.

    Zones without an ``energy_uj`` file are recorded too: their names place their subzones, and a
    package whose counter is gone must be reported, not silently skipped.

    Args:
        path: A directory named like a zone.
        found: Real path to the shortest path seen so far; updated in place.
    """
    if not path.is_dir():
        return
    real = os.path.realpath(path)
    known = found.get(real)
    if known is not None:
        if len(path.parts) < len(known.parts):
            found[real] = path
        return
    found[real] = path
    for child in _zone_dirs(path):
        _collect(child, found)


def _discover(root: Path, read_file: Callable[[Path], str]) -> list[_Zone]:
    """Find every zone with an energy counter, in the flat or the nested sysfs layout.

    The flat layout (``/sys/class/powercap``) lists every zone at the top, as symlinks; the nested
    one (``/sys/devices/virtual/powercap``) has control-type directories holding zones holding
    subzones. Walking both the top level and the control types, and keying on real paths, finds
    each zone exactly once in either layout.
    """
    found: dict[str, Path] = {}
    try:
        entries = sorted(os.listdir(root))
    except OSError:
        return []
    for entry in entries:
        path = root / entry
        if _ZONE_DIR.fullmatch(entry):
            _collect(path, found)
        else:
            for zone_dir in _zone_dirs(path):
                _collect(zone_dir, found)
    zones = []
    for path in found.values():
        zone = _read_zone(path, read_file)
        if zone is not None:
            zones.append(zone)
    return zones


def _read_zone(path: Path, read_file: Callable[[Path], str]) -> _Zone | None:
    """Describe the zone at ``path``, or return None when its ``name`` cannot be read."""
    match = _ZONE_DIR.fullmatch(path.name)
    if match is None:
        return None
    try:
        name = read_file(path / "name")
    except OSError:
        return None
    indices = tuple(int(i) for i in match["indices"].split(":")[1:])
    has_counter = (path / "energy_uj").is_file()
    return _Zone(path, path.name, match["type"], indices, name, has_counter)


def _channel_id(zone: _Zone, by_dir: Mapping[str, _Zone]) -> str | None:
    """Return the channel a zone measures, or None for zones inside another channel or unknown.

    The id doubles as the de-duplication key: the same package seen through MSR and MMIO, or AMD
    dies that all report the socket counter under one name, map to the same id.
    """
    if len(zone.indices) == 1:
        if _PACKAGE_NAME.fullmatch(zone.name) or zone.name == _PSYS:
            return f"cpu:{zone.name}"
        return None
    parent = by_dir.get(zone.parent_dir_name)
    if len(zone.indices) == 2 and zone.name == "dram" and parent is not None:
        return f"dram:{parent.name}" if _PACKAGE_NAME.fullmatch(parent.name) else None
    return None


def _select(zones: list[_Zone]) -> tuple[dict[str, _Zone], list[_Zone]]:
    """Map channel id to the zone to read for it, counting every physical counter once.

    Core and uncore subzones are inside their package and are skipped. Psys covers the whole
    platform, packages included, so it is used only on machines that expose no package zone.

    Returns:
        The chosen zones by channel id, and the zones of channels that have no counter at all.
    """
    by_dir = {zone.dir_name: zone for zone in zones}
    chosen: dict[str, _Zone] = {}
    counterless: dict[str, _Zone] = {}
    for zone in sorted(zones, key=_Zone.preference):
        channel_id = _channel_id(zone, by_dir)
        if channel_id is not None:
            (chosen if zone.has_counter else counterless).setdefault(channel_id, zone)
    psys_id = f"cpu:{_PSYS}"
    if any(channel_id != psys_id for channel_id in [*chosen, *counterless]):
        chosen.pop(psys_id, None)
        counterless.pop(psys_id, None)
    return chosen, [zone for key, zone in counterless.items() if key not in chosen]


def _channel(channel_id: str, zone: _Zone) -> Channel:
    """Describe the channel measured by ``zone``."""
    kind: ChannelKind = "dram" if channel_id.startswith("dram:") else "cpu"
    how = f"RAPL powercap counter {zone.path / 'energy_uj'}"
    if zone.name == _PSYS:
        how += " (psys: the whole platform, CPU package and DRAM included)"
    return Channel(
        id=channel_id,
        kind=kind,
        device=f"{zone.name} ({zone.dir_name})",
        method="measured",
        how=how,
        scope="host",
    )


@dataclass
class _Counter:
    """Unwrapping state of one channel's ``energy_uj`` counter.

    Attributes:
        channel: The channel this counter feeds.
        path: The ``energy_uj`` file.
        range_uj: ``max_energy_range_uj``: the counter wraps to 0 after this value.
        last_uj: The last raw value read.
        changed_at: Clock time at which the raw value last changed (or was first read).
        read_at: Clock time of the last successful read.
        total_uj: Microjoules counted since ``open``.
        resync: True after a failed read: the next value becomes the new baseline, because a
            counter that disappeared may come back reset and its jump is not energy.
    """

    channel: Channel
    path: Path
    range_uj: int
    last_uj: int
    changed_at: float
    read_at: float
    total_uj: int = 0
    resync: bool = False

    def advance(self, raw_uj: int, now: float) -> bool:
        """Account for a new raw value read at clock time ``now``; False if it was a reset."""
        counted = True
        if self.resync:
            self.resync = False
            self.changed_at = now
        elif raw_uj != self.last_uj:
            delta = _delta_uj(self.last_uj, raw_uj, self.range_uj, now - self.read_at)
            counted = delta is not None
            self.total_uj += delta or 0
            self.changed_at = now
        self.last_uj = raw_uj
        self.read_at = now
        return counted


class RaplMeter(MeterBase):
    """CPU package and DRAM energy from the Linux powercap (RAPL) counters, as cumulative joules.

    Works for Intel and AMD CPUs, in the flat (``/sys/class/powercap``) and the nested
    (``/sys/devices/virtual/powercap``) sysfs layouts. Channels are host-level: in distributed
    runs they are counted once per node.

    Args:
        root: The powercap directory; when None, ``$CARBON_CALLBACKS_POWERCAP_ROOT``, else
            ``/sys/class/powercap`` if it exists, else ``/sys/devices/virtual/powercap``.
        environ: Environment to read the override from; ``os.environ`` when None.
        clock: Monotonic clock in seconds, used to tell stalled counters; injectable for tests.
        read_file: Returns the stripped content of a sysfs file; the single read boundary, so
            tests can inject errors (e.g. ``PermissionError`` where running as root).
    """

    source = _SOURCE

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        read_file: Callable[[Path], str] = _read_text,
    ) -> None:
        super().__init__()
        self._root = root
        self._environ = environ
        self._clock = clock
        self._read_file = read_file
        self._counters: list[_Counter] = []

    @property
    def max_interval_s(self) -> float | None:
        """Half the time the smallest counter range takes to wrap at 1000 W; None before open."""
        if not self._counters:
            return None
        smallest_uj = min(counter.range_uj for counter in self._counters)
        return smallest_uj / 1e6 / _MAX_PACKAGE_W / 2

    def open(self) -> list[Channel]:
        """Find the zones, take each counter's baseline and return the channels readable now."""
        self.close()
        self._unavailable = []
        root = self._resolve_root()
        if not root.is_dir():
            self._unavailable.append(Unavailable(_SOURCE, _NO_POWERCAP.format(root=root)))
            return []
        selected, counterless = _select(_discover(root, self._read_file))
        for zone in counterless:
            reason = f"RAPL zone {zone.path} ({zone.name}) has no energy_uj counter"
            self._unavailable.append(Unavailable(_SOURCE, reason, degrades=True))
        if not selected:
            if not counterless:
                self._unavailable.append(Unavailable(_SOURCE, _NO_ZONES.format(root=root)))
            return []
        denied: list[Path] = []
        for channel_id, zone in selected.items():
            try:
                self._counters.append(self._open_counter(channel_id, zone))
            except PermissionError:
                denied.append(zone.path / "energy_uj")
            except (OSError, ValueError) as exc:
                reason = f"cannot read RAPL zone {zone.path}: {_describe(exc)}"
                self._unavailable.append(Unavailable(_SOURCE, reason))
        if denied:
            reason = _DENIED.format(path=denied[0])
            self._unavailable.insert(
                0, Unavailable(_SOURCE, reason, fix=_DENIED_FIX, degrades=True)
            )
        return [counter.channel for counter in self._counters]

    def read(self) -> Reading:
        """Return joules counted since ``open`` per channel; unreadable or stalled ones in faults.

        A stalled counter keeps its value in ``values`` and is also named in ``faults``; an
        unreadable one is only in ``faults``, and its total so far is kept for later reads.
        """
        reading = Reading()
        now = self._clock()
        for counter in self._counters:
            self._read_counter(counter, now, reading)
        return reading

    def close(self) -> None:
        """Forget the open counters; safe to call more than once."""
        self._counters = []

    def _resolve_root(self) -> Path:
        """Return the powercap directory: argument, then environment, then the sysfs default.

        A variable set to blanks counts as unset, as every ``CARBON_CALLBACKS_*`` one does; any
        other value is taken as written.
        """
        if self._root is not None:
            return Path(self._root)
        environ = os.environ if self._environ is None else self._environ
        override = environ.get(ROOT_ENV, "")
        if override.strip():
            return Path(override)
        return _CLASS_ROOT if _CLASS_ROOT.is_dir() else _DEVICES_ROOT

    def _open_counter(self, channel_id: str, zone: _Zone) -> _Counter:
        """Read a zone's range and baseline; raises OSError or ValueError when it cannot."""
        range_uj = int(self._read_file(zone.path / "max_energy_range_uj"))
        if range_uj <= 0:
            raise ValueError(f"max_energy_range_uj is {range_uj}")
        path = zone.path / "energy_uj"
        raw_uj = int(self._read_file(path))
        now = self._clock()
        return _Counter(_channel(channel_id, zone), path, range_uj, raw_uj, now, now)

    def _read_counter(self, counter: _Counter, now: float, reading: Reading) -> None:
        """Read one counter into ``reading``: its total in values, or why not in faults."""
        channel_id = counter.channel.id
        try:
            raw_uj = int(self._read_file(counter.path))
        except (OSError, ValueError) as exc:
            counter.resync = True
            reading.faults[channel_id] = f"cannot read {counter.path}: {_describe(exc)}"
            return
        counted = counter.advance(raw_uj, now)
        reading.values[channel_id] = counter.total_uj / 1e6
        if not counted:
            reading.faults[channel_id] = _WENT_BACKWARDS
        elif now - counter.changed_at >= _STALL_S:
            reading.faults[channel_id] = _STALLED
