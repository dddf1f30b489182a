"""Finding run logs: a log given, or the ``*.jsonl`` files under a folder, fenced to that folder."""

from __future__ import annotations

import os
from pathlib import Path


class ReportError(ValueError):
    """The path cannot be reported on (missing, unreadable, no logs); the message says why."""


def discover_logs(path: str | os.PathLike[str]) -> tuple[list[Path], list[str]]:
    """The run logs at ``path``, and the entries of a folder left alone, each with why.

    Under a folder, only regular ``*.jsonl`` files inside it are read: a linked subfolder is not
    followed, a link to a file outside the folder is not read, a file reached through two names
    (a link to a log inside) is read once, and FIFOs, devices and broken links are passed over.
    A file given itself is read whatever it is.

    Raises:
        ReportError: The path does not exist, or a folder holds no run log.
    """
    target = Path(path)
    if not target.is_dir():
        if target.is_file():
            return [target], []
        raise ReportError(f"cannot read {target}: no such file or folder")
    root = target.resolve()
    problems: list[str] = []
    candidates: list[Path] = []

    def unreadable(error: OSError) -> None:
        problems.append(f"{error.filename}: cannot read ({error.strerror or error})")

    for folder, subfolders, files in os.walk(target, onerror=unreadable):
        here = Path(folder)
        for name in subfolders:
            if (here / name).is_symlink():  # os.walk lists it but does not enter it
                problems.append(f"{here / name}: a linked folder; not followed")
        candidates += [here / name for name in files if name.endswith(".jsonl")]
    logs: list[Path] = []
    seen: set[Path] = set()
    for candidate in sorted(candidates):
        real = candidate.resolve()
        if not real.is_relative_to(root):
            problems.append(f"{candidate}: a link to {real}, outside {target}; not read")
        elif real.is_file() and real not in seen:
            seen.add(real)
            logs.append(candidate)
    if not logs:
        reasons = f" ({'; '.join(problems)})" if problems else ""
        raise ReportError(f"no run logs (*.jsonl) under {target}{reasons}")
    return logs, sorted(problems)
