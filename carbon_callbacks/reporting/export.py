"""Publication exports of a report: a paragraph for a paper's appendix, and a model-card block.

The model-card block follows the Hugging Face Hub's ``co2_eq_emissions`` metadata
(https://huggingface.co/docs/hub/model-cards-co2): ``emissions`` in grams of CO2e, ``source``,
``training_type`` (``pre-training`` or ``fine-tuning``), ``geographical_location`` and
``hardware_used``. Over several runs (a sweep) both give the totals: the cost of the whole search.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Literal

from carbon_callbacks._internal.unique import unique
from carbon_callbacks._version import __version__
from carbon_callbacks.intensity import static
from carbon_callbacks.intensity.base import IntensityValue
from carbon_callbacks.reporting.equivalents import (
    EEA_NEW_CARS_2023,
    CarBaseline,
    car_km,
    large_grid_extremes,
)
from carbon_callbacks.reporting.report import Report
from carbon_callbacks.reporting.runs import RunReport
from carbon_callbacks.reporting.text import (
    format_distance,
    format_duration,
    format_kwh,
    format_mass,
)
from carbon_callbacks.tracking.measurement import JOULES_PER_KWH, Measurement

TrainingType = Literal["pre-training", "fine-tuning"]
TRAINING_TYPES: tuple[TrainingType, ...] = ("pre-training", "fine-tuning")


class ExportError(ValueError):
    """The report lacks what the export needs (e.g. no CO2e figure); the message says what."""


def model_card_block(report: Report, training_type: TrainingType = "pre-training") -> str:
    """The ``co2_eq_emissions`` YAML block for a Hugging Face model card's metadata.

    ``hardware_used`` is always there; ``geographical_location`` only when the runs' location is
    known (a world-average factor says nothing about where they ran). Numbers are plain decimals:
    the Hub reads ``emissions`` with a plain-decimal pattern.

    Raises:
        ExportError: No run has a CO2e figure, or ``training_type`` is not one the Hub knows.
    """
    if training_type not in TRAINING_TYPES:
        raise ExportError(
            f"training type must be 'pre-training' or 'fine-tuning', got {training_type!r}"
        )
    totals = report.totals
    if totals.co2e_kg is None:
        raise ExportError(
            "no run has a CO2e figure (no energy was measured, or no carbon intensity was set); "
            "a model card needs the emissions"
        )
    fields = {
        "source": f"carbon-callbacks {__version__}",
        "training_type": training_type,
        "geographical_location": _location(_measurements(report)),
        "hardware_used": hardware_used(report.runs),
    }
    lines = []
    uncounted = totals.runs_without_energy + totals.runs_without_co2e
    if uncounted:
        lines.append(f"# {uncounted} of {totals.runs} runs have no CO2e figure and are not counted")
    lines += ["co2_eq_emissions:", f"  emissions: {_plain_number(totals.co2e_kg * 1000.0)}"]
    lines += [
        f"  {key}: {json.dumps(value, ensure_ascii=False)}"
        for key, value in fields.items()
        if value
    ]
    return "\n".join(lines)


def paper_paragraph(report: Report, car: CarBaseline = EEA_NEW_CARS_2023) -> str:
    """A paragraph for a paper's appendix: energy, hardware, method, CO2e and its source.

    Written for readers of the paper: figures in the unit that fits, the hardware named, the
    software version, the method and the intensity's source with its year; no setup advice and
    no sentence twice.

    Raises:
        ExportError: No run has an energy figure.
    """
    measurements = _measurements(report)
    totals = report.totals
    if totals.energy_kwh is None:
        raise ExportError("no run has an energy figure to report")
    device_kwh = sum((m.energy_j or 0.0) for m in measurements) / JOULES_PER_KWH
    pues = sorted({m.pue for m in measurements})
    pue = (
        ""
        if pues == [1.0]
        else f" ({format_kwh(device_kwh)} at the devices times a data-centre PUE of "
        + "/".join(f"{p:g}" for p in pues)
        + ")"
    )
    time = format_duration(totals.duration_s)
    hardware = hardware_used(report.runs, for_text=True)
    on = f" on {hardware}" if hardware else ""
    opening = (
        f"Training used {format_kwh(totals.energy_kwh)} of electricity{pue} over {time} of "
        f"wall-clock time{on}."
        if totals.runs == 1
        else f"The {totals.runs} training runs reported here used {format_kwh(totals.energy_kwh)} "
        f"of electricity{pue} over {time} of wall-clock time in total{on}."
    )
    sentences = [opening, _method_sentence(measurements)]
    sentences += _emissions_sentences(measurements, totals.co2e_kg, totals.energy_kwh, car)
    sentences += _caveats(report)
    return " ".join(unique(sentences))


def hardware_used(runs: Sequence[RunReport], *, for_text: bool = False) -> str:
    """``"8 x NVIDIA H100 80GB HBM3, 1 CPU package"`` or ``"CPU (2 cores, estimated)"``.

    The most of each device any run measured (a sweep's runs share their hardware). GPUs by
    name; CPU packages read through RAPL (with the processor's name when the log records it);
    a CPU whose energy is estimated, with its core count. Never empty: ``"not recorded"``.

    Args:
        runs: The runs of a report.
        for_text: Join the last two with "and" (for a sentence) rather than a comma.
    """
    most: dict[str, int] = {}
    for run in runs:
        for label, count in _devices_of(run).items():
            most[label] = max(most.get(label, 0), count)
    parts = [_device_phrase(label, count) for label, count in most.items()]
    if not parts:
        return "" if for_text else "not recorded"
    if for_text and len(parts) > 1:
        return ", ".join(parts[:-1]) + " and " + parts[-1]
    return ", ".join(parts)


_CPU = "CPU package"
_WORLD = "WORLD"
"""The zone of the world-average factor: used when the location is unknown, so it names no place."""


def _devices_of(run: RunReport) -> dict[str, int]:
    """Labels of the devices a run measured, with their counts (0: a label that is not counted)."""
    counts: dict[str, int] = {}
    if run.measurement is None:
        return counts
    for figure in run.measurement.channels:
        channel = figure.channel
        if channel.kind == "gpu":
            counts[channel.device] = counts.get(channel.device, 0) + 1
        elif channel.kind == "cpu" and channel.method == "measured":
            label = _CPU + (f"|{run.cpu_model}" if run.cpu_model else "")
            counts[label] = counts.get(label, 0) + 1
        elif channel.kind == "cpu":
            cores = f"{run.cpu_cores} cores, " if run.cpu_cores else ""
            counts[f"{run.cpu_model or 'CPU'} ({cores}estimated)"] = 0
    return counts


def _device_phrase(label: str, count: int) -> str:
    """``"2 x NVIDIA H100"``, ``"1 CPU package (AMD EPYC 7R13)"``, or an uncounted label."""
    if not label.startswith(_CPU):
        return label if count == 0 else f"{count} x {label}"
    model = label.partition("|")[2]
    packages = f"{count} CPU package{'s' if count > 1 else ''}"
    return f"{packages} ({model})" if model else packages


def _method_sentence(measurements: Sequence[Measurement]) -> str:
    """How the energy was obtained, in one sentence: the counters read, and what is estimated."""
    sources = _hardware_phrase(measurements)
    estimates = unique(
        _plain_method(figure.channel.how)
        for measurement in measurements
        for figure in measurement.channels
        if figure.channel.method == "estimated"
    )
    software = f"carbon-callbacks {__version__}"
    if sources is None:
        how = "; ".join(estimates) or "no method recorded"
        return (
            f"No hardware energy counter was available, so {software} estimated the energy "
            f"from {how}."
        )
    sentence = f"Energy was measured by {software} from {sources} counters"
    if estimates:
        sentence += f"; the rest is estimated from {'; '.join(estimates)}"
    return sentence + "."


def _plain_method(how: str) -> str:
    """A channel's method without setup advice: ``"CPU time of ... x 12 W per busy core"``.

    Advice is a parenthesis that starts ``set``, ``pass`` or ``write``, or the part of one after
    ``; set ...``: ``(default: "AMD EPYC" is not in the CPU table; set cpu_watts= ...)`` keeps
    its first part.
    """
    how = re.sub(r"\s*\((?:set|pass|write) [^)]*\)", "", how)
    how = re.sub(r";\s*(?:set|pass|write) [^)]*(?=\))", "", how)
    return how.removeprefix("estimate: ").strip()


def _hardware_phrase(measurements: Sequence[Measurement]) -> str | None:
    """``"NVML (NVIDIA H100 80GB HBM3) and RAPL (CPU, DRAM)"``; None when nothing was measured."""
    sources: dict[str, list[str]] = {}
    for measurement in measurements:
        for figure in measurement.channels:
            channel = figure.channel
            if channel.method != "measured":
                continue
            source = channel.how.split()[0] if channel.how else "a hardware counter"
            what = channel.device if channel.kind == "gpu" else channel.kind.upper()
            listed = sources.setdefault(source, [])
            if what not in listed:
                listed.append(what)
    if not sources:
        return None
    return " and ".join(f"{source} ({', '.join(what)})" for source, what in sources.items())


def _emissions_sentences(
    measurements: Sequence[Measurement],
    co2e_kg: float | None,
    energy_kwh: float,
    car: CarBaseline,
) -> list[str]:
    if co2e_kg is None:
        return ["No carbon intensity was set, so no CO2e figure is given."]
    values = _unique_intensities(measurements)
    if len(values) == 1:
        value = values[0]
        factor = f"at {value.g_per_kwh:.4g} gCO2e/kWh ({_paper_intensity(value)})"
    else:
        factor = "at the carbon intensity of each run's grid (" + "; ".join(
            f"{v.g_per_kwh:.4g} gCO2e/kWh, {_paper_intensity(v)}" for v in values
        ) + ")"  # fmt: skip
    cleanest = large_grid_extremes()[0]
    sentences = [
        f"This corresponds to {format_mass(co2e_kg)} CO2e {factor}, about the CO2 of driving "
        f"{format_distance(car_km(co2e_kg, car.g_per_km))} in a car at {car.describe()}."
    ]
    if any(value.zone != cleanest.code for value in values):
        sentences.append(
            f"On the cleanest large grid, {cleanest.name} ({cleanest.g_per_kwh:.4g} gCO2e/kWh, "
            f"{cleanest.year}, lifecycle basis), the same energy would have emitted "
            f"{format_mass(energy_kwh * cleanest.g_per_kwh / 1000.0)}."
        )
    attributions = _attributions([*values, cleanest.value()])
    if attributions:
        sentences.append(" ".join(attributions))
    return sentences


def _paper_intensity(value: IntensityValue) -> str:
    """Where a factor comes from, for a paper: source and year, place, basis; no advice."""
    parts = [value.source]
    if value.zone == _WORLD or (value.fallback and value.zone is None):
        parts.append("world average: the location was not recorded")
    else:
        place = place_of(value)
        if place is not None:
            parts.append(place)
        elif value.zone:
            parts.append(f"zone {value.zone}")
    if value.basis:
        parts.append(f"{value.basis} basis")
    if value.estimated:
        parts.append("includes forecast or estimated values")
    return "; ".join(parts)


def _caveats(report: Report) -> list[str]:
    sentences = []
    unfinished = [run for run in report.runs if run.status != "completed"]
    if unfinished:
        names = ", ".join(f"{run.name} ({run.status})" for run in unfinished)
        sentences.append(
            f"Not every run completed: {names}; their figures end where their logs end."
        )
    missing = [
        run for run in report.runs if run.world_size and len(run.ranks_found) < run.world_size
    ]
    if missing:
        sentences.append(
            "For " + ", ".join(run.name for run in missing) + " not every rank's log was found, "
            "so the figures are a lower bound."
        )
    if report.totals.runs_without_energy:
        count = report.totals.runs_without_energy
        sentences.append(f"{count} run(s) logged no energy figure and are not counted.")
    return sentences


def _measurements(report: Report) -> list[Measurement]:
    return [run.measurement for run in report.runs if run.measurement is not None]


def _unique_intensities(measurements: Sequence[Measurement]) -> list[IntensityValue]:
    return unique(m.intensity for m in measurements if m.intensity is not None)


def _attributions(values: Sequence[IntensityValue]) -> list[str]:
    notes = []
    if any(static.OWID_SOURCE in v.source for v in values):
        notes.append(static.OWID_ATTRIBUTION)
    if any(static.GOOGLE_SOURCE in v.source for v in values):
        notes.append(static.GOOGLE_ATTRIBUTION)
    return notes


def _location(measurements: Sequence[Measurement]) -> str | None:
    """Where the runs drew power, from their intensities' zones; None when none is known."""
    places: list[str] = []
    for value in _unique_intensities(measurements):
        place = place_of(value)
        if place is not None and place not in places:
            places.append(place)
    return "; ".join(places) or None


def place_of(value: IntensityValue) -> str | None:
    """The place a factor stands for; None when unknown (no zone, or the world average)."""
    if value.zone is None or value.zone == _WORLD:
        return None
    guessed = " (guessed from the system time zone)" if value.guessed_location else ""
    if ":" in value.zone:
        cloud, region = value.zone.split(":", 1)
        try:
            entry = static.cloud_region(cloud, region)
        except static.UnknownLocationError:
            return f"{cloud} {region}{guessed}"
        return f"{entry.location} ({cloud} {region}){guessed}"
    try:
        return static.country(value.zone.split("-")[0]).name + guessed
    except static.UnknownLocationError:
        return value.zone + guessed


def _plain_number(value: float) -> str:
    """Four significant figures without an exponent (``0.03377``, ``33.77``), whole from 100 on."""
    if value >= 100 or value == 0:
        return str(round(value))
    decimals = 3 - math.floor(math.log10(abs(value)))
    return f"{value:.{decimals}f}"
