"""The monitor every framework callback maps its hooks onto: metrics, phases, ranks, resume."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from carbon_callbacks import CarbonCallbacksWarning, read_run_log
from carbon_callbacks.intensity import static
from carbon_callbacks.meters import cpu_estimate
from carbon_callbacks.meters.base import Channel, Reading, Unavailable
from carbon_callbacks.reporting.text import format_forecast_line, format_training_summary
from carbon_callbacks.tracking.tracker import new_run_id
from carbon_callbacks.training import METRICS, RankInfo, TrainingMonitor
from carbon_callbacks.training.outcome import ForecastFigures
from tests.meters.fake_powercap import FakePowercap

WH_UJ = 3_600_000_000  # one watt-hour in microjoules


class SilentMeter:
    """A user meter (the public Meter protocol) that has a channel but never gives a figure."""

    source = "silent"
    max_interval_s = None

    @property
    def unavailable(self) -> list[Unavailable]:
        return []

    def open(self) -> list[Channel]:
        return [Channel("gpu:7", "gpu", "silent", "measured", "never answers")]

    def read(self) -> Reading:
        return Reading(faults={"gpu:7": "no answer"})

    def close(self) -> None:
        pass


def names(metrics: dict[str, float]) -> set[str]:
    return {name.removeprefix("carbon/") for name in metrics}


def test_epoch_metrics_follow_the_counter_pue_and_intensity(powercap: FakePowercap) -> None:
    monitor = TrainingMonitor(country="SE", pue=1.2, write_log=False)
    monitor.start()
    monitor.begin_epoch()
    powercap.add_energy("intel-rapl:0", WH_UJ)
    metrics = monitor.end_epoch()
    monitor.stop()
    assert names(metrics) <= set(METRICS)
    assert metrics["carbon/epoch_energy_kwh"] == pytest.approx(0.0012)
    assert metrics["carbon/energy_kwh"] >= metrics["carbon/epoch_energy_kwh"]
    assert metrics["carbon/co2e_kg"] == pytest.approx(
        metrics["carbon/energy_kwh"] * static.country("SE").g_per_kwh / 1000
    )
    assert metrics["carbon/intensity_g_per_kwh"] == pytest.approx(static.country("SE").g_per_kwh)
    assert metrics["carbon/estimated"] == 0.0
    assert metrics["carbon/power_w"] > 0


def test_validation_phase_is_split_from_training(powercap: FakePowercap) -> None:
    monitor = TrainingMonitor(write_log=False)
    monitor.start()
    monitor.begin_epoch()
    powercap.add_energy("intel-rapl:0", 3 * WH_UJ)
    monitor.begin_phase("val")
    powercap.add_energy("intel-rapl:0", WH_UJ)
    monitor.end_phase("val")
    metrics = monitor.end_epoch()
    monitor.stop()
    assert metrics["carbon/val_energy_kwh"] == pytest.approx(0.001)
    assert metrics["carbon/train_energy_kwh"] == pytest.approx(0.003)


def test_step_metrics_cover_the_interval_since_the_last_call(powercap: FakePowercap) -> None:
    monitor = TrainingMonitor(write_log=False, interval_s=0.01, prefix="energy.")
    monitor.start()
    monitor.begin_epoch()
    first = monitor.step_metrics()
    assert "energy.energy_per_step_j" not in first  # no interval yet
    for _ in range(4):
        monitor.step(samples=8, tokens=100)
    powercap.add_energy("intel-rapl:0", 2_000_000)  # 2 J over 4 steps
    monitor.tracker.so_far(exact=True)  # type: ignore[union-attr]  # a sample after the change
    second = monitor.step_metrics()
    monitor.stop()
    assert second["energy.energy_per_step_j"] == pytest.approx(0.5)
    assert second["energy.energy_per_sample_j"] == pytest.approx(2 / 32)
    assert second["energy.energy_per_token_j"] == pytest.approx(2 / 400)
    assert second["energy.power_w"] > 0


def test_a_missing_figure_is_left_out_never_zero() -> None:
    monitor = TrainingMonitor(write_log=False, meters=[SilentMeter()])
    with pytest.warns(CarbonCallbacksWarning, match="no answer"):
        monitor.start()
        monitor.begin_epoch()
        metrics = monitor.end_epoch()
        monitor.stop()
    assert "carbon/energy_kwh" not in metrics and "carbon/epoch_energy_kwh" not in metrics
    assert "carbon/co2e_kg" not in metrics


class EveryReadMeter(SilentMeter):
    """A counter that gains 1 J at every read: any two reads of it differ."""

    source = "every-read"

    def __init__(self) -> None:
        self.reads = 0

    def open(self) -> list[Channel]:
        return [Channel("gpu:0", "gpu", "counting", "measured", "1 J a read")]

    def read(self) -> Reading:
        self.reads += 1
        return Reading(values={"gpu:0": float(self.reads)})


def test_the_final_totals_are_the_run_logs_summary() -> None:
    """What the adapters log at the end is the summary itself, not a read a moment before it."""
    monitor = TrainingMonitor(meters=[EveryReadMeter()], intensity_g_per_kwh=100.0)
    monitor.start()
    monitor.step()
    monitor.finish()
    tracker = monitor.tracker
    assert tracker is not None and tracker.summary is not None and tracker.log_path is not None
    summary = read_run_log(tracker.log_path).summary
    assert summary is not None
    final = monitor.final_metrics
    assert final["carbon/energy_kwh"] == tracker.summary.energy_kwh
    assert final["carbon/energy_kwh"] == summary["energy_kwh"]
    assert final["carbon/co2e_kg"] == tracker.summary.co2e_kg == summary["co2e_kg"]


def test_a_second_distributed_run_starts_without_the_first_runs_totals(
    powercap: FakePowercap,
) -> None:
    """A callback reused for a second fit: its first checkpoint must not carry the all-ranks
    totals of the previous fit's last collective."""
    rank = RankInfo(global_rank=0, local_rank=0, world_size=2)

    def both_ranks_alike(vector: Sequence[float]) -> list[float]:
        return [2 * value for value in vector]

    monitor = TrainingMonitor(write_log=False, intensity_g_per_kwh=100.0)
    monitor.start(rank, both_ranks_alike)
    monitor.begin_epoch()
    powercap.add_energy("intel-rapl:0", WH_UJ)
    monitor.end_epoch()
    monitor.finish()
    assert monitor.final_metrics["carbon/energy_kwh"] == pytest.approx(0.002)  # both ranks

    monitor.start(rank, both_ranks_alike)
    state = monitor.state_dict()
    monitor.stop()
    assert state["scope"] == "this rank"  # no collective has run in this fit yet
    assert state["energy_j"] == pytest.approx(0.0, abs=1e-9)


