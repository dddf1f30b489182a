"""One run's report from its log, or from the per-rank logs of one distributed run.

A run's figures come from its summary record; for a run cut off before its summary, from its
last checkpoint (the run from its start until then: partial, and said up to when), else from its
logged windows (summed when they follow one another, else the last one), said in ``basis_note``.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, cast

from carbon_callbacks._internal.unique import unique
from carbon_callbacks._internal.units import format_duration
from carbon_callbacks.meters.base import Scope
from carbon_callbacks.reporting.deferral import Deferral, deferral_of
from carbon_callbacks.reporting.forecasts import PredictionCheck, prediction_checks
from carbon_callbacks.reporting.grouping import LogRank, log_rank, log_span, run_id_of, run_name_of
from carbon_callbacks.reporting.merge import combine_ranks, sum_windows
from carbon_callbacks.reporting.resumed import Resumed, resumed_from_record
from carbon_callbacks.runlog import decode
from carbon_callbacks.runlog.reader import RunLog
from carbon_callbacks.tracking.measurement import Measurement

FigureBasis = Literal["summary", "checkpoint", "windows", "last window", "none"]


_STATUS_ORDER = ("failed", "interrupted", "unfinished", "completed")


@dataclass(frozen=True)
class RunReport:
    """One run: a single log, or the per-rank logs of one distributed run combined.

    Attributes:
        name: The run name, else the (rank 0) run id.
        run_ids: The run ids of its logs: one for the ranks of a run that share it.
        paths: The logs read.
        status: ``completed``, ``failed``, ``interrupted`` or ``unfinished`` (no summary).
        basis: Where the figures come from: the ``summary``, the last ``checkpoint``, the sum of
            the top-level ``windows``, the ``last window``, or ``none``.
        basis_note: Why the figures are not from a summary; None when they are.
        up_to_unix: For figures from checkpoints, the time they run up to (the earliest such
            rank's last checkpoint); None otherwise.
        measurement: The run's figures (ranks combined), or None when nothing was logged.
        world_size: The number of ranks of a distributed run; None otherwise.
        ranks_found: The global ranks whose logs were found (distributed runs).
        predictions: Forecasts made during the run, checked against the outcome.
        problems: What the reader skipped or found wrong, per file.
        started_unix: When the run started, when known.
        library_version: The carbon-callbacks version that wrote the log(s).
        resume: For a run resumed from a checkpoint, the run it continues and what the runs
            before it contributed; None for a run started afresh.
        forecast_records: The prediction records of a one-process run, as written (for the
            checks of the training it belongs to).
        cpu_model: The processor's name from the (rank 0) header, when recorded.
        cpu_cores: The machine's logical CPU count from the (rank 0) header, when recorded.
        deferral: For a run started later for a cleaner grid (``run --start-cleaner``), the
            plan it was started by; None otherwise.
        made_by: What made the run when the header says (``"carbon-callbacks run"`` for the
            command line's): its advice (``set cpu_watts=``) is worded for that; else None.
    """

    name: str
    run_ids: tuple[str, ...]
    paths: tuple[Path, ...]
    status: str
    basis: FigureBasis
    basis_note: str | None
    measurement: Measurement | None
    world_size: int | None = None
    ranks_found: tuple[int, ...] = ()
    predictions: tuple[PredictionCheck, ...] = ()
    problems: tuple[str, ...] = ()
    started_unix: float | None = None
    library_version: str | None = None
    resume: Resumed | None = None
    forecast_records: tuple[Mapping[str, Any], ...] = field(default=(), repr=False)
    cpu_model: str | None = None
    cpu_cores: int | None = None
    deferral: Deferral | None = None
    up_to_unix: float | None = None
    made_by: str | None = None

    @property
    def met_g_per_kwh(self) -> float | None:
        """The carbon intensity the run's figures used; None when unknown."""
        intensity = None if self.measurement is None else self.measurement.intensity
        return None if intensity is None else intensity.g_per_kwh


def run_report(logs: Sequence[RunLog]) -> RunReport:
    """The report of one run from its log, or from the per-rank logs of one distributed run."""
    per_log = [_log_figures(log) for log in logs]
    problems = [
        f"{log.path.name}: {problem}"
        for log, figures in zip(logs, per_log, strict=True)
        for problem in (*log.problems, *figures.problems)
    ]
    ranks = [log_rank(log) for log in logs]
    world_size = ranks[0].world_size if ranks[0] is not None else None
    found = tuple(rank.global_rank for rank in ranks if rank is not None)
    if world_size is not None and len(found) < world_size:
        missing = sorted(set(range(world_size)) - set(found))
        shown = ", ".join(str(r) for r in missing[:10])
        if len(missing) > 10:
            shown += f", ... ({len(missing)} in all)"
        problems.append(
            f"only {len(found)} of {world_size} ranks' logs found (missing global rank "
            f"{shown}): the figures cover the ranks found"
        )
    checks = [
        check
        for log, rank, figures in zip(logs, ranks, per_log, strict=True)
        for check in prediction_checks(
            log.predictions,
            figures.measurement,
            complete=figures.basis == "summary" and figures.status == "completed",
            rank=None if rank is None else rank.global_rank,
            problems=problems,
        )
    ]
    notes = [
        f"{log.path.name}: {figures.note}" if len(logs) > 1 else figures.note
        for log, figures in zip(logs, per_log, strict=True)
        if figures.note
    ]
    first = logs[0]
    return RunReport(
        name=run_name_of(first),
        run_ids=tuple(unique(run_id_of(log) for log in logs)),  # ranks may share one
        paths=tuple(log.path for log in logs),
        status=min((figures.status for figures in per_log), key=_status_rank),
        basis=_worst_basis([figures.basis for figures in per_log]),
        basis_note="; ".join(notes) or None,
        measurement=_run_measurement(ranks, per_log, problems),
        world_size=world_size,
        ranks_found=found,
        predictions=tuple(checks),
        problems=tuple(problems),
        started_unix=log_span(first)[0] or None,
        library_version=decode.text((first.header or {}).get("library_version")),
        resume=_run_resume(logs, problems),
        forecast_records=tuple(first.predictions) if len(logs) == 1 else (),
        cpu_model=_cpu_of(first)[0],
        cpu_cores=_cpu_of(first)[1],
        deferral=deferral_of(first.header),
        up_to_unix=min((f.up_to_unix for f in per_log if f.up_to_unix is not None), default=None),
        made_by=_made_by(first),
    )


def _made_by(log: RunLog) -> str | None:
    """The header's ``context.made_by``: what made the run, when it says."""
    context = (log.header or {}).get("context")
    return decode.text(context.get("made_by")) if isinstance(context, dict) else None


def _cpu_of(log: RunLog) -> tuple[str | None, int | None]:
    """The processor's name and logical core count the header records (newer logs only)."""
    cpu = (log.header or {}).get("cpu")
    if not isinstance(cpu, dict):
        return None, None
    try:
        cores: int | None = decode.count(cpu.get("cores"))
    except ValueError:
        cores = None
    return decode.text(cpu.get("model")), cores or None


def _run_resume(logs: Sequence[RunLog], problems: list[str]) -> Resumed | None:
    """The run a resumed run continues, from the ``resume`` record of its (rank 0) log."""
    for log in logs:
        if log.resume is not None:
            try:
                return resumed_from_record(log.resume)
            except (KeyError, TypeError, ValueError):
                problems.append(f"{log.path.name}: the resume record is malformed; skipped")
    return None


def _run_measurement(
    ranks: Sequence[LogRank | None], per_log: Sequence[LogFigures], problems: list[str]
) -> Measurement | None:
    """The log's figures, or the ranks' figures combined."""
    if len(per_log) == 1:
        return per_log[0].measurement
    parts = [
        (rank.global_rank if rank is not None else 0, figures.measurement)
        for rank, figures in zip(ranks, per_log, strict=True)
        if figures.measurement is not None
    ]
    return combine_ranks(parts, problems) if parts else None


@dataclass(frozen=True)
class LogFigures:
    """One log's figures and how they were obtained."""

    measurement: Measurement | None
    basis: FigureBasis
    note: str | None
    status: str
    problems: tuple[str, ...] = ()
    up_to_unix: float | None = None


_NO_SUMMARY = "no summary record (the run was cut off or is still running)"


def _log_figures(log: RunLog) -> LogFigures:
    scopes = _channel_scopes(log)
    problems: list[str] = []
    if log.header is None:
        problems.append("no header record: the channels' host level and the run name are unknown")
    if log.summary is not None:
        status = decode.text(log.summary.get("status")) or "completed"
        try:
            return LogFigures(
                decode.measurement_from_record(log.summary, scopes), "summary", None, status
            )
        except (KeyError, TypeError, ValueError) as error:
            problems.append(f"the summary record is malformed ({error!r}); using the windows")
    windows = []
    for index, record in enumerate(log.windows, start=1):
        try:
            windows.append(decode.measurement_from_record(record, scopes))
        except (KeyError, TypeError, ValueError) as error:
            problems.append(f"window record {index} is malformed ({error!r}); skipped")
    status, why = "unfinished", _NO_SUMMARY
    checkpoint = _checkpoint_figures(log, scopes, windows, problems)
    if checkpoint is not None:
        return checkpoint
    if not windows:
        return LogFigures(None, "none", f"{why}, and no window logged", status, tuple(problems))
    top = _top_level(windows)
    if len(top) > 1 and _disjoint(top):
        summed = sum_windows(top)
        note = (
            f"{why}: figures are the sum of the {len(top)} windows logged "
            f"({_window_names(top)}); time outside them is not counted"
        )
        return LogFigures(summed, "windows", note, status, tuple(problems))
    last = max(windows, key=lambda w: w.start_unix + w.duration_s)
    note = f"{why}: figures are those of the last window logged, {last.name!r}"
    return LogFigures(last, "last window", note, status, tuple(problems))


def _checkpoint_figures(
    log: RunLog, scopes: Mapping[str, Scope], windows: Sequence[Measurement], problems: list[str]
) -> LogFigures | None:
    """The run up to its last checkpoint, marked partial.

    None without a checkpoint (older logs), or when a logged window ends after it (the run was
    cut off between the two records): the windows say more then.
    """
    if not log.checkpoints:
        return None
    try:
        measurement, up_to = decode.checkpoint_from_record(log.checkpoints[-1], scopes)
    except (KeyError, TypeError, ValueError) as error:
        problems.append(f"the last checkpoint record is malformed ({error!r}); using the windows")
        return None
    if any(window.start_unix + window.duration_s > up_to + 1e-3 for window in windows):
        return None
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(up_to))
    note = (
        f"{_NO_SUMMARY}: figures are up to {stamp}, its last checkpoint "
        f"({format_duration(measurement.duration_s)} in); anything after it is not counted"
    )
    cut_off = f"the run after {stamp} (its last checkpoint): cut off, never logged"
    figures = replace(
        measurement,
        name="run up to its last checkpoint",
        unmeasured=(*measurement.unmeasured, cut_off),
    )
    return LogFigures(figures, "checkpoint", note, "unfinished", tuple(problems), up_to)


def _window_names(windows: Sequence[Measurement]) -> str:
    """``'epoch 0', 'epoch 1'``, or ``'epoch' x12`` when windows share a name; at most four."""
    counts: dict[str, int] = {}
    for window in windows:
        counts[window.name] = counts.get(window.name, 0) + 1
    shown = [f"{name!r}" + (f" x{count}" if count > 1 else "") for name, count in counts.items()]
    return ", ".join(shown[:4]) + (", ..." if len(shown) > 4 else "")


def _top_level(windows: Sequence[Measurement]) -> list[Measurement]:
    """Windows not inside another (a validation pass inside an epoch is left out), by start."""
    ordered = sorted(windows, key=lambda w: (w.start_unix, -w.duration_s))
    top: list[Measurement] = []
    reach = -math.inf
    for window in ordered:
        end = window.start_unix + window.duration_s
        if end > reach + 1e-6:
            top.append(window)
            reach = end
    return top


def _disjoint(windows: Sequence[Measurement]) -> bool:
    return all(
        later.start_unix >= earlier.start_unix + earlier.duration_s - 1e-3
        for earlier, later in itertools.pairwise(windows)
    )


def _channel_scopes(log: RunLog) -> dict[str, Scope]:
    """Each header channel's scope; logs written before ``scope`` existed say ``host_level``."""
    channels = (log.header or {}).get("channels")
    if not isinstance(channels, list):
        return {}
    scopes: dict[str, Scope] = {}
    for channel in channels:
        if not isinstance(channel, dict):
            continue
        scope = channel.get("scope")
        if scope not in ("device", "host", "process"):
            scope = "host" if channel.get("host_level") else "device"
        scopes[str(channel.get("id"))] = cast(Scope, scope)
    return scopes


def _status_rank(status: str) -> int:
    """Worst first: a run is as finished as its least finished rank."""
    return _STATUS_ORDER.index(status) if status in _STATUS_ORDER else len(_STATUS_ORDER)


def _worst_basis(bases: Sequence[FigureBasis]) -> FigureBasis:
    order: tuple[FigureBasis, ...] = ("none", "last window", "windows", "checkpoint", "summary")
    return min(bases, key=order.index)
