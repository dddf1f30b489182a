"""Step-level figures: one window for every numerator and denominator, widened until resolved.

The property test drives the monitor and a second tracker that shares its sampler (the sampler's
own thread is kept from polling), so samples land at random points between steps, as the
sampler thread's do; a fake RAPL counter gains energy in proportion to what the steps counted.
The CPU-estimate tests measure real CPU work, each step's CPU time also read to the nanosecond
(``time.process_time_ns``) as the reference.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carbon_callbacks.tracking.tracker import Tracker
from carbon_callbacks.training import TrainingMonitor
from carbon_callbacks.training.intervals import MAX_RESOLUTION_ERROR
from tests.meters.fake_powercap import FakePowercap

NO_POLLING_S = 3600.0
"""A sampler interval the tests outlast: only reads the test takes make samples."""

UJ_PER_UNIT = {"steps": 1000, "samples": 1000, "tokens": 100}
"""Energy the fake counter gains per step, sample or token, in microjoules."""

METRIC_OF = {
    "steps": "carbon/energy_per_step_j",
    "samples": "carbon/energy_per_sample_j",
    "tokens": "carbon/energy_per_token_j",
}

Step = tuple[str, int, int, int]
"""("step", steps, samples, tokens), ("sample", 0, 0, 0) or ("log", 0, 0, 0)."""

events = st.lists(
    st.one_of(
        st.tuples(st.just("step"), st.integers(1, 3), st.integers(0, 64), st.integers(0, 512)),
        st.just(("sample", 0, 0, 0)),
        st.just(("log", 0, 0, 0)),
    ),
    max_size=80,
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(timeline=events, paid_by=st.sampled_from(sorted(UJ_PER_UNIT)))
def test_every_interval_figure_divides_one_windows_energy_by_the_same_windows_counts(
    powercap: FakePowercap, timeline: list[Step], paid_by: str
) -> None:
    """Energy proportional to one count gives exactly that proportion whatever the timings."""
    monitor = TrainingMonitor(write_log=False, interval_s=NO_POLLING_S)
    monitor.start()
    sampler_user = Tracker(write_log=False, interval_s=NO_POLLING_S).start()  # the same sampler
    pending = {"steps": 0, "samples": 0, "tokens": 0}  # counted since the figure's last interval
    try:
        for kind, steps, samples, tokens in timeline:
            if kind == "step":
                done = {"steps": steps, "samples": samples, "tokens": tokens}
                powercap.add_energy("intel-rapl:0", UJ_PER_UNIT[paid_by] * done[paid_by])
                monitor.step(samples=samples, tokens=tokens, count=steps)
                pending = {name: pending[name] + done[name] for name in pending}
            elif kind == "sample":  # the sampler thread's sample, at any point between steps
                sampler_user.so_far(exact=True)
            else:
                metrics = monitor.step_metrics()
                name = METRIC_OF[paid_by]
                if name in metrics:
                    assert metrics[name] == pytest.approx(UJ_PER_UNIT[paid_by] / 1e6, rel=1e-9)
                    pending = dict.fromkeys(pending, 0)
                else:  # a counter that reads exactly resolves any interval with a step
                    assert pending["steps"] == 0 or pending[paid_by] == 0, metrics
    finally:
        sampler_user.stop()
        monitor.stop()


def test_so_far_from_the_latest_sample_counts_the_steps_of_that_sample(
    powercap: FakePowercap,
) -> None:
    """The issue's pairing: an older sample's energy and time with the steps counted up to now."""
    tracker = Tracker(write_log=False, interval_s=NO_POLLING_S).start()
    for _ in range(10):
        powercap.add_energy("intel-rapl:0", 600_000)
        tracker.step()
    cheap, exact = tracker.so_far(exact=False), tracker.so_far(exact=True)
    later = tracker.so_far(exact=False)  # the exact read is now the latest sample
    tracker.stop()
    assert cheap is not None and exact is not None and later is not None
    assert (cheap.duration_s, cheap.energy_j, cheap.steps) == (0.0, 0.0, 0)
    assert exact.energy_j == pytest.approx(6.0) and exact.steps == 10
    assert (later.energy_j, later.steps, later.duration_s) == (
        exact.energy_j,
        exact.steps,
        exact.duration_s,
    )


def burn_cpu(iterations: int) -> None:
    """A fixed amount of CPU work: the same loop every step."""
    total = 0
    for value in range(iterations):
        total += value * value
    if total < 0:
        raise AssertionError("unreachable")


def calibrated_iterations(cpu_s: float) -> int:
    """Loop iterations taking about ``cpu_s`` of CPU time here."""
    iterations = 20_000
    while True:
        begun = time.process_time_ns()
        burn_cpu(iterations)
        took_s = (time.process_time_ns() - begun) / 1e9
        if took_s >= 0.02:
            return max(int(iterations * cpu_s / took_s), 1)
        iterations *= 2


@pytest.fixture
def no_rapl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No powercap tree: the host is measured by the CPU estimate."""
    (tmp_path / "no-powercap").mkdir()
    monkeypatch.setenv("CARBON_CALLBACKS_POWERCAP_ROOT", str(tmp_path / "no-powercap"))