def test_a_second_run_learns_its_epoch_length_afresh(powercap: FakePowercap) -> None:
    """The first run ends inside an epoch; the second ends one it never began (as a framework
    may, after a resume mid-epoch): neither the first run's epoch start nor its epoch length
    is the second run's."""
    monitor = TrainingMonitor(write_log=False, intensity_g_per_kwh=100.0)
    monitor.start()
    monitor.begin_epoch()
    for _ in range(3):
        monitor.step()
    monitor.end_epoch()
    assert monitor.outlook.epoch_steps == 3
    monitor.begin_epoch()  # at step 3, never ended
    monitor.stop()

    monitor.start()
    for _ in range(5):
        monitor.step()
    monitor.end_epoch()
    monitor.stop()
    assert monitor.outlook.epoch_steps is None  # not 3 from before, nor 5 - 3 = 2


def test_resume_adds_the_checkpointed_totals(powercap: FakePowercap) -> None:
    first = TrainingMonitor(write_log=False)
    first.start()
    powercap.add_energy("intel-rapl:0", WH_UJ)
    for _ in range(5):
        first.step(samples=2)
    first.begin_epoch()
    first.end_epoch()
    state = first.state_dict()
    first.stop()
    assert state["energy_j"] == pytest.approx(3600.0)
    assert (state["steps"], state["samples"]) == (5, 10)

    resumed = TrainingMonitor(write_log=False)
    resumed.load_state_dict(state)
    resumed.start()
    resumed.begin_epoch()
    powercap.add_energy("intel-rapl:0", WH_UJ)
    metrics = resumed.end_epoch()
    lines = format_training_summary(resumed.finish())
    assert metrics["carbon/energy_kwh"] == pytest.approx(0.002)
    assert resumed.state_dict()["energy_j"] == pytest.approx(7200.0)
    assert any("the runs it resumed" in line for line in lines)


