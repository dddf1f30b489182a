"""Reports over run logs, and estimates made without a run: pure functions over records and figures.

A report reads one run log or a folder of them (a sweep) and gives, for each run, its figures as a
:class:`~carbon_callbacks.tracking.measurement.Measurement` (the summary record; for a run cut off
before its summary, its logged windows), its status, its predictions checked against what
happened, and the problems the reader found. Text rendering lives in ``reporting.text``.

Distributed runs: every rank writes its own log; the header and summary hold
``context.distributed`` (``global_rank``, ``local_rank``, ``world_size``, ``num_nodes``, and
``run_id``: global rank 0's id, which every rank of the run shares, broadcast at start). Logs are
one run when they share that ``run_id`` and ``world_size`` and have different global ranks.
Logs written before ranks shared an id (no ``run_id`` in ``context.distributed``) are matched the
old way: the same ``run_name`` (unset counts as equal), ``world_size`` and ``num_nodes``, and
overlapping time spans (within :data:`RANK_START_TOLERANCE_S`), a rank's log joining the matching
run whose start is closest to its own. Energies are summed over the ranks: host-level channels
(RAPL CPU package, DRAM) are only in each node's local rank 0 log, and each rank's process-level
channel (the CPU estimate) covers its own process tree, so nothing is counted twice.

Resumed runs: a run resumed from a checkpoint writes a ``resume`` record naming the run it
continues. Runs linked that way are one :class:`Training`: its totals add up every segment (the
totals carried in the checkpoint stand in for segments whose logs are not there), and its
forecasts, which are made for the whole training, are set beside those totals. A segment's own
forecasts are set beside the segment alone, with what came before taken out of both.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, cast

from carbon_callbacks._version import __version__
from carbon_callbacks.intensity.base import MAX_G_PER_KWH, IntensityValue
from carbon_callbacks.meters.base import Channel, Scope
from carbon_callbacks.reporting.equivalents import (
    EEA_NEW_CARS_2023,
    CarBaseline,
    basis_note,
    car_km,
    compare_regions,
)
from carbon_callbacks.runlog.records import RunLog, read_run_log
from carbon_callbacks.tracking.config import MAX_PUE
from carbon_callbacks.tracking.measurement import JOULES_PER_KWH, ChannelEnergy, Measurement

RANK_START_TOLERANCE_S = 120.0
"""How far apart (seconds) the time spans of two ranks' logs may be and still be one run."""

MAX_WORLD_SIZE = 1 << 20
"""The largest ``world_size`` read as a distributed run; a log claiming more is read alone."""

# What a record's figures may be. Logs are untrusted: a value outside these ranges makes its record
# malformed (skipped, and said), so sums, ratios and formatting downstream stay finite.
MAX_UNIX = 1e11
"""Latest time accepted, seconds since the epoch (year 5138)."""
MAX_DURATION_S = 1e10
"""Longest duration accepted (317 years)."""
MAX_ENERGY_J = 1e18
"""Most energy accepted for one channel in one record (278 TWh)."""
MAX_COUNT = 2**53
"""Largest step count accepted (exact as a float)."""
_MAX_CO2E_KG = MAX_ENERGY_J / JOULES_PER_KWH * MAX_G_PER_KWH / 1000.0

ESTIMATE_KIND = "carbon-callbacks estimate"
"""The ``kind`` field of a saved estimate file."""

FigureBasis = Literal["summary", "windows", "last window", "none"]
_STATUS_ORDER = ("failed", "interrupted", "unfinished", "completed")


class ReportError(ValueError):
    """The path cannot be reported on (missing, unreadable, no logs); the message says why."""


@dataclass(frozen=True)
class PredictionCheck:
    """A forecast made during a run, set beside what the run measured.

    Attributes:
        which: ``"first"``, ``"latest"`` (the last one before the end) or ``"only"``.
        rank: The global rank whose log holds it; None outside distributed runs.
        t_unix: When it was made.
        steps_done: Steps done when it was made.
        total_steps: Steps the run was expected to take.
        energy_kwh: Predicted facility energy (low, mid, high).
        co2e_kg: Predicted CO2e (low, mid, high), or None.
        duration_s: Predicted duration (low, mid, high).
        interval: The probability the interval was meant to hold, e.g. 0.8.
        actual_energy_kwh: What the log measured (same rank), or None.
        actual_co2e_kg: The measured CO2e, or None.
        actual_duration_s: The measured duration, or None.
        actual_complete: True when the actual figures are a completed run's summary.
    """

    which: str
    rank: int | None
    t_unix: float
    steps_done: int
    total_steps: int
    energy_kwh: tuple[float, float, float]
    co2e_kg: tuple[float, float, float] | None
    duration_s: tuple[float, float, float]
    interval: float | None
    actual_energy_kwh: float | None
    actual_co2e_kg: float | None
    actual_duration_s: float | None
    actual_complete: bool

    @property
    def energy_error(self) -> float | None:
        """(mid - actual) / actual for energy: +0.1 means the forecast was 10% high."""
        return _relative_error(self.energy_kwh[1], self.actual_energy_kwh)

    @property
    def energy_within(self) -> bool | None:
        """Whether the actual energy fell inside the predicted interval; None without an actual."""
        return _within(self.energy_kwh, self.actual_energy_kwh)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "which": self.which,
            "rank": self.rank,
            "t_unix": self.t_unix,
            "steps_done": self.steps_done,
            "total_steps": self.total_steps,
            "predicted": {
                "energy_kwh": list(self.energy_kwh),
                "co2e_kg": None if self.co2e_kg is None else list(self.co2e_kg),
                "duration_s": list(self.duration_s),
                "interval": self.interval,
            },
            "actual": {
                "energy_kwh": self.actual_energy_kwh,
                "co2e_kg": self.actual_co2e_kg,
                "duration_s": self.actual_duration_s,
                "complete": self.actual_complete,
            },
            "energy_error": self.energy_error,
            "energy_within": self.energy_within,
            "co2e_within": None
            if self.co2e_kg is None
            else _within(self.co2e_kg, self.actual_co2e_kg),
            "duration_within": _within(self.duration_s, self.actual_duration_s),
        }