WATTS_PER_CORE = 10.0


@pytest.mark.usefixtures("no_rapl")
def test_identical_steps_log_the_same_energy_per_step_at_every_logging_step() -> None:
    """Steps of fixed CPU work, logged every 10 (about 50 ms: 5 CPU ticks of the estimate).

    Each step's CPU time ``c`` is read to the nanosecond. An interval the monitor logs may be
    off by its resolution: 2 CPU ticks (user and system time each rounded down to 10 ms) and,
    where an end is a sample inside a step, one step; it logs only when those make at most
    ``MAX_RESOLUTION_ERROR`` (10%) of the interval. So every logged figure lies within
    [(1 - 10%) W min(c), W max(c) / (1 - 10%)], W the watts per core.
    """
    iterations = calibrated_iterations(0.005)
    monitor = TrainingMonitor(write_log=False, cpu_watts=WATTS_PER_CORE)
    monitor.start()
    cpu_ns: list[int] = []
    logged: list[float] = []
    before = time.process_time_ns()
    for step in range(1, 401):
        burn_cpu(iterations)
        monitor.step()
        if step % 10 == 0:
            metrics = monitor.step_metrics()
            if "carbon/energy_per_step_j" in metrics:
                logged.append(metrics["carbon/energy_per_step_j"])
        after = time.process_time_ns()
        cpu_ns.append(after - before)  # the step, with the logging step's own work
        before = after
    monitor.stop()
    low = (1 - MAX_RESOLUTION_ERROR) * WATTS_PER_CORE * min(cpu_ns) / 1e9
    high = WATTS_PER_CORE * max(cpu_ns) / 1e9 / (1 - MAX_RESOLUTION_ERROR)
    assert len(logged) >= 5  # 2 s of CPU work: at least 0.4 s per interval resolves it
    assert all(low <= joules <= high for joules in logged), (low, logged, high)


@pytest.mark.usefixtures("no_rapl")
def test_short_intervals_never_log_more_power_than_every_cpu_can_draw() -> None:
    """Logging every 2 steps of about 1 ms: the CPU-time ticks alone would give impossible power."""
    iterations = calibrated_iterations(0.001)
    monitor = TrainingMonitor(write_log=False, cpu_watts=WATTS_PER_CORE, interval_s=0.002)
    monitor.start()
    powers: list[float] = []
    for step in range(1, 601):
        burn_cpu(iterations)
        monitor.step()
        if step % 2 == 0:
            powers.append(monitor.step_metrics().get("carbon/power_w", math.nan))
    monitor.stop()
    ceiling = (os.cpu_count() or 1) * WATTS_PER_CORE
    logged = [watts for watts in powers if not math.isnan(watts)]
    assert logged and all(0 < watts <= ceiling for watts in logged), (ceiling, logged)


@pytest.mark.usefixtures("no_rapl")
def test_a_trainer_logging_every_two_short_steps_never_logs_impossible_power(
    tmp_path: Path,
) -> None:
    """The issue's run: Hugging Face steps of a few ms, ``logging_steps=2``, the CPU estimate.

    A linear model keeps each step to the trainer's own work, a few ms: shorter than one CPU
    tick, so an interval of two steps holds zero or a whole tick of CPU time.
    """
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    import torch
    from transformers import Trainer, TrainingArguments

    from carbon_callbacks.transformers import CarbonCallback

    class Linear(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(4, 1)

        def forward(self, x: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"loss": ((self.layer(x).squeeze(-1) - labels) ** 2).mean()}

    torch.manual_seed(0)
    inputs = torch.randn(800, 4)
    data = [{"x": row, "labels": row.sum()} for row in inputs]
    args = TrainingArguments(
        output_dir=str(tmp_path), num_train_epochs=1, per_device_train_batch_size=4,
        use_cpu=True, report_to=[], disable_tqdm=True, save_strategy="no", logging_steps=2,
    )  # fmt: skip
    trainer = Trainer(
        model=Linear(),
        args=args,
        train_dataset=data,  # a list of examples is a map dataset
        callbacks=[CarbonCallback(cpu_watts=WATTS_PER_CORE, intensity_g_per_kwh=100)],
    )
    trainer.train()
    entries = [entry for entry in trainer.state.log_history if "carbon/energy_kwh" in entry]
    powers = [entry["carbon/power_w"] for entry in entries if "carbon/power_w" in entry]
    ceiling = (os.cpu_count() or 1) * WATTS_PER_CORE
    assert len(entries) >= 100 and powers  # 100 logging steps; power once resolved
    assert all(0 < watts <= ceiling for watts in powers), (ceiling, powers)
