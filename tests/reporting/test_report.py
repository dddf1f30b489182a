from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from carbon_callbacks.intensity.base import IntensityValue
from carbon_callbacks.meters.base import Channel
from carbon_callbacks.reporting.equivalents import EEA_NEW_CARS_2018, EEA_NEW_CARS_2023
from carbon_callbacks.reporting.estimate import Estimate, make_estimate
from carbon_callbacks.reporting.grouping import group_logs
from carbon_callbacks.reporting.logs import ReportError
from carbon_callbacks.reporting.report import Report, build_report, totals
from carbon_callbacks.reporting.report_json import report_dict
from carbon_callbacks.reporting.runs import run_report
from carbon_callbacks.reporting.text import format_distance, format_report, format_run_summary
from carbon_callbacks.reporting.trainings import link_trainings
from carbon_callbacks.runlog.reader import RunLog, read_run_log
from carbon_callbacks.tracking.measurement import ChannelEnergy, Measurement

RUNS = Path(__file__).parents[1] / "data" / "runs"
GPU = Channel("gpu:0", "gpu", "NVIDIA H100 80GB HBM3", "measured", "NVML total energy counter")
CPU = Channel("cpu:package-0", "cpu", "package-0", "measured", "RAPL", scope="host")
SE = IntensityValue(
    35.82, "Our World in Data (Ember, Energy Institute), 2024", "SE", "lifecycle", 2024
)


def records(path: Path) -> list[dict[str, Any]]:
    """The complete JSON records of a log, read independently of the code under test."""
    out = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            out.append(json.loads(line))
    return out


def of_type(path: Path, kind: str) -> list[dict[str, Any]]:
    return [r for r in records(path) if r["type"] == kind]


def window(name: str, start: float, duration: float, joules: float, **extra: Any) -> dict[str, Any]:
    measurement = Measurement(
        name, start, duration, (ChannelEnergy(GPU, joules),), pue=1.0, steps=10, intensity=SE
    )
    return {"type": "window"} | measurement.to_dict() | extra


def header(run_name: str | None, started: float, **context: Any) -> dict[str, Any]:
    distributed = context.get("distributed", {})
    own_id = f"{run_name}-{started}-{distributed.get('global_rank')}"
    return {
        "type": "header",
        "schema": 1,
        "run_id": distributed.get("run_id", own_id),
        "run_name": run_name,
        "started_unix": started,
        "channels": [{"id": "cpu:package-0", "host_level": True}],
        "context": context,
    }


def rank_log(
    name: str | None, rank: int, start: float, end: float, size: int = 2, run_id: str | None = None
) -> RunLog:
    """A rank's log; ``run_id`` is the id the run's ranks share (logs before it had none)."""
    distributed: dict[str, Any] = {
        "global_rank": rank, "local_rank": rank, "world_size": size, "num_nodes": 1
    }  # fmt: skip
    if run_id is not None:
        distributed["run_id"] = run_id
    summary = window("run", start, end - start, 3600.0 * (rank + 1))
    summary |= {"type": "summary", "status": "completed", "context": {"distributed": distributed}}
    return RunLog(
        Path(f"{name}-{start}-{rank}.jsonl"),
        header=header(name, start, distributed=distributed),
        summary=summary,
    )


# -- the committed logs -----------------------------------------------------------------------


def test_a_completed_run_reports_its_summary_figures() -> None:
    path = RUNS / "single.jsonl"
    report = build_report(path)
    assert len(report.runs) == 1 and report.problems == ()
    run = report.runs[0]
    summary = of_type(path, "summary")[0]
    assert (run.name, run.status, run.basis, run.basis_note) == (
        "single",
        "completed",
        "summary",
        None,
    )
    assert run.run_ids == (summary["run_id"],) and run.paths == (path,)
    measurement = run.measurement
    assert measurement is not None
    joules = sum(c["energy_j"] for c in summary["channels"])
    assert measurement.energy_kwh == pytest.approx(joules * 1.2 / 3.6e6)
    assert measurement.co2e_kg == pytest.approx(summary["co2e_kg"])
    assert measurement.intensity is not None and measurement.intensity.zone == "DE"
    host = {c.channel.id for c in measurement.channels if c.channel.host_level}
    assert host == {"cpu:package-0", "dram:package-0"}  # from the header: the record omits it
    assert run.problems == () and run.predictions == ()
    assert report.totals.energy_kwh == pytest.approx(measurement.energy_kwh)
    assert not report.totals.partial


