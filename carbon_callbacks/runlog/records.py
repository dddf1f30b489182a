"""The run log: schema-versioned JSON Lines, one file per run, written append-only.

Records, one JSON object a line, each with a ``"type"``:

- ``header``: run id, host, library version, channels and how they are measured, configuration;
- ``window``: one finished window (an epoch, a validation pass, ...), a ``Measurement`` as a dict;
- ``summary``: the whole run, with how it ended (``status``).

Each record is flushed as it is written (windows are written at their boundaries), so a run killed
with SIGKILL leaves a log readable up to its last boundary. The reader treats the file as
untrusted data: it parses JSON only, skips what it cannot use and says why, and tolerates a
truncated last line.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from carbon_callbacks._internal.warnings import WarnOnce
from carbon_callbacks.runlog.schema import RECORD_FIELDS, SHOWN

SCHEMA_VERSION = 1


class RunLogWriter:
    """Appends records to one run log; disk faults warn once and stop the log, never the run.

    A log file deleted while the run goes on (a clean-up script, a user tidying up) is noticed
    before the next write and started again at the same path with the header, so the records that
    follow, the summary among them, still reach disk.

    Args:
        path: The ``.jsonl`` file to create; its folder is created when missing.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None
        self._header: dict[str, Any] | None = None
        self._problem: str | None = None
        self._failed = False
        self._warn_once = WarnOnce()

    @property
    def failed(self) -> bool:
        """True once a write failed: the log on disk is incomplete."""
        return self._failed

    @property
    def problem(self) -> str | None:
        """What went wrong with the log (a failed write, a deleted file), or None."""
        return self._problem

    def write(self, record: dict[str, Any]) -> None:
        """Append one record and flush it to the operating system."""
        if self._failed:
            return
        try:
            line = json.dumps(record, allow_nan=False, separators=(",", ":")) + "\n"
            if self._header is None and record.get("type") == "header":
                self._header = record
            if self._file is not None and os.fstat(self._file.fileno()).st_nlink == 0:
                self._start_again()
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self.path.open("a", encoding="utf-8")
            self._file.write(line)
            self._file.flush()
        except Exception as error:  # disk full, folder gone, a value JSON cannot hold: never raise
            self._failed = True
            if self._file is not None:
                with contextlib.suppress(Exception):  # what is still buffered cannot be written
                    self._file.close()
                self._file = None
            self._problem = f"cannot write the run log {self.path} ({error}); it is incomplete"
            self._warn_once(
                f"runlog:{self.path}",
                f"carbon-callbacks: cannot write the run log {self.path} ({error}); "
                "measurement continues, but this run's log is incomplete.",
            )

    def close(self) -> None:
        """Close the file; safe to call more than once."""
        if self._file is None:
            return
        try:
            self._file.close()
        except Exception as error:
            self._problem = self._problem or f"closing the run log {self.path} failed ({error})"
            self._warn_once(
                f"runlog-close:{self.path}", f"carbon-callbacks: closing {self.path}: {error}"
            )
        self._file = None

    def _start_again(self) -> None:
        """The open file was deleted: open a new one at the same path and write the header again."""
        assert self._file is not None
        with contextlib.suppress(OSError):  # every record was flushed: nothing is left to save
            self._file.close()
        self._file = None
        self._problem = (
            f"the run log {self.path} was deleted during the run; it was started again with the "
            "header, so the records written before the deletion are missing"
        )
        self._warn_once(f"runlog-deleted:{self.path}", f"carbon-callbacks: {self._problem}.")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")
        if self._header is not None:
            header = self._header | {"restarted_unix": time.time()}
            self._file.write(json.dumps(header, allow_nan=False, separators=(",", ":")) + "\n")


@dataclass
class RunLog:
    """A run log as read back: its records by type, and what could not be read.

    Attributes:
        path: The file read.
        header: The header record, or None when missing.
        windows: Window records in file order.
        predictions: Prediction records (forecasts of the whole run made during it), in order.
        samples: Sample records: cumulative joules per channel over time (``t_s`` since the
            start, ``steps``, ``joules`` rows in ``channels`` order), written at window ends.
        summary: The summary record, or None when the run did not finish cleanly.
        resume: For a run resumed from a checkpoint: the run it continues (``resumes``, its run
            id) and the totals carried on (``energy_kwh``, ``co2e_kg``, ``steps``,
            ``duration_s``); None for a run started afresh.
        problems: One message per line skipped, or other defect found.
    """

    path: Path
    header: dict[str, Any] | None = None
    windows: list[dict[str, Any]] = field(default_factory=list)
    predictions: list[dict[str, Any]] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] | None = None
    resume: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)