@dataclass(frozen=True)
class RunReport:
    """One run: a single log, or the per-rank logs of one distributed run combined.

    Attributes:
        name: The run name, else the (rank 0) run id.
        run_ids: The run ids of its logs: one for the ranks of a run that share it.
        paths: The logs read.
        status: ``completed``, ``failed``, ``interrupted`` or ``unfinished`` (no summary).
        basis: Where the figures come from: the ``summary``, the sum of the top-level
            ``windows``, the ``last window``, or ``none``.
        basis_note: Why the figures are not from a summary; None when they are.
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


@dataclass(frozen=True)
class Resumed:
    """What the runs before a resumed one contributed, as its checkpoint carried it on.

    Attributes:
        run_id: The run it continues (the one that saved the checkpoint), when known.
        energy_kwh: Facility energy of the runs before.
        co2e_kg: Their CO2e, when known.
        steps: Their optimizer steps.
        duration_s: Their measured time.
    """

    run_id: str | None
    energy_kwh: float
    co2e_kg: float | None
    steps: int
    duration_s: float

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "run_id": self.run_id,
            "energy_kwh": self.energy_kwh,
            "co2e_kg": self.co2e_kg,
            "steps": self.steps,
            "duration_s": self.duration_s,
        }


@dataclass(frozen=True)
class Training:
    """Runs that continue one another from checkpoints, as one training.

    Attributes:
        segments: The runs, in start order; each but the first resumes an earlier one.
        energy_kwh: Facility energy of every segment, plus what the checkpoint carried for
            segments whose logs are missing; None when no segment has a figure.
        co2e_kg: CO2e likewise; None when a segment with energy has none.
        duration_s: Measured time of every segment (and of missing ones, from the checkpoint).
        steps: Optimizer steps likewise, when every segment counted them.
        estimated: True when any segment's figure includes an estimate.
        partial: True when any segment's figures are incomplete.
        carried: What the checkpoint carried for earlier segments whose logs were not found.
        predictions: The training's first forecast and its latest, beside the totals.
    """

    segments: tuple[RunReport, ...]
    energy_kwh: float | None
    co2e_kg: float | None
    duration_s: float
    steps: int | None
    estimated: bool
    partial: bool
    carried: Resumed | None = None
    predictions: tuple[PredictionCheck, ...] = ()

    @property
    def status(self) -> str:
        """The status of the latest segment: how the training as a whole ended."""
        return self.segments[-1].status

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form; segments by their run ids (the runs are listed in full elsewhere)."""
        return {
            "segments": [list(run.run_ids) for run in self.segments],
            "status": self.status,
            "energy_kwh": self.energy_kwh,
            "co2e_kg": self.co2e_kg,
            "duration_s": self.duration_s,
            "steps": self.steps,
            "estimated": self.estimated,
            "partial": self.partial,
            "carried": None if self.carried is None else self.carried.to_dict(),
            "predictions": [check.to_dict() for check in self.predictions],
        }


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
        """JSON-ready form."""
        return {
            "runs": self.runs,
            "energy_kwh": self.energy_kwh,
            "co2e_kg": self.co2e_kg,
            "duration_s": self.duration_s,
            "runs_without_energy": self.runs_without_energy,
            "runs_without_co2e": self.runs_without_co2e,
            "estimated": self.estimated,
            "partial": self.partial,
        }


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


