"""The host's CPU and DRAM: RAPL counters where readable, else the CPU-time estimate.

The choice is made once, at ``open``: a host with a readable RAPL package counter is measured;
a host without one (a VM, a non-Intel/AMD machine, permission denied) gets the estimate, so a CPU
figure is always there and always says which of the two it is.

RAPL counters cover the whole socket (host-level channels); the estimate covers this process tree
(a process-level channel). A rank of a distributed run that leaves the host to another rank of its
node keeps the estimate, since no other rank counts this process's CPU time, and drops RAPL.
"""

from __future__ import annotations

import dataclasses

from carbon_callbacks.meters.base import Channel, Meter, Reading, Unavailable

ESTIMATE_STANDS_IN = "the CPU estimate"


class HostMeter:
    """RAPL with the CPU estimate as fallback, behind one Meter.

    Args:
        rapl: The RAPL meter to try first.
        estimate: The meter used when RAPL yields no CPU channel.
        host_level: False drops the host-level channels (RAPL: the whole socket), which another
            process on the node measures; process-level ones (the estimate) stay.
    """

    source = "host"

    def __init__(self, rapl: Meter, estimate: Meter, *, host_level: bool = True) -> None:
        self._rapl = rapl
        self._estimate = estimate
        self._host_level = host_level
        self._active: list[Meter] = []

    @property
    def max_interval_s(self) -> float | None:
        """The RAPL wrap limit while RAPL is in use; no limit for the estimate."""
        limits = [m.max_interval_s for m in self._active if m.max_interval_s is not None]
        return min(limits) if limits else None

    @property
    def unavailable(self) -> list[Unavailable]:
        """What RAPL (and, if it failed too, the estimate) could not use.

        While the estimate is in use it stands in for the RAPL counters that could not be read.
        Without host-level channels, RAPL's troubles are the host-measuring process's to report.
        """
        stand_in = ESTIMATE_STANDS_IN if self._estimate in self._active else None
        rapl = self._rapl.unavailable if self._host_level else []
        return [
            *(dataclasses.replace(item, stand_in=stand_in) for item in rapl),
            *self._estimate.unavailable,
        ]

    def open(self) -> list[Channel]:
        """Open RAPL; when it gives no CPU channel, open the estimate as well.

        Without host-level channels RAPL is still opened, to learn whether the rank measuring
        the host reads RAPL (then this process adds nothing) or the estimate (then it adds its own).
        """
        channels = self._rapl.open()
        self._active = [self._rapl] if channels else []
        if not any(channel.kind == "cpu" for channel in channels):
            estimated = self._estimate.open()
            if estimated:
                self._active.append(self._estimate)
                channels = [*channels, *estimated]
        if not self._host_level:
            self._rapl.close()
            self._active = [meter for meter in self._active if meter is not self._rapl]
            channels = [channel for channel in channels if not channel.host_level]
        return channels

    def read(self) -> Reading:
        """Read the meters in use and merge their readings."""
        merged = Reading()
        for meter in self._active:
            reading = meter.read()
            merged.values.update(reading.values)
            merged.faults.update(reading.faults)
        return merged

    def close(self) -> None:
        """Close both meters (each close is idempotent)."""
        self._rapl.close()
        self._estimate.close()
