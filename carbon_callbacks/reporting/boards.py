"""Accelerator board power from vendor specifications, for estimates made before (or without) a run.

The table ``data/hardware/gpus.csv`` lists common NVIDIA, AMD and Intel data-centre and
workstation accelerators with the maximum board power the vendor states and the page it states it
on (``data/hardware/GPUS.md``). An estimate from it is count x board power x utilization x hours:
an upper bound when utilization is 1.0, and always labelled estimated. A name that fits several
boards (``A100``) gives the range over them, never one of them picked silently.
"""

from __future__ import annotations

import difflib
import functools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from carbon_callbacks._internal.unique import unique
from carbon_callbacks._internal.units import format_power, format_power_span

_VENDOR_WORDS = re.compile(r"\b(nvidia|tesla|geforce|amd|instinct|intel|habana)\b")


class UnknownHardwareError(ValueError):
    """A GPU name that fits no board of the table."""


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
    """Device energy estimated from board power and hours, over every board the name fits.

    Attributes:
        gpu: The name asked for, e.g. ``"A100"``.
        boards: The boards it fits: one for an exact name, else every variant.
        count: How many of them.
        hours: Wall-clock hours.
        utilization: Fraction of board power drawn on average, in (0, 1].
        cpu_watts: Average power of the rest of the machine (CPUs, memory); None when not given.
    """

    gpu: str
    boards: tuple[Accelerator, ...]
    count: int
    hours: float
    utilization: float
    cpu_watts: float | None

    @property
    def board_power_w(self) -> tuple[float, float]:
        """The lowest and highest board power over the boards the name fits."""
        powers = [board.board_power_w for board in self.boards]
        return min(powers), max(powers)

    @property
    def energy_kwh_range(self) -> tuple[float, float]:
        """Device energy in kWh (before PUE) at the lowest and the highest board power."""
        low, high = self.board_power_w
        return self._energy_kwh(low), self._energy_kwh(high)

    @property
    def energy_kwh(self) -> float:
        """The middle of the range (the board's figure when the name is exact)."""
        low, high = self.energy_kwh_range
        return (low + high) / 2

    def subject(self) -> str:
        """What the figure is of, for people: ``"8 x A100 (250-400 W depending on the variant)"``.

        Then the rest of the machine, if given, and the hours.
        """
        low, high = self.board_power_w
        if len(self.boards) == 1:
            power = format_power(high)
        elif low == high:
            power = f"{format_power(high)} for each of its {len(self.boards)} variants"
        else:
            power = f"{format_power_span(low, high)} depending on the variant"
        name = self.boards[0].name if len(self.boards) == 1 else self.gpu
        boards = f"{self.count} x {name} ({power})"
        rest = "" if self.cpu_watts is None else f" and {format_power(self.cpu_watts)} for the rest"
        return f"{boards}{rest}, {self.hours:g} h"

    def assumptions(self) -> list[str]:
        """The assumptions behind the figure, one sentence each, for reports."""
        if len(self.boards) == 1:
            board = self.boards[0]
            lines = [
                f"{self.count} x {board.name} at {board.board_power_w:g} W each {_cited(board)}"
            ]
        else:
            low, high = self.board_power_w
            figures = (
                "one figure"
                if low == high
                else "each figure is the middle of its range, the ends beside"
            )
            lines = [
                f"{self.count} x {self.gpu}: the name fits {len(self.boards)} boards, "
                f"{format_power_span(low, high)} each; {figures}",
                *(
                    f"variant {board.name}: {board.board_power_w:g} W {_cited(board)}"
                    for board in self.boards
                ),
            ]
        lines += [
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
        """JSON-ready form: the board (None when the name fits several), every variant, ranges."""
        low, high = self.board_power_w
        energy_low, energy_high = self.energy_kwh_range
        return {
            "gpu": self.boards[0].to_dict() if len(self.boards) == 1 else None,
            "name_given": self.gpu,
            "variants": [board.to_dict() for board in self.boards],
            "board_power_w": (low + high) / 2,
            "board_power_w_low": low,
            "board_power_w_high": high,
            "count": self.count,
            "hours": self.hours,
            "utilization": self.utilization,
            "cpu_watts": self.cpu_watts,
            "energy_kwh": self.energy_kwh,
            "energy_kwh_low": energy_low,
            "energy_kwh_high": energy_high,
        }

    def _energy_kwh(self, board_power_w: float) -> float:
        watts = self.count * board_power_w * self.utilization + (self.cpu_watts or 0.0)
        return watts * self.hours / 1000.0


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


def find_accelerators(name: str) -> tuple[Accelerator, ...]:
    """The board called ``name``, or every board the name fits.

    Case, vendor words ("NVIDIA", "Tesla", "GeForce", "AMD", "Instinct", "Intel", "Habana"),
    spaces and dashes are ignored: ``"l40s"``, ``"h100 sxm"`` and ``"NVIDIA H100 80GB HBM3"``
    (what NVML reports) name one board each. Otherwise the name fits a board when its words, in
    order, begin words of one of the board's spellings (letters and digits count as separate
    words): ``"A100 80GB"`` fits both the SXM and the PCIe 80GB boards, ``"A100"`` all four.

    Raises:
        UnknownHardwareError: No board fits; the message lists close names.
    """
    query = _key(name)
    keyed = [(_key(spelling), board) for board in accelerators() for spelling in _spellings(board)]
    exact = unique(board for key, board in keyed if key == query)
    if len(exact) == 1:
        return (exact[0],)
    words = _words(name)
    fitting = unique(
        board
        for board in accelerators()
        for spelling in _spellings(board)
        if words and _begins_words_in_order(words, _words(spelling))
    )
    if fitting:
        return tuple(fitting)
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

    A name that fits several boards gives the range over them (``find_accelerators``).

    Raises:
        UnknownHardwareError: ``gpu`` fits no board of the table.
        ValueError: A number is out of range; the message says what to write.
    """
    boards = find_accelerators(gpu)
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
    return HardwareEnergy(gpu, boards, count, hours, utilization, cpu_watts)


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


def _cited(board: Accelerator) -> str:
    """``"(max thermal design power, https://...)"``, and whether the figure was re-checked."""
    checked = "" if board.verified else " (figure not re-checked against the vendor)"
    return f"({board.power_kind}, {board.source_url}){checked}"


def _begins_words_in_order(words: Sequence[str], spelling: Sequence[str]) -> bool:
    """Each of ``words`` begins a word of ``spelling``, in order (earliest match is enough)."""
    remaining = iter(spelling)
    return all(any(candidate.startswith(word) for candidate in remaining) for word in words)


def _words(text: str) -> list[str]:
    """``"NVIDIA A100-SXM4-80GB"`` -> ``["a", "100", "sxm", "4", "80", "gb"]``."""
    return re.findall(r"[a-z]+|[0-9]+", _VENDOR_WORDS.sub("", text.casefold()))


def _spellings(board: Accelerator) -> tuple[str, ...]:
    return (board.name, *board.aliases)


def _key(text: str) -> str:
    """``"NVIDIA H100-SXM"`` -> ``"h100sxm"``: case, vendor words and punctuation ignored."""
    return re.sub(r"[^a-z0-9]", "", _VENDOR_WORDS.sub("", text.casefold()))