@dataclass(frozen=True)
class Estimate:
    """A CO2e figure computed from an energy (given, or from hardware and hours), not measured.

    Attributes:
        device_energy_kwh: Energy at the devices, before PUE.
        pue: Data-centre overhead applied.
        intensity: The carbon intensity used, with its provenance.
        car: The car baseline for the distance equivalent.
        assumptions: What the figure assumes, one sentence each.
        hardware: The hardware form's inputs (``HardwareEnergy.to_dict``); None for a given energy.
        library_version: The version that made it.
    """

    device_energy_kwh: float
    pue: float
    intensity: IntensityValue
    car: CarBaseline = EEA_NEW_CARS_2023
    assumptions: tuple[str, ...] = ()
    hardware: Mapping[str, object] | None = None
    library_version: str = __version__

    @property
    def energy_kwh(self) -> float:
        """Facility energy: device energy x PUE."""
        return self.device_energy_kwh * self.pue

    @property
    def co2e_kg(self) -> float:
        """Facility energy x intensity."""
        return self.energy_kwh * self.intensity.g_per_kwh / 1000.0

    @property
    def car_km(self) -> float:
        """The distance an average new car emits the same CO2 over."""
        return car_km(self.co2e_kg, self.car.g_per_km)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form, also the format of a saved estimate file."""
        return {
            "kind": ESTIMATE_KIND,
            "estimated": True,
            "method": "energy given" if self.hardware is None else "hardware",
            "device_energy_kwh": self.device_energy_kwh,
            "pue": self.pue,
            "energy_kwh": self.energy_kwh,
            "co2e_kg": self.co2e_kg,
            "intensity": self.intensity.to_dict(),
            "car_km": self.car_km,
            "car": self.car.to_dict(),
            "hardware": None if self.hardware is None else dict(self.hardware),
            "assumptions": list(self.assumptions),
            "library_version": self.library_version,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Estimate:
        """Read a saved estimate back.

        Raises:
            ValueError: Not an estimate file, or a field is missing or of the wrong type.
        """
        if data.get("kind") != ESTIMATE_KIND:
            raise ValueError(
                "not a saved estimate (write one with: carbon-callbacks estimate ... --save FILE)"
            )
        try:
            car = data["car"]
            hardware = data.get("hardware")
            return cls(
                device_energy_kwh=_number(data["device_energy_kwh"]),
                pue=_number(data["pue"]),
                intensity=intensity_from_dict(data["intensity"]),
                car=CarBaseline(
                    _number(car["g_per_km"]),
                    None if car["year"] is None else int(car["year"]),
                    str(car["test_cycle"]),
                    str(car["source"]),
                ),
                assumptions=tuple(str(line) for line in data["assumptions"]),
                hardware=dict(hardware) if isinstance(hardware, Mapping) else None,
                library_version=str(data.get("library_version", "")),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"the estimate file is damaged ({error!r})") from None


def make_estimate(
    device_energy_kwh: float,
    intensity: IntensityValue,
    *,
    pue: float = 1.0,
    car: CarBaseline = EEA_NEW_CARS_2023,
    assumptions: Sequence[str] = (),
    hardware: Mapping[str, object] | None = None,
) -> Estimate:
    """An estimate with the standing assumptions (PUE, intensity, car baseline) listed.

    Raises:
        ValueError: The energy is negative or not finite, or the PUE is below 1.
    """
    if not math.isfinite(device_energy_kwh) or device_energy_kwh < 0:
        raise ValueError(
            f"energy must be a finite number of kWh >= 0, got {device_energy_kwh!r}; "
            "write --energy-kwh 120"
        )
    if not math.isfinite(pue) or pue < 1.0:
        raise ValueError(f"PUE must be a number >= 1.0, got {pue!r}; write --pue 1.2")
    standing = [
        f"PUE {pue:g}" + (" (the default: no data-centre overhead counted)" if pue == 1.0 else ""),
        f"carbon intensity {intensity.g_per_kwh:g} gCO2e/kWh ({intensity.source})",
        f"car distance at {car.describe()}",
    ]
    return Estimate(
        device_energy_kwh,
        pue,
        intensity,
        car,
        (*assumptions, *standing),
        hardware,
    )


def report_dict(
    report: Report,
    *,
    compare: Sequence[str] = (),
    car: CarBaseline = EEA_NEW_CARS_2023,
    estimate: Estimate | None = None,
) -> dict[str, object]:
    """The report as one JSON-ready object (``carbon-callbacks report --json``).

    Raises:
        UnknownLocationError: A country in ``compare`` is unknown.
    """
    totals_dict = report.totals.to_dict()
    totals_dict["car_km"] = (
        None if report.totals.co2e_kg is None else car_km(report.totals.co2e_kg, car.g_per_km)
    )
    result: dict[str, object] = {
        "path": str(report.path),
        "runs": [_run_dict(run, compare, car) for run in report.runs],
        "trainings": [training.to_dict() for training in report.trainings],
        "totals": totals_dict,
        "car": car.to_dict(),
        "problems": list(report.problems),
        "library_version": __version__,
    }
    if estimate is not None:
        measured = report.totals.energy_kwh
        result["estimate"] = estimate.to_dict() | {
            "measured_energy_kwh": measured,
            "measured_co2e_kg": report.totals.co2e_kg,
            "measured_over_estimated_energy": None
            if measured is None or not estimate.energy_kwh
            else measured / estimate.energy_kwh,
        }
    return result


def _run_dict(run: RunReport, compare: Sequence[str], car: CarBaseline) -> dict[str, object]:
    measurement = run.measurement
    result: dict[str, object] = {
        "name": run.name,
        "run_ids": list(run.run_ids),
        "paths": [str(path) for path in run.paths],
        "status": run.status,
        "basis": run.basis,
        "basis_note": run.basis_note,
        "world_size": run.world_size,
        "ranks_found": list(run.ranks_found),
        "started_unix": run.started_unix,
        "library_version": run.library_version,
        "figures": None if measurement is None else measurement.to_dict(),
        "energy_by_method_kwh": {} if measurement is None else _by_method_kwh(measurement),
        "car_km": None,
        "regions": [],
        "regions_note": None,
        "predictions": [check.to_dict() for check in run.predictions],
        "resume": None if run.resume is None else run.resume.to_dict(),
        "problems": list(run.problems),
    }
    if measurement is not None and measurement.co2e_kg is not None:
        result["car_km"] = car_km(measurement.co2e_kg, car.g_per_km)
    if measurement is not None and measurement.energy_kwh is not None:
        rows = compare_regions(measurement.energy_kwh, measurement.co2e_kg, compare)
        result["regions"] = [row.to_dict() for row in rows]
        result["regions_note"] = basis_note(measurement.intensity)
    return result


def _by_method_kwh(measurement: Measurement) -> dict[str, float]:
    """Device energy (before PUE) per method, for the methods that have a figure."""
    sums: dict[str, float] = {}
    for figure in measurement.channels:
        if figure.energy_j is not None:
            method = figure.channel.method
            sums[method] = sums.get(method, 0.0) + figure.energy_j / JOULES_PER_KWH
    return sums


# -- reading ------------------------------------------------------------------------------------


def find_logs(path: str | os.PathLike[str]) -> list[Path]:
    """The run logs at ``path``: the file itself, or every ``*.jsonl`` under a folder (recursive).

    A folder is a fence: see ``discover_logs``.

    Raises:
        ReportError: The path does not exist, or a folder holds no run log.
    """
    return discover_logs(path)[0]


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


def build_report(path: str | os.PathLike[str]) -> Report:
    """Read every log at ``path`` and report on each run and on all of them together.

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
    runs = tuple(run_report(group) for group in group_logs(logs))
    return Report(Path(path), runs, totals(runs), tuple(problems), link_trainings(runs))