def test_a_truncated_log_is_reported_from_its_windows_and_says_so() -> None:
    path = RUNS / "truncated.jsonl"
    assert not path.read_bytes().endswith(b"\n")  # cut mid-record
    run = build_report(path).runs[0]
    assert run.status == "unfinished" and run.basis == "windows"
    assert run.basis_note is not None and "no summary record" in run.basis_note
    assert "'epoch 0', 'epoch 1'" in run.basis_note
    assert any("truncated last record" in problem for problem in run.problems)
    windows = of_type(path, "window")
    assert run.measurement is not None
    assert run.measurement.energy_kwh == pytest.approx(sum(w["energy_kwh"] for w in windows))
    assert run.measurement.co2e_kg == pytest.approx(sum(w["co2e_kg"] for w in windows))
    assert run.measurement.duration_s == pytest.approx(sum(w["duration_s"] for w in windows))
    assert build_report(path).totals.partial


def test_a_folder_is_a_sweep_with_totals() -> None:
    report = build_report(RUNS / "sweep")
    names = [run.name for run in report.runs]
    assert names == ["sweep lr=1e-3", "sweep lr=3e-3", "sweep lr=1e-2"]  # in start order
    assert [run.status for run in report.runs] == ["completed", "completed", "failed"]
    summaries = [of_type(path, "summary")[0] for path in sorted((RUNS / "sweep").glob("*.jsonl"))]
    totals = report.totals
    assert totals.runs == 3 and totals.runs_without_energy == totals.runs_without_co2e == 0
    assert totals.energy_kwh == pytest.approx(sum(s["energy_kwh"] for s in summaries))
    assert totals.co2e_kg == pytest.approx(sum(s["co2e_kg"] for s in summaries))
    assert totals.duration_s == pytest.approx(sum(s["duration_s"] for s in summaries))


def test_a_distributed_run_is_combined_once_without_double_counting() -> None:
    rank0, rank1 = (of_type(RUNS / "ddp" / f"rank{r}.jsonl", "summary")[0] for r in (0, 1))
    assert rank0["run_id"] != rank1["run_id"]
    report = build_report(RUNS / "ddp")
    assert len(report.runs) == 1
    run = report.runs[0]
    assert (run.name, run.world_size, run.ranks_found) == ("ddp", 2, (0, 1))
    assert run.run_ids == (rank0["run_id"], rank1["run_id"])
    measurement = run.measurement
    assert measurement is not None
    assert measurement.energy_kwh == pytest.approx(rank0["energy_kwh"] + rank1["energy_kwh"])
    assert measurement.co2e_kg == pytest.approx(rank0["co2e_kg"] + rank1["co2e_kg"])
    ids = [c.channel.id for c in measurement.channels]
    assert ids == ["rank 0/gpu:0", "rank 0/cpu:package-0", "rank 0/dram:package-0", "rank 1/gpu:1"]
    assert sum(c.channel.kind == "cpu" for c in measurement.channels) == 1  # the host, once
    assert run.problems == ()


def test_the_whole_tree_holds_each_run_once() -> None:
    report = build_report(RUNS)
    assert len(report.runs) == 7
    assert [run.name for run in report.runs].count("ddp") == 1
    assert [run.world_size for run in report.runs if run.world_size] == [2]
    energies = [run.measurement.energy_kwh for run in report.runs if run.measurement]
    assert report.totals.energy_kwh == pytest.approx(sum(e for e in energies if e is not None))


