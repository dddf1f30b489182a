"""Checkpoint records: the run so far, in order, bounded, off the training thread; absolute paths.

A killed process's figures (``tests/reliability/test_lost_worker.py``) come from these records;
here: what each holds, when they come, that a long run writes a bounded number of them, that a
finished run's report ignores them, and that the run log's path is absolute whatever the working
directory does (Ray changes it).
"""

from __future__ import annotations

import itertools
import json
import math
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from carbon_callbacks import Tracker, read_run_log
from carbon_callbacks.cli import main as cli_main
from carbon_callbacks.intensity.base import ConstantIntensity, IntensityValue
from carbon_callbacks.runlog.writer import RunLogWriter
from carbon_callbacks.tracking import progress
from carbon_callbacks.tracking.measurement import Measurement
from carbon_callbacks.tracking.progress import CHECKPOINT_SPAN_FRACTION, RunProgress
from carbon_callbacks.tracking.sampler import Sample, Sampler
from carbon_callbacks.tracking.windows import Mark, channel_energies
from tests.meters.fake_powercap import FakePowercap
from tests.reliability.test_long_runs import WATTS, WEEK_S, Clock, SteadyMeter

HANG_GUARD_S = 60.0
"""Backstop for a wait on the sampler thread (a working one gets there in a fraction of a
second); only a broken one lasts this long, and the test then fails instead of hanging."""
CHECKPOINT_S = 0.2
"""The checkpoint interval the tests that wait for the sampler thread set (30 s by default)."""


@pytest.fixture
def frequent_checkpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    """Periodic checkpoints every 0.2 s (the interval is read when a run starts)."""
    monkeypatch.setattr(progress, "CHECKPOINT_SPACING_S", CHECKPOINT_S)


def records(path: Path, kind: str) -> list[dict[str, Any]]:
    """The records of one type in a run log, as written."""
    lines = path.read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["type"] == kind]


def wait_for_checkpoint(path: Path, energy_j: float | None = None) -> dict[str, Any]:
    """Wait until the sampler thread has written a checkpoint (holding ``energy_j``, if given)."""
    deadline = time.monotonic() + HANG_GUARD_S
    while time.monotonic() < deadline:
        for found in records(path, "checkpoint"):
            if energy_j is None or found["energy_j"] == pytest.approx(energy_j):
                return found
        time.sleep(0.01)
    raise AssertionError(f"no such checkpoint after {HANG_GUARD_S:.0f} s")


def test_window_ends_write_the_run_so_far_after_the_window(
    powercap: FakePowercap, tmp_path: Path
) -> None:
    with Tracker(intensity_g_per_kwh=100.0, output_dir=tmp_path) as tracker:
        for epoch, joules in enumerate((5, 7)):
            tracker.begin_window(f"epoch {epoch}")
            powercap.add_energy("intel-rapl:0", joules * 1_000_000)
            tracker.step(3)
            tracker.end_window(f"epoch {epoch}")
    assert tracker.log_path is not None
    kinds = [json.loads(line)["type"] for line in tracker.log_path.read_text().splitlines()]
    assert kinds[-1] == "summary"
    body = [kind for kind in kinds if kind != "samples"]
    assert body == ["header", "window", "checkpoint", "window", "checkpoint", "summary"]
    first, second = records(tracker.log_path, "checkpoint")
    windows = records(tracker.log_path, "window")
    assert first["energy_j"] == pytest.approx(5.0) and second["energy_j"] == pytest.approx(12.0)
    assert (first["steps"], second["steps"]) == (3, 6)
    assert second["co2e_kg"] == pytest.approx(12.0 / 3.6e6 * 100.0 / 1000.0)
    for checkpoint, window in zip((first, second), windows, strict=True):
        assert checkpoint["channels"][0]["partial"] is window["channels"][0]["partial"] is False
    assert read_run_log(tracker.log_path).problems == []


def test_the_sampler_thread_writes_checkpoints_while_no_window_closes(
    powercap: FakePowercap, tmp_path: Path, frequent_checkpoints: None
) -> None:
    tracker = Tracker(intensity_g_per_kwh=100.0, output_dir=tmp_path).start()
    assert tracker.log_path is not None
    powercap.add_energy("intel-rapl:0", 4_000_000)
    tracker.step(2)
    checkpoint = wait_for_checkpoint(tracker.log_path, energy_j=4.0)  # no window was closed
    tracker.stop()
    assert checkpoint["steps"] == 2
    assert checkpoint["co2e_kg"] == pytest.approx(4.0 / 3.6e6 * 100.0 / 1000.0)
    log = read_run_log(tracker.log_path)
    assert log.problems == []
    times = [float(c["duration_s"]) for c in log.checkpoints]  # monotonic clock
    assert all(b - a >= CHECKPOINT_S for a, b in itertools.pairwise(times)), times
    kinds = [json.loads(line)["type"] for line in tracker.log_path.read_text().splitlines()]
    assert kinds.count("summary") == 1 and kinds[-1] == "summary"  # no checkpoint after it


