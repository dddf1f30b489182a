"""What the command line says: library messages in flag wording, warnings as one plain line.

The library words its messages for Python callers (``pue must be >= 1 ...; write e.g.
pue=1.2``). The command line words them in the flags of the subcommand that was run (``--pue
must be >= 1 ...; write e.g. --pue 1.2``), translating at this one boundary from the flags the
parser declares (``cli_parser.flags_of``), so a check is written once and reads the same in
``run``, ``intensity`` and ``estimate``.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from carbon_callbacks.cli_parser import PROG
from carbon_callbacks.meters.base import Channel, Unavailable

if TYPE_CHECKING:
    from carbon_callbacks.reporting.report import Report
    from carbon_callbacks.reporting.runs import RunReport

_VALUE = r"""'[^']*'|"[^"]*"|[^\s,;)]*[^\s,;).]"""
"""A value after ``keyword=``: quoted, or up to a space or punctuation (not a final full stop)."""


def in_flags(message: str, flags: Mapping[str, str]) -> str:
    """``message`` with each keyword argument it names written as the flag that sets it.

    ``live=True`` becomes ``--live``; ``cloud='aws'`` becomes ``--cloud aws``; ``pue must``
    becomes ``--pue must``; a keyword with an underscore (``intensity_g_per_kwh``) is replaced
    wherever it stands as a word. Plain words (``country``, ``zone``) stay where they are only
    words. Variables (``CARBON_CALLBACKS_ZONE=...``) are left alone.
    """
    for keyword, flag in sorted(flags.items(), key=lambda item: -len(item[0])):
        word = rf"(?<![\w.-]){re.escape(keyword)}"
        message = re.sub(rf"{word}=True\b", flag, message)
        message = re.sub(rf"{word}=({_VALUE})", _flag_with_value(flag), message)
        message = re.sub(rf"{word}=(?=[\s,;)]|$)", flag, message)
        if "_" in keyword:
            message = re.sub(rf"{word}(?![\w=-])", flag, message)
        else:
            message = re.sub(rf"{word}(?= (must|needs) )", flag, message)
    return message


def _flag_with_value(flag: str) -> Callable[[re.Match[str]], str]:
    """The replacement of ``keyword=value``: ``flag value``."""
    return lambda match: f"{flag} {_shell_word(match[1])}"


def _shell_word(value: str) -> str:
    """A Python literal as the shell word that gives the same text.

    ``'H100 SXM'`` stays quoted, ``'SE'`` becomes ``SE``.
    """
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return shlex.quote(value[1:-1])
    return value


def one_line(error: BaseException, flags: Mapping[str, str] | None = None) -> str:
    """An exception as one line, in the subcommand's flags when they are given.

    An OSError reads 'cannot use file: reason'; anything else is its message.
    """
    if isinstance(error, OSError) and error.filename is not None:
        return f"cannot use {error.filename}: {error.strerror or error}"
    text = " ".join(str(error).split())
    return text if flags is None else in_flags(text, flags)


@contextmanager
def plain_warnings(flags: Mapping[str, str] | None = None) -> Iterator[None]:
    """Show warnings as ``carbon-callbacks: warning: ...``, one line each, while in the block.

    Python's own form (``file.py:191: CarbonCallbacksWarning: ...`` and the source line) is for
    a programmer; a person at the command line gets the message alone, in flag wording.
    """

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        print(warning_line(str(message), flags), file=sys.stderr if file is None else file)

    previous = warnings.showwarning
    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = previous


def warning_line(message: str, flags: Mapping[str, str] | None = None) -> str:
    """``carbon-callbacks: warning: <message>`` on one line (the library's own prefix dropped)."""
    text = " ".join(message.split()).removeprefix(f"{PROG}: ")
    return f"{PROG}: warning: {text if flags is None else in_flags(text, flags)}"


def nvidia_present(proc_root: Path = Path("/proc"), dev_root: Path = Path("/dev")) -> bool:
    """Whether an NVIDIA driver is loaded or an NVIDIA device node exists on this machine."""
    if (proc_root / "driver" / "nvidia").exists():
        return True
    try:
        return any(dev_root.glob("nvidia*"))
    except OSError:
        return False


def without_needless_fixes(
    unavailable: Sequence[Unavailable], *, nvidia: bool
) -> list[Unavailable]:
    """The sources not usable, with the NVIDIA install hint kept only where NVIDIA hardware is.

    On a machine without it, ``pip install ...[nvidia]`` would measure nothing more.
    """
    return [
        item
        if nvidia or item.source != "nvml" or item.fix is None
        else dataclasses.replace(item, fix=None)
        for item in unavailable
    ]


def advice_in_flags(report: Report, made_by: str, flags: Mapping[str, str]) -> Report:
    """``report`` with the advice of the runs ``made_by`` the command line in its flags.

    A run log keeps its channels' and intensity's advice as the library words it (``set
    cpu_watts=``, ``set country=``); for a run that ``carbon-callbacks run`` made, the person
    reading the report typed flags, so that advice is shown as the flags (``--cpu-watts-per-core``).
    Only those texts are reworded: run names and paths stay as they are.
    """
    runs = tuple(
        _run_advice_in_flags(run, flags) if run.made_by == made_by else run for run in report.runs
    )
    return dataclasses.replace(report, runs=runs)


def _run_advice_in_flags(run: RunReport, flags: Mapping[str, str]) -> RunReport:
    measurement = run.measurement
    if measurement is None:
        return run
    channels = tuple(
        dataclasses.replace(figure, channel=_channel_in_flags(figure.channel, flags))
        for figure in measurement.channels
    )
    intensity = measurement.intensity
    if intensity is not None and intensity.fallback:
        intensity = dataclasses.replace(intensity, fallback=in_flags(intensity.fallback, flags))
    reworded = dataclasses.replace(measurement, channels=channels, intensity=intensity)
    return dataclasses.replace(run, measurement=reworded)


def _channel_in_flags(channel: Channel, flags: Mapping[str, str]) -> Channel:
    return dataclasses.replace(channel, how=in_flags(channel.how, flags))
