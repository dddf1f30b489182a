"""The page's project-wide sections: totals, the table of runs, trainings, other grids, exports.

Every string that comes from a run log passes ``esc`` (``html.escape`` with quotes) wherever it
lands: text, attributes, SVG. Numbers in the table carry their value in ``data-sort`` (plain
``repr`` of a float, empty when unknown) so the page's script sorts by value, not by text.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

from carbon_callbacks._internal.unique import unique
from carbon_callbacks.intensity.base import IntensityValue
from carbon_callbacks.reporting.equivalents import basis_note, compare_regions, times_phrase
from carbon_callbacks.reporting.export import (
    ExportError,
    model_card_block,
    paper_paragraph,
    place_of,
)
from carbon_callbacks.reporting.forecasts import PredictionCheck
from carbon_callbacks.reporting.html.svg import Bar, bar_chart, esc
from carbon_callbacks.reporting.report import Report
from carbon_callbacks.reporting.runs import RunReport
from carbon_callbacks.reporting.text import (
    format_duration,
    format_energy,
    format_kwh,
    format_kwh_range,
    format_mass,
    format_mass_range,
)
from carbon_callbacks.reporting.trainings import Training
from carbon_callbacks.tracking.measurement import Measurement

COLUMNS = (
    ("name", "text"),
    ("status", "text"),
    ("start", "number"),
    ("duration", "number"),
    ("energy", "number"),
    ("CO2e", "number"),
    ("GPUs", "number"),
    ("method", "text"),
    ("location", "text"),
)
"""The table's columns and how each sorts (``data-type`` on its header's button)."""


def sort_key(value: float | None) -> str:
    """A cell's ``data-sort`` for a number: its repr, or empty when unknown (sorted last)."""
    return "" if value is None else repr(float(value))


def when(unix: float | None) -> str:
    """``"2026-11-26 12:18 UTC"``, or ``"unknown"``."""
    if unix is None or not 0 <= unix < 32_503_680_000:
        return "unknown"
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(unix))


def intensity_phrase(value: IntensityValue) -> str:
    """``"380 gCO2e/kWh (Our World in Data (Ember), 2024; Germany)"``."""
    place = place_of(value)
    where = f"; {place}" if place else ""
    return f"{value.g_per_kwh:.4g} gCO2e/kWh ({value.source}{where})"


def method_of(measurement: Measurement | None) -> str:
    """``measured``, ``estimated``, ``measured + estimated``, or ``none``."""
    if measurement is None:
        return "none"
    methods = unique(c.channel.method for c in measurement.channels if c.energy_j is not None)
    return " + ".join(sorted(methods)) or "none"


def figures_of(m: Measurement | None) -> tuple[float | None, float | None, float | None]:
    """(duration s, energy kWh, CO2e kg) of a run's figures; None for each when it has none."""
    if m is None:
        return None, None, None
    return m.duration_s, m.energy_kwh, m.co2e_kg


def gpus_of(measurement: Measurement | None) -> int:
    """The GPU channels measured (every rank's, in a distributed run)."""
    if measurement is None:
        return 0
    return sum(1 for c in measurement.channels if c.channel.kind == "gpu")


def location_of(measurement: Measurement | None) -> str:
    """Where the run drew power, from its intensity's zone; ``unknown`` when not known."""
    value = None if measurement is None else measurement.intensity
    if value is None:
        return "unknown"
    return place_of(value) or "unknown"


def energy_by_method(runs: Sequence[RunReport]) -> dict[str, float]:
    """Joules at the devices over every run, by method (``measured``, ``estimated``)."""
    joules: dict[str, float] = {}
    for run in runs:
        for figure in run.measurement.channels if run.measurement else ():
            if figure.energy_j is not None:
                method = figure.channel.method
                joules[method] = joules.get(method, 0.0) + figure.energy_j
    return joules


def totals_section(report: Report) -> str:
    """Runs, energy, CO2e with the intensity's source, measured vs estimated, time, caveats."""
    totals = report.totals
    values = unique(
        run.measurement.intensity
        for run in report.runs
        if run.measurement is not None and run.measurement.intensity is not None
    )
    sources = "; ".join(intensity_phrase(value) for value in values[:5])
    if len(values) > 5:
        sources += f"; and {len(values) - 5} more"
    joules = energy_by_method(report.runs)
    known = sum(joules.values())
    share = (
        ", ".join(
            f"{method} {100 * amount / known:.0f}% ({format_energy(amount)})"
            for method, amount in sorted(joules.items())
        )
        if known > 0
        else "no energy measured"
    )
    rows = [
        ("runs", f"{totals.runs}"),
        (
            "energy",
            format_kwh(totals.energy_kwh)
            + (
                f" ({totals.runs_without_energy} run(s) without a figure not counted)"
                if totals.runs_without_energy
                else ""
            ),
        ),
        (
            "CO2e",
            format_mass(totals.co2e_kg)
            + (
                f" ({totals.runs_without_co2e} run(s) without CO2e not counted)"
                if totals.runs_without_co2e
                else ""
            ),
        ),
        ("carbon intensity", sources or "none recorded"),
        ("measured vs estimated", share + " at the devices"),
        ("time", format_duration(totals.duration_s)),
    ]
    notes = []
    if totals.estimated:
        notes.append("The totals include estimated figures.")
    if totals.partial:
        notes.append("Some runs' figures are partial, unfinished or missing ranks: see each run.")
    parts = [
        '<section id="totals"><h2>Totals</h2><dl class="totals">',
        *(f"<dt>{esc(term)}</dt><dd>{esc(value)}</dd>" for term, value in rows),
        "</dl>",
        *(f'<p class="note">{esc(note)}</p>' for note in notes),
    ]
    if report.problems:
        parts.append("<details><summary>Files skipped</summary><ul>")
        parts += [f"<li>{esc(problem)}</li>" for problem in report.problems]
        parts.append("</ul></details>")
    parts.append("</section>")
    return "".join(parts)