class TwoRanks:
    """Stands in for the framework's all-reduce: this rank's vector plus the other rank's."""

    def __init__(self, other: Sequence[float]) -> None:
        self.other = other
        self.calls = 0

    def __call__(self, values: Sequence[float]) -> Sequence[float]:
        if len(values) != len(self.other):  # the start's run-id vector: the other rank adds 0
            return list(values)
        self.calls += 1
        return [a + b for a, b in zip(values, self.other, strict=True)]


def test_only_local_rank_zero_measures_the_host(powercap: FakePowercap) -> None:
    rank1 = TrainingMonitor(write_log=False)
    rank1.start(RankInfo(global_rank=1, local_rank=1, world_size=2), reduce=TwoRanks([0.0] * 13))
    assert rank1.tracker is not None and rank1.tracker.channels == ()
    rank1.begin_epoch()
    powercap.add_energy("intel-rapl:0", WH_UJ)
    metrics = rank1.end_epoch()
    assert rank1.finish() is None  # only global rank 0 shows the summary
    assert metrics["carbon/epoch_energy_kwh"] == 0.0  # measures nothing by design: adds nothing

    rank0 = TrainingMonitor(write_log=False)
    reducer = TwoRanks([0.0] * 13)
    rank0.start(RankInfo(global_rank=0, local_rank=0, world_size=2), reduce=reducer)
    assert rank0.tracker is not None and {c.kind for c in rank0.tracker.channels} >= {"cpu"}
    rank0.stop()


def test_totals_are_summed_across_ranks_and_unknown_stays_unknown(
    powercap: FakePowercap,
) -> None:
    monitor = TrainingMonitor(write_log=False)
    other_rank = [1800.0, 0.001, 0.0, 0.0, *[0.0] * 6, 1800.0, 0.001, math.nan]
    reducer = TwoRanks(other_rank)
    monitor.start(RankInfo(world_size=2, num_nodes=2), reduce=reducer)
    monitor.begin_epoch()
    powercap.add_energy("intel-rapl:0", WH_UJ)
    metrics = monitor.end_epoch()
    assert reducer.calls == 1
    assert metrics["carbon/epoch_energy_kwh"] == pytest.approx(0.0015)  # 3600 J + 1800 J
    assert "carbon/val_energy_kwh" not in metrics
    monitor.stop()
    with_unknown = TrainingMonitor(write_log=False)
    with_unknown.start(RankInfo(world_size=2), reduce=TwoRanks([math.nan] * 13))
    with_unknown.begin_epoch()
    assert "carbon/energy_kwh" not in with_unknown.end_epoch()
    with_unknown.stop()


def test_a_failing_collective_falls_back_to_this_rank(powercap: FakePowercap) -> None:
    def broken(values: Sequence[float]) -> Sequence[float]:
        raise RuntimeError("peer gone")

    monitor = TrainingMonitor(write_log=False)
    monitor.start(RankInfo(world_size=2), reduce=broken)
    monitor.begin_epoch()
    powercap.add_energy("intel-rapl:0", WH_UJ)
    assert monitor.end_epoch()["carbon/epoch_energy_kwh"] == pytest.approx(0.001)
    monitor.stop("failed")


def test_bad_options_fail_at_construction() -> None:
    with pytest.raises(ValueError, match="did you mean"):
        TrainingMonitor(country="Swedn")
    with pytest.raises(TypeError, match="prefix must be a string"):
        TrainingMonitor(prefix=3)  # type: ignore[arg-type]


def test_finish_runs_once_and_stop_is_idempotent(powercap: FakePowercap) -> None:
    monitor = TrainingMonitor(write_log=False)
    assert monitor.finish() is None and monitor.stop() is None  # never started
    monitor.start()
    lines = format_training_summary(monitor.finish())
    assert lines[0].startswith("carbon-callbacks: training completed in ")
    assert any(line.startswith("  energy:") for line in lines)
    assert monitor.finish() is None and not monitor.is_running


