"""What every meter shares: channels, readings, unavailable sources and the Meter protocol.

A meter turns one hardware source (NVML, RAPL, the CPU-time estimate) into channels. Each channel is
read either as a cumulative energy counter in joules or as an instantaneous power in watts; the
sampler integrates power channels so that everything downstream sees cumulative joules only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

ChannelKind = Literal["gpu", "cpu", "dram"]
Method = Literal["measured", "estimated"]
Quantity = Literal["energy", "power"]
Scope = Literal["device", "host", "process"]
"""What a channel covers, which decides who measures it in a distributed run: ``"device"`` (an
accelerator: the rank that trains on it), ``"host"`` (the whole node, e.g. a RAPL CPU package or
DRAM: one rank per node) or ``"process"`` (this process tree, e.g. the CPU estimate: every rank,
summed)."""


@dataclass(frozen=True)
class Channel:
    """One measurable quantity, e.g. one GPU or one CPU package.

    Attributes:
        id: Unique within a run and stable across runs on the same machine, e.g. ``"gpu:0"``,
            ``"cpu:package-0"``, ``"dram:package-0"``, ``"cpu:estimate"``.
        kind: What is measured: ``"gpu"``, ``"cpu"`` or ``"dram"``.
        device: Human-readable device name, e.g. ``"NVIDIA H100 80GB HBM3"``.
        method: ``"measured"`` (a hardware sensor) or ``"estimated"`` (a model).
        how: Which counter or model produced the figure, in words a user can check.
        quantity: What ``Meter.read`` returns for it: cumulative joules (``"energy"``) or watts
            (``"power"``, integrated by the sampler).
        scope: What the channel covers: ``"device"`` (an accelerator), ``"host"`` (the whole
            node: CPU package, DRAM; a distributed run measures it on one rank per node) or
            ``"process"`` (this process tree: the CPU estimate; every rank measures its own).
        resolution_j: The most the counter's granularity can put into or leave out of any
            interval's energy (the CPU estimate: two clock ticks of CPU time x watts per core);
            None where it is too fine to matter. Step-level figures wait for intervals whose
            energy is large beside it.
        max_power_w: The most the channel can draw (the CPU estimate: every CPU busy); None
            when unknown. An interval showing more is too short for the counter's resolution.
    """

    id: str
    kind: ChannelKind
    device: str
    method: Method
    how: str
    quantity: Quantity = "energy"
    scope: Scope = "device"
    resolution_j: float | None = None
    max_power_w: float | None = None

    @property
    def host_level(self) -> bool:
        """True for a channel of the whole node, counted once per node in a distributed run."""
        return self.scope == "host"

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form, as the run log's header and ``carbon-callbacks devices`` show it."""
        return {
            "id": self.id,
            "kind": self.kind,
            "device": self.device,
            "method": self.method,
            "how": self.how,
            "scope": self.scope,
            "host_level": self.host_level,
        }


@dataclass(frozen=True)
class Unavailable:
    """A source that cannot be used on this machine, and why.

    Attributes:
        source: The meter's source name, e.g. ``"nvml"`` or ``"rapl"``.
        reason: Why it cannot be used, in one sentence.
        fix: What the user can do about it, when something can be done; None otherwise.
        degrades: True when the hardware is there but cannot be read (e.g. RAPL permission denied,
            a GPU lost), so its energy is estimated or goes uncounted; the tracker warns once.
        stand_in: What measures it instead, e.g. ``"the CPU estimate"``; None when nothing does.
    """

    source: str
    reason: str
    fix: str | None = None
    degrades: bool = False
    stand_in: str | None = None

    @property
    def unmeasured(self) -> bool:
        """True when hardware that draws power goes uncounted: the run's figures are partial."""
        return self.degrades and self.stand_in is None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form: the source, why it cannot be used, and the fix."""
        return {"source": self.source, "reason": self.reason, "fix": self.fix}


@dataclass
class Reading:
    """The result of one poll of a meter.

    Attributes:
        values: Channel id to cumulative joules (energy channels) or watts (power channels). A
            channel that could not be read this time is absent here and present in ``faults``.
        faults: Channel id to why it could not be read this time, or why a value that was read
            cannot be trusted (e.g. a RAPL counter that stopped changing: in both maps).
    """

    values: dict[str, float] = field(default_factory=dict)
    faults: dict[str, str] = field(default_factory=dict)


class Meter(Protocol):
    """A hardware source turned into channels.

    Contract: no method raises for measurement problems. ``open`` reports what cannot be used
    through ``unavailable`` and returns only the channels that were readable; ``read`` reports
    per-channel faults in the returned ``Reading``; ``close`` is idempotent. Nothing is initialised
    before ``open``.
    """

    source: str
    """Short name of the source, e.g. ``"nvml"``, ``"rapl"``, ``"cpu-estimate"``."""

    @property
    def max_interval_s(self) -> float | None:
        """Longest safe polling interval (RAPL: half the time its counter takes to wrap at 1 kW)."""
        ...

    @property
    def unavailable(self) -> list[Unavailable]:
        """Sources or devices this meter found but cannot read, with the reason and fix."""
        ...

    def open(self) -> list[Channel]:
        """Initialise the source and return the channels that can be read now."""
        ...

    def read(self) -> Reading:
        """Read every open channel once."""
        ...

    def close(self) -> None:
        """Release the source (e.g. ``nvmlShutdown``); safe to call more than once."""
        ...


class MeterBase:
    """The part of a ``Meter`` most meters share: the problems ``open`` found, and no wrap limit.

    A subclass sets ``source``, calls ``super().__init__()``, fills ``self._unavailable`` in
    ``open``, and overrides ``max_interval_s`` when its counter wraps (RAPL).
    """

    source: str

    def __init__(self) -> None:
        self._unavailable: list[Unavailable] = []

    @property
    def max_interval_s(self) -> float | None:
        """None: the counter does not wrap within any run, so any interval is safe."""
        return None

    @property
    def unavailable(self) -> list[Unavailable]:
        """What ``open`` found but cannot read, with the reason and fix (a copy)."""
        return list(self._unavailable)
