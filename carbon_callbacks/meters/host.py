"""The host's CPU and DRAM: RAPL counters where readable, else the CPU-time estimate.

The choice is made once, at ``open``: a host with a readable RAPL package counter is measured;
a host without one (a VM, a non-Intel/AMD machine, permission denied) gets the estimate, so a CPU
figure is always there and always says which of the two it is.
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
    """

    source = "host"

    def __init__(self, rapl: Meter, estimate: Meter) -> None:
        self._rapl = rapl
        self._estimate = estimate
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
        """
        stand_in = ESTIMATE_STANDS_IN if self._estimate in self._active else None
        return [
            *(dataclasses.replace(item, stand_in=stand_in) for item in self._rapl.unavailable),
            *self._estimate.unavailable,
        ]

    def open(self) -> list[Channel]:
        """Open RAPL; when it gives no CPU channel, open the estimate as well."""
        channels = self._rapl.open()
        self._active = [self._rapl] if channels else []
        if not any(channel.kind == "cpu" for channel in channels):
            estimated = self._estimate.open()
            if estimated:
                self._active.append(self._estimate)
                channels = [*channels, *estimated]
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
