"""Plain-text rendering of measurements and device lists, shared by the CLI and the adapters."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from carbon_callbacks._internal.unique import unique
from carbon_callbacks._internal.units import (
    format_distance,
    format_distance_span,
    format_duration,
    format_energy,
    format_kwh,
    format_kwh_range,
    format_kwh_span,
    format_mass,
    format_mass_range,
    format_power,
)
from carbon_callbacks.intensity.base import IntensityValue
from carbon_callbacks.meters.base import Channel, Unavailable
from carbon_callbacks.reporting.deferral import cleaner_start_line, deferral_phrase
from carbon_callbacks.reporting.equivalents import (
    EEA_NEW_CARS_2023,
    CarBaseline,
    RegionRow,
    basis_note,
    car_km,
    compare_regions,
    times_phrase,
)
from carbon_callbacks.tracking.measurement import (
    JOULES_PER_KWH,
    ChannelEnergy,
    Measurement,
    describe_intensity,
    measurement_lines,
)

__all__ = [
    "describe_intensity",
    "format_distance",
    "format_duration",
    "format_energy",
    "format_kwh",
    "format_kwh_range",
    "format_mass",
    "format_mass_range",
    "format_power",
]


def format_measurement(measurement: Measurement) -> list[str]:
    """Lines describing a measurement (what ``str(measurement)`` shows): totals, then channels."""
    return measurement_lines(measurement)


if TYPE_CHECKING:
    from carbon_callbacks.reporting.estimate import Estimate
    from carbon_callbacks.reporting.forecasts import PredictionCheck
    from carbon_callbacks.reporting.report import Report, Totals
    from carbon_callbacks.reporting.runs import RunReport
    from carbon_callbacks.reporting.trainings import Training
    from carbon_callbacks.training.outcome import ForecastFigures, TrainingOutcome


def printable(text: str) -> str:
    r"""``text`` safe for a terminal: characters it would act on are shown as escapes.

    Control characters (ESC, which starts terminal escape sequences, BEL, CR...), invisible format
    characters (such as bidirectional overrides), line separators and lone surrogates become
    ``\x1b``, ``\u202e``...; newlines, tabs and spaces of any width stay. Text read from a run
    log goes through it before it is printed, so a log cannot drive the terminal that shows it.
    """
    if text.isprintable():
        return text
    return "".join(
        char
        if char.isprintable() or char in "\n\t" or unicodedata.category(char) == "Zs"
        else ascii(char)[1:-1]
        for char in text
    )


def format_intensity(
    value: IntensityValue, slot_start_unix: float | None, attribution: str | None
) -> list[str]:
    """Lines for ``carbon-callbacks intensity``: the factor, its provenance, its attribution."""
    import time

    lines = [f"{value.g_per_kwh:.4g} gCO2e/kWh", f"  {describe_intensity(value)}"]
    if slot_start_unix is not None:
        stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(slot_start_unix))
        lines.append(f"  for the period starting {stamp}")
    if attribution:
        lines.append(f"  {attribution}")
    return lines


def format_devices(channels: Sequence[Channel], unavailable: Sequence[Unavailable]) -> list[str]:
    """Lines listing what can be measured and how, then what cannot and why."""
    lines = ["Measurable on this machine:"]
    lines += [
        f"  {c.id:<18} {c.method:<9} {c.device}: {c.how.removeprefix('estimate: ')}"
        for c in channels
    ] or ["  nothing"]
    if unavailable:
        lines.append("Not usable:")
        for item in unavailable:
            lines.append(f"  {item.source}: {item.reason}")
            if item.fix:
                lines.extend(f"    fix: {line}" for line in item.fix.splitlines())
    return lines


# -- reports, estimates and run summaries ------------------------------------------------------


def format_run_summary(
    measurement: Measurement,
    predictions: Sequence[Mapping[str, Any]] | None = None,
    compare: Sequence[str] = (),
) -> list[str]:
    """The report's facts about one run in a few lines, for the end of training.

    Args:
        measurement: The run's figures (facility energy x PUE, CO2e and its provenance).
        predictions: The run's prediction records, in order; the first is set beside the outcome.
        compare: Country codes to add to the cleanest large grid in the comparison.

    Raises:
        UnknownLocationError: A country in ``compare`` is unknown.
    """
    from carbon_callbacks.reporting.forecasts import prediction_checks

    kwh = measurement.energy_kwh
    how = "includes estimated figures" if measurement.estimated else "measured"
    if measurement.partial:
        how += "; partial: some figures are incomplete"
    lines = [f"energy: {format_kwh(kwh)} ({how})"]
    lines += [
        f"        {figure.channel.id}: {figure.fault or 'no reading'}"
        for figure in measurement.channels
        if figure.partial
    ]
    lines += [f"        not measured: {item}" for item in measurement.unmeasured]
    co2e = measurement.co2e_kg
    if co2e is not None and measurement.intensity is not None:
        lines.append(
            f"CO2e:   {format_mass(co2e)} at {measurement.intensity.g_per_kwh:.4g} gCO2e/kWh "
            f"({describe_intensity(measurement.intensity)})"
        )
        lines.append(f"        {_car_phrase(co2e, EEA_NEW_CARS_2023)}")
    if kwh is not None:
        rows = compare_regions(kwh, co2e, compare)
        lines += [
            f"        {_region_phrase(row)}"
            for row in rows
            if row.kind in ("cleanest large grid", "named")
        ]
    checks = prediction_checks(predictions or [], measurement)
    if checks:
        lines.append(f"first forecast, {_prediction_phrase(checks[0])}")
    return lines


def format_estimate(estimate: Estimate) -> list[str]:
    """Lines for ``carbon-callbacks estimate``: the figures, labelled estimated, and assumptions.

    A GPU name that fits boards of different power gives each figure as the middle of its range,
    with the range beside, under a first line that says so (``8 x A100 (250-400 W ...)``).
    """
    lines = []
    if estimate.subject:
        lines.append(f"{estimate.subject}: {format_kwh_span(*estimate.device_energy_range_kwh)}")
    energy, co2e = format_kwh(estimate.energy_kwh), format_mass(estimate.co2e_kg)
    car = f"about {format_distance(estimate.car_km)}"
    if estimate.device_energy_span_kwh is not None:
        energy = format_kwh_range(*_around(estimate.energy_kwh, estimate.energy_range_kwh))
        co2e = format_mass_range(*_around(estimate.co2e_kg, estimate.co2e_range_kg))
        car += f" ({format_distance_span(*estimate.car_range_km)})"
    lines += [
        f"estimated energy: {energy}"
        + (f" ({format_kwh(estimate.device_energy_kwh)} x PUE {estimate.pue:g})"
           if estimate.pue != 1.0 else ""),
        f"estimated CO2e:   {co2e} at {estimate.intensity.g_per_kwh:.4g} gCO2e/kWh",
        f"                  ({describe_intensity(estimate.intensity)})",
        f"                  {car} in a car at {estimate.car.describe()}",
        "assumptions:",
    ]  # fmt: skip
    lines += [f"  - {line}" for line in estimate.assumptions]
    return lines


def _around(middle: float, ends: tuple[float, float]) -> tuple[float, float, float]:
    """(low, middle, high), the order the range formatters take."""
    return ends[0], middle, ends[1]


def format_report(
    report: Report,
    *,
    compare: Sequence[str] = (),
    car: CarBaseline = EEA_NEW_CARS_2023,
    estimate: Estimate | None = None,
) -> list[str]:
    """Lines for ``carbon-callbacks report``: each run, then the totals and any earlier estimate.

    The runs of a training resumed from checkpoints come together: the training's totals and
    forecasts, then each run (segment) indented below. Names, paths, notes and problems come from
    run logs, so every line passes ``printable``.

    Raises:
        UnknownLocationError: A country in ``compare`` is unknown.
    """
    lines: list[str] = []
    training_of = {id(run): t for t in report.trainings for run in t.segments}
    for run in report.runs:
        training = training_of.get(id(run))
        if training is None:
            lines += _format_run(run, compare, car)
        elif run is training.segments[0]:
            lines += _format_training(training, compare, car)
        else:
            continue
        lines.append("")
    if len(report.runs) > 1:
        lines += _format_totals(report.totals, car)
    if estimate is not None:
        lines += _format_estimate_check(estimate, report.totals)
    if report.problems:
        lines.append("files skipped:")
        lines += [f"  {problem}" for problem in report.problems]
    while lines and not lines[-1]:
        lines.pop()
    return [printable(line) for line in lines]


def _format_run(run: RunReport, compare: Sequence[str], car: CarBaseline) -> list[str]:
    ranks = (
        f", {len(run.ranks_found)} of {run.world_size} ranks combined"
        if run.world_size is not None
        else ""
    )
    logs = ", ".join(path.name for path in run.paths)
    lines = [f"run {run.name!r}: {run.status}{ranks} ({logs})"]
    if run.basis_note:
        lines.append(f"  note: {run.basis_note}")
    measurement = run.measurement
    if measurement is None:
        lines.append("  no figures were logged")
    else:
        lines += [f"  {line}" for line in format_measurement(measurement)]
        lines.append(f"  by method: {_by_method(measurement)}")
        co2e = measurement.co2e_kg
        if co2e is not None:
            lines.append(f"  car:      {_car_phrase(co2e, car)}")
        kwh = measurement.energy_kwh
        if kwh is not None:
            lines += _format_regions(kwh, co2e, measurement.intensity, compare)
    for check in run.predictions:
        rank = f" (rank {check.rank})" if check.rank is not None else ""
        lines.append(f"  forecast, {check.which}{rank}: {_prediction_phrase(check)}")
    if run.deferral is not None:
        phrase = deferral_phrase(run.deferral, run.met_g_per_kwh)
        lines.append(f"  started later for a cleaner grid: {phrase}")
    if run.problems:
        lines.append("  problems:")
        lines += [f"    {problem}" for problem in run.problems]
    return lines


def _format_training(training: Training, compare: Sequence[str], car: CarBaseline) -> list[str]:
    count = len(training.segments)
    lines = [
        f"training {training.segments[-1].name!r}: {training.status}, resumed from checkpoints "
        f"({count} run{'s' if count > 1 else ''} found)",
        f"  energy: {format_kwh(training.energy_kwh)}"
        + (" (includes estimated figures)" if training.estimated else "")
        + ("; partial: some figures are incomplete" if training.partial else ""),
        f"  CO2e:   {format_mass(training.co2e_kg)}",
        f"  time:   {format_duration(training.duration_s)}"
        + ("" if training.steps is None else f", {training.steps} steps"),
    ]
    carried = training.carried
    if carried is not None:
        lines.append(
            f"  before these: {format_kwh(carried.energy_kwh)} over {carried.steps} steps, from "
            f"the checkpoint (the log of run {carried.run_id or 'unknown'} was not found)"
        )
    for check in training.predictions:
        lines.append(f"  forecast, {check.which} (whole training): {_prediction_phrase(check)}")
    for index, run in enumerate(training.segments, start=1):
        lines.append(f"  segment {index} of {count}:")
        lines += [f"    {line}" for line in _format_run(run, compare, car)]
    return lines


def _by_method(measurement: Measurement) -> str:
    parts = []
    for method in ("measured", "estimated"):
        joules = [
            c.energy_j
            for c in measurement.channels
            if c.channel.method == method and c.energy_j is not None
        ]
        if joules:
            parts.append(f"{method} {format_energy(sum(joules))}")
    return ", ".join(parts) + " at the devices" if parts else "nothing measured"


def _format_regions(
    kwh: float, co2e: float | None, own: IntensityValue | None, compare: Sequence[str]
) -> list[str]:
    lines = ["  same energy on other grids (yearly averages, lifecycle basis):"]
    lines += [f"    {_region_phrase(row)}" for row in compare_regions(kwh, co2e, compare)]
    note = basis_note(own)
    if note:
        lines.append(f"    note: {note}")
    return lines


def _format_totals(totals: Totals, car: CarBaseline) -> list[str]:
    lines = [
        f"totals over {totals.runs} runs:",
        f"  energy: {format_kwh(totals.energy_kwh)}"
        + (f" ({totals.runs_without_energy} run(s) without a figure not counted)"
           if totals.runs_without_energy else ""),
        f"  CO2e:   {format_mass(totals.co2e_kg)}"
        + (f" ({totals.runs_without_co2e} run(s) without CO2e not counted)"
           if totals.runs_without_co2e else ""),
        f"  time:   {format_duration(totals.duration_s)}",
    ]  # fmt: skip
    if totals.co2e_kg is not None:
        lines.append(f"  car:    {_car_phrase(totals.co2e_kg, car)}")
    if totals.estimated:
        lines.append("  includes estimated figures")
    if totals.partial:
        lines.append("  some runs' figures are partial, unfinished or missing ranks: see above")
    return lines


def _format_estimate_check(estimate: Estimate, totals: Totals) -> list[str]:
    energy, co2e = format_kwh(estimate.energy_kwh), format_mass(estimate.co2e_kg)
    if estimate.device_energy_span_kwh is not None:
        energy = format_kwh_range(*_around(estimate.energy_kwh, estimate.energy_range_kwh))
        co2e = format_mass_range(*_around(estimate.co2e_kg, estimate.co2e_range_kg))
    lines = [
        f"earlier estimate: {energy}, {co2e} "
        f"CO2e ({'from hardware' if estimate.hardware else 'energy given'})",
        f"measured:         {format_kwh(totals.energy_kwh)}, {format_mass(totals.co2e_kg)} CO2e",
    ]
    if totals.energy_kwh is not None and estimate.energy_kwh > 0:
        ratio = totals.energy_kwh / estimate.energy_kwh
        lines.append(f"                  the measured energy is {ratio:.3g} x the estimate")
    return lines


def _car_phrase(co2e_kg: float, car: CarBaseline) -> str:
    return f"about {format_distance(car_km(co2e_kg, car.g_per_km))} in a car at {car.describe()}"


def _region_phrase(row: RegionRow) -> str:
    label = {
        "cleanest large grid": f"in {row.name}, the cleanest large grid",
        "dirtiest large grid": f"in {row.name}, the dirtiest large grid",
        "world average": "at the world average",
        "named": f"in {row.name}",
    }[row.kind]
    times = times_phrase(row.ratio)
    return (
        f"{label} ({row.g_per_kwh:.4g} gCO2e/kWh, {row.year}) it would have been "
        f"{format_mass(row.co2e_kg)}" + (f", {times}" if times else "")
    )


def _prediction_phrase(check: PredictionCheck) -> str:
    low, mid, high = check.energy_kwh
    made = f"at step {check.steps_done} of {check.total_steps}"
    predicted = format_kwh_range(low, mid, high)
    if check.actual_energy_kwh is None:
        return f"{made}: {predicted}; no measured energy to compare"
    level = f" {check.interval:.0%}" if check.interval is not None else ""
    inside = "inside" if check.energy_within else "outside"
    partial = "" if check.actual_complete else " (the run did not complete)"
    return (
        f"{made}: {predicted}; actual {format_kwh(check.actual_energy_kwh)}{partial}: "
        f"{_off_the_outcome(check.energy_error)}, {inside} the{level} range"
    )


def _off_the_outcome(error: float | None) -> str:
    """How far a forecast was from what happened, in words: "20% above the outcome"."""
    if error is None:
        return "no outcome to compare"
    if abs(error) < 0.005:  # "0% above" would read as a contradiction
        return "within 1% of the outcome"
    return f"{abs(error):.0%} {'above' if error > 0 else 'below'} the outcome"


def format_training_summary(outcome: TrainingOutcome | None) -> list[str]:
    """The lines a callback shows at the end of training; none without an outcome (other ranks).

    About eight lines in plain words: how the run ended, its energy with each channel's figure
    and method (channels of one kind and method together past three), the CO2e with the
    intensity's source and what it counts, a car distance, and the first forecast beside the
    outcome. A forecast is for the whole planned run: it is set beside the outcome only when the
    run did its planned steps.
    """
    if outcome is None:
        return []
    from carbon_callbacks.reporting.forecasts import prediction_checks

    measurement = outcome.measurement
    steps = "" if measurement.steps is None else f", {measurement.steps} steps"
    lines = [
        f"carbon-callbacks: training {outcome.status} in "
        f"{format_duration(measurement.duration_s)}{steps}"
    ]
    if not outcome.finished:
        lines[0] += f" of the {outcome.total_steps} planned"
    lines.append(
        f"  energy: {format_kwh(measurement.energy_kwh)}{_summary_energy_note(measurement)}"
    )
    lines += [f"    {line}" for line in _summary_channel_lines(measurement)]
    co2e = measurement.co2e_kg
    if co2e is not None and measurement.intensity is not None:
        lines.append(
            f"  CO2e:   {format_mass(co2e)} at {measurement.intensity.g_per_kwh:.4g} gCO2e/kWh"
        )
        lines.append(f"          {_car_phrase(co2e, EEA_NEW_CARS_2023)}")
        lines += [f"          {line}" for line in plain_intensity(measurement.intensity)]
    elif measurement.intensity is None:
        lines.append("  CO2e:   not computed: the carbon intensity is unknown")
    if outcome.world_size > 1 or outcome.resumed:
        lines.append(_summary_total_line(outcome))
    if outcome.finished:
        checks = prediction_checks(outcome.forecasts, measurement)
        if checks:
            lines.append(f"  forecast: {_summary_forecast_phrase(checks[0])}")
    lines += [f"  run log: {item}" for item in (outcome.log_path, outcome.log_problem) if item]
    return lines


def plain_intensity(value: IntensityValue) -> list[str]:
    """Where a carbon intensity comes from and what it counts, in words for anyone.

    One line (source, zone, what the figure counts), and one more when the location was guessed
    or a preferred source could not be used, saying what to pass instead.
    """
    where = f", {value.zone}" if value.zone and value.zone.upper() != "WORLD" else ""
    counts = {
        "lifecycle": "the power plants' whole-life emissions (building, fuel supply, burning)",
        "direct": "emissions from burning fuel only",
        "mixed": "partly whole-life emissions, partly burning only",
    }.get(value.basis or "", "")
    line = f"source: {value.source}{where}" + (f"; {counts}" if counts else "")
    if value.estimated:
        line += "; partly forecast or modelled"
    lines = [line]
    if value.fallback:
        world = value.zone is not None and value.zone.upper() == "WORLD"
        lines.append(("World average used: " if world else "instead: ") + value.fallback)
    elif value.guessed_location:
        lines.append("location guessed from the system time zone; pass country=... to set it")
    return lines


def _summary_energy_note(measurement: Measurement) -> str:
    notes = []
    if measurement.pue != 1.0:
        notes.append(f"x PUE {measurement.pue:g}")
    notes.append("includes an estimate" if measurement.estimated else "measured")
    if measurement.partial:
        notes.append("partial: some figures are incomplete")
    return f" ({', '.join(notes)})"


_SUMMARY_CHANNELS = 3
"""Channels listed one a line in the summary; past that, channels of one kind and method share a
line (eight GPUs: one line)."""


def _summary_channel_lines(measurement: Measurement) -> list[str]:
    """Each channel's energy and method; faults and unmeasured devices named."""
    figures = measurement.channels
    groups: dict[tuple[str, str], list[ChannelEnergy]] = {}
    for figure in figures:
        key = (figure.channel.id, "") if len(figures) <= _SUMMARY_CHANNELS else (
            figure.channel.kind, figure.channel.method
        )  # fmt: skip
        groups.setdefault(key, []).append(figure)
    lines = []
    for group in groups.values():
        first = group[0].channel
        known = [f.energy_j for f in group if f.energy_j is not None]
        joules = sum(known) if known else None  # a channel without one says so in the note
        name = first.id if len(group) == 1 else f"{len(group)} x {first.kind}"
        faults = unique(f"{f.channel.id}: {f.fault}" for f in group if f.fault)
        note = f" [{'; '.join(faults)}]" if faults else ""
        energy = "no reading" if joules is None else format_kwh(joules / JOULES_PER_KWH)
        # a method its description already names ("estimate: ...") is not said twice
        how = (
            first.how if first.how.startswith(first.method[:8]) else f"{first.method}: {first.how}"
        )
        lines.append(f"{name}: {energy}, {how}{note}")
    lines += [f"not measured: {item}" for item in measurement.unmeasured]
    return lines