def test_distributed_checkpoints_carry_all_ranks_totals_to_global_rank_zero_only(
    powercap: FakePowercap,
) -> None:
    monitor = TrainingMonitor(write_log=False)
    monitor.start(RankInfo(world_size=2), reduce=TwoRanks([1800.0, *[0.0] * 12]))
    monitor.begin_epoch()
    powercap.add_energy("intel-rapl:0", WH_UJ)
    monitor.end_epoch()
    state = monitor.state_dict()
    monitor.stop()
    assert state["scope"] == "all ranks"
    assert state["energy_j"] == pytest.approx(5400.0)  # 3600 J here + 1800 J on the other rank

    for global_rank, kept in ((0, 5400.0), (1, 0.0)):
        resumed = TrainingMonitor(write_log=False)
        resumed.load_state_dict(state)
        resumed.start(
            RankInfo(global_rank=global_rank, local_rank=global_rank, world_size=2),
            reduce=TwoRanks([0.0] * 13),
        )
        assert resumed.state_dict()["energy_j"] == pytest.approx(kept, abs=1.0)
        resumed.stop()


def test_logging_faster_than_sampling_reads_the_meters(powercap: FakePowercap) -> None:
    monitor = TrainingMonitor(write_log=False, interval_s=60.0)  # no sample arrives on its own
    monitor.start()
    for _ in range(4):
        monitor.step(samples=4)
    powercap.add_energy("intel-rapl:0", 2_000_000)  # 2 J, seen only by a read of the meters
    metrics = monitor.step_metrics()
    monitor.stop()
    assert metrics["carbon/energy_per_step_j"] == pytest.approx(0.5)
    assert metrics["carbon/energy_per_sample_j"] == pytest.approx(0.125)


def test_a_failed_channel_sets_the_partial_flag(powercap: FakePowercap) -> None:
    monitor = TrainingMonitor(write_log=False)
    monitor.start()
    monitor.begin_epoch()
    powercap.remove("intel-rapl:0:0")  # the DRAM counter disappears mid-run
    with pytest.warns(CarbonCallbacksWarning):
        metrics = monitor.end_epoch()
    monitor.stop()
    assert metrics["carbon/partial"] == 1.0 and "carbon/energy_kwh" in metrics


def run_steps(monitor: TrainingMonitor, powercap: FakePowercap, steps: int, uj: int) -> None:
    for _ in range(steps):
        monitor.step()
        powercap.add_energy("intel-rapl:0", uj)
        time.sleep(0.003)


def test_the_forecast_is_logged_recorded_and_announced_once(powercap: FakePowercap) -> None:
    monitor = TrainingMonitor(interval_s=0.005, intensity_g_per_kwh=100.0, warmup_steps=2)
    announced: list[ForecastFigures] = []
    monitor.announce = announced.append
    monitor.set_total_steps(120)
    monitor.start()
    monitor.begin_epoch()
    run_steps(monitor, powercap, 40, 1_000_000)  # 1 J a step
    metrics = monitor.end_epoch()
    monitor.begin_epoch()
    run_steps(monitor, powercap, 10, 1_000_000)
    monitor.end_epoch()
    monitor.stop()
    predicted_j = metrics["carbon/predicted_energy_kwh"] * 3.6e6
    assert predicted_j == pytest.approx(120.0, rel=0.15)
    low, high = (
        metrics["carbon/predicted_energy_kwh_low"],
        metrics["carbon/predicted_energy_kwh_high"],
    )
    assert low <= metrics["carbon/predicted_energy_kwh"] <= high
    assert metrics["carbon/predicted_co2e_kg"] == pytest.approx(
        metrics["carbon/predicted_energy_kwh"] * 0.1, rel=0.01
    )
    assert metrics["carbon/predicted_duration_s"] > 0
    lines = [format_forecast_line(forecast) for forecast in announced]
    assert len(lines) == 1 and "predicted for 120 steps" in lines[0] and "80% interval" in lines[0]
    assert monitor.tracker is not None and monitor.tracker.log_path is not None
    predictions = read_run_log(monitor.tracker.log_path).predictions
    assert len(predictions) == 2  # one per epoch end
    assert predictions[0]["total_steps"] == 120 and len(predictions[0]["energy_kwh"]) == 3


def test_no_forecast_without_a_run_length(powercap: FakePowercap) -> None:
    monitor = TrainingMonitor(write_log=False, interval_s=0.005)
    monitor.start()
    monitor.begin_epoch()
    run_steps(monitor, powercap, 20, 1_000_000)
    metrics = monitor.end_epoch()
    monitor.stop()
    assert not any("predicted" in name for name in metrics)