def test_a_missing_rank_is_reported_and_marks_the_totals_partial(tmp_path: Path) -> None:
    shutil.copy(RUNS / "ddp" / "rank0.jsonl", tmp_path)
    report = build_report(tmp_path)
    run = report.runs[0]
    assert run.world_size == 2 and run.ranks_found == (0,)
    assert any("only 1 of 2 ranks' logs found (missing global rank 1)" in p for p in run.problems)
    assert report.totals.partial


def test_predictions_are_set_beside_the_outcome() -> None:
    path = RUNS / "predicted.jsonl"
    run = build_report(path).runs[0]
    first, latest = run.predictions
    raw = of_type(path, "prediction")
    assert (first.which, latest.which) == ("first", "latest")
    assert (first.steps_done, latest.steps_done) == (raw[0]["steps_done"], raw[1]["steps_done"])
    assert first.energy_kwh == tuple(raw[0]["energy_kwh"])
    assert run.measurement is not None
    actual = run.measurement.energy_kwh
    assert first.actual_energy_kwh == actual and first.actual_complete
    assert first.energy_error == pytest.approx((raw[0]["energy_kwh"][1] - actual) / actual)
    assert first.energy_error is not None and first.energy_error < 0  # epoch 1 drew more
    assert abs(latest.energy_error or 1) < abs(first.energy_error)
    assert first.energy_within == (raw[0]["energy_kwh"][0] <= actual <= raw[0]["energy_kwh"][2])
    text = "\n".join(format_report(build_report(path)))
    assert "forecast, first: at step 50 of 100" in text and "forecast, latest: at step 75" in text


# -- the rules, on records built here --------------------------------------------------------


def test_ranks_are_grouped_by_name_size_and_time() -> None:
    logs = [
        rank_log("a", 0, 0.0, 100.0),
        rank_log("a", 1, 5.0, 100.0),
        rank_log("a", 0, 1000.0, 1100.0),  # the same name later: another run
        rank_log("a", 1, 1001.0, 1100.0),
        rank_log("b", 1, 2.0, 90.0),  # another name at the same time
        rank_log("a", 1, 3.0, 90.0, size=4),  # another size
    ]
    groups = group_logs(logs)
    assert [[log.path.name for log in group] for group in groups] == [
        ["a-0.0-0.jsonl", "a-5.0-1.jsonl"],
        ["b-2.0-1.jsonl"],
        ["a-3.0-1.jsonl"],
        ["a-1000.0-0.jsonl", "a-1001.0-1.jsonl"],
    ]
    combined = run_report(groups[0])
    assert combined.measurement is not None
    assert combined.measurement.energy_j == pytest.approx(3600.0 + 7200.0)
    assert combined.measurement.duration_s == pytest.approx(100.0)


def test_ranks_sharing_a_run_id_are_one_run_whatever_their_start() -> None:
    """Two concurrent runs of one name: each rank joins its own run's id, not the closest start."""
    logs = [
        rank_log("a", 0, 0.0, 100.0, run_id="R1"),
        rank_log("a", 0, 10.0, 110.0, run_id="R2"),
        rank_log("a", 1, 11.0, 110.0, run_id="R1"),  # starts closest to R2's rank 0
        rank_log("a", 1, 500.0, 600.0, run_id="R2"),  # started long after (a slow node)
    ]
    groups = group_logs(logs)
    assert [[log.path.name for log in group] for group in groups] == [
        ["a-0.0-0.jsonl", "a-11.0-1.jsonl"],
        ["a-10.0-0.jsonl", "a-500.0-1.jsonl"],
    ]
    run = run_report(groups[0])
    assert run.run_ids == ("R1",) and run.ranks_found == (0, 1) and run.world_size == 2