def group_logs(logs: Sequence[RunLog]) -> list[list[RunLog]]:
    """Logs grouped into runs: each log alone, except the ranks of one distributed run together.

    See the module docstring for the rule. Groups come in start-time order; ranks in rank order.
    """
    groups: list[_Group] = []
    for log in sorted(logs, key=_sort_key):
        rank = _rank_info(log)
        if rank is None:
            groups.append(_Group(None, _span(log), {0: log}))
            continue
        start, end = _span(log)
        candidates = [
            group
            for group in groups
            if group.key == rank.key
            and rank.global_rank not in group.ranks
            and (
                rank.shared_id
                or (
                    start <= group.span[1] + RANK_START_TOLERANCE_S
                    and end >= group.span[0] - RANK_START_TOLERANCE_S
                )
            )
        ]
        if candidates:
            best = min(candidates, key=lambda group: abs(group.span[0] - start))
            best.ranks[rank.global_rank] = log
            best.span = (min(best.span[0], start), max(best.span[1], end))
        else:
            groups.append(_Group(rank.key, (start, end), {rank.global_rank: log}))
    return [[group.ranks[r] for r in sorted(group.ranks)] for group in groups]


def run_report(logs: Sequence[RunLog]) -> RunReport:
    """The report of one run from its log, or from the per-rank logs of one distributed run."""
    per_log = [_log_figures(log) for log in logs]
    problems = [
        f"{log.path.name}: {problem}"
        for log, figures in zip(logs, per_log, strict=True)
        for problem in (*log.problems, *figures.problems)
    ]
    ranks = [_rank_info(log) for log in logs]
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
        name=_run_name(first),
        run_ids=tuple(dict.fromkeys(_run_id(log) for log in logs)),  # ranks may share one
        paths=tuple(log.path for log in logs),
        status=min((figures.status for figures in per_log), key=_status_rank),
        basis=_worst_basis([figures.basis for figures in per_log]),
        basis_note="; ".join(notes) or None,
        measurement=_run_measurement(ranks, per_log, problems),
        world_size=world_size,
        ranks_found=found,
        predictions=tuple(checks),
        problems=tuple(problems),
        started_unix=_span(first)[0] or None,
        library_version=_text((first.header or {}).get("library_version")),
        resume=_run_resume(logs, problems),
        forecast_records=tuple(first.predictions) if len(logs) == 1 else (),
    )


def _run_resume(logs: Sequence[RunLog], problems: list[str]) -> Resumed | None:
    """The run a resumed run continues, from the ``resume`` record of its (rank 0) log."""
    for log in logs:
        if log.resume is not None:
            try:
                return _resumed(log.resume)
            except (KeyError, TypeError, ValueError):
                problems.append(f"{log.path.name}: the resume record is malformed; skipped")
    return None


def _run_measurement(
    ranks: Sequence[_Rank | None], per_log: Sequence[_LogFigures], problems: list[str]
) -> Measurement | None:
    """The log's figures, or the ranks' figures combined."""
    if len(per_log) == 1:
        return per_log[0].measurement
    parts = [
        (rank.global_rank if rank is not None else 0, figures.measurement)
        for rank, figures in zip(ranks, per_log, strict=True)
        if figures.measurement is not None
    ]
    return _combine_ranks(parts, problems) if parts else None


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


