"""A report as one JSON-ready object: what ``carbon-callbacks report --json`` prints."""

from __future__ import annotations

from collections.abc import Sequence

from carbon_callbacks._version import __version__
from carbon_callbacks.reporting.equivalents import (
    EEA_NEW_CARS_2023,
    CarBaseline,
    basis_note,
    car_km,
    compare_regions,
)
from carbon_callbacks.reporting.estimate import Estimate
from carbon_callbacks.reporting.report import Report
from carbon_callbacks.reporting.runs import RunReport
from carbon_callbacks.tracking.measurement import JOULES_PER_KWH, Measurement


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
        "up_to_unix": run.up_to_unix,
        "world_size": run.world_size,
        "ranks_found": list(run.ranks_found),
        "started_unix": run.started_unix,
        "library_version": run.library_version,
        "made_by": run.made_by,
        "figures": None if measurement is None else measurement.to_dict(),
        "energy_by_method_kwh": {} if measurement is None else _by_method_kwh(measurement),
        "car_km": None,
        "regions": [],
        "regions_note": None,
        "predictions": [check.to_dict() for check in run.predictions],
        "resume": None if run.resume is None else run.resume.to_dict(),
        "deferral": None,
        "problems": list(run.problems),
    }
    if run.deferral is not None:
        result["deferral"] = run.deferral.to_dict(run.met_g_per_kwh)
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