def test_concurrent_runs_with_one_name_take_the_rank_closest_in_start() -> None:
    """Logs written before ranks shared an id are matched by name, size and time."""
    logs = [
        rank_log(None, 0, 0.0, 100.0),
        rank_log(None, 0, 50.0, 150.0),
        rank_log(None, 1, 52.0, 150.0),
        rank_log(None, 1, 1.0, 100.0),
    ]
    groups = group_logs(logs)
    assert [[log.path.name for log in group] for group in groups] == [
        ["None-0.0-0.jsonl", "None-1.0-1.jsonl"],
        ["None-50.0-0.jsonl", "None-52.0-1.jsonl"],
    ]


def test_ranks_with_different_intensities_combine_to_the_summed_co2e() -> None:
    logs = [rank_log("x", 0, 0.0, 10.0), rank_log("x", 1, 0.0, 10.0)]
    assert logs[1].summary is not None
    logs[1].summary["intensity"] = IntensityValue(500.0, "other", "PL", "direct").to_dict()
    measurement = run_report(logs).measurement
    assert measurement is not None and measurement.intensity is not None
    expected = (3600.0 * 35.82 + 7200.0 * 500.0) / 3.6e6 / 1000
    assert measurement.co2e_kg == pytest.approx(expected)
    assert measurement.intensity.basis == "mixed" and measurement.intensity.zone is None


def test_without_summary_nested_windows_are_not_counted_twice() -> None:
    log = RunLog(
        Path("nested.jsonl"),
        header=header("nested", 0.0),
        windows=[
            window("val", 8.0, 2.0, 100.0),  # inside epoch 0, logged first
            window("epoch 0", 0.0, 10.0, 1000.0),
            window("epoch 1", 10.0, 10.0, 1200.0),
        ],
    )
    run = run_report([log])
    assert run.basis == "windows" and run.measurement is not None
    assert run.measurement.energy_j == pytest.approx(2200.0)
    assert run.measurement.steps == 20
    assert run.basis_note is not None and "('epoch 0', 'epoch 1')" in run.basis_note


def test_windows_sharing_a_name_are_counted_not_listed() -> None:
    epochs = [window("epoch", 10.0 * i, 10.0, 100.0) for i in range(12)]
    run = run_report([RunLog(Path("epochs.jsonl"), header=header("e", 0.0), windows=epochs)])
    assert run.measurement is not None and run.measurement.energy_j == pytest.approx(1200.0)
    assert run.basis_note is not None and "the 12 windows logged ('epoch' x12)" in run.basis_note


def test_without_summary_overlapping_windows_fall_back_to_the_last_one() -> None:
    log = RunLog(
        Path("overlap.jsonl"),
        header=header("overlap", 0.0),
        windows=[window("a", 0.0, 10.0, 1000.0), window("b", 5.0, 10.0, 900.0)],
    )
    run = run_report([log])
    assert run.basis == "last window" and run.measurement is not None
    assert run.measurement.energy_j == pytest.approx(900.0)
    assert run.basis_note is not None and "'b'" in run.basis_note


def test_malformed_records_are_skipped_and_said() -> None:
    broken = window("epoch 1", 10.0, 10.0, 5.0)
    del broken["channels"]
    bad_prediction = {"type": "prediction", "t_unix": 5.0, "energy_kwh": [1, 2]}
    log = RunLog(
        Path("broken.jsonl"),
        windows=[window("epoch 0", 0.0, 10.0, 1000.0), broken],
        predictions=[bad_prediction, {"type": "prediction"}],
    )
    run = run_report([log])
    assert run.basis == "last window" and run.measurement is not None
    assert run.measurement.energy_j == pytest.approx(1000.0)
    problems = "\n".join(run.problems)
    assert "no header record" in problems
    assert "window record 2 is malformed" in problems
    assert "prediction record 2 has no time" in problems
    assert "only prediction record is malformed" in problems


def test_a_log_with_nothing_logged_has_no_figures() -> None:
    run = run_report([RunLog(Path("empty.jsonl"), header=header("empty", 0.0))])
    assert run.measurement is None and run.basis == "none" and run.status == "unfinished"
    report_totals = build_report(RUNS / "single.jsonl").totals
    assert report_totals.runs_without_energy == 0


