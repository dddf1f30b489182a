"""What the NVIDIA and AMD meters share: their arguments and a vendor library's lifecycle.

Both start a vendor library (NVML, amdsmi) in ``open``, read one source per channel and shut the
library down in ``close``. Its handles are valid only in the process that started it: a child
forked after ``open`` reads faults, never the parent's handles, and leaves the parent's library
running.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from carbon_callbacks.meters.base import Channel, MeterBase, Reading, Unavailable
from carbon_callbacks.meters.visible import VisiblePosition

GpuRead = Callable[[], tuple[float, str | None]]
"""Reads one channel: its value (joules or watts) and a fault that taints it, if any."""


@dataclass(frozen=True)
class GpuSource:
    """How one open channel is read, scaled by its share of a figure that several devices share.

    Attributes:
        channel_id: The channel's id.
        read: Reads the value and a fault that taints it.
        share: The part of the value this channel counts (a die of a dual-die package: 1/2).
    """

    channel_id: str
    read: GpuRead
    share: float = 1.0


class GpuMeterBase(MeterBase):
    """A GPU meter over a vendor library; ``open``, ``read`` and ``close`` never raise.

    A subclass sets ``source`` and ``library_name`` and provides ``_start_library`` (import and
    initialise, or record why not), ``_stop_library``, ``_open_channels`` (fill ``_channels`` and
    ``_sources``, with ``_library`` set) and ``_describe`` (an error in a few words).

    Args:
        gpu_ids: GPUs to measure, overriding the visibility variables (see the subclass).
        environ: Environment to read the visibility variables from at ``open``; defaults to
            ``os.environ``.
        power_only: Read the power (integrated by the sampler) even where an energy counter
            exists, to compare the two methods; the counter, chosen by default, is the better one.
        visible_position: A rank's place on its node: of the visible GPUs, the one at its local
            rank (see ``meters.visible``); None: every visible GPU. Ignored with ``gpu_ids``.

    Raises:
        TypeError: A ``gpu_ids`` entry is neither an int nor a str.
        ValueError: A ``gpu_ids`` entry is a negative index, an empty string or a digit string.
    """

    library_name: ClassVar[str]
    """The vendor library as messages name it, e.g. ``"NVML"``."""

    def __init__(
        self,
        gpu_ids: Sequence[int | str] | None = None,
        environ: Mapping[str, str] | None = None,
        *,
        power_only: bool = False,
        visible_position: VisiblePosition | None = None,
    ) -> None:
        super().__init__()
        self._gpu_ids = None if gpu_ids is None else tuple(check_gpu_id(i) for i in gpu_ids)
        self._environ = environ
        self._power_only = power_only
        self._position = visible_position
        self._library: Any = None
        self._pid: int | None = None
        self._channels: list[Channel] = []
        self._sources: list[GpuSource] = []

    def open(self) -> list[Channel]:
        """Start the library and return one channel per used, readable GPU; never raises.

        While open, a second call returns the same channels; after ``close`` it opens afresh.
        """
        if self._library is not None:
            return list(self._channels)
        self._channels, self._sources, self._unavailable = [], [], []
        library = self._start_library()
        if library is None:
            return []
        self._library, self._pid = library, os.getpid()
        try:
            self._open_channels()
        except Exception as exc:
            reason = f"{self.library_name} could not list the GPUs ({self._describe(exc)})"
            self._unavailable.append(Unavailable(self.source, reason, degrades=True))
        return list(self._channels)

    def read(self) -> Reading:
        """Read every channel: joules for energy channels, watts for power ones; never raises."""
        if self._pid != os.getpid():
            return self._all_faults(f"{self.library_name} handle not valid after fork")
        if self._library is None:
            return self._all_faults(f"{self.library_name} meter is closed")
        reading = Reading()
        for source in self._sources:
            try:
                value, fault = source.read()
            except Exception as exc:
                reading.faults[source.channel_id] = self._describe(exc)
                continue
            reading.values[source.channel_id] = value * source.share
            if fault is not None:
                reading.faults[source.channel_id] = fault
        return reading

    def close(self) -> None:
        """Shut the library down once; idempotent, and a no-op in a child forked after ``open``."""
        library, self._library = self._library, None
        if library is not None and self._pid == os.getpid():
            self._stop_library(library)

    def _all_faults(self, reason: str) -> Reading:
        return Reading(faults={source.channel_id: reason for source in self._sources})

    def _start_library(self) -> Any:
        """The library, imported and initialised; None, with the reason in ``_unavailable``."""
        raise NotImplementedError

    def _stop_library(self, library: Any) -> None:
        """Shut the library down; never raises."""
        raise NotImplementedError

    def _open_channels(self) -> None:
        """Fill ``_channels`` and ``_sources`` from the started library; may raise."""
        raise NotImplementedError

    def _describe(self, exc: Exception) -> str:
        """A short reason for a fault or an unavailable device."""
        raise NotImplementedError


def check_gpu_id(gpu_id: int | str) -> int | str:
    """Reject ``gpu_ids`` entries that cannot name a GPU, at construction, with what to write."""
    if isinstance(gpu_id, bool) or not isinstance(gpu_id, int | str):
        raise TypeError(f"gpu_ids entries are NVML indices (int) or UUIDs (str), got {gpu_id!r}")
    if isinstance(gpu_id, int) and gpu_id < 0:
        raise ValueError(f"gpu_ids index {gpu_id} is negative; NVML indices start at 0")
    if isinstance(gpu_id, str) and (not gpu_id.strip() or gpu_id.strip().isdigit()):
        raise ValueError(
            f"gpu_ids entry {gpu_id!r} is not a UUID: write {gpu_id.strip() or 0} (an int) for an "
            f"NVML index, or 'GPU-...' for a UUID or UUID prefix"
        )
    return gpu_id.strip() if isinstance(gpu_id, str) else gpu_id