def runs_table(report: Report, anchors: Mapping[int, str]) -> str:
    """One row per run; each header a button that sorts by its column, each name a link."""
    head = "".join(
        f'<th scope="col" aria-sort="none"><button type="button" data-column="{index}" '
        f'data-type="{kind}">{esc(name)}</button></th>'
        for index, (name, kind) in enumerate(COLUMNS)
    )
    rows = []
    for index, run in enumerate(report.runs):
        m = run.measurement
        duration, energy, co2e = figures_of(m)
        cells = [
            (run.name.casefold(), f'<a href="#{anchors[index]}">{esc(run.name)}</a>'),
            (run.status, esc(run.status)),
            (sort_key(run.started_unix), esc(when(run.started_unix))),
            (sort_key(duration), esc(format_duration(duration))),
            (sort_key(energy), esc(format_kwh(energy))),
            (sort_key(co2e), esc(format_mass(co2e))),
            (sort_key(gpus_of(m)), str(gpus_of(m))),
            (method_of(m), esc(method_of(m))),
            (location_of(m).casefold(), esc(location_of(m))),
        ]
        rows.append(
            f'<tr id="row-{anchors[index]}">'
            + "".join(f'<td data-sort="{esc(key)}">{shown}</td>' for key, shown in cells)
            + "</tr>"
        )
    return (
        '<section id="runs-table"><h2>Runs</h2>'
        '<p class="hint">Click a column heading to sort by it; click again to reverse.</p>'
        '<div class="scroll"><table id="runs"><caption>Every run, one row each</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div></section>"
    )


def trainings_section(report: Report, anchors: Mapping[int, str]) -> str:
    """Resumed runs chained into trainings: the totals, then each segment linked in order."""
    if not report.trainings:
        return ""
    position = {id(run): index for index, run in enumerate(report.runs)}
    parts = ['<section id="trainings"><h2>Trainings resumed from checkpoints</h2>']
    for number, training in enumerate(report.trainings, start=1):
        parts.append(_training_block(training, number, position, anchors))
    parts.append("</section>")
    return "".join(parts)


def _training_block(
    training: Training, number: int, position: Mapping[int, int], anchors: Mapping[int, str]
) -> str:
    count = len(training.segments)
    name = training.segments[-1].name
    facts = [
        f"{training.status}, {count} run(s) found",
        f"energy {format_kwh(training.energy_kwh)}"
        + (" (includes estimated figures)" if training.estimated else ""),
        f"CO2e {format_mass(training.co2e_kg)}",
        f"time {format_duration(training.duration_s)}"
        + ("" if training.steps is None else f", {training.steps} steps"),
    ]
    parts = [
        f'<section class="training" id="training-{number}"><h3>Training {esc(name)}</h3>',
        f"<p>{esc('; '.join(facts))}</p>",
    ]
    if training.partial:
        parts.append('<p class="note">Some segments\' figures are incomplete.</p>')
    carried = training.carried
    if carried is not None:
        parts.append(
            f"<p>Before these: {esc(format_kwh(carried.energy_kwh))} over {carried.steps} steps, "
            f"from the checkpoint (the log of run {esc(carried.run_id or 'unknown')} was not "
            "found).</p>"
        )
    parts.append('<ol class="segments">')
    for run in training.segments:
        anchor = anchors[position[id(run)]]
        _, energy, co2e = figures_of(run.measurement)
        parts.append(
            f'<li><a href="#{anchor}">{esc(run.name)}</a>: {esc(run.status)}, '
            f"{esc(format_kwh(energy))}, {esc(format_mass(co2e))} CO2e, "
            f"started {esc(when(run.started_unix))}</li>"
        )
    parts.append("</ol>")
    if training.predictions:
        parts.append("<h4>Forecasts of the whole training</h4>")
        parts.append(forecast_table(training.predictions))
    parts.append("</section>")
    return "".join(parts)


