"""Reads a run log back, treating the file as untrusted data.

A log holds one JSON object a line, each with a ``"type"`` (see ``runlog.schema``). The reader
parses JSON only (``_internal.strict_json``), files each record by type once it has checked the
fields readers use, skips what it cannot use and says why, and tolerates a truncated last line
(a run cut off mid-write).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from carbon_callbacks._internal import strict_json
from carbon_callbacks.runlog.schema import RECORD_FIELDS, SCHEMA_VERSION, SHOWN


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
        checkpoints: Checkpoint records (the run from its start until ``t_unix``), in order;
            the last one gives the figures of a run cut off before its summary.
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
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] | None = None
    resume: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)


def read_run_log(path: str | os.PathLike[str]) -> RunLog:
    """Read a run log, skipping records it cannot use and saying why in ``problems``.

    The file is data, never code: lines are parsed as JSON only, and a record is filed only when
    every field the readers of logs use has its type (``runlog.schema.RECORD_FIELDS``); numbers
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


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _parse_line(raw: bytes, number: int, log: RunLog, truncated: bool) -> dict[str, Any] | None:
    try:
        record = strict_json.loads(raw.decode("utf-8"))
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
    elif kind == "checkpoint":
        log.checkpoints.append(record)
    elif kind == "resume":
        log.resume = record
    else:
        log.summary = record


def _is_unicode(record: dict[str, Any]) -> bool:
    """Whether every string (keys too) can be encoded, i.e. holds no lone surrogate."""
    try:
        json.dumps(record, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, RecursionError):
        return False
    return True


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())[:200]
