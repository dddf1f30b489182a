"""The HTML report as one file: the sections put together, the style and the script, written.

See the package docstring (``reporting.html``) for what the page promises.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from carbon_callbacks._version import __version__
from carbon_callbacks.reporting.html.charts import run_charts
from carbon_callbacks.reporting.html.run_sections import run_section
from carbon_callbacks.reporting.html.sections import (
    exports_section,
    regions_section,
    runs_table,
    totals_section,
    trainings_section,
)
from carbon_callbacks.reporting.html.svg import esc
from carbon_callbacks.reporting.report import Report, read_logs, report_from_logs
from carbon_callbacks.reporting.runs import RunReport
from carbon_callbacks.runlog.reader import RunLog

INLINE_RUNS = 20
"""The costliest runs (by CO2e, else energy) whose charts are shown at once, in full."""
FULL_POINTS = 300
"""Points per series at most in a shown chart (each bucket's lowest and highest kept)."""
SMALL_POINTS = 60
"""Points per series at most in the collapsed charts of the other runs."""

CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"
"""The page's Content-Security-Policy: the browser itself refuses any request it would make."""

_STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1100px;padding:0 16px;color:#111}
h1{font-size:1.5em}h2{border-bottom:1px solid #bbb;margin-top:2em}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px}dt{font-weight:600}dd{margin:0}
table{border-collapse:collapse;margin:.5em 0}th,td{padding:3px 8px;border-bottom:1px solid #ddd;
text-align:left;vertical-align:top}caption{text-align:left;font-weight:600}
.scroll{overflow-x:auto}#runs th button{font:inherit;font-weight:600;background:none;border:0;
padding:0;cursor:pointer;text-decoration:underline dotted}
#runs th[aria-sort=ascending] button::after{content:" \\25B2"}
#runs th[aria-sort=descending] button::after{content:" \\25BC"}
svg.chart{max-width:100%;height:auto;font-size:11px}svg text{fill:#222}
.axes path{stroke:#444;fill:none}.grid{stroke:#e3e3e3}.series{fill:none;stroke-width:1.6}
.mark{stroke:#777;stroke-dasharray:1 3}.mark-label{font-size:9px}
.level{stroke:#5a2d82;stroke-dasharray:5 3;fill:none}.interval{stroke:#5a2d82;stroke-width:1.5}
.forecast{fill:#fff;stroke:#5a2d82;stroke-width:1.5}.bar{fill:#8aa8c8}.bar.own{fill:#2b5d8a}
figure{margin:.5em 0}.note{color:#444;font-size:.92em}.status{font-weight:400;color:#444}
.run{border-top:1px solid #eee;padding-top:.3em}
textarea{width:100%;font:13px ui-monospace,monospace}
.copied{margin-left:8px;color:#2e7d32}
"""

_SCRIPT = """
(function(){
var table=document.getElementById('runs');
if(table){
 var heads=table.tHead.rows[0].cells;
 Array.prototype.forEach.call(heads,function(th){
  var button=th.querySelector('button');
  button.addEventListener('click',function(){
   var column=+button.dataset.column, numeric=button.dataset.type==='number';
   var ascending=th.getAttribute('aria-sort')!=='ascending';
   var body=table.tBodies[0], rows=Array.prototype.slice.call(body.rows);
   rows.sort(function(a,b){
    var x=a.cells[column].dataset.sort, y=b.cells[column].dataset.sort;
    if(x===''||y===''){return x===y?0:(x===''?1:-1);}
    var order=numeric?(+x)-(+y):(x<y?-1:(x>y?1:0));
    return ascending?order:-order;
   });
   rows.forEach(function(row){body.appendChild(row);});
   Array.prototype.forEach.call(heads,function(other){other.setAttribute('aria-sort','none');});
   th.setAttribute('aria-sort',ascending?'ascending':'descending');
  });
 });
}
document.addEventListener('toggle',function(event){
 var details=event.target, holder=details.open&&details.querySelector(':scope>div.folded');
 if(holder&&holder.firstChild&&holder.firstChild.nodeType===Node.COMMENT_NODE){
  holder.innerHTML=holder.firstChild.data;
 }
},true);
Array.prototype.forEach.call(document.querySelectorAll('button.copy'),function(button){
 button.addEventListener('click',function(){
  var area=document.getElementById(button.dataset.copy), said=button.nextElementSibling;
  area.focus();area.select();
  function done(ok){said.textContent=ok?'copied':'selected: press Ctrl+C (Cmd+C) to copy';}
  if(navigator.clipboard&&navigator.clipboard.writeText){
   navigator.clipboard.writeText(area.value).then(function(){done(true);},function(){
    var ok=false;try{ok=document.execCommand('copy');}catch(e){}done(ok);});
  }else{var ok=false;try{ok=document.execCommand('copy');}catch(e){}done(ok);}
 });
});
})();
"""


def write_html_report(
    path: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    compare: Sequence[str] = (),
) -> Path:
    """Write the HTML report of the run log(s) at ``path`` to ``output`` (atomically).

    Args:
        path: A run log, or a folder searched for them (fenced to it, as ``report`` is).
        output: The ``.html`` file to write; replaced whole, never left half-written.
        compare: Country codes or names to add to the comparison with other grids.

    Returns:
        The path written.

    Raises:
        ReportError: Nothing could be read at ``path``.
        UnknownLocationError: A country in ``compare`` is unknown.
        OSError: ``output`` cannot be written.
    """
    logs, problems = read_logs(path)
    report = report_from_logs(path, logs, problems)
    text = html_report(report, logs, compare=compare)
    target = Path(output)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
    )
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide a report meant to be shared
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def html_report(report: Report, logs: Sequence[RunLog], *, compare: Sequence[str] = ()) -> str:
    """The page of ``report``, whose runs were read from ``logs`` (for their samples)."""
    by_path = {log.path: log for log in logs}
    anchors = {index: f"run-{index + 1}" for index in range(len(report.runs))}
    shown = _costliest(report.runs, INLINE_RUNS)
    segment_of = {
        id(run): f"segment {number} of {len(training.segments)} of training "
        f"{training.segments[-1].name} (training-{index})"
        for index, training in enumerate(report.trainings, start=1)
        for number, run in enumerate(training.segments, start=1)
    }
    sections = []
    for index, run in enumerate(report.runs):
        inline = index in shown
        charts = run_charts(
            [by_path[p] for p in run.paths if p in by_path],
            run.name,
            FULL_POINTS if inline else SMALL_POINTS,
        )
        sections.append(
            run_section(run, anchors[index], charts, inline=inline, segment=segment_of.get(id(run)))
        )
    title = f"Carbon report: {report.path.name or report.path}"
    return "".join(
        [
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f'<meta name="generator" content="carbon-callbacks {esc(__version__)}">',
            f"<title>{esc(title)}</title><style>{_STYLE}</style></head><body>",
            f"<header><h1>{esc(title)}</h1><p>{len(report.runs)} run(s) read from "
            f"<code>{esc(report.path)}</code> by carbon-callbacks {esc(__version__)}.</p>"
            '<nav><a href="#totals">totals</a> · <a href="#runs-table">runs</a> · '
            + ('<a href="#trainings">trainings</a> · ' if report.trainings else "")
            + '<a href="#regions">other grids</a> · <a href="#exports">paper and model card</a>'
            "</nav></header><main>",
            totals_section(report),
            runs_table(report, anchors),
            trainings_section(report, anchors),
            regions_section(report, compare),
            exports_section(report),
            '<section id="run-details"><h2>Each run</h2>',
            *sections,
            "</section></main>",
            f"<script>{_SCRIPT}</script></body></html>\n",
        ]
    )


def _costliest(runs: Sequence[RunReport], count: int) -> set[int]:
    """The indices of the ``count`` runs with the most CO2e (else energy)."""

    def cost(index: int) -> tuple[float, float]:
        m = runs[index].measurement
        if m is None:
            return (-1.0, -1.0)
        return (m.co2e_kg if m.co2e_kg is not None else -1.0, m.energy_kwh or -1.0)

    return set(sorted(range(len(runs)), key=cost, reverse=True)[:count])