def prediction_checks(
    records: Sequence[Mapping[str, Any]],
    actual: Measurement | None,
    *,
    complete: bool = True,
    rank: int | None = None,
    problems: list[str] | None = None,
) -> list[PredictionCheck]:
    """The first prediction and the latest one made before the run ended, beside the outcome.

    A resumed run's forecasts cover the whole training; here, what the runs before contributed
    is taken out of them, so they are set beside this run's own figures.

    Args:
        records: Prediction records in the order written.
        actual: The figures they are compared with (the same rank's); None when unknown.
        complete: Whether ``actual`` is a completed run's summary.
        rank: The global rank, for distributed runs.
        problems: Where to say that a malformed record was skipped.
    """
    end = None if actual is None else actual.start_unix + actual.duration_s
    figures = (
        None
        if actual is None
        else _Actual(actual.energy_kwh, actual.co2e_kg, actual.duration_s, complete)
    )
    return _checks(records, figures, end, rank, problems, segment=True)


@dataclass(frozen=True)
class _Actual:
    """What a forecast is set beside: a run's figures, or a training's totals."""

    energy_kwh: float | None
    co2e_kg: float | None
    duration_s: float | None
    complete: bool


def _checks(
    records: Sequence[Mapping[str, Any]],
    actual: _Actual | None,
    end: float | None,
    rank: int | None,
    problems: list[str] | None,
    *,
    segment: bool,
) -> list[PredictionCheck]:
    """The first record and the latest made by ``end``, checked (see ``prediction_checks``)."""
    before_end = []
    for index, record in enumerate(records, start=1):
        made = _maybe_number(record.get("t_unix"))
        if made is None:
            if problems is not None:
                problems.append(f"prediction record {index} has no time; skipped")
        elif end is None or made <= end:
            before_end.append(record)
    picks: list[tuple[str, Mapping[str, Any]]] = []
    if before_end:
        first, latest = before_end[0], before_end[-1]
        picks = [("only", first)] if first is latest else [("first", first), ("latest", latest)]
    checks = []
    for which, record in picks:
        try:
            checks.append(_check(which, record, actual, rank, segment=segment))
        except (KeyError, TypeError, ValueError, IndexError):
            if problems is not None:
                problems.append(f"{which} prediction record is malformed; skipped")
    return checks


# -- records to figures ---------------------------------------------------------------------------


def intensity_from_dict(data: Mapping[str, Any]) -> IntensityValue:
    """An ``IntensityValue`` from its ``to_dict`` form.

    Raises:
        KeyError, TypeError, ValueError: A field is missing, of the wrong type or out of range.
    """
    if not isinstance(data, Mapping):
        raise TypeError(f"an intensity is an object, not {type(data).__name__}")
    basis = data.get("basis")
    if basis not in (None, "lifecycle", "direct", "mixed"):
        raise ValueError(f"unknown basis {basis!r}")
    year = data.get("year")
    return IntensityValue(
        g_per_kwh=_number(data["g_per_kwh"], 0.0, MAX_G_PER_KWH),
        source=str(data["source"]),
        zone=_text(data.get("zone")),
        basis=basis,
        year=None if year is None else _count(year),
        estimated=bool(data.get("estimated", False)),
        guessed_location=bool(data.get("guessed_location", False)),
        fallback=_text(data.get("fallback")),
    )


def measurement_from_record(
    record: Mapping[str, Any], scopes: Mapping[str, Scope] | None = None
) -> Measurement:
    """A ``Measurement`` from a window or summary record (its ``to_dict`` form).

    Args:
        record: The record.
        scopes: Channel id to its scope, from the header (the record does not repeat it);
            a channel not in it is a device's.

    Raises:
        KeyError, TypeError, ValueError: A field is missing, of the wrong type or out of range
            (see ``MAX_ENERGY_J`` and the other limits).
    """
    channels = []
    for item in record["channels"]:
        method = item["method"]
        kind = item["kind"]
        if method not in ("measured", "estimated") or kind not in ("gpu", "cpu", "dram"):
            raise ValueError(f"unknown channel kind or method: {kind!r}, {method!r}")
        channel = Channel(
            id=str(item["id"]),
            kind=kind,
            device=str(item["device"]),
            method=method,
            how=str(item["how"]),
            scope=(scopes or {}).get(str(item["id"]), "device"),
        )
        energy, fault = item.get("energy_j"), item.get("fault")
        if fault is not None and not isinstance(fault, str):
            raise TypeError(f"a channel's fault is text, not {type(fault).__name__}")
        joules = None if energy is None else _number(energy, 0.0, MAX_ENERGY_J)
        channels.append(ChannelEnergy(channel, joules, fault))
    intensity = record.get("intensity")
    steps = record.get("steps")
    return Measurement(
        name=str(record.get("name", "run")),
        start_unix=_number(record["start_unix"], 0.0, MAX_UNIX),
        duration_s=_number(record["duration_s"], 0.0, MAX_DURATION_S),
        channels=tuple(channels),
        pue=_number(record["pue"], 1.0, MAX_PUE),
        steps=None if steps is None else _count(steps),
        intensity=None if intensity is None else intensity_from_dict(intensity),
        unmeasured=tuple(str(item) for item in record.get("unmeasured", ())),
    )


@dataclass(frozen=True)
class _LogFigures:
    """One log's figures and how they were obtained."""

    measurement: Measurement | None
    basis: FigureBasis
    note: str | None
    status: str
    problems: tuple[str, ...] = ()


