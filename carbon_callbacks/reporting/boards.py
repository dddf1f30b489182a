"""Accelerator board power from vendor specifications, for estimates made before (or without) a run.

The table ``data/hardware/gpus.csv`` lists common NVIDIA data-centre and workstation GPUs with the
maximum board power the vendor states and the page it states it on (``data/hardware/GPUS.md``).
An estimate from it is count x board power x utilization x hours: an upper bound when utilization
is 1.0, and always labelled estimated.
"""

from __future__ import annotations

import difflib
import functools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from carbon_callbacks._internal.unique import unique

_VENDOR_WORDS = re.compile(r"\b(nvidia|tesla|geforce)\b")


class UnknownHardwareError(ValueError):
    """A GPU name that the table does not know, or that fits several boards."""


@dataclass(frozen=True)
class Accelerator:
    """One board of the table.

    Attributes:
        name: The table's name for it, e.g. ``"H100 SXM"``.
        board_power_w: Maximum board power in watts, as the vendor states it.
        power_kind: Which vendor figure that is (``"max thermal design power"``, ...).
        source_url: The vendor's specification page.
        verified: True when the figure was checked against the vendor's document.
        aliases: Other spellings, including what NVML reports.
    """

    name: str
    board_power_w: float
    power_kind: str
    source_url: str
    verified: bool
    aliases: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "name": self.name,
            "board_power_w": self.board_power_w,
            "power_kind": self.power_kind,
            "source_url": self.source_url,
            "verified": self.verified,
        }


@dataclass(frozen=True)
class HardwareEnergy:
    """Device energy estimated from board power and hours.

    Attributes:
        accelerator: The board used.
        count: How many of them.
        hours: Wall-clock hours.
        utilization: Fraction of board power drawn on average, in (0, 1].
        cpu_watts: Average power of the rest of the machine (CPUs, memory); None when not given.
        energy_kwh: Device energy in kWh (before PUE).
    """

    accelerator: Accelerator
    count: int
    hours: float
    utilization: float
    cpu_watts: float | None
    energy_kwh: float

    def assumptions(self) -> list[str]:
        """The assumptions behind the figure, one sentence each, for reports."""
        board = self.accelerator
        checked = "" if board.verified else " (figure not re-checked against the vendor)"
        lines = [
            f"{self.count} x {board.name} at {board.board_power_w:g} W each "
            f"({board.power_kind}, {board.source_url}){checked}",
            f"average draw {self.utilization:g} x board power"
            + (" (the default: an upper bound)" if self.utilization == 1.0 else ""),
            f"{self.hours:g} h of wall-clock time",
        ]
        if self.cpu_watts is not None:
            lines.append(f"rest of the machine: {self.cpu_watts:g} W over the same hours")
        else:
            lines.append("CPUs, memory and the rest of the machine not counted")
        return lines

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "gpu": self.accelerator.to_dict(),
            "count": self.count,
            "hours": self.hours,
            "utilization": self.utilization,
            "cpu_watts": self.cpu_watts,
            "energy_kwh": self.energy_kwh,
        }


@functools.cache
def accelerators() -> tuple[Accelerator, ...]:
    """Every board in the table, in table order (read once, on first use)."""
    import csv
    import io
    from importlib import resources

    path = resources.files("carbon_callbacks.reporting") / "data" / "hardware" / "gpus.csv"
    rows = csv.DictReader(io.StringIO(path.read_text("utf-8")))
    return tuple(
        Accelerator(
            name=row["name"],
            board_power_w=float(row["board_power_w"]),
            power_kind=row["power_kind"],
            source_url=row["source_url"],
            verified=row["verified"] == "yes",
            aliases=tuple(alias for alias in row["aliases"].split(";") if alias),
        )
        for row in rows
    )