def test_a_finished_run_is_reported_from_its_summary_not_its_checkpoints(
    powercap: FakePowercap, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Tracker(intensity_g_per_kwh=100.0, output_dir=tmp_path) as tracker:
        tracker.begin_window("epoch")
        powercap.add_energy("intel-rapl:0", 5_000_000)
        tracker.end_window("epoch")
        powercap.add_energy("intel-rapl:0", 2_000_000)  # after the last checkpoint
    assert tracker.log_path is not None
    capsys.readouterr()
    assert cli_main(["report", str(tracker.log_path), "--json"]) == 0
    (run,) = json.loads(capsys.readouterr().out)["runs"]
    assert (run["status"], run["basis"], run["up_to_unix"]) == ("completed", "summary", None)
    assert run["figures"]["energy_j"] == pytest.approx(7.0)
    assert run["figures"]["partial"] is False

    # The same log cut before its summary: the checkpoint's figures, up to the window's end.
    cut = tmp_path / "cut" / tracker.log_path.name
    cut.parent.mkdir()
    lines = tracker.log_path.read_text().splitlines(keepends=True)
    cut.write_text("".join(line for line in lines if '"type":"summary"' not in line))
    assert cli_main(["report", str(cut), "--json"]) == 0
    (run,) = json.loads(capsys.readouterr().out)["runs"]
    assert (run["status"], run["basis"]) == ("unfinished", "checkpoint")
    assert run["figures"]["energy_j"] == pytest.approx(5.0)
    assert run["figures"]["partial"] is True
    assert run["up_to_unix"] == records(cut, "checkpoint")[-1]["t_unix"]


def test_a_custom_provider_is_asked_only_from_the_training_thread(
    powercap: FakePowercap, tmp_path: Path, frequent_checkpoints: None
) -> None:
    class Recording:
        """A custom provider that notes the thread of every call."""

        def __init__(self) -> None:
            self.threads: set[str] = set()

        def intensity(self, start_unix: float, end_unix: float) -> IntensityValue:
            self.threads.add(threading.current_thread().name)
            return IntensityValue(100.0, "custom")

    provider = Recording()
    tracker = Tracker(intensity=provider, output_dir=tmp_path).start()
    assert tracker.log_path is not None
    periodic = wait_for_checkpoint(tracker.log_path)
    tracker.begin_window("epoch")
    tracker.end_window("epoch")
    tracker.stop()
    assert provider.threads == {threading.main_thread().name}
    assert periodic["intensity"] is None and periodic["co2e_kg"] is None
    assert records(tracker.log_path, "checkpoint")[-1]["co2e_kg"] is not None  # the window's


def test_a_simulated_week_writes_a_bounded_number_of_checkpoints(tmp_path: Path) -> None:
    """A week sampled every 5 s on a fake clock, each sample offered as the sampler thread does."""
    clock = Clock()
    sampler = Sampler([SteadyMeter()], interval_s=5.0, clock_ns=clock)
    sampler.open()
    start = sampler.latest()
    unix0 = 1.7e9

    def mark(sample: Sample) -> Mark:
        return Mark(sample, unix0 + (sample.t_ns - start.t_ns) / 1e9, (0, 0, 0))

    run_mark = mark(start)

    def measure(end: Mark, co2e: bool) -> Measurement:
        return Measurement(
            name="so far",
            start_unix=unix0,
            duration_s=(end.sample.t_ns - start.t_ns) / 1e9,
            channels=channel_energies(sampler.channels, start, end.sample, {}),
            pue=1.0,
            steps=0,
            intensity=IntensityValue(100.0, "test") if co2e else None,
        )

    writer = RunLogWriter(tmp_path / "week.jsonl")
    run = RunProgress(
        writer=writer,
        sampler=sampler,
        run_mark=run_mark,
        step_slot=0,
        run_id="week",
        measure=measure,
        mark=mark,
        provider=ConstantIntensity(100.0),
    )
    for _ in range(WEEK_S // 5):
        clock.advance(5.0)
        run.offer(sampler.sample())
    run.close()
    writer.close()

    log = read_run_log(tmp_path / "week.jsonl")
    assert log.problems == []
    times = [float(c["duration_s"]) for c in log.checkpoints]
    # every 30 s for the first 1024 x 30 s, then the run's length / 1024: 1024 (1 + ln(week /
    # 30720 s)) = 4075 in all, where one every 30 s would be 20,160
    first_phase = CHECKPOINT_SPAN_FRACTION * 30
    bound = CHECKPOINT_SPAN_FRACTION * (1 + math.log(WEEK_S / first_phase)) + 5
    assert len(times) <= bound, len(times)
    assert times[0] == 30.0
    for before, after in itertools.pairwise(times):
        assert max(30.0, before / CHECKPOINT_SPAN_FRACTION) <= after - before
        assert after - before <= max(30.0, after / CHECKPOINT_SPAN_FRACTION) + 5.0
    assert WEEK_S - times[-1] <= WEEK_S / CHECKPOINT_SPAN_FRACTION + 5.0  # to the end
    for checkpoint, seconds in zip(log.checkpoints, times, strict=True):
        assert checkpoint["energy_j"] == pytest.approx(sum(WATTS) * seconds, rel=1e-9)
        assert checkpoint["co2e_kg"] is not None


def test_the_run_log_path_is_absolute_when_the_working_directory_changes(
    powercap: FakePowercap,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started_in, moved_to = tmp_path / "driver", tmp_path / "ray-session"
    started_in.mkdir()
    moved_to.mkdir()
    monkeypatch.chdir(started_in)
    tracker = Tracker(intensity_g_per_kwh=100.0, output_dir="carbon-runs").start()
    monkeypatch.chdir(moved_to)  # what Ray does to a worker
    tracker.begin_window("epoch")
    tracker.end_window("epoch")
    tracker.stop()
    path = tracker.log_path
    assert path is not None and path.is_absolute()
    assert path.parent == started_in / "carbon-runs"
    log = read_run_log(path)
    assert log.header is not None and log.summary is not None
    assert log.header["log_dir"] == str(started_in / "carbon-runs")
    assert not (moved_to / "carbon-runs").exists()
