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

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from carbon_callbacks._warnings import WarnOnce

SCHEMA_VERSION = 1


class RunLogWriter:
    """Appends records to one run log; disk faults warn once and stop the log, never the run.

    Args:
        path: The ``.jsonl`` file to create; its folder is created when missing.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None
        self._failed = False
        self._warn_once = WarnOnce()

    @property
    def failed(self) -> bool:
        """True once a write failed: the log on disk is incomplete."""
        return self._failed

    def write(self, record: dict[str, Any]) -> None:
        """Append one record and flush it to the operating system."""
        if self._failed:
            return
        try:
            line = json.dumps(record, allow_nan=False, separators=(",", ":")) + "\n"
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self.path.open("a", encoding="utf-8")
            self._file.write(line)
            self._file.flush()
        except (OSError, ValueError, TypeError) as error:
            self._failed = True
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
        except OSError as error:
            self._warn_once(
                f"runlog-close:{self.path}", f"carbon-callbacks: closing {self.path}: {error}"
            )
        self._file = None


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
        problems: One message per line skipped, or other defect found.
    """

    path: Path
    header: dict[str, Any] | None = None
    windows: list[dict[str, Any]] = field(default_factory=list)
    predictions: list[dict[str, Any]] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)


def read_run_log(path: str | os.PathLike[str]) -> RunLog:
    """Read a run log, skipping records it cannot use and saying why in ``problems``.

    Raises:
        OSError: The file cannot be opened.
    """
    log = RunLog(Path(path))
    with log.path.open("rb") as file:
        data = file.read()
    lines = data.split(b"\n")
    truncated = not data.endswith(b"\n") and data != b""
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        is_last = number == len(lines)
        record = _parse_line(raw, number, log, truncated and is_last)
        if record is not None:
            _file_record(record, number, log)
    return log


def _parse_line(raw: bytes, number: int, log: RunLog, truncated: bool) -> dict[str, Any] | None:
    try:
        record = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        if truncated:
            log.problems.append(f"line {number}: truncated last record (the run was cut off)")
        else:
            log.problems.append(f"line {number}: not valid JSON ({error}); skipped")
        return None
    if not isinstance(record, dict):
        log.problems.append(f"line {number}: not a JSON object; skipped")
        return None
    return record


def _file_record(record: dict[str, Any], number: int, log: RunLog) -> None:
    kind = record.get("type")
    if kind == "header":
        schema = record.get("schema")
        if not isinstance(schema, int) or schema > SCHEMA_VERSION:
            log.problems.append(
                f"line {number}: schema {schema!r} is not one this version reads "
                f"(<= {SCHEMA_VERSION}); upgrade carbon-callbacks"
            )
        log.header = record
    elif kind == "window":
        log.windows.append(record)
    elif kind == "prediction":
        log.predictions.append(record)
    elif kind == "samples":
        log.samples.append(record)
    elif kind == "summary":
        log.summary = record
    else:
        log.problems.append(f"line {number}: unknown record type {kind!r}; skipped")


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not allowed in a run log")