def find_accelerator(name: str) -> Accelerator:
    """The board called ``name``, or with a name that starts so when only one does.

    Case, the words "NVIDIA", "Tesla" and "GeForce", spaces and dashes are ignored: ``"l40s"``,
    ``"h100 sxm"`` and ``"NVIDIA H100 80GB HBM3"`` (what NVML reports) all work.

    Raises:
        UnknownHardwareError: No board matches, or several do; the message lists close matches.
    """
    query = _key(name)
    keyed = [(_key(spelling), board) for board in accelerators() for spelling in _spellings(board)]
    exact = unique(board for key, board in keyed if key == query)
    if len(exact) == 1:
        return exact[0]
    prefixed = unique(board for key, board in keyed if query and key.startswith(query))
    if len(prefixed) == 1:
        return prefixed[0]
    if len(prefixed) > 1:
        options = ", ".join(f"'{board.name}' ({board.board_power_w:g} W)" for board in prefixed)
        raise UnknownHardwareError(
            f"GPU {name!r} fits several boards: {options}; write e.g. --gpu '{prefixed[0].name}'"
        )
    suggestions = _closest(query, keyed)
    hint = f"did you mean {', '.join(repr(b.name) for b in suggestions)}? " if suggestions else ""
    known = ", ".join(board.name for board in accelerators())
    raise UnknownHardwareError(
        f"unknown GPU {name!r}; {hint}known: {known} (or give --energy-kwh yourself)"
    )


def hardware_energy(
    gpu: str,
    count: int,
    hours: float,
    utilization: float = 1.0,
    cpu_watts: float | None = None,
) -> HardwareEnergy:
    """Device energy of ``count`` boards named ``gpu`` over ``hours``, plus ``cpu_watts`` if given.

    Raises:
        UnknownHardwareError: ``gpu`` is not in the table (or is ambiguous).
        ValueError: A number is out of range; the message says what to write.
    """
    board = find_accelerator(gpu)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a whole number >= 1, got {count!r}; write --count 8")
    _check_positive(hours, "hours", "--hours 24")
    _check_positive(utilization, "utilization", "--utilization 0.7")
    if utilization > 1.0:
        raise ValueError(
            f"utilization is a fraction of board power in (0, 1], got {utilization!r}; "
            "write --utilization 0.7"
        )
    if cpu_watts is not None and (not math.isfinite(cpu_watts) or cpu_watts < 0):
        raise ValueError(f"cpu_watts must be >= 0, got {cpu_watts!r}; write e.g. cpu_watts=200")
    watts = count * board.board_power_w * utilization + (cpu_watts or 0.0)
    return HardwareEnergy(board, count, hours, utilization, cpu_watts, watts * hours / 1000.0)


def _closest(query: str, keyed: Sequence[tuple[str, Accelerator]]) -> list[Accelerator]:
    """Up to three boards whose spellings are most like ``query`` (difflib ratio >= 0.6).

    Ties go to the longer common prefix, as typos tend to come late: ``h1000`` is an H100.
    """
    scored = []
    for key, board in keyed:
        ratio = difflib.SequenceMatcher(None, query, key).ratio()
        if ratio >= 0.6:
            prefix = _common_prefix(query, key)
            scored.append((-(ratio + prefix / 1000), key, board))
    return unique(board for _score, _key, board in sorted(scored, key=_first_two))[:3]


def _common_prefix(first: str, second: str) -> int:
    length = 0
    for a, b in zip(first, second, strict=False):
        if a != b:
            break
        length += 1
    return length


def _first_two(entry: tuple[float, str, Accelerator]) -> tuple[float, str]:
    return entry[0], entry[1]


def _check_positive(value: float, name: str, example: str) -> None:
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}; write {example}")


def _spellings(board: Accelerator) -> tuple[str, ...]:
    return (board.name, *board.aliases)


def _key(text: str) -> str:
    """``"NVIDIA H100-SXM"`` -> ``"h100sxm"``: case, vendor words and punctuation ignored."""
    return re.sub(r"[^a-z0-9]", "", _VENDOR_WORDS.sub("", text.casefold()))
