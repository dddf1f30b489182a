"""Writes a run log: one JSON object a line, appended and flushed record by record.

Each record is flushed as it is written (windows are written at their boundaries), so a run killed
with SIGKILL leaves a log readable up to its last boundary. Disk faults never reach the run: the
writer warns once, says what went wrong in ``problem`` and stops writing.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import IO, Any

from carbon_callbacks._internal.signals import DeferringLock
from carbon_callbacks._internal.warnings import WarnOnce


class RunLogWriter:
    """Appends records to one run log; disk faults warn once and stop the log, never the run.

    A log file deleted while the run goes on (a clean-up script, a user tidying up) is noticed
    before the next write and started again at the same path with the header, so the records that
    follow, the summary among them, still reach disk. Records may come from two threads (the
    training thread's windows, the sampler thread's checkpoints): each is written whole.

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
        self._lock = DeferringLock()

    @property
    def problem(self) -> str | None:
        """What went wrong with the log (a failed write, a deleted file), or None."""
        return self._problem

    def write(self, record: dict[str, Any]) -> None:
        """Append one record and flush it to the operating system."""
        with self._lock:
            self._write(record)

    def _write(self, record: dict[str, Any]) -> None:
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
        with self._lock:
            self._close()

    def _close(self) -> None:
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
