"""The fault matrix: every measurement, intensity and run-log fault, at start, mid-run and at stop,
under the plain tracker and each of the three callbacks.

What every cell proves (the faults and frontends are in ``faults.py``):

- training completes, and its weights equal those of the same training without carbon-callbacks;
- exactly one ``CarbonCallbacksWarning`` per distinct fault, and no other;
- the summary marks what is partial: the failing channel's ``fault`` is set and ``partial`` true,
  in the tracker's summary, in the run log's summary record, in the callback's final totals and
  in the framework's last log entry as ``carbon/partial`` = 1; so does a device found at the
  start and never measured (a GPU lost or NVML failing: ``unmeasured`` names it), while one an
  estimate stands in for (RAPL denied: the CPU estimate) is estimated, not partial; a figure is
  never above the energy drawn, never 0 for what was measured before the fault, and every healthy
  channel keeps its exact energy;
- intensity faults keep CO2e from the fallback (or from live data fetched earlier), with that
  provenance, or leave it out when a custom provider fails: never 0;
- run-log faults set ``Tracker.log_problem``, the printed summary mentions the log, and what is on
  disk reads back cleanly up to where it stopped (or from the restart after a deletion);
- no carbon-callbacks thread outlives the run (the conftest checks the sampler at once; the live
  intensity fetcher may finish its bounded request first).

The plain-tracker row is the fast tier; the framework rows, stalls and network timeouts are
``slow``. A framework row leaves to the plain row the cells that take seconds of waiting in our
own threads and nothing from the framework (two of the three network timeouts, and the stall at
start and stop); they are listed as skipped, with that reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pytest_httpserver import HTTPServer

from carbon_callbacks import read_run_log
from carbon_callbacks.tracking.measurement import Measurement
from tests.meters.fake_powercap import FakePowercap
from tests.reliability.faults import (
    CHANNELS,
    EPOCHS,
    FAULTS,
    FRONTENDS,
    INTENSITY_G,
    LIVE_G,
    PHASES,
    TOTAL_STEPS,
    UK_API,
    Case,
    Expect,
    Fault,
    Frontend,
    Phase,
    Rig,
    lingering_threads,
    run_case,
)


def covered_by_plain_row(fault: Fault, phase: Phase) -> str | None:
    """Why a framework cell is left to the plain row: it takes seconds and nothing in it depends
    on the framework (the time is spent in our own threads, waiting)."""
    if fault.name in ("intensity-silent", "intensity-trickle"):
        return "a timeout happens in the fetch thread alone; intensity-stall covers it here"
    if fault.name == "rapl-stuck" and phase != "mid":
        return "a stall is detected by the sampler alone; the mid-run cell covers it here"
    return None


def _cells() -> Iterator[Any]:
    for frontend in FRONTENDS:
        for fault in FAULTS:
            for phase in PHASES:
                marks: list[pytest.MarkDecorator] = []
                reason = fault.not_applicable.get(phase)
                if reason is not None:
                    marks.append(pytest.mark.skip(reason=f"not applicable: {reason}"))
                elif frontend.name != "plain" and (covered := covered_by_plain_row(fault, phase)):
                    marks.append(pytest.mark.skip(reason=f"covered by the plain row: {covered}"))
                if frontend.name != "plain" or fault.is_slow(phase):
                    marks.append(pytest.mark.slow)
                yield pytest.param(
                    frontend, fault, phase, id=f"{frontend.name}-{fault.name}-{phase}", marks=marks
                )


@pytest.fixture(scope="session")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Frontend], list[Any]]:
    """The weights each frontend trains to without carbon-callbacks (computed once)."""
    weights: dict[str, list[Any]] = {}

    def of(frontend: Frontend) -> list[Any]:
        if frontend.name not in weights:
            workdir = tmp_path_factory.mktemp(f"baseline-{frontend.name}")
            weights[frontend.name] = frontend.run(None, lambda step, tracker: None, workdir).weights
        return weights[frontend.name]

    return of


@pytest.fixture
def rig(
    powercap: FakePowercap, monkeypatch: pytest.MonkeyPatch, httpserver: HTTPServer, tmp_path: Path
) -> Iterator[Rig]:
    case_rig = Rig(powercap, monkeypatch, httpserver, tmp_path)
    yield case_rig
    case_rig.close()


@pytest.mark.parametrize(("frontend", "fault", "phase"), list(_cells()))
def test_training_survives_the_fault_and_the_figures_say_what_it_cost(
    frontend: Frontend,
    fault: Fault,
    phase: Phase,
    rig: Rig,
    baseline: Callable[[Frontend], list[Any]],
) -> None:
    expected_weights = baseline(frontend)
    case = run_case(frontend, fault, phase, rig)
    expect = fault.expect(phase)

    assert case.outcome.steps == TOTAL_STEPS
    assert len(case.outcome.weights) == len(expected_weights)
    for got, want in zip(case.outcome.weights, expected_weights, strict=True):
        assert np.array_equal(got, want), "training changed with carbon-callbacks measuring"
    check_figures(case, expect, rig, phase)
    check_warnings(case.warnings, expect)
    check_intensity(case, expect)
    check_log(case, expect, frontend)
    assert lingering_threads() == []


# -- checks -----------------------------------------------------------------------------------


def check_warnings(messages: list[str], expect: Expect) -> None:
    """One warning per expected pattern, each pattern matching exactly one, nothing else."""
    for pattern in expect.warnings:
        matching = [m for m in messages if re.search(pattern, m)]
        assert len(matching) == 1, f"{pattern!r} should match one warning of {messages}"
    assert len(messages) == len(expect.warnings), messages


def summary_of(case: Case) -> Measurement:
    tracker = case.outcome.tracker
    assert tracker is not None and tracker.summary is not None
    return tracker.summary


def check_figures(case: Case, expect: Expect, rig: Rig, phase: Phase) -> None:
    """Faulty channels partial and bounded, missing ones listed, healthy ones exact."""
    tracker = case.outcome.tracker
    assert tracker is not None
    summary = summary_of(case)
    figures = {figure.channel.id: figure for figure in summary.channels}
    for channel_id, pattern in expect.missing.items():
        assert channel_id not in figures, figures[channel_id]
        reasons = [u.reason for u in tracker.unavailable]
        assert any(re.search(pattern, r) for r in reasons), (pattern, reasons)
    for channel_id, pattern in expect.faulty.items():
        assert channel_id in figures, f"{channel_id} missing from {list(figures)}"
        figure = figures[channel_id]
        assert figure.partial and figure.fault is not None, figure
        assert re.search(pattern, figure.fault), figure.fault
        drawn = rig.drawn_j[channel_id]
        assert figure.energy_j is None or 0 <= figure.energy_j <= drawn + 1e-6, (figure, drawn)
        if phase != "start":  # measured before the fault: kept, not lost or zeroed
            assert figure.energy_j is not None and figure.energy_j > 0, figure
    for channel_id in CHANNELS:
        if channel_id in expect.faulty or channel_id in expect.missing:
            continue
        assert channel_id in figures, f"healthy {channel_id} missing from {list(figures)}"
        figure = figures[channel_id]
        assert figure.fault is None, figure
        assert figure.energy_j == pytest.approx(rig.drawn_j[channel_id], rel=1e-9), channel_id
    estimated = [f for f in summary.channels if f.channel.method == "estimated"]
    assert bool(estimated) == expect.estimated_cpu, summary.channels
    partial = bool(expect.faulty) or expect.unmeasured
    assert summary.partial == partial
    assert bool(summary.unmeasured) == expect.unmeasured, summary.unmeasured
    assert summary.steps == TOTAL_STEPS
    final = case.outcome.final_metrics
    if final is not None:  # the callback's totals come from the stop's own read: the summary's
        assert final["carbon/partial"] == (1.0 if partial else 0.0), final
        assert final["carbon/energy_kwh"] == pytest.approx(summary.energy_kwh, rel=1e-9)
    logged = case.outcome.logged_metrics
    if logged is not None:  # read at the last epoch end: energy counted later (the CPU estimate
        # counts this process's own work) is not in it, and the fault is already there
        assert logged["carbon/partial"] == (1.0 if partial else 0.0), logged
        assert summary.energy_kwh is not None
        assert logged["carbon/energy_kwh"] <= summary.energy_kwh * (1 + 1e-9), logged


def check_intensity(case: Case, expect: Expect) -> None:
    """CO2e from the expected source, with that provenance; absent (never 0) when unknown."""
    summary = summary_of(case)
    final = case.outcome.final_metrics
    if expect.intensity == "none":
        assert summary.intensity is None and summary.co2e_kg is None, summary.intensity
        for metrics in (final, case.outcome.logged_metrics):
            if metrics is not None:
                assert "carbon/co2e_kg" not in metrics, metrics
        return
    value, co2e_kg = summary.intensity, summary.co2e_kg
    assert value is not None and summary.energy_kwh is not None and co2e_kg is not None
    assert co2e_kg == pytest.approx(summary.energy_kwh * value.g_per_kwh / 1000)
    assert co2e_kg > 0
    if expect.intensity == "constant":
        assert value.g_per_kwh == INTENSITY_G and value.fallback is None, value
    elif expect.intensity == "live":
        assert (value.source, value.g_per_kwh, value.fallback) == (UK_API, LIVE_G, None), value
    else:
        assert value.source != UK_API and value.fallback is not None, value
        assert UK_API in value.fallback, value.fallback
    if final is not None:
        assert final["carbon/co2e_kg"] == pytest.approx(summary.co2e_kg, rel=1e-9), final


def check_log(case: Case, expect: Expect, frontend: Frontend) -> None:
    """The run log on disk, and what the tracker and the printed summary say about it."""
    tracker = case.outcome.tracker
    assert tracker is not None and tracker.log_path is not None
    path = tracker.log_path
    if expect.log == "complete":
        assert tracker.log_problem is None, tracker.log_problem
        log = read_run_log(path)
        assert log.problems == [] and log.header is not None and log.summary is not None
        assert "restarted_unix" not in log.header
        assert len(log.windows) == EPOCHS
        check_summary_record(log.summary, case)
        check_header(log.header, expect)
        return
    assert tracker.log_problem is not None
    if frontend.prints_summary:
        assert "run log" in case.outcome.printed, case.outcome.printed
    if expect.log == "unwritable":
        assert not path.exists()
        return
    log = read_run_log(path)
    assert log.problems == [] and log.header is not None, log.problems
    if expect.log == "stopped":
        assert log.summary is None, log.summary
        assert "restarted_unix" not in log.header
        assert len(log.windows) == expect.windows_before
    else:
        assert "restarted_unix" in log.header, log.header
        assert log.summary is not None
        assert len(log.windows) == EPOCHS - expect.windows_before
        check_summary_record(log.summary, case)


def check_summary_record(record: dict[str, Any], case: Case) -> None:
    """The run log's summary says what the tracker's does, partial channels included."""
    summary = summary_of(case)
    assert record["status"] == "completed"
    assert record["steps"] == TOTAL_STEPS
    assert record["partial"] == summary.partial
    assert record["unmeasured"] == list(summary.unmeasured)
    assert record["energy_j"] == pytest.approx(summary.energy_j, rel=1e-9)
    written = {c["id"]: (c["energy_j"], c["partial"], c["fault"]) for c in record["channels"]}
    assert written == {f.channel.id: (f.energy_j, f.partial, f.fault) for f in summary.channels}
    assert record["co2e_kg"] == (
        None if summary.co2e_kg is None else pytest.approx(summary.co2e_kg, rel=1e-9)
    )


def check_header(header: dict[str, Any], expect: Expect) -> None:
    """A channel found but not measurable is listed in the header."""
    reasons = [entry["reason"] for entry in header["unavailable"]]
    for pattern in expect.missing.values():
        assert any(re.search(pattern, r) for r in reasons), (pattern, reasons)
    written_ids = {c["id"] for c in header["channels"]}
    assert not written_ids & set(expect.missing), written_ids
