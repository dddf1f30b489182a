"""A fake powercap (RAPL) tree whose package counter follows the scripted CPU power trace.

The tree has the sysfs shape every tool expects: ``powercap/intel-rapl/intel-rapl:0`` with its
files, the flat ``powercap/intel-rapl:0`` link, and ``subsystem`` links back to the class folder
(CodeCarbon reads ``/sys/class/powercap/intel-rapl/subsystem``). All links are relative and inside
the tree, so it can be bind-mounted over ``/sys/class``. A background thread rewrites
``energy_uj`` every few milliseconds with the exact integral of the trace, modulo
``max_energy_range_uj + 1``, as the hardware counter wraps.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

ZONE = "intel-rapl:0"
WRITE_INTERVAL_S = 0.005
"""How often the counter file is rewritten: a reader sees a value at most this old."""


def build_tree(class_dir: Path, range_uj: int, start_uj: int) -> Path:
    """Create ``class_dir/powercap`` with one package zone; return the zone's folder."""
    powercap = class_dir / "powercap"
    control = powercap / "intel-rapl"
    zone = control / ZONE
    zone.mkdir(parents=True)
    (control / "enabled").write_text("1\n")
    (control / "subsystem").symlink_to("..")
    (zone / "name").write_text("package-0\n")
    (zone / "enabled").write_text("1\n")
    (zone / "max_energy_range_uj").write_text(f"{range_uj}\n")
    (zone / "subsystem").symlink_to(os.path.join("..", ".."))
    (powercap / ZONE).symlink_to(os.path.join("intel-rapl", ZONE))
    write_counter(zone, start_uj)
    return zone


def write_counter(zone: Path, energy_uj: int) -> None:
    """Replace ``energy_uj`` atomically: a reader never sees a half-written value."""
    partial = zone / "energy_uj.tmp"
    partial.write_text(f"{energy_uj}\n")
    os.replace(partial, zone / "energy_uj")


class CounterWriter:
    """Keeps a zone's ``energy_uj`` equal to ``start_uj + energy_j() * 1e6``, wrapped.

    Args:
        zone: The zone folder (from ``build_tree``).
        energy_j: Joules the package has used since the fake was loaded (the trace's integral).
    """

    def __init__(self, zone: Path, energy_j: Callable[[], float]) -> None:
        self._zone = zone
        self._energy_j = energy_j
        self._range_uj = int((zone / "max_energy_range_uj").read_text())
        self._start_uj = int((zone / "energy_uj").read_text())
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fake-powercap", daemon=True)

    def start(self) -> None:
        """Write the counter now and then every ``WRITE_INTERVAL_S`` until ``stop``."""
        self._write()
        self._thread.start()

    def stop(self) -> None:
        """Stop the writer thread."""
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(WRITE_INTERVAL_S):
            self._write()

    def _write(self) -> None:
        raw = self._start_uj + int(self._energy_j() * 1e6)
        write_counter(self._zone, raw % (self._range_uj + 1))