def read_run_log(path: str | os.PathLike[str]) -> RunLog:
    """Read a run log, skipping records it cannot use and saying why in ``problems``.

    The file is data, never code: lines are parsed as JSON only, and a record is filed only when
    every field the readers of logs use has its type (``record_schema.RECORD_FIELDS``); numbers
    must be finite (``NaN``, ``Infinity`` and ``1e400`` are refused) and integers fit in 64 bits.
    Each line skipped gets one ``problems`` entry naming it (``"line 7: ..."``).

    Raises:
        OSError: The file cannot be opened.
    """
    log = RunLog(Path(path))
    with log.path.open("rb") as file:
        data = file.read()
    lines = data.split(b"\n")
    truncated = not data.endswith(b"\n") and data != b""
    first_lines: dict[str, int] = {}
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        is_last = number == len(lines)
        record = _parse_line(raw, number, log, truncated and is_last)
        if record is not None:
            _file_record(record, number, log, first_lines)
    return log


_MAX_INTEGER = 2**63 - 1
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _parse_line(raw: bytes, number: int, log: RunLog, truncated: bool) -> dict[str, Any] | None:
    try:
        record = json.loads(
            raw.decode("utf-8"),
            parse_constant=_reject_constant,
            parse_float=_finite_float,
            parse_int=_bounded_int,
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        if truncated:
            log.problems.append(f"line {number}: truncated last record (the run was cut off)")
        else:
            log.problems.append(f"line {number}: not valid JSON ({_one_line(error)}); skipped")
        return None
    if not isinstance(record, dict):
        log.problems.append(f"line {number}: not a JSON object; skipped")
        return None
    if _SURROGATE_ESCAPE.search(raw) and not _is_unicode(record):
        log.problems.append(
            f"line {number}: holds text that is not valid Unicode (a lone surrogate); skipped"
        )
        return None
    return record


def _file_record(
    record: dict[str, Any], number: int, log: RunLog, first_lines: dict[str, int]
) -> None:
    kind = record.get("type")
    if not isinstance(kind, str) or kind not in RECORD_FIELDS:
        log.problems.append(f"line {number}: unknown record type {SHOWN.repr(kind)}; skipped")
        return
    problem = RECORD_FIELDS[kind](record, "")
    if problem is not None:
        log.problems.append(f"line {number}: {kind} record: {problem}; skipped")
        return
    if kind in ("header", "summary", "resume"):
        if kind in first_lines:
            log.problems.append(
                f"line {number}: a second {kind} record (the first is on line "
                f"{first_lines[kind]}); skipped"
            )
            return
        first_lines[kind] = number
    if kind == "header":
        schema = record.get("schema")
        if isinstance(schema, bool) or not isinstance(schema, int) or schema > SCHEMA_VERSION:
            log.problems.append(
                f"line {number}: schema {SHOWN.repr(schema)} is not one this version reads "
                f"(<= {SCHEMA_VERSION}); upgrade carbon-callbacks"
            )
        log.header = record
    elif kind == "window":
        log.windows.append(record)
    elif kind == "prediction":
        log.predictions.append(record)
    elif kind == "samples":
        log.samples.append(record)
    elif kind == "resume":
        log.resume = record
    else:
        log.summary = record


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not allowed in a run log")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:20]} is out of range")
    return value


def _bounded_int(text: str) -> int:
    if len(text) > 20:  # refused before conversion: a huge one costs time and is never written
        raise ValueError(f"the integer {text[:20]}... has more than 64 bits")
    value = int(text)
    if abs(value) > _MAX_INTEGER:
        raise ValueError(f"the integer {text} has more than 64 bits")
    return value


def _is_unicode(record: dict[str, Any]) -> bool:
    """Whether every string (keys too) can be encoded, i.e. holds no lone surrogate."""
    try:
        json.dumps(record, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, RecursionError):
        return False
    return True


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())[:200]