def _log_figures(log: RunLog) -> _LogFigures:
    scopes = _channel_scopes(log)
    problems: list[str] = []
    if log.header is None:
        problems.append("no header record: the channels' host level and the run name are unknown")
    if log.summary is not None:
        status = _text(log.summary.get("status")) or "completed"
        try:
            return _LogFigures(
                measurement_from_record(log.summary, scopes), "summary", None, status
            )
        except (KeyError, TypeError, ValueError) as error:
            problems.append(f"the summary record is malformed ({error!r}); using the windows")
    windows = []
    for index, record in enumerate(log.windows, start=1):
        try:
            windows.append(measurement_from_record(record, scopes))
        except (KeyError, TypeError, ValueError) as error:
            problems.append(f"window record {index} is malformed ({error!r}); skipped")
    status = "unfinished"
    why = "no summary record (the run was cut off or is still running)"
    if not windows:
        return _LogFigures(None, "none", f"{why}, and no window logged", status, tuple(problems))
    top = _top_level(windows)
    if len(top) > 1 and _disjoint(top):
        summed = _sum_windows(top)
        note = (
            f"{why}: figures are the sum of the {len(top)} windows logged "
            f"({_window_names(top)}); time outside them is not counted"
        )
        return _LogFigures(summed, "windows", note, status, tuple(problems))
    last = max(windows, key=lambda w: w.start_unix + w.duration_s)
    note = f"{why}: figures are those of the last window logged, {last.name!r}"
    return _LogFigures(last, "last window", note, status, tuple(problems))


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


def _sum_windows(windows: Sequence[Measurement]) -> Measurement:
    """Consecutive windows of one log as one measurement: channel energies added by channel id."""
    by_id: dict[str, tuple[Channel, list[float | None], list[str]]] = {}
    for window in windows:
        for figure in window.channels:
            channel, energies, faults = by_id.setdefault(
                figure.channel.id, (figure.channel, [], [])
            )
            energies.append(figure.energy_j)
            if figure.fault:
                faults.append(f"{window.name}: {figure.fault}")
    channels = []
    for channel, energies, faults in by_id.values():
        known = [e for e in energies if e is not None]
        if len(energies) < len(windows):
            faults.append("not measured in every window")
        channels.append(
            ChannelEnergy(channel, sum(known) if known else None, "; ".join(faults) or None)
        )
    steps = [w.steps for w in windows]
    return Measurement(
        name=f"sum of {len(windows)} windows",
        start_unix=windows[0].start_unix,
        duration_s=sum(w.duration_s for w in windows),
        channels=tuple(channels),
        pue=_effective_pue(windows),
        steps=None if any(s is None for s in steps) else sum(cast(int, s) for s in steps),
        intensity=_merged_intensity(windows),
        unmeasured=tuple(dict.fromkeys(item for w in windows for item in w.unmeasured)),
    )


def _combine_ranks(parts: Sequence[tuple[int, Measurement]], problems: list[str]) -> Measurement:
    """The ranks of one run as one measurement: channels kept apart, ids prefixed by the rank."""
    if not parts:
        raise ValueError("no rank has figures")
    measurements = [m for _rank, m in parts]
    channels = tuple(
        replace(figure, channel=replace(figure.channel, id=f"rank {rank}/{figure.channel.id}"))
        for rank, m in parts
        for figure in m.channels
    )
    if any(m.intensity is None and m.energy_kwh for m in measurements):
        problems.append("a rank has no carbon intensity: the run's CO2e is left out")
    steps = [m.steps for m in measurements if m.steps is not None]
    return Measurement(
        name="run (ranks combined)",
        start_unix=min(m.start_unix for m in measurements),
        duration_s=max(m.duration_s for m in measurements),
        channels=channels,
        pue=_effective_pue(measurements),
        steps=max(steps) if steps else None,
        intensity=_merged_intensity(measurements),
        unmeasured=tuple(f"rank {rank}/{item}" for rank, m in parts for item in m.unmeasured),
    )


def _effective_pue(parts: Sequence[Measurement]) -> float:
    """The PUE that makes the combined kWh equal the parts' kWh summed (exact when they differ)."""
    pues = {m.pue for m in parts}
    if len(pues) == 1:
        return pues.pop()
    joules = sum(m.energy_j or 0.0 for m in parts)
    kwh = sum(m.energy_kwh or 0.0 for m in parts)
    return kwh * JOULES_PER_KWH / joules if joules else max(pues)


def _merged_intensity(parts: Sequence[Measurement]) -> IntensityValue | None:
    """The energy-weighted intensity of the parts, so the combined CO2e is the parts' CO2e summed.

    None when a part with energy has no intensity. Provenance is kept where the parts agree.
    """
    with_energy = [m for m in parts if m.energy_kwh]
    if any(m.intensity is None for m in with_energy):
        return None
    values = [cast(IntensityValue, m.intensity) for m in with_energy] or [
        m.intensity for m in parts if m.intensity is not None
    ]
    if not values:
        return None
    if all(value == values[0] for value in values):
        return values[0]
    kwh = sum(cast(float, m.energy_kwh) for m in with_energy)
    co2e = sum(cast(float, m.co2e_kg) for m in with_energy)
    return IntensityValue(
        g_per_kwh=co2e * 1000.0 / kwh,
        source="energy-weighted mean of: " + "; ".join(_unique(v.source for v in values)),
        zone=_common([v.zone for v in values]),
        basis=_common([v.basis for v in values]) or "mixed",
        year=_common([v.year for v in values]),
        estimated=any(v.estimated for v in values),
        guessed_location=any(v.guessed_location for v in values),
        fallback="; ".join(_unique(v.fallback for v in values if v.fallback is not None)) or None,
    )