def forecast_table(checks: Sequence[PredictionCheck]) -> str:
    """Forecasts beside the outcome: when made, predicted energy and CO2e with ranges, actual."""
    rows = []
    for check in checks:
        rank = "" if check.rank is None else f" (rank {check.rank})"
        co2e = "none" if check.co2e_kg is None else format_mass_range(*check.co2e_kg)
        level = "" if check.interval is None else f"{check.interval:.0%} "
        if check.actual_energy_kwh is None:
            actual, verdict = "no measured energy", ""
        else:
            actual = format_kwh(check.actual_energy_kwh) + (
                "" if check.actual_complete else " (the run did not complete)"
            )
            error = check.energy_error
            off = "" if error is None else f"{abs(error):.0%} {'above' if error > 0 else 'below'}; "
            inside = "inside" if check.energy_within else "outside"
            verdict = f"{off}{inside} the {level}interval"
        cells = [
            f"{check.which}{rank}",
            f"step {check.steps_done} of {check.total_steps}",
            format_kwh_range(*check.energy_kwh),
            co2e,
            actual,
            verdict,
        ]
        rows.append("<tr>" + "".join(f"<td>{esc(cell)}</td>" for cell in cells) + "</tr>")
    return (
        '<table class="forecasts"><thead><tr><th>forecast</th><th>made at</th>'
        "<th>energy (interval)</th><th>CO2e (interval)</th><th>actual energy</th>"
        f"<th>against the outcome</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def regions_section(report: Report, compare: Sequence[str] = ()) -> str:
    """The runs' energy on other grids as a bar chart, its table, and the basis caveat."""
    totals = report.totals
    if totals.energy_kwh is None:
        return ""
    rows = compare_regions(totals.energy_kwh, totals.co2e_kg, compare)
    bars = []
    if totals.co2e_kg is not None:
        bars.append(
            Bar("these runs, as measured", totals.co2e_kg, format_mass(totals.co2e_kg), True)
        )
    label = {
        "cleanest large grid": "{name}, the cleanest large grid",
        "dirtiest large grid": "{name}, the dirtiest large grid",
        "world average": "world average",
        "named": "{name}",
    }
    for row in rows:
        bars.append(
            Bar(label[row.kind].format(name=row.name), row.co2e_kg, format_mass(row.co2e_kg))
        )
    chart = bar_chart(
        "The same energy on other grids",
        f"CO2e of {format_kwh(totals.energy_kwh)} on {len(rows)} reference grids (yearly "
        "averages, lifecycle basis), beside the runs' own figure. The numbers are in the table "
        "below.",
        bars,
    )
    table_rows = "".join(
        f"<tr><td>{esc(bar.label)}</td><td>"
        + (f"{row.g_per_kwh:.4g} gCO2e/kWh ({row.year})" if row else "as measured")
        + f'</td><td data-sort="{bar.value!r}">{esc(bar.text)}</td><td>'
        + esc((times_phrase(row.ratio) or "") if row else "")
        + "</td></tr>"
        for bar, row in zip(bars, [None] * (len(bars) - len(rows)) + list(rows), strict=True)
    )
    own = unique(
        run.measurement.intensity
        for run in report.runs
        if run.measurement is not None and run.measurement.intensity is not None
    )
    note = basis_note(own[0]) if len(own) == 1 else None
    return (
        '<section id="regions"><h2>The same energy on other grids</h2>'
        f"<figure>{chart}<figcaption>CO2e of the same energy on reference grids"
        "</figcaption></figure>"
        "<details><summary>The numbers</summary><table><thead><tr><th>grid</th>"
        "<th>intensity</th><th>CO2e</th><th>against the runs</th></tr></thead>"
        f"<tbody>{table_rows}</tbody></table></details>"
        + (f'<p class="note">Note: {esc(note)}</p>' if note else "")
        + "</section>"
    )


def exports_section(report: Report) -> str:
    """The paper paragraph and the model-card block, each read-only with a copy button."""
    parts = ['<section id="exports"><h2>For a paper and a model card</h2>']
    makers: list[tuple[str, str, Callable[[], str]]] = [
        ("paper", "Paragraph for a paper", lambda: paper_paragraph(report)),
        (
            "model-card",
            "Hugging Face model card (co2_eq_emissions)",
            lambda: model_card_block(report),
        ),
    ]
    for key, title, make in makers:
        parts.append(f"<h3>{esc(title)}</h3>")
        try:
            text = make()
        except ExportError as error:
            parts.append(f'<p class="note">Not available: {esc(error)}</p>')
            continue
        lines = text.count("\n") + 1
        parts.append(
            f'<div class="export"><textarea id="export-{key}" readonly '
            f'rows="{min(max(lines, 3), 12)}" '
            f'aria-label="{esc(title)}">{esc(text)}</textarea>'
            f'<button type="button" class="copy" data-copy="export-{key}">Copy</button>'
            '<span class="copied" role="status"></span></div>'
        )
    parts.append("</section>")
    return "".join(parts)
