"""CPU energy estimated from CPU time, for machines with no readable counter (most cloud VMs, CI).

The model: energy = CPU seconds used by this process tree (psutil) x watts per busy core. It
attributes to the run only the CPU work the run did, not the idle draw of the host. The watts per
core are, in order: ``cpu_watts=`` when given; the TDP / cores of the CPU named in /proc/cpuinfo
when the Green Algorithms CPU table has it (``cpu_models``); else 12 W, the per-core figure the
Green Algorithms calculator uses when the processor is unknown (Lannelongue, Grealey and Inouye,
"Green Algorithms", Advanced Science, 2021). The channel's description says which, and names the
model read. Every channel it yields says ``estimated``.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable
from typing import Any

from carbon_callbacks.meters.base import Channel, MeterBase, Reading, Unavailable
from carbon_callbacks.meters.cpu_models import (
    CPUINFO_PATH,
    TABLE_NAME,
    CpuInfo,
    find_cpu,
    read_cpuinfo,
)

DEFAULT_WATTS_PER_CORE = 12.0
CHANNEL_ID = "cpu:estimate"
DESCENDANTS_REFRESH_S = 2.0
SET_WATTS = "set cpu_watts= to your CPU's TDP / cores"
CPU_TIME_RESOLUTION_TICKS = 2
"""How many clock ticks a difference of two CPU-time readings may be off: the kernel gives user
and system time in whole ticks, each rounded down (for one process; each descendant adds as
much, which the channel's resolution leaves out)."""


def watts_per_core_for(
    cpu: CpuInfo | None, given: float | None = None, cpuinfo_path: str = CPUINFO_PATH
) -> tuple[float, str]:
    """The watts per busy core for ``cpu``, and the description every figure carries.

    Args:
        cpu: What ``cpuinfo_path`` says; None when it could not be read.
        given: ``cpu_watts`` as configured; it wins over the table.
        cpuinfo_path: The file ``cpu`` was read from, named when it says nothing usable.
    """
    if given is not None:
        return given, _describe(f"{given:g}", "set by cpu_watts")
    if cpu is None:
        basis = f"default: {cpuinfo_path} could not be read; {SET_WATTS}"
    elif cpu.model_name is None:
        basis = f"default: {cpuinfo_path} names no CPU model; {SET_WATTS}"
    elif (spec := find_cpu(cpu.model_name)) is None:
        basis = f'default: "{cpu.model_name}" is not in the CPU table; {SET_WATTS}'
    else:
        basis = f"{spec.model}: {spec.tdp_w:g} W TDP / {spec.cores} cores, {TABLE_NAME}"
        per_core = cpu.threads_per_core
        if per_core is not None and per_core > 1.0:
            basis += f"; {per_core:g} threads per core: a busy thread counts as a busy core"
        return spec.watts_per_core, _describe(f"{spec.watts_per_core:.3g}", basis)
    return DEFAULT_WATTS_PER_CORE, _describe(f"{DEFAULT_WATTS_PER_CORE:g}", basis)


def _describe(watts_per_core: str, basis: str) -> str:
    """The one-line description of the estimate: its model, figure and where the figure is from."""
    model = "estimate: CPU time of this process tree (psutil)"
    return f"{model} x {watts_per_core} W per busy core ({basis})"


class CpuEstimateMeter(MeterBase):
    """Cumulative CPU-time energy estimate for the current process and its descendants.

    Descendants include DataLoader workers and, for ``carbon-callbacks run``, the measured command.
    CPU time of children that have exited and been waited for is included through psutil's
    ``children_user``/``children_system``; the counter is kept monotonic across that hand-over.

    Args:
        watts_per_core: Watts per busy core; None: the CPU's TDP / cores from the CPU table,
            else the default (decided at ``open``, from ``cpuinfo_path``).
        exclude_pids: Processes left out with their descendants: the other ranks of a distributed
            run, which measure themselves, though a launcher (Lightning's) may start them as
            children of this one.
        cpuinfo_path: Where the CPU model is read (tests point it at a file of their own).
    """

    source = "cpu-estimate"

    def __init__(
        self,
        watts_per_core: float | None = None,
        exclude_pids: Iterable[int] = (),
        cpuinfo_path: str | os.PathLike[str] = CPUINFO_PATH,
    ) -> None:
        super().__init__()
        self._given_watts = watts_per_core
        self._cpuinfo_path = cpuinfo_path
        self._watts_per_core = math.nan
        self._exclude_pids = frozenset(exclude_pids)
        self._process: Any = None
        self._descendants: list[Any] = []
        self._descendants_listed_at = -math.inf
        self._pid = 0
        self._baseline_cpu_s = 0.0
        self._last_cpu_s = 0.0

    def open(self) -> list[Channel]:
        """Find the watts per core, then start counting from this process tree's CPU time."""
        cpu = None if self._given_watts is not None else read_cpuinfo(self._cpuinfo_path)
        path = os.fspath(self._cpuinfo_path)
        self._watts_per_core, how = watts_per_core_for(cpu, self._given_watts, path)
        try:
            import psutil

            self._process = psutil.Process()
            self._pid = os.getpid()
            self._baseline_cpu_s = self._tree_cpu_seconds()
        except Exception as error:  # psutil missing or /proc unreadable: report, never raise
            self._unavailable = [Unavailable(self.source, f"cannot read CPU time: {error}")]
            self._process = None
            return []
        self._last_cpu_s = self._baseline_cpu_s
        watts = self._watts_per_core
        return [
            Channel(
                id=CHANNEL_ID,
                kind="cpu",
                device="CPU (process tree)",
                method="estimated",
                how=how,
                quantity="energy",
                scope="process",
                resolution_j=CPU_TIME_RESOLUTION_TICKS / _clock_ticks_per_s() * watts,
                max_power_w=(os.cpu_count() or 1) * watts,
            )
        ]

    def read(self) -> Reading:
        """Return the estimated joules since ``open``."""
        if self._process is None:
            return Reading(faults={CHANNEL_ID: "CPU estimate is not open"})
        if os.getpid() != self._pid:
            return Reading(faults={CHANNEL_ID: "CPU estimate opened in another process"})
        try:
            cpu_s = self._tree_cpu_seconds()
        except Exception as error:
            return Reading(faults={CHANNEL_ID: f"cannot read CPU time: {error}"})
        # A child that exits moves its time from the live sum to children_*; the brief window in
        # between must not make the counter go backwards.
        self._last_cpu_s = max(self._last_cpu_s, cpu_s)
        joules = (self._last_cpu_s - self._baseline_cpu_s) * self._watts_per_core
        return Reading(values={CHANNEL_ID: joules})

    def close(self) -> None:
        """Nothing to release; kept for the Meter protocol."""
        self._process = None

    def _tree_cpu_seconds(self) -> float:
        """CPU seconds of this process and all its descendants, live or reaped."""
        import psutil

        now = time.monotonic()
        if now - self._descendants_listed_at >= DESCENDANTS_REFRESH_S:
            # Listing descendants scans every process on the host (~1 ms for 60 processes), so it
            # is done every few seconds, not at every read. A descendant's CPU time is cumulative,
            # so one found late loses nothing, and one that exits in between is counted through
            # its parent's children_user/children_system.
            self._descendants = self._without_excluded(self._process.children(recursive=True))
            self._descendants_listed_at = now
        own = self._process.cpu_times()
        total = own.user + own.system + own.children_user + own.children_system
        for child in self._descendants:
            try:
                times = child.cpu_times()
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            total += times.user + times.system + times.children_user + times.children_system
        return float(total)

    def _without_excluded(self, descendants: list[Any]) -> list[Any]:
        """The descendants minus the excluded processes and their own descendants."""
        import psutil

        excluded = [child for child in descendants if child.pid in self._exclude_pids]
        if not excluded:
            return descendants
        skipped = {child.pid for child in excluded}
        for child in excluded:
            try:
                skipped.update(grandchild.pid for grandchild in child.children(recursive=True))
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        return [child for child in descendants if child.pid not in skipped]


def _clock_ticks_per_s() -> int:
    """The unit of the kernel's CPU times (``SC_CLK_TCK``, 100 on Linux), which psutil reads."""
    try:
        return max(int(os.sysconf("SC_CLK_TCK")), 1)
    except (AttributeError, OSError, ValueError):
        return 100