@pytest.mark.parametrize("on_budget", ["warn", "stop"])
def test_a_reached_budget_warns_and_stops_only_when_asked(
    powercap: FakePowercap, on_budget: str
) -> None:
    monitor = TrainingMonitor(
        write_log=False,
        max_energy_kwh=0.001,
        on_budget=on_budget,  # type: ignore[arg-type]
    )
    monitor.start()
    monitor.begin_epoch()
    powercap.add_energy("intel-rapl:0", WH_UJ // 2)
    monitor.end_epoch()
    assert not monitor.should_stop
    monitor.begin_epoch()
    powercap.add_energy("intel-rapl:0", WH_UJ)
    with pytest.warns(CarbonCallbacksWarning, match="budget reached: used 0.0015 kWh"):
        monitor.end_epoch()
    monitor.stop()
    assert monitor.should_stop is (on_budget == "stop")


def test_a_forecast_over_budget_warns_early(powercap: FakePowercap) -> None:
    monitor = TrainingMonitor(write_log=False, interval_s=0.005, max_energy_kwh=0.00002)  # 72 J
    monitor.announce = lambda line: None
    monitor.set_total_steps(200)
    monitor.start()
    monitor.begin_epoch()
    run_steps(monitor, powercap, 30, 1_000_000)  # 1 J a step: about 200 J predicted
    with pytest.warns(CarbonCallbacksWarning, match="predicted to use"):
        monitor.end_epoch()
    monitor.stop()
    assert not monitor.should_stop  # nothing reached yet


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_energy_kwh": 0}, "max_energy_kwh must be a number > 0"),
        ({"max_co2e_kg": "1"}, "max_co2e_kg must be a number"),
        ({"on_budget": "halt"}, "on_budget must be 'warn' or 'stop'"),
        ({"warmup_steps": -1}, "warmup_steps must be an int >= 0"),
    ],
)
def test_budget_mistakes_fail_at_construction(options: dict[str, object], message: str) -> None:
    with pytest.raises((TypeError, ValueError), match=message):
        TrainingMonitor(**options)  # type: ignore[arg-type]


class NoChannelMeter(SilentMeter):
    """A meter that finds nothing to measure (a machine with no readable source)."""

    def open(self) -> list[Channel]:
        return []


def test_a_single_process_with_nothing_measured_reports_nothing_not_zero() -> None:
    monitor = TrainingMonitor(write_log=False, meters=[NoChannelMeter()])
    monitor.start()
    monitor.begin_epoch()
    metrics = monitor.end_epoch()
    monitor.stop()
    assert "carbon/energy_kwh" not in metrics and "carbon/epoch_energy_kwh" not in metrics


def test_a_gpu_rank_without_its_gpu_is_unknown_not_zero() -> None:
    monitor = TrainingMonitor(write_log=False, meters=[NoChannelMeter()])
    reducer = TwoRanks([0.0] * 13)
    monitor.start(RankInfo(global_rank=1, local_rank=1, world_size=2, devices=("GPU-1",)), reducer)
    monitor.begin_epoch()
    metrics = monitor.end_epoch()
    monitor.stop()
    assert "carbon/energy_kwh" not in metrics


def test_a_second_run_of_the_same_monitor_has_its_own_forecasts(powercap: FakePowercap) -> None:
    monitor = TrainingMonitor(interval_s=0.005, intensity_g_per_kwh=100.0, warmup_steps=2)
    announced: list[ForecastFigures] = []
    monitor.announce = announced.append
    for _ in range(2):  # a callback reused for a second fit (stopped early: half its steps)
        monitor.set_total_steps(80)
        monitor.start()
        monitor.begin_epoch()
        run_steps(monitor, powercap, 40, 1_000_000)
        monitor.end_epoch()
        monitor.finish()
        assert len(monitor.outlook.records) == 1  # this run's forecast only
    assert len(announced) == 2  # each run announces its own first forecast


TICK_S = 1 / os.sysconf("SC_CLK_TCK")
"""psutil's CPU times are whole clock ticks: a reading may fall short by one per counter."""