def _summary_total_line(outcome: TrainingOutcome) -> str:
    scope = f"all {outcome.world_size} ranks" if outcome.world_size > 1 else "this run"
    if outcome.resumed:
        scope += " and the runs it resumed"
    co2e = outcome.total_co2e_kg
    return f"  total ({scope}): {format_kwh(outcome.total_energy_kwh)}" + (
        "" if co2e is None else f", {format_mass(co2e)} CO2e"
    )


def _summary_forecast_phrase(check: PredictionCheck) -> str:
    """The first forecast beside the outcome: "20% above the outcome, inside its 80% range"."""
    low, mid, high = check.energy_kwh
    level = f"{check.interval:.0%} " if check.interval is not None else ""
    phrase = (
        f"at step {check.steps_done} of {check.total_steps}, {format_kwh(mid)} "
        f"({level}range {format_kwh(low)} to {format_kwh(high)})"
    )
    error = check.energy_error
    if error is None:
        return phrase
    inside = "inside" if check.energy_within else "outside"
    return f"{phrase}: {_off_the_outcome(error)}, {inside} the range"


def format_forecast_line(forecast: ForecastFigures) -> str:
    """The line announcing a run's first forecast (80% interval); a cleaner start's line below."""
    low, mid, high = forecast.energy_kwh
    line = (
        f"carbon-callbacks: predicted for {forecast.total_steps} steps: "
        f"{format_kwh_range(low, mid, high)}"
    )
    if forecast.co2e_kg is not None:
        line += f", {format_mass_range(*forecast.co2e_kg)} CO2e"
    if forecast.duration_s is not None:
        line += f", {format_duration(forecast.duration_s)}"
    line += " (80% interval)"
    if forecast.co2e_kg is not None:
        line += f"; {_car_phrase(forecast.co2e_kg[1], EEA_NEW_CARS_2023)}"
    if forecast.cleaner_start is not None:
        line += "\n" + cleaner_start_line(forecast.cleaner_start)
    return line
