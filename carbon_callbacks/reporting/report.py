"""Reports over run logs: every run under a path, its figures, status and forecasts, and totals.

A report reads one run log or a folder of them (a sweep) and gives, for each run, its figures as a
:class:`~carbon_callbacks.tracking.measurement.Measurement`, its status, its forecasts checked
against what happened, and the problems the reader found; and the totals over the runs. The steps
live apart: finding logs (``logs``), grouping ranks into runs (``grouping``), one run's figures
(``runs``, ``merge``), forecasts (``forecasts``), resumed runs (``trainings``). Rendering lives
in ``text``, ``report_json`` and ``export``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from carbon_callbacks.reporting.grouping import group_logs
from carbon_callbacks.reporting.logs import ReportError, discover_logs
from carbon_callbacks.reporting.runs import RunReport, run_report
from carbon_callbacks.reporting.trainings import Training, link_trainings
from carbon_callbacks.runlog.reader import RunLog, read_run_log


@dataclass(frozen=True)
class Totals:
    """Sums over the runs of a report; a run without a figure is counted, not treated as 0.

    Attributes:
        runs: Number of runs.
        energy_kwh: Total facility energy over the runs that have a figure; None if none has.
        co2e_kg: Total CO2e over the runs that have a figure; None if none has.
        duration_s: Total duration over the runs with figures.
        runs_without_energy: Runs with no energy figure.
        runs_without_co2e: Runs with energy but no CO2e.
        estimated: True when any run's total includes an estimated figure.
        partial: True when any run's figures are incomplete or not from a completed summary.
    """

    runs: int
    energy_kwh: float | None
    co2e_kg: float | None
    duration_s: float
    runs_without_energy: int
    runs_without_co2e: int
    estimated: bool
    partial: bool

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form: every field."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Report:
    """Every run found under a path, and their totals.

    Attributes:
        path: What was asked for.
        runs: One entry per run, in start order.
        totals: Sums over the runs.
        problems: Files and folders skipped, each with why: unreadable, not run logs, links
            leading out of the folder reported on.
        trainings: The resumed runs, linked into trainings (see :class:`Training`).
    """

    path: Path
    runs: tuple[RunReport, ...]
    totals: Totals
    problems: tuple[str, ...] = ()
    trainings: tuple[Training, ...] = ()


def build_report(path: str | os.PathLike[str]) -> Report:
    """Read every log at ``path`` and report on each run and on all of them together.

    Raises:
        ReportError: Nothing could be read; the message says why.
    """
    return report_from_logs(path, *read_logs(path))


def read_logs(path: str | os.PathLike[str]) -> tuple[list[RunLog], list[str]]:
    """Every run log at ``path`` (fenced to it: ``discover_logs``), and the files skipped.

    Raises:
        ReportError: Nothing could be read; the message says why.
    """
    logs: list[RunLog] = []
    log_paths, problems = discover_logs(path)
    for log_path in log_paths:
        try:
            log = read_run_log(log_path)
        except OSError as error:
            problems.append(f"{log_path}: cannot read ({error.strerror or error})")
            continue
        if log.header or log.windows or log.predictions or log.summary:
            logs.append(log)
        else:
            problems.append(f"{log_path}: not a run log (no carbon-callbacks record); skipped")
    if not logs:
        raise ReportError(problems[0] if len(problems) == 1 else "; ".join(problems))
    return logs, problems


def report_from_logs(
    path: str | os.PathLike[str], logs: Sequence[RunLog], problems: Sequence[str] = ()
) -> Report:
    """The report of logs already read (``read_logs``): for renderings that also need the logs."""
    runs = tuple(run_report(group) for group in group_logs(logs))
    return Report(Path(path), runs, totals(runs), tuple(problems), link_trainings(runs))


def totals(runs: Sequence[RunReport]) -> Totals:
    """Sums over ``runs``; runs without a figure are counted apart, never as 0."""
    measurements = [run.measurement for run in runs if run.measurement is not None]
    energies = [m.energy_kwh for m in measurements if m.energy_kwh is not None]
    co2e = [m.co2e_kg for m in measurements if m.co2e_kg is not None]
    return Totals(
        runs=len(runs),
        energy_kwh=sum(energies) if energies else None,
        co2e_kg=sum(co2e) if co2e else None,
        duration_s=sum(m.duration_s for m in measurements),
        runs_without_energy=len(runs) - len(energies),
        runs_without_co2e=len(energies) - len(co2e),
        estimated=any(m.estimated for m in measurements),
        partial=any(
            run.measurement is None
            or run.measurement.partial
            or run.basis != "summary"
            or bool(run.world_size and len(run.ranks_found) < run.world_size)
            for run in runs
        ),
    )
