from __future__ import annotations

import json
from pathlib import Path

import pytest

from carbon_callbacks import __version__
from carbon_callbacks.intensity import static
from carbon_callbacks.intensity.base import IntensityValue
from carbon_callbacks.meters.base import Channel
from carbon_callbacks.reporting.equivalents import EEA_NEW_CARS_2018, large_grid_extremes
from carbon_callbacks.reporting.export import ExportError, model_card_block, paper_paragraph
from carbon_callbacks.reporting.report import Report, build_report, totals
from carbon_callbacks.reporting.runs import run_report
from carbon_callbacks.runlog.reader import RunLog
from carbon_callbacks.tracking.measurement import ChannelEnergy, Measurement

RUNS = Path(__file__).parents[1] / "data" / "runs"
EXPORTS = Path(__file__).parents[1] / "data" / "exports"
GPU = Channel("gpu:0", "gpu", "NVIDIA A100-SXM4-40GB", "measured", "NVML total energy counter")
ESTIMATE = Channel("cpu:estimate", "cpu", "CPU (process tree)", "estimated", "12 W per busy core")


def parse_block(text: str) -> dict[str, object]:
    """A tiny parser for the block: comments, one top-level key, then two-space 'key: value'."""
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert lines[0] == "co2_eq_emissions:"
    fields: dict[str, object] = {}
    for line in lines[1:]:
        assert line.startswith("  ") and not line.startswith("   "), line
        key, value = line[2:].split(": ", 1)
        fields[key] = json.loads(value)  # a number, or a double-quoted (JSON = YAML) string
    return fields


def report_of(*measurements: Measurement) -> Report:
    runs = []
    for index, measurement in enumerate(measurements):
        summary = {"type": "summary", "status": "completed"} | measurement.to_dict()
        runs.append(run_report([RunLog(Path(f"run{index}.jsonl"), summary=summary)]))
    return Report(Path("."), tuple(runs), totals(runs))


def test_model_card_block_for_a_run() -> None:
    report = build_report(RUNS / "single.jsonl")
    text = model_card_block(report)
    fields = parse_block(text)
    assert report.totals.co2e_kg is not None
    assert fields["emissions"] == pytest.approx(report.totals.co2e_kg * 1000, rel=1e-3)
    assert fields == {
        "emissions": fields["emissions"],
        "source": f"carbon-callbacks {__version__}",
        "training_type": "pre-training",
        "geographical_location": "Germany",
        "hardware_used": "1 x NVIDIA H100 80GB HBM3, 1 CPU package",
    }


def test_model_card_of_an_estimated_run_names_the_cpu_and_leaves_the_unknown_place_out() -> None:
    """Golden text: hardware_used always there; no "World" for a location nobody recorded."""
    text = model_card_block(build_report(EXPORTS / "cpu_estimate_world.jsonl"), "fine-tuning")
    assert text == (
        "co2_eq_emissions:\n"
        "  emissions: 0.4257\n"
        f'  source: "carbon-callbacks {__version__}"\n'
        '  training_type: "fine-tuning"\n'
        '  hardware_used: "AMD EPYC 7B13 (2 cores, estimated)"'
    )


def test_model_card_loads_with_huggingface_hub() -> None:
    hub = pytest.importorskip("huggingface_hub")
    for source in (RUNS / "single.jsonl", EXPORTS / "cpu_estimate_world.jsonl"):
        report = build_report(source)
        card = hub.ModelCard(f"---\n{model_card_block(report)}\n---\n\n# A model\n")
        data = card.data.to_dict()["co2_eq_emissions"]
        assert report.totals.co2e_kg is not None
        assert data["emissions"] == pytest.approx(report.totals.co2e_kg * 1000, rel=1e-3)
        assert isinstance(data["emissions"], float)
        assert data["hardware_used"]


def test_model_card_block_is_yaml_the_hub_reads() -> None:
    yaml = pytest.importorskip("yaml")
    text = model_card_block(build_report(RUNS / "ddp"), "fine-tuning")
    data = yaml.safe_load(text)["co2_eq_emissions"]
    assert data["training_type"] == "fine-tuning"
    assert data["hardware_used"] == "2 x NVIDIA H100 80GB HBM3, 1 CPU package"
    assert isinstance(data["emissions"], float)