def test_predictions_made_after_the_end_are_not_the_latest() -> None:
    summary = window("run", 0.0, 100.0, 3600.0) | {"type": "summary", "status": "completed"}
    prediction = {
        "type": "prediction",
        "steps_done": 10,
        "total_steps": 100,
        "energy_kwh": [0.0005, 0.001, 0.0015],
        "co2e_kg": None,
        "duration_s": [90, 100, 110],
        "interval": 0.8,
    }
    log = RunLog(
        Path("late.jsonl"),
        summary=summary,
        predictions=[prediction | {"t_unix": 10.0}, prediction | {"t_unix": 500.0}],
    )
    (only,) = run_report([log]).predictions
    assert only.which == "only" and only.t_unix == 10.0
    assert only.energy_within is True and only.energy_error == pytest.approx(0.0)
    assert only.to_dict()["duration_within"] is True and only.to_dict()["co2e_within"] is None


def test_unreadable_paths_fail_with_one_message(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="no such file or folder"):
        build_report(tmp_path / "missing")
    with pytest.raises(ReportError, match=r"no run logs \(\*.jsonl\)"):
        build_report(tmp_path)


def test_other_jsonl_files_in_a_folder_are_skipped_and_said(tmp_path: Path) -> None:
    shutil.copy(RUNS / "single.jsonl", tmp_path)
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "loss": 0.5}\n')
    report = build_report(tmp_path)
    assert [run.name for run in report.runs] == ["single"]
    assert report.problems == (
        f"{tmp_path / 'metrics.jsonl'}: not a run log (no carbon-callbacks record); skipped",
    )
    assert "files skipped:" in "\n".join(format_report(report))
    with pytest.raises(ReportError, match="not a run log"):
        build_report(tmp_path / "metrics.jsonl")


def test_report_json_is_strict_json_with_equivalents_and_regions() -> None:
    report = build_report(RUNS)
    result = report_dict(report, compare=["SE"], car=EEA_NEW_CARS_2018)
    text = json.dumps(result, allow_nan=False)
    data = json.loads(text)
    run = next(r for r in data["runs"] if r["name"] == "single")
    assert run["car_km"] == pytest.approx(run["figures"]["co2e_kg"] * 1000 / 120.4)
    assert [row["kind"] for row in run["regions"]][-1] == "named"
    assert run["regions"][-1]["zone"] == "SE"
    assert run["energy_by_method_kwh"]["measured"] == pytest.approx(
        run["figures"]["energy_j"] / 3.6e6
    )
    assert data["totals"]["car_km"] == pytest.approx(data["totals"]["co2e_kg"] * 1000 / 120.4)
    assert data["car"]["year"] == 2018
    predicted = next(r for r in data["runs"] if r["name"] == "predicted")
    assert [p["which"] for p in predicted["predictions"]] == ["first", "latest"]
    assert predicted["regions_note"] is not None  # a constant factor states no basis


# -- estimates ---------------------------------------------------------------------------------


def test_an_estimate_reproduces_the_gpt3_figure() -> None:
    constant = IntensityValue(447.0, "user-supplied constant")
    estimate = make_estimate(190_000.0, constant, car=EEA_NEW_CARS_2018)
    assert estimate.co2e_kg == pytest.approx(84_930.0)
    assert estimate.car_km == pytest.approx(705_398.67, rel=1e-6)
    assert make_estimate(190_000.0, constant).car_km == pytest.approx(84_930_000 / 106.4)
    assert any("PUE 1 (the default" in line for line in estimate.assumptions)


def test_an_estimate_survives_saving_and_loading() -> None:
    estimate = make_estimate(10.0, SE, pue=1.5, assumptions=["given"], hardware={"count": 2})
    data = json.loads(json.dumps(estimate.to_dict()))
    assert data["estimated"] is True and data["energy_kwh"] == pytest.approx(15.0)
    again = Estimate.from_dict(data)
    assert again == estimate
    with pytest.raises(ValueError, match="not a saved estimate"):
        Estimate.from_dict({"energy_kwh": 1})
    with pytest.raises(ValueError, match="damaged"):
        Estimate.from_dict(data | {"pue": "high"})