def _check(
    which: str,
    record: Mapping[str, Any],
    actual: _Actual | None,
    rank: int | None,
    *,
    segment: bool,
) -> PredictionCheck:
    """One record beside ``actual``; ``segment`` takes out what earlier runs contributed."""
    co2e = record.get("co2e_kg")
    interval = record.get("interval")
    resumed = record.get("resumed")
    before = _resumed(resumed) if segment and resumed is not None else None
    energy = _triple(record["energy_kwh"], MAX_ENERGY_J / JOULES_PER_KWH)
    co2e_kg = None if co2e is None else _triple(co2e, _MAX_CO2E_KG)
    duration = _triple(record["duration_s"], MAX_DURATION_S)
    steps_done, total_steps = _count(record["steps_done"]), _count(record["total_steps"])
    if before is not None:
        energy = _less(energy, before.energy_kwh)
        co2e_kg = None if co2e_kg is None else _less(co2e_kg, before.co2e_kg or 0.0)
        duration = _less(duration, before.duration_s)
        steps_done, total_steps = steps_done - before.steps, total_steps - before.steps
    return PredictionCheck(
        which=which,
        rank=rank,
        t_unix=_number(record["t_unix"], 0.0, MAX_UNIX),
        steps_done=steps_done,
        total_steps=total_steps,
        energy_kwh=energy,
        co2e_kg=co2e_kg,
        duration_s=duration,
        interval=None if interval is None else _number(interval, 0.0, 1.0),
        actual_energy_kwh=None if actual is None else actual.energy_kwh,
        actual_co2e_kg=None if actual is None else actual.co2e_kg,
        actual_duration_s=None if actual is None else actual.duration_s,
        actual_complete=actual is not None and actual.complete,
    )


def _less(triple: tuple[float, float, float], offset: float) -> tuple[float, float, float]:
    low, mid, high = triple
    return low - offset, mid - offset, high - offset


def _resumed(record: Mapping[str, Any]) -> Resumed:
    """What a ``resume`` record (or a forecast's ``resumed``) says the earlier runs contributed.

    Raises:
        KeyError, TypeError, ValueError: A field is missing, of the wrong type or out of range.
    """
    co2e = record.get("co2e_kg")
    return Resumed(
        run_id=_text(record.get("resumes")),
        energy_kwh=_number(record["energy_kwh"], 0.0, MAX_ENERGY_J / JOULES_PER_KWH),
        co2e_kg=None if co2e is None else _number(co2e, 0.0, _MAX_CO2E_KG),
        steps=_count(record["steps"]),
        duration_s=_number(record["duration_s"], 0.0, MAX_DURATION_S),
    )


# -- resumed runs as trainings --------------------------------------------------------------------


def link_trainings(runs: Sequence[RunReport]) -> tuple[Training, ...]:
    """The trainings made of resumed runs: each run joined to the one it continues.

    A run resumed twice from the same checkpoint (a retry) joins the same training. A resumed
    run whose predecessor's log is not among ``runs`` still makes a training: the checkpoint's
    totals stand in for what came before.
    """
    by_id = {run_id: index for index, run in enumerate(runs) for run_id in run.run_ids}
    parent = list(range(len(runs)))

    def root(index: int) -> int:
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = parent[index]
        return index

    for index, run in enumerate(runs):
        earlier = None if run.resume is None else by_id.get(run.resume.run_id or "")
        if earlier is not None:
            parent[root(index)] = root(earlier)
    groups: dict[int, list[RunReport]] = {}
    for index, run in enumerate(runs):
        groups.setdefault(root(index), []).append(run)
    return tuple(
        _training(segments, by_id)
        for segments in groups.values()
        if any(run.resume is not None for run in segments)
    )


def _training(segments: list[RunReport], by_id: Mapping[str, int]) -> Training:
    """One training's totals and forecasts from its segments."""
    segments = sorted(segments, key=lambda run: run.started_unix or 0.0)
    first, last = segments[0], segments[-1]
    carried = first.resume if first.resume and first.resume.run_id not in by_id else None
    measured = [run.measurement for run in segments if run.measurement is not None]
    with_energy = [m for m in measured if m.energy_kwh is not None]
    energy_kwh = co2e_kg = None
    if with_energy:
        energy_kwh = sum(cast(float, m.energy_kwh) for m in with_energy)
        energy_kwh += carried.energy_kwh if carried else 0.0
        co2e = [m.co2e_kg for m in with_energy]
        if all(kg is not None for kg in co2e) and (carried is None or carried.co2e_kg is not None):
            co2e_kg = sum(cast(float, kg) for kg in co2e)
            co2e_kg += carried.co2e_kg or 0.0 if carried else 0.0
    steps = [m.steps for m in measured]
    duration_s = sum(m.duration_s for m in measured) + (carried.duration_s if carried else 0.0)
    actual = _Actual(
        energy_kwh,
        co2e_kg,
        duration_s,
        complete=last.status == "completed" and last.basis == "summary" and carried is None,
    )
    # forecasts are per rank: beside all ranks' totals only when every segment is one process
    single = all(run.world_size is None for run in segments)
    records = [record for run in segments for record in run.forecast_records] if single else []
    return Training(
        segments=tuple(segments),
        energy_kwh=energy_kwh,
        co2e_kg=co2e_kg,
        duration_s=duration_s,
        steps=None
        if len(steps) < len(segments) or any(s is None for s in steps)
        else sum(cast(int, s) for s in steps) + (carried.steps if carried else 0),
        estimated=any(m.estimated for m in measured),
        partial=len(measured) < len(segments) or any(m.partial for m in measured),
        carried=carried,
        predictions=tuple(_checks(records, actual, None, None, None, segment=False)),
    )


