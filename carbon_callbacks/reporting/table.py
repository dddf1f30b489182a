"""A report as one line per run: ``report --table`` for people, ``report --csv`` for spreadsheets.

Both show the same columns (name, status, duration, energy, CO2e, method). The table words the
figures for reading (units that fit); the CSV keeps fixed units (s, kWh, kg) and plain decimals
so a spreadsheet can sum them. A missing figure is empty in the CSV and worded in the table,
never 0.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal

from carbon_callbacks.reporting.report import Report
from carbon_callbacks.reporting.runs import RunReport
from carbon_callbacks.reporting.text import format_duration, format_kwh, format_mass, printable

CSV_COLUMNS = ("name", "status", "duration_s", "energy_kwh", "co2e_kg", "method")
TABLE_COLUMNS = ("run", "status", "duration", "energy", "CO2e", "method")


def run_method(run: RunReport) -> str:
    """How a run's figures were got: ``measured``, ``estimated`` or ``none``.

    ``estimated`` when any channel is; ``, partial`` is added when the figures are incomplete
    (a channel faulted or went unmeasured).
    """
    measurement = run.measurement
    if measurement is None:
        return "none"
    method = "estimated" if measurement.estimated else "measured"
    return f"{method}, partial" if measurement.partial else method


def report_table(report: Report) -> list[str]:
    """One aligned line per run under a header line, then the totals line."""
    rows = [TABLE_COLUMNS]
    for run in report.runs:
        measurement = run.measurement
        rows.append(
            (
                printable(run.name),
                run.status,
                format_duration(None if measurement is None else measurement.duration_s),
                format_kwh(None if measurement is None else measurement.energy_kwh),
                format_mass(None if measurement is None else measurement.co2e_kg),
                run_method(run),
            )
        )
    totals = report.totals
    rows.append(
        (
            f"total ({totals.runs} runs)",
            "",
            format_duration(totals.duration_s),
            format_kwh(totals.energy_kwh),
            format_mass(totals.co2e_kg),
            "estimated" if totals.estimated else "measured",
        )
    )
    widths = [max(len(row[column]) for row in rows) for column in range(len(TABLE_COLUMNS))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def report_csv(report: Report) -> str:
    """A header row and one row per run, in fixed units; an unknown figure is an empty cell."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for run in report.runs:
        measurement = run.measurement
        if measurement is None:
            figures: list[str] = ["", "", ""]
        else:
            figures = [
                _decimal(measurement.duration_s),
                _decimal(measurement.energy_kwh),
                _decimal(measurement.co2e_kg),
            ]
        writer.writerow([run.name, run.status, *figures, run_method(run)])
    return buffer.getvalue()


def _decimal(value: float | None) -> str:
    """A plain decimal a spreadsheet reads (no exponent), to 12 significant digits; None: ''."""
    if value is None:
        return ""
    return format(Decimal(f"{value:.12g}"), "f")