def test_a_range_estimate_survives_saving_and_an_older_file_reads_as_one_figure() -> None:
    estimate = make_estimate(
        10.0, SE, pue=1.5, device_energy_span_kwh=(8.0, 12.0), subject="2 x A100 (...)"
    )
    data = json.loads(json.dumps(estimate.to_dict()))
    assert (data["energy_kwh_low"], data["energy_kwh"], data["energy_kwh_high"]) == (
        pytest.approx((12.0, 15.0, 18.0))
    )
    assert data["co2e_kg_low"] == pytest.approx(12.0 * SE.g_per_kwh / 1000)
    assert Estimate.from_dict(data) == estimate
    older = {key: value for key, value in data.items() if not key.endswith(("_low", "_high"))}
    del older["subject"]
    read = Estimate.from_dict(older)
    assert read.device_energy_span_kwh is None and read.subject == ""
    assert read.energy_range_kwh == (read.energy_kwh, read.energy_kwh)
    one = make_estimate(10.0, SE, device_energy_span_kwh=(10.0, 10.0))
    assert one.device_energy_span_kwh is None  # equal ends are one figure, as it reads back


def test_an_estimate_refuses_impossible_inputs() -> None:
    with pytest.raises(ValueError, match="energy_kwh=120"):
        make_estimate(-1.0, SE)
    with pytest.raises(ValueError, match=r"pue=1\.2"):
        make_estimate(1.0, SE, pue=0.9)
    with pytest.raises(ValueError, match=r"must hold 5\.0 kWh"):
        make_estimate(5.0, SE, device_energy_span_kwh=(6.0, 8.0))


def test_the_report_text_sets_an_earlier_estimate_beside_the_measurement() -> None:
    report = build_report(RUNS / "single.jsonl")
    assert report.totals.energy_kwh is not None
    estimate = make_estimate(report.totals.energy_kwh / 2, SE)
    text = "\n".join(format_report(report, estimate=estimate))
    assert "earlier estimate:" in text and "the measured energy is 2 x the estimate" in text
    result = report_dict(report, estimate=estimate)
    assert result["estimate"]["measured_over_estimated_energy"] == pytest.approx(2.0)  # type: ignore[index]


# -- the few-line summary for the callbacks ------------------------------------------------------


def test_run_summary_gives_energy_co2e_car_cleanest_grid_and_first_forecast() -> None:
    log = read_run_log(RUNS / "predicted.jsonl")
    measurement = build_report(RUNS / "predicted.jsonl").runs[0].measurement
    assert measurement is not None and measurement.co2e_kg is not None
    lines = format_run_summary(measurement, log.predictions, compare=["SE"])
    assert lines[0].startswith("energy: ") and "(measured)" in lines[0]
    assert lines[1].startswith("CO2e: ") and "300 gCO2e/kWh (user-supplied constant)" in lines[1]
    km = measurement.co2e_kg * 1000 / EEA_NEW_CARS_2023.g_per_km
    assert f"about {format_distance(km)} in a car" in lines[2]
    assert "the cleanest large grid" in lines[3] and "times less" in lines[3]
    assert "in Sweden" in lines[4]
    assert lines[5].startswith("first forecast, at step 50 of 100")
    assert len(lines) == 6


def test_run_summary_without_intensity_or_energy_leaves_figures_out() -> None:
    bare = Measurement("run", 0.0, 1.0, (ChannelEnergy(CPU, 3600.0),), pue=1.0)
    assert format_run_summary(bare)[0] == "energy: 1 Wh (measured)"
    assert len(format_run_summary(bare)) == 2  # energy and the cleanest grid, no CO2e, no car
    lost = Measurement("run", 0.0, 1.0, (ChannelEnergy(GPU, None, "lost"),), pue=1.0)
    assert format_run_summary(lost) == [
        "energy: not measured (measured; partial: some figures are incomplete)",
        "        gpu:0: lost",  # which figure is incomplete, and why
    ]


