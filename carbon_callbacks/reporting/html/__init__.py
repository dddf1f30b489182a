"""The HTML report: ``carbon-callbacks report PATH --html OUT.html``, or ``write_html_report``.

The page's contract (browser tests and the README rely on it; change it here and there together):

- **One self-contained file.** No network, no CDN, no external script, style sheet, font or
  image: style and script are inline, charts are inline ``<svg>``. The head holds
  ``<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src
  'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">``, so the browser itself refuses
  any request (and logs the refusal as a console error). No ``src``/``href`` names a
  ``http(s)://`` or ``//`` URL; links are ``#fragment`` ones.
- **Totals at the top:** ``<section id="totals">`` with runs, energy, CO2e, the carbon
  intensities and their sources, the share of the energy measured vs estimated, time; figures in
  the unit that fits (``_internal/units.py``); files skipped listed.
- **The table of runs:** ``<table id="runs">`` in ``<section id="runs-table">``, one ``<tbody>``
  row per run (``id="row-run-N"``), columns name, status, start, duration, energy, CO2e, GPUs,
  method, location. Each ``<th>`` holds a ``<button data-column=I data-type=number|text>``;
  clicking sorts the rows by that column (ascending first, again to reverse) and sets the
  ``<th>``'s ``aria-sort`` to ``ascending``/``descending`` (the others ``none``). Each ``<td>``
  has ``data-sort``: numbers as the value (seconds, kWh, kg, Unix time, count), text folded to
  lower case; an unknown value is ``""`` and sorts last both ways. The name cell links to
  ``#run-N``.
- **Each run:** ``<section class="run" id="run-N">`` (N from 1, in the report's start order):
  figures, then ``<figure class="chart">`` with two ``<svg class="chart" role="img">`` charts
  (power per channel over time; cumulative CO2e with each forecast's dot and interval and the
  latest forecast as a dashed line), epoch boundaries as dotted lines, and a
  ``<details class="numbers">`` text alternative; then the forecasts against the outcome. The
  ranks of a distributed run are drawn on one time axis (per rank and channel; CO2e summed);
  resumed runs are chained in ``<section id="trainings">`` (``class="training"``,
  ``id="training-N"``) with links to their segments. The ``INLINE_RUNS`` costliest runs show
  their charts (up to ``FULL_POINTS`` points a series); the others keep smaller charts
  (``SMALL_POINTS``) inside a closed ``<details class="charts">``, folded: held as an HTML
  comment in ``<div class="folded">`` that the page's script turns into the charts (the same
  markup) when the details open, so a page of 1,000 runs does not build their elements at load.
- **Other grids:** ``<section id="regions">``: the runs' energy on reference grids as an SVG bar
  chart (each bar labelled with its name and value) and a table.
- **Exports:** ``<section id="exports">``: ``<textarea readonly id="export-paper">`` and
  ``id="export-model-card"``, each with a ``<button class="copy">``; without clipboard access
  the text is selected for the reader to copy.
- **Accessible:** every chart is ``<svg role="img">`` with ``<title>`` and ``<desc>``, and its
  numbers in a table; series differ by dash pattern (and markers) as well as colour.
- **Untrusted logs stay data:** every string from a log passes ``html.escape(quote=True)`` in
  text, attributes and SVG; the only ``<script>`` element is the page's own, last in ``<body>``.
  Logs are found as ``report`` finds them (nothing outside the folder is read).
"""