# -- small helpers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rank:
    global_rank: int
    world_size: int
    key: tuple[str | int | None, ...]
    """("run_id", the shared id, size); for older logs ("name", run name, size, nodes)."""
    shared_id: bool


@dataclass
class _Group:
    key: tuple[str | int | None, ...] | None
    span: tuple[float, float]
    ranks: dict[int, RunLog] = field(default_factory=dict)


def _rank_info(log: RunLog) -> _Rank | None:
    """The log's place in a distributed run, from ``context.distributed``; None if not one."""
    for record in (log.header, log.summary):
        context = record.get("context") if record else None
        info = context.get("distributed") if isinstance(context, dict) else None
        if not isinstance(info, dict):
            continue
        try:
            rank, size, nodes = (int(info[k]) for k in ("global_rank", "world_size", "num_nodes"))
        except (KeyError, TypeError, ValueError, OverflowError):
            continue
        if 1 < size <= MAX_WORLD_SIZE and 0 <= rank < size:
            run_id = _text(info.get("run_id"))
            if run_id is not None:
                return _Rank(rank, size, ("run_id", run_id, size), shared_id=True)
            return _Rank(rank, size, ("name", _run_name_field(log), size, nodes), shared_id=False)
    return None


def _span(log: RunLog) -> tuple[float, float]:
    """(start, end) of what the log covers, in Unix time; (0, 0) when it holds no time at all."""
    starts, ends = [], []
    if log.header is not None:
        starts.append(_maybe_number(log.header.get("started_unix")))
    for record in (*log.windows, *([log.summary] if log.summary else [])):
        start = _maybe_number(record.get("start_unix"))
        duration = _maybe_number(record.get("duration_s"))
        starts.append(start)
        ends.append(None if start is None or duration is None else start + duration)
    ends += [_maybe_number(p.get("t_unix")) for p in log.predictions]
    known_starts = [s for s in starts if s is not None]
    start = min(known_starts) if known_starts else 0.0
    known_ends = [e for e in ends if e is not None]
    return start, max([start, *known_ends])


def _sort_key(log: RunLog) -> tuple[float, str]:
    return _span(log)[0], str(log.path)


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


def _run_name_field(log: RunLog) -> str | None:
    return _text((log.header or {}).get("run_name"))


def _run_id(log: RunLog) -> str:
    for record in (log.header, log.summary):
        if record and isinstance(record.get("run_id"), str):
            return cast(str, record["run_id"])
    return log.path.stem


def _run_name(log: RunLog) -> str:
    return _run_name_field(log) or _run_id(log)


def _status_rank(status: str) -> int:
    """Worst first: a run is as finished as its least finished rank."""
    return _STATUS_ORDER.index(status) if status in _STATUS_ORDER else len(_STATUS_ORDER)


def _worst_basis(bases: Sequence[FigureBasis]) -> FigureBasis:
    order: tuple[FigureBasis, ...] = ("none", "last window", "windows", "summary")
    return min(bases, key=order.index)


def _number(value: object, low: float = -math.inf, high: float = math.inf) -> float:
    """A finite number in [low, high] from untrusted data (true and false are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"not a finite number: {value!r}")
    try:
        number = float(value)
    except OverflowError:  # an integer beyond the float range
        raise ValueError(f"not a finite number: {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"not a finite number: {value!r}")
    if not low <= number <= high:
        raise ValueError(f"{number!r} is outside [{low:g}, {high:g}]")
    return number


def _count(value: object) -> int:
    """A whole number in [0, MAX_COUNT]: steps, a year."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
        raise ValueError(f"not a count: {value!r}")
    return value


def _maybe_number(value: object) -> float | None:
    try:
        return _number(value)
    except ValueError:
        return None


def _triple(value: object, high: float) -> tuple[float, float, float]:
    """``[low, mid, high]`` figures of a forecast, each in [0, high]."""
    if not isinstance(value, list | tuple) or len(value) != 3:
        raise ValueError(f"not a [low, mid, high] triple: {value!r}")
    low, mid, top = (_number(v, 0.0, high) for v in value)
    return low, mid, top


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _within(bounds: tuple[float, float, float], actual: float | None) -> bool | None:
    return None if actual is None else bounds[0] <= actual <= bounds[2]


def _relative_error(predicted: float, actual: float | None) -> float | None:
    return None if not actual else (predicted - actual) / actual


def _unique(items: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen


def _common(values: Sequence[Any]) -> Any:
    """The value when all agree, else None."""
    return values[0] if values and all(v == values[0] for v in values) else None