class PeerRank:
    """The all-reduce of a two-rank run whose other rank is on this node.

    At start (the vector of 2 + 2 x 2 entries) it adds the other rank's pid and this node's key,
    and rank 0's run id parts when the other rank is rank 0; later vectors get the other's zeros.
    """

    def __init__(self, peer: int, pid: int, run_id_parts: tuple[int, int] | None = None) -> None:
        self.peer, self.pid, self.run_id_parts = peer, pid, run_id_parts

    def __call__(self, values: Sequence[float]) -> Sequence[float]:
        summed = list(values)
        if len(summed) != 6:
            return summed
        me = 1 - self.peer
        if self.run_id_parts is not None:
            summed[0] += self.run_id_parts[0]
            summed[1] += self.run_id_parts[1]
        summed[2 + 2 * self.peer] += self.pid
        summed[3 + 2 * self.peer] += summed[3 + 2 * me]  # the same node
        return summed


def burn(seconds: float) -> None:
    start = time.process_time()
    while time.process_time() - start < seconds:
        pass


def test_a_rank_beside_the_host_rank_estimates_its_own_cpu_time_under_rank_0s_run_id(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No RAPL on the node: local rank 1's CPU time is its own to count (torchrun's ranks are
    siblings: rank 0's estimate never sees it). Its log takes rank 0's run id."""
    monkeypatch.setenv("CARBON_CALLBACKS_POWERCAP_ROOT", str(tmp_path / "no-rapl"))
    watts = 10.0
    monitor = TrainingMonitor(intensity_g_per_kwh=100.0, cpu_watts=watts)
    reducer = PeerRank(peer=0, pid=os.getppid(), run_id_parts=(1_700_000_000, 0xABCDEF))
    monitor.start(RankInfo(global_rank=1, local_rank=1, world_size=2, devices=()), reducer)
    tracker = monitor.tracker
    assert tracker is not None
    assert [(c.id, c.scope) for c in tracker.channels] == [("cpu:estimate", "process")]
    monitor.begin_epoch()
    before = time.process_time()
    burn(0.2)
    used = time.process_time() - before
    metrics = monitor.end_epoch()
    monitor.finish()
    assert metrics["carbon/epoch_energy_kwh"] * 3.6e6 >= (used - 2 * TICK_S) * watts
    run_id = new_run_id(1_700_000_000, 0xABCDEF)
    assert tracker.run_id == run_id == "20231114T221320Z-abcdef"
    assert tracker.log_path is not None and tracker.log_path.name == f"{run_id}-rank1.jsonl"
    log = read_run_log(tracker.log_path)
    assert log.header is not None and log.summary is not None
    assert log.header["run_id"] == log.summary["run_id"] == run_id
    assert log.header["context"]["distributed"]["run_id"] == run_id
    assert [(c["id"], c["scope"]) for c in log.header["channels"]] == [("cpu:estimate", "process")]


def test_rank_0_leaves_out_a_rank_its_launcher_started_as_a_child(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Lightning's launcher starts rank 1 as rank 0's child: rank 1 counts itself, rank 0 not."""
    monkeypatch.setenv("CARBON_CALLBACKS_POWERCAP_ROOT", str(tmp_path / "no-rapl"))
    monkeypatch.setattr(cpu_estimate, "DESCENDANTS_REFRESH_S", 0.0)  # list them at every read
    burner = (
        "import sys, time\nsys.stdin.readline()\nt = time.process_time()\n"
        "while time.process_time() - t < 0.3: pass\nprint('burnt', flush=True)\nsys.stdin.read()\n"
    )
    rank1 = subprocess.Popen(
        [sys.executable, "-c", burner], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert rank1.stdin is not None and rank1.stdout is not None
    monitor = TrainingMonitor(write_log=False, intensity_g_per_kwh=100.0, cpu_watts=1.0)
    try:
        before = time.process_time()
        monitor.start(RankInfo(world_size=2, devices=()), PeerRank(peer=1, pid=rank1.pid))
        monitor.begin_epoch()
        rank1.stdin.write("go\n")
        rank1.stdin.flush()
        assert rank1.stdout.readline() == "burnt\n"
        metrics = monitor.end_epoch()
        used = time.process_time() - before
        monitor.finish()
    finally:
        rank1.stdin.close()
        rank1.wait()
        rank1.stdout.close()
    assert monitor.tracker is not None and monitor.tracker.run_id.startswith("20")
    # this process's CPU time alone (1 W per core: joules = seconds); rank 1's 0.3 s is not in it
    assert metrics["carbon/epoch_energy_kwh"] * 3.6e6 <= used + 2 * TICK_S