def test_model_card_emissions_are_grams_without_an_exponent() -> None:
    gpt3 = IntensityValue(447.0, "user-supplied constant")
    big = Measurement("run", 0.0, 1.0, (ChannelEnergy(GPU, 190_000 * 3.6e6),), 1.0, None, gpt3)
    assert "  emissions: 84930000\n" in model_card_block(report_of(big)) + "\n"
    small = Measurement("run", 0.0, 1.0, (ChannelEnergy(GPU, 3.6),), 1.0, None, gpt3)
    assert parse_block(model_card_block(report_of(small)))["emissions"] == 0.000447
    text = model_card_block(report_of(small))
    assert "e-" not in text.splitlines()[1]


def test_model_card_over_a_sweep_sums_the_runs_and_counts_the_hardware_once() -> None:
    report = build_report(RUNS / "sweep")
    fields = parse_block(model_card_block(report))
    assert report.totals.co2e_kg is not None
    assert fields["emissions"] == pytest.approx(report.totals.co2e_kg * 1000, rel=1e-3)
    assert fields["hardware_used"] == "1 x NVIDIA H100 80GB HBM3, 1 CPU package"
    assert fields["geographical_location"] == "Sweden"


def test_model_card_says_when_some_runs_are_not_counted() -> None:
    with_co2e = Measurement(
        "run", 0.0, 1.0, (ChannelEnergy(GPU, 3600.0),), 1.0, None, static.country("FR").value()
    )
    without = Measurement("run", 0.0, 1.0, (ChannelEnergy(GPU, 3600.0),), 1.0)
    text = model_card_block(report_of(with_co2e, without))
    assert text.splitlines()[0] == "# 1 of 2 runs have no CO2e figure and are not counted"
    assert parse_block(text)["geographical_location"] == "France"
    with pytest.raises(ExportError, match="no run has a CO2e figure"):
        model_card_block(report_of(without))
    with pytest.raises(ExportError, match="'pre-training' or 'fine-tuning'"):
        model_card_block(report_of(with_co2e), "training")  # type: ignore[arg-type]


def test_location_of_a_guessed_country_and_an_unset_one() -> None:
    guessed = static.country("SE").value(guessed_location=True)
    run = Measurement("run", 0.0, 1.0, (ChannelEnergy(GPU, 3600.0),), 1.0, None, guessed)
    location = parse_block(model_card_block(report_of(run)))["geographical_location"]
    assert location == "Sweden (guessed from the system time zone)"
    constant = IntensityValue(300.0, "user-supplied constant")
    run = Measurement("run", 0.0, 1.0, (ChannelEnergy(GPU, 3600.0),), 1.0, None, constant)
    assert "geographical_location" not in parse_block(model_card_block(report_of(run)))


OWID = static.OWID_ATTRIBUTION
EEA = "106.4 gCO2/km, average new car registered in the EU in 2023 (WLTP; EEA)"


def test_paper_paragraph_for_a_run() -> None:
    """Golden text from the committed run log: hardware named, readable units, the version."""
    text = paper_paragraph(build_report(RUNS / "single.jsonl"))
    assert text == (
        "Training used 98.1 mWh of electricity (81.8 mWh at the devices times a data-centre PUE "
        "of 1.2) over 0.8 s of wall-clock time on 1 x NVIDIA H100 80GB HBM3 and 1 CPU package. "
        f"Energy was measured by carbon-callbacks {__version__} from NVML (NVIDIA H100 80GB HBM3) "
        "and RAPL (CPU, DRAM) counters. This corresponds to 33.8 mg CO2e at 344.1 gCO2e/kWh (Our "
        "World in Data (Ember, Energy Institute), 2024; Germany; lifecycle basis), about the CO2 "
        f"of driving 31.7 cm in a car at {EEA}. On the cleanest large grid, France (44.18 "
        "gCO2e/kWh, 2024, lifecycle basis), the same energy would have emitted 4.34 mg. "
        f"{OWID}"
    )


