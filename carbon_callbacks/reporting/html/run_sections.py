"""One run's section: its figures, its charts with their text alternative, forecasts, problems.

The costliest runs (``page.INLINE_RUNS``) get full charts shown at once; the others keep their
charts small (fewer points) inside a closed ``<details>``, and there as an HTML comment that the
page's script turns into the charts when the reader opens them: the browser skips over a comment
instead of building its elements, so a page of a thousand runs loads in half the time.
"""

from __future__ import annotations

from collections.abc import Sequence

from carbon_callbacks.reporting.deferral import deferral_phrase
from carbon_callbacks.reporting.html.charts import RunCharts, format_channel, format_grams
from carbon_callbacks.reporting.html.sections import (
    energy_by_method,
    forecast_table,
    gpus_of,
    intensity_phrase,
    location_of,
    when,
)
from carbon_callbacks.reporting.html.svg import esc, tick_text
from carbon_callbacks.reporting.runs import RunReport
from carbon_callbacks.reporting.text import (
    format_duration,
    format_energy,
    format_kwh,
    format_mass,
)


def folded(markup: str) -> str:
    """``markup`` held unparsed in ``<div class="folded"><!--markup--></div>`` until opened.

    A comment ends at the first ``-->`` or ``--!>``: no log string can hold one (every ``>`` from a
    log is escaped), and markup that somehow does is kept as elements rather than cut short.
    """
    if any(mark in markup for mark in ("<!--", "-->", "--!>")) or markup.startswith((">", "->")):
        return markup
    return f'<div class="folded"><!--{markup}--></div>'


def run_section(
    run: RunReport,
    anchor: str,
    charts: RunCharts | None,
    *,
    inline: bool,
    segment: str | None = None,
) -> str:
    """The ``<section class="run" id=anchor>`` of one run.

    Args:
        run: The run.
        anchor: Its id, which the table's row links to.
        charts: Its charts; None when its logs hold no samples.
        inline: Show the charts at once (else folded in a closed ``<details>``).
        segment: ``"segment 2 of 3 of training X"`` for a resumed run's segment.
    """
    parts = [
        f'<section class="run" id="{esc(anchor)}"><h3>{esc(run.name)} '
        f'<span class="status">{esc(run.status)}</span></h3>',
        f"<dl>{_facts(run, segment)}</dl>",
    ]
    notes = [run.basis_note] if run.basis_note else []
    if run.deferral is not None:
        phrase = deferral_phrase(run.deferral, run.met_g_per_kwh)
        notes.append(f"started later for a cleaner grid: {phrase}")
    parts += [f'<p class="note">{esc(note)}</p>' for note in notes]
    if charts is None:
        parts.append(
            '<p class="note">No power samples in this run\'s log: no charts (a log from an older '
            "version, or a run cut off before its first window ended).</p>"
        )
    else:
        body = _charts_block(charts)
        if inline:
            parts.append(body)
        else:
            parts.append(
                f'<details class="charts"><summary>Charts</summary>{folded(body)}</details>'
            )
    if run.predictions:
        parts.append("<h4>Forecasts against the outcome</h4>")
        parts.append(forecast_table(run.predictions))
    if run.problems:
        parts.append("<details><summary>Problems found in the log(s)</summary><ul>")
        parts += [f"<li>{esc(problem)}</li>" for problem in run.problems]
        parts.append("</ul></details>")
    parts.append('<p class="top"><a href="#runs-table">back to the table</a></p></section>')
    return "".join(parts)


def _facts(run: RunReport, segment: str | None) -> str:
    m = run.measurement
    facts: list[tuple[str, str]] = []
    if segment:
        facts.append(("resumed", segment))
    facts.append(("started", when(run.started_unix)))
    if run.world_size is not None:
        facts.append(("ranks", f"{len(run.ranks_found)} of {run.world_size} combined"))
    facts.append(("logs", ", ".join(path.name for path in run.paths)))
    if m is None:
        facts.append(("figures", "none logged"))
    else:
        facts += [
            ("duration", format_duration(m.duration_s)),
            ("energy", format_kwh(m.energy_kwh) + (f" (PUE {m.pue:g})" if m.pue != 1.0 else "")),
            ("CO2e", format_mass(m.co2e_kg) + (" (includes estimates)" if m.estimated else "")),
            (
                "by method",
                ", ".join(
                    f"{method} {format_energy(joules)}"
                    for method, joules in sorted(energy_by_method([run]).items())
                )
                or "nothing measured",
            ),
            ("GPUs", str(gpus_of(m))),
            ("location", location_of(m)),
        ]
        if m.intensity is not None:
            facts.append(("carbon intensity", intensity_phrase(m.intensity)))
        if m.unmeasured:
            facts.append(("unmeasured", ", ".join(m.unmeasured)))
    if run.library_version:
        facts.append(("written by", f"carbon-callbacks {run.library_version}"))
    return "".join(f"<dt>{esc(term)}</dt><dd>{esc(value)}</dd>" for term, value in facts)


def _charts_block(charts: RunCharts) -> str:
    parts = [f'<figure class="chart">{charts.power_svg}</figure>']
    if charts.co2e_svg is not None:
        parts.append(f'<figure class="chart">{charts.co2e_svg}</figure>')
    parts += [f'<p class="note">{esc(note)}</p>' for note in charts.notes]
    parts.append(_alternative(charts))
    return "".join(parts)


def _alternative(charts: RunCharts) -> str:
    """The charts' numbers as tables: per channel, the cumulative CO2e, the forecasts."""
    unit = charts.time_unit
    channel_rows = "".join(
        '<tr><th scope="row">'
        + esc(figures.label)
        + "</th>"
        + "".join(f"<td>{esc(cell)}</td>" for cell in format_channel(figures))
        + "</tr>"
        for figures in charts.channels
    )
    parts = [
        '<details class="numbers"><summary>The numbers behind the charts</summary>',
        "<table><caption>Power per channel over the samples</caption><thead><tr>"
        "<th>channel</th><th>energy</th><th>mean power</th><th>peak power</th></tr></thead>"
        f"<tbody>{channel_rows}</tbody></table>",
    ]
    if charts.co2e_rows:
        parts.append(
            _pairs_table(
                "Cumulative CO2e",
                (f"time ({unit})", "CO2e"),
                [(tick_text(round(t, 2)), format_grams(g)) for t, g in charts.co2e_rows],
            )
        )
    if charts.forecasts:
        parts.append(
            _pairs_table(
                "Forecasts of the total CO2e",
                (f"made at ({unit})", "forecast (interval)"),
                [
                    (
                        tick_text(round(f.x, 2)),
                        f"{format_grams(f.mid)} ({format_grams(f.low)} to {format_grams(f.high)})",
                    )
                    for f in charts.forecasts
                ],
            )
        )
    parts.append("</details>")
    return "".join(parts)


def _pairs_table(caption: str, head: tuple[str, str], rows: Sequence[tuple[str, str]]) -> str:
    body = "".join(f"<tr><td>{esc(a)}</td><td>{esc(b)}</td></tr>" for a, b in rows)
    return (
        f"<table><caption>{esc(caption)}</caption><thead><tr><th>{esc(head[0])}</th>"
        f"<th>{esc(head[1])}</th></tr></thead><tbody>{body}</tbody></table>"
    )
