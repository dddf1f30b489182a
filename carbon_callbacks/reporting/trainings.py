"""Resumed runs linked into trainings.

A run resumed from a checkpoint writes a ``resume`` record naming the run it continues. Runs
linked that way are one :class:`Training`: its totals add up every segment (the totals carried
in the checkpoint stand in for segments whose logs are not there), and its forecasts, which are
made for the whole training, are set beside those totals. A segment's own forecasts are set
beside the segment alone, with what came before taken out of both (``reporting.forecasts``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import cast

from carbon_callbacks.reporting.forecasts import Actual, PredictionCheck, forecast_checks
from carbon_callbacks.reporting.resumed import Resumed
from carbon_callbacks.reporting.runs import RunReport


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
    actual = Actual(
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
        predictions=tuple(forecast_checks(records, actual, None, None, None, segment=False)),
    )