def test_paper_paragraph_of_an_estimated_run_of_unknown_location_gives_no_advice() -> None:
    """Golden text: the CPU named from the header, the estimate said once, no "set ...=" advice."""
    text = paper_paragraph(build_report(EXPORTS / "cpu_estimate_world.jsonl"))
    assert text == (
        "Training used 0.9 Wh of electricity over 1.6 min of wall-clock time on AMD EPYC 7B13 "
        "(2 cores, estimated). No hardware energy counter was available, so carbon-callbacks "
        f"{__version__} estimated the energy from CPU time of this process tree (psutil) x 12 W "
        "per busy core. This corresponds to 0.426 g CO2e at 473 gCO2e/kWh (Our World in Data "
        "(Ember, Energy Institute), 2024; world average: the location was not recorded; "
        f"lifecycle basis), about the CO2 of driving 4 m in a car at {EEA}. On the cleanest large "
        "grid, France (44.18 gCO2e/kWh, 2024, lifecycle basis), the same energy would have "
        f"emitted 39.8 mg. {OWID}"
    )
    assert "set " not in text and "=" not in text


def test_paper_paragraph_for_a_sweep_names_what_did_not_complete() -> None:
    text = paper_paragraph(build_report(RUNS / "sweep"), car=EEA_NEW_CARS_2018)
    assert text.startswith("The 3 training runs reported here used ")
    assert "of wall-clock time in total on 1 x NVIDIA H100 80GB HBM3 and 1 CPU package." in text
    assert "Not every run completed: sweep lr=1e-2 (failed)" in text
    assert "2018 (NEDC; EEA)" in text


def test_paper_paragraph_says_which_figures_are_estimated() -> None:
    run = Measurement("run", 0.0, 60.0, (ChannelEnergy(ESTIMATE, 3600.0),), 1.0)
    text = paper_paragraph(report_of(run))
    assert (
        f"No hardware energy counter was available, so carbon-callbacks {__version__} estimated "
        "the energy from 12 W per busy core." in text
    )
    assert "No carbon intensity was set, so no CO2e figure is given." in text
    assert "counters by" not in text


@pytest.mark.parametrize(
    ("basis", "kept"),
    [
        (
            'default: "AMD EPYC" is not in the CPU table; '
            "set cpu_watts= to your CPU's TDP / cores",
            'x 12 W per busy core (default: "AMD EPYC" is not in the CPU table).',
        ),
        (
            "AMD EPYC 7763: 280 W TDP / 64 cores, Green Algorithms table",
            "x 12 W per busy core (AMD EPYC 7763: 280 W TDP / 64 cores, Green Algorithms table).",
        ),
        ("set by cpu_watts", "x 12 W per busy core."),
    ],
)
def test_paper_paragraph_keeps_where_the_cpu_figure_is_from_and_drops_the_advice(
    basis: str, kept: str
) -> None:
    how = f"estimate: CPU time of this process tree (psutil) x 12 W per busy core ({basis})"
    estimate = Channel("cpu:estimate", "cpu", "CPU (process tree)", "estimated", how)
    run = Measurement("run", 0.0, 60.0, (ChannelEnergy(estimate, 3600.0),), 1.0)
    text = paper_paragraph(report_of(run))
    assert kept in text
    assert "set " not in text and "=" not in text


def test_paper_paragraph_does_not_compare_a_run_with_its_own_grid() -> None:
    cleanest = large_grid_extremes()[0]
    run = Measurement("run", 0.0, 60.0, (ChannelEnergy(GPU, 3600.0),), 1.0, None, cleanest.value())
    text = paper_paragraph(report_of(run))
    assert "cleanest large grid" not in text
    assert "Energy was measured by carbon-callbacks" in text
    assert "from NVML (NVIDIA A100-SXM4-40GB) counters." in text


def test_paper_paragraph_needs_an_energy_figure() -> None:
    lost = Measurement("run", 0.0, 1.0, (ChannelEnergy(GPU, None, "lost"),), 1.0)
    with pytest.raises(ExportError, match="no run has an energy figure"):
        paper_paragraph(report_of(lost))