def segment(run_id: str, start: float, joules: float, resumes: dict[str, Any] | None) -> RunLog:
    """One run of a training: its header and summary, and its resume record when resumed."""
    summary = window("run", start, 100.0, joules) | {"type": "summary", "status": "completed"}
    head = header(None, start) | {"run_id": run_id}
    resume = None if resumes is None else {"type": "resume", "run_id": run_id} | resumes
    return RunLog(Path(f"{run_id}.jsonl"), header=head, summary=summary, resume=resume)


def carried(run_id: str, kwh: float, steps: int) -> dict[str, Any]:
    return {"resumes": run_id, "energy_kwh": kwh, "co2e_kg": None, "steps": steps,
            "duration_s": 100.0}  # fmt: skip


def test_resumed_runs_are_linked_into_one_training_retries_included() -> None:
    """a, then b resumed from a, then c and its retry d both resumed from b; e stands alone."""
    logs = [
        segment("a", 1000.0, 3600.0, None),
        segment("b", 2000.0, 3600.0, carried("a", 0.001, 10)),
        segment("c", 3000.0, 3600.0, carried("b", 0.002, 20)),
        segment("d", 4000.0, 3600.0, carried("b", 0.002, 20)),
        segment("e", 5000.0, 7200.0, None),
    ]
    runs = tuple(run_report(group) for group in group_logs(logs))
    (training,) = link_trainings(runs)
    assert [run.run_ids for run in training.segments] == [("a",), ("b",), ("c",), ("d",)]
    assert training.energy_kwh == pytest.approx(0.004)  # every segment's own energy, once
    assert training.steps == 40 and training.duration_s == pytest.approx(400.0)
    assert training.carried is None and not training.partial
    assert training.co2e_kg == pytest.approx(0.004 * SE.g_per_kwh / 1000)


def test_a_resumed_run_without_its_predecessor_counts_the_checkpoint_totals() -> None:
    (run,) = (run_report([segment("b", 2000.0, 3600.0, carried("a", 0.001, 10))]),)
    (training,) = link_trainings([run])
    assert training.carried is not None and training.carried.run_id == "a"
    assert training.energy_kwh == pytest.approx(0.002)
    assert training.co2e_kg is None  # the checkpoint carried no CO2e: unknown, never 0
    assert training.steps == 20
    shown = "\n".join(format_report(Report(Path("."), (run,), totals([run]), (), (training,))))
    assert "the log of run a was not found" in shown and "segment 1 of 1" in shown


def test_a_segment_forecast_is_set_beside_the_segment_alone() -> None:
    """A forecast made in a resumed run covers the whole training; its `resumed` part (what the
    earlier run contributed) is taken out before it is compared with the resumed run's figures."""
    log = segment("b", 2000.0, 3600.0, carried("a", 0.001, 10))
    log.predictions.append({
        "type": "prediction", "t_unix": 2050.0, "steps_done": 15, "total_steps": 20,
        "energy_kwh": [0.0019, 0.002, 0.0021], "co2e_kg": None,
        "duration_s": [190.0, 200.0, 210.0], "interval": 0.8,
        "resumed": {"energy_kwh": 0.001, "co2e_kg": None, "steps": 10, "duration_s": 100.0},
    })  # fmt: skip
    (check,) = run_report([log]).predictions
    assert (check.steps_done, check.total_steps) == (5, 10)
    assert check.energy_kwh == pytest.approx((0.0009, 0.001, 0.0011))
    assert check.duration_s == pytest.approx((90.0, 100.0, 110.0))
    assert check.actual_energy_kwh == pytest.approx(0.001)
    assert check.energy_error == pytest.approx(0.0, abs=1e-9)
