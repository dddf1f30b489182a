"""Concurrency: several trackers, worker processes and repeated fits in one process.

Energy comes from the fake RAPL tree, advanced by known amounts at known moments, so every figure
is exact. What this proves:

- Two trackers running at once (nested, overlapping, a callback's fit with a ``with Tracker()``
  around an evaluation) each measure exactly their own span and steps, and share one sampler
  thread; the thread ends with the last of them.
- DataLoader workers started with ``fork`` or ``spawn`` during a measured Lightning fit run no
  sampler, write no run log and change no figure; a tracker started in a forked child measures on
  its own.
- A callback object reused for a second fit (Lightning, Keras, Hugging Face) writes a second,
  complete run log whose totals are that fit's own.
- A Lightning fit restarted from its checkpoint in the same process continues the checkpoint's
  totals, and every run log is complete.
"""

from __future__ import annotations

import json
import os
import signal
import time
import warnings
from pathlib import Path
from typing import Any

import keras
import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader
from transformers import Trainer

from carbon_callbacks import CarbonCallbacksWarning, Tracker, read_run_log
from carbon_callbacks.keras import CarbonCallback as KerasCallback
from carbon_callbacks.meters.nvml import NvmlMeter
from carbon_callbacks.runlog.reader import RunLog
from carbon_callbacks.tracking.measurement import Measurement
from carbon_callbacks.transformers import CarbonCallback as HFCallback
from tests.conftest import sampler_threads
from tests.meters.fake_powercap import FakePowercap
from tests.meters.fake_pynvml import FakeGpu, FakePynvml, install
from tests.reliability.programs.worker_probe import ThreadReportingDataset, read_reports
from tests.test_keras import OPTIONS as KERAS_OPTIONS
from tests.test_keras import TRAIN_BATCHES, TRAIN_J, VAL_BATCHES, VAL_J, Burn, make_model
from tests.test_keras import data as keras_data
from tests.test_keras import fit as keras_fit
from tests.test_lightning import (
    INTENSITY,
    KWH,
    P,
    TinyModel,
    add_joules,
    advance,
    callback,
    data,
    direct_rows,
    epoch_rows,
    fit,
    joules,
)
from tests.test_transformers import STEP_UJ, Recorder, TokenDataset, tiny_model, training_args

pytestmark = pytest.mark.filterwarnings(
    "ignore::lightning.fabric.utilities.warnings.PossibleUserWarning"
)

SAMPLER = "carbon-callbacks-sampler"
OPTIONS: dict[str, Any] = {"gpu_ids": [], "intensity_g_per_kwh": INTENSITY}


def co2e_kg(joules_: float) -> float:
    """The CO2e of ``joules_`` at the constant test intensity."""
    return joules_ / KWH * INTENSITY / 1000


def run_logs(folder: Path) -> list[RunLog]:
    """Every run log in ``folder``, in the order the runs started."""
    logs = [read_run_log(path) for path in folder.glob("*.jsonl")]
    for log in logs:
        assert log.header is not None and log.problems == [], (log.path, log.problems)
    return sorted(logs, key=lambda log: log.header["started_unix"])  # type: ignore[index]


def record_types(log: RunLog) -> list[str]:
    """The type of every record in the file, in order (the reader files them by type)."""
    return [json.loads(line)["type"] for line in log.path.read_text().splitlines()]


def check_complete(log: RunLog, status: str = "completed") -> dict[str, Any]:
    """One header first, one summary last with ``status``; returns the summary."""
    types = record_types(log)
    assert types[0] == "header" and types.count("header") == 1
    assert types[-1] == "summary" and types.count("summary") == 1
    assert log.summary is not None and log.summary["status"] == status
    return log.summary


def check_samples(log: RunLog, most_steps: int) -> None:
    """The log's samples lie inside its own run and count its own steps (never another's)."""
    assert log.samples
    for record in log.samples:
        assert min(record["t_s"]) >= 0, f"samples from before the run started: {record['t_s']}"
        assert set(record["steps"]) <= set(range(most_steps + 1)), record["steps"]


def steps_in_timeline(tracker: Tracker) -> set[int]:
    """Every step count the tracker's timeline holds."""
    return {steps for _, steps, _ in tracker.step_timeline()}


# -- two trackers in one process ---------------------------------------------------------------


def test_a_nested_tracker_shares_the_sampler_and_both_measure_exactly(
    powercap: FakePowercap, tmp_path: Path
) -> None:
    outer = Tracker(**OPTIONS).start()
    outer.step(3)
    advance(powercap, 2.0)
    with Tracker(**OPTIONS) as inner:
        assert len(sampler_threads()) == 1  # one thread polls for both
        advance(powercap, 5.0)
        inner.step(2)
        inner.so_far(exact=True)  # a sample on the shared timeline: each reads its own steps
        assert 2 in steps_in_timeline(inner) and steps_in_timeline(inner) <= {0, 2}
        assert 3 in steps_in_timeline(outer) and steps_in_timeline(outer) <= {0, 3}
    assert len(sampler_threads()) == 1  # the outer one still measures
    advance(powercap, 1.0)
    outer.step()
    total = outer.stop()
    assert sampler_threads() == []

    evaluation = inner.summary
    assert evaluation is not None and total is not None
    assert evaluation.energy_j == pytest.approx(5.0, rel=1e-9)
    assert evaluation.co2e_kg == pytest.approx(co2e_kg(5.0), rel=1e-9)
    assert evaluation.steps == 2
    assert total.energy_j == pytest.approx(8.0, rel=1e-9)
    assert total.co2e_kg == pytest.approx(co2e_kg(8.0), rel=1e-9)
    assert total.steps == 4
    outer_log, inner_log = run_logs(tmp_path / "runs")
    assert check_complete(outer_log)["energy_j"] == pytest.approx(8.0, rel=1e-9)
    assert check_complete(inner_log)["energy_j"] == pytest.approx(5.0, rel=1e-9)
    check_samples(outer_log, most_steps=4)
    check_samples(inner_log, most_steps=2)


def test_overlapping_trackers_keep_the_sampler_until_the_last_one_stops(
    powercap: FakePowercap, tmp_path: Path
) -> None:
    """Three overlapping runs on one sampler (the third takes the first's freed step slot), then
    a fourth after all have stopped, on a new one."""
    first = Tracker(**OPTIONS).start()
    first.step(5)
    advance(powercap, 1.0)
    first.so_far(exact=True)
    second = Tracker(**OPTIONS).start()
    advance(powercap, 2.0)
    assert len(sampler_threads()) == 1
    first_total = first.stop()
    assert len(sampler_threads()) == 1 and second.is_running
    time.sleep(0.25)  # the shared thread goes on sampling for the second
    advance(powercap, 4.0)
    third = Tracker(**OPTIONS).start()
    assert len(sampler_threads()) == 1
    advance(powercap, 8.0)
    third.step()
    second_total = second.stop()
    assert len(sampler_threads()) == 1 and third.is_running
    third_total = third.stop()
    assert sampler_threads() == []
    assert first_total is not None and second_total is not None and third_total is not None
    assert first_total.energy_j == pytest.approx(3.0, rel=1e-9)
    assert second_total.energy_j == pytest.approx(14.0, rel=1e-9)
    assert third_total.energy_j == pytest.approx(8.0, rel=1e-9)
    assert (first_total.steps, second_total.steps, third_total.steps) == (5, 0, 1)

    fourth = Tracker(**OPTIONS).start()
    assert len(sampler_threads()) == 1
    advance(powercap, 16.0)
    fourth_total = fourth.stop()
    assert fourth_total is not None and fourth_total.energy_j == pytest.approx(16.0, rel=1e-9)
    assert sampler_threads() == []
    logs = run_logs(tmp_path / "runs")
    energies = [check_complete(log)["energy_j"] for log in logs]
    assert energies == pytest.approx([3.0, 14.0, 8.0, 16.0], rel=1e-9)
    for log, steps in zip(logs, (5, 0, 1, 0), strict=True):
        check_samples(log, most_steps=steps)


def test_trackers_with_different_meter_settings_both_measure_exactly(
    powercap: FakePowercap,
) -> None:
    slow = Tracker(**OPTIONS).start()
    fast = Tracker(**OPTIONS, interval_s=0.01).start()
    advance(powercap, 2.0)
    time.sleep(0.1)
    fast_total = fast.stop()
    advance(powercap, 1.0)
    slow_total = slow.stop()
    assert slow_total is not None and fast_total is not None
    assert fast_total.energy_j == pytest.approx(2.0, rel=1e-9)
    assert slow_total.energy_j == pytest.approx(3.0, rel=1e-9)


class EvaluateWithTracker(L.Callback):
    """At each epoch end, evaluates the model inside its own ``with Tracker()``.

    Each of the 2 evaluation batches burns ``joules`` on the fake counter.
    """

    def __init__(self, powercap: FakePowercap, joules_per_batch: float) -> None:
        self.powercap = powercap
        self.joules_per_batch = joules_per_batch
        self.measured: list[Measurement | None] = []
        self.threads: list[int] = []

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        with Tracker(**OPTIONS) as tracker, torch.no_grad():
            for x, _ in data(16):
                advance(self.powercap, self.joules_per_batch)
                pl_module.layer(x)
                tracker.step()
            self.threads.append(len(sampler_threads()))
        self.measured.append(tracker.summary)


def test_a_tracker_around_an_evaluation_inside_a_lightning_fit(
    powercap: FakePowercap, tmp_path: Path
) -> None:
    """1 J a training step (4 an epoch), 0.5 J an evaluation batch, 2 epochs: 10 J in all."""
    carbon = callback()
    evaluate = EvaluateWithTracker(powercap, 0.5)
    _, rows = fit(
        tmp_path, carbon, TinyModel(on_train=add_joules(powercap, 1.0)), callbacks=[evaluate]
    )
    assert evaluate.threads == [1, 1]
    assert [m.energy_j if m else None for m in evaluate.measured] == pytest.approx([1.0, 1.0])
    assert [m.steps if m else None for m in evaluate.measured] == [2, 2]
    epochs = epoch_rows(rows)  # the evaluation runs after our epoch end: in no epoch
    assert [joules(row, "epoch_energy_kwh") for row in epochs] == pytest.approx([4.0, 4.0])
    assert joules(direct_rows(rows)[-1], "energy_kwh") == pytest.approx(10.0, rel=1e-9)
    assert sampler_threads() == []
    fit_log, *evaluation_logs = run_logs(tmp_path / "runs")
    assert check_complete(fit_log)["energy_j"] == pytest.approx(10.0, rel=1e-9)
    assert check_complete(fit_log)["steps"] == 8
    assert [check_complete(log)["energy_j"] for log in evaluation_logs] == pytest.approx([1, 1])


class KerasEvaluateWithTracker(keras.callbacks.Callback):
    """At each epoch end, runs ``model.evaluate`` inside its own ``with Tracker()``."""

    def __init__(self, powercap: FakePowercap) -> None:
        super().__init__()
        self.powercap = powercap
        self.measured: list[Measurement | None] = []
        self.threads: list[int] = []

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        with Tracker(**OPTIONS) as tracker:
            self.model.evaluate(
                *keras_data(VAL_BATCHES, seed=1),
                batch_size=16,
                verbose=0,
                callbacks=[Burn(self.powercap)],
            )
            self.threads.append(len(sampler_threads()))
        self.measured.append(tracker.summary)


def test_a_tracker_around_an_evaluation_inside_a_keras_fit(
    powercap: FakePowercap, tmp_path: Path
) -> None:
    """Listed after ours, the evaluation (2 batches of VAL_J) falls between epoch windows."""
    evaluate = KerasEvaluateWithTracker(powercap)
    history = keras_fit(
        make_model(), [Burn(powercap), KerasCallback(**KERAS_OPTIONS), evaluate], validate=False
    )
    epoch_j, evaluation_j = TRAIN_BATCHES * TRAIN_J, VAL_BATCHES * VAL_J
    assert evaluate.threads == [1, 1]
    assert [m.energy_j if m else None for m in evaluate.measured] == pytest.approx(
        [evaluation_j, evaluation_j]
    )
    logged = [kwh * KWH for kwh in history.history[P + "epoch_energy_kwh"]]
    assert logged == pytest.approx([epoch_j, epoch_j])
    assert sampler_threads() == []
    fit_log, *evaluation_logs = run_logs(tmp_path / "runs")
    assert check_complete(fit_log)["energy_j"] == pytest.approx(2 * (epoch_j + evaluation_j))
    assert len(evaluation_logs) == 2
    for log in evaluation_logs:
        assert check_complete(log)["energy_j"] == pytest.approx(evaluation_j)


# -- other processes ---------------------------------------------------------------------------

WORKER_GPU = "GPU-0d47a10a-0000-4000-8000-000000000000"
WORKER_GPU_W = 100.0
WORKER_STEP_S = 0.01
"""A step's GPU time: 1 J at ``WORKER_GPU_W``."""


class WorkerModel(TinyModel):
    """TinyModel whose training data comes from 2 DataLoader workers of the given start method;
    each training step runs the fake GPU for ``WORKER_STEP_S`` at ``WORKER_GPU_W``."""

    def __init__(self, nvml: FakePynvml, context: str, report_dir: Path) -> None:
        super().__init__(on_train=lambda model, batch_idx: nvml.advance(WORKER_STEP_S))
        self.context = context
        self.report_dir = report_dir

    def train_dataloader(self) -> Any:
        return DataLoader(
            ThreadReportingDataset(32, self.report_dir),
            batch_size=8,
            num_workers=2,
            multiprocessing_context=self.context,
            persistent_workers=True,  # one start per worker for the whole fit: spawn is slow
        )


@pytest.mark.parametrize("context", ["fork", pytest.param("spawn", marks=pytest.mark.slow)])
def test_dataloader_workers_neither_sample_nor_log_nor_change_the_figures(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capfd: pytest.CaptureFixture[str], context: str
) -> None:
    """Measured on the fake GPU alone: its counter moves only when a step says so, and it has no
    stall rule, so the seconds that ``spawn`` workers take to import torch on a busy machine
    leave no trace (a still RAPL counter would be reported stalled after 5 s, rightly)."""
    reports = tmp_path / "reports"
    reports.mkdir()
    nvml = install(monkeypatch, FakePynvml([FakeGpu(uuid=WORKER_GPU, power_w=WORKER_GPU_W)]))
    # the GPU meter alone (measure_host=False would keep the CPU estimate: process-level)
    carbon = callback(meters=[NvmlMeter(gpu_ids=[0])])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, rows = fit(tmp_path, carbon, WorkerModel(nvml, context, reports))
    assert not [w for w in caught if issubclass(w.category, CarbonCallbacksWarning)]
    err = capfd.readouterr().err  # the workers' stderr too: they share this process's
    assert "CarbonCallbacksWarning" not in err and "Exception ignored" not in err, err

    seen = read_reports(reports)
    assert len(seen) == 2 and os.getpid() not in seen  # both workers fetched, in their processes
    assert all(SAMPLER not in names for names in seen.values()), seen
    epochs = epoch_rows(rows)
    assert [joules(row, "epoch_energy_kwh") for row in epochs] == pytest.approx([4.0, 4.0])
    assert joules(direct_rows(rows)[-1], "energy_kwh") == pytest.approx(8.0, rel=1e-9)
    (log,) = run_logs(tmp_path / "runs")
    summary = check_complete(log)
    assert summary["energy_j"] == pytest.approx(8.0, rel=1e-9) and summary["steps"] == 8
    assert [w["energy_j"] for w in log.windows] == pytest.approx([4.0, 4.0])
    assert sampler_threads() == []


def wait_for_child(pid: int, timeout_s: float = 60.0) -> int:
    """The child's exit code; a child still running after ``timeout_s`` is killed (a deadlock)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail(f"the forked child hung for {timeout_s:.0f} s")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_tracker_started_in_a_forked_child_measures_on_its_own(
    powercap: FakePowercap, tmp_path: Path
) -> None:
    """The parent's shared sampler does not exist in the child: the child gets its own.

    RAPL is machine-wide, so the parent also counts the energy burned while the child ran.
    """
    parent = Tracker(**OPTIONS).start()
    advance(powercap, 1.0)
    result = tmp_path / "child.json"
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the file, then leaves at once
        code = 1
        try:
            with Tracker(**OPTIONS, output_dir=tmp_path / "child") as child:
                threads = len(sampler_threads())
                advance(powercap, 2.0)
            summary = child.summary
            energy = None if summary is None else summary.energy_j
            result.write_text(json.dumps({"energy_j": energy, "threads": threads}))
            code = 0
        finally:
            os._exit(code)
    assert wait_for_child(pid) == 0
    reported = json.loads(result.read_text())
    assert reported == {"energy_j": pytest.approx(2.0, rel=1e-9), "threads": 1}
    advance(powercap, 4.0)
    total = parent.stop()
    assert total is not None and total.energy_j == pytest.approx(7.0, rel=1e-9)
    (parent_log,) = run_logs(tmp_path / "runs")
    assert check_complete(parent_log)["energy_j"] == pytest.approx(7.0, rel=1e-9)
    (child_log,) = run_logs(tmp_path / "child")
    assert check_complete(child_log)["energy_j"] == pytest.approx(2.0, rel=1e-9)


# -- one callback, several fits ----------------------------------------------------------------


def test_a_lightning_callback_reused_for_a_second_fit_logs_that_fit_alone(
    powercap: FakePowercap, tmp_path: Path
) -> None:
    carbon = callback()
    fit(tmp_path, carbon, TinyModel(on_train=add_joules(powercap, 1.0)), version=0)
    assert carbon.monitor.final_metrics[P + "energy_kwh"] * KWH == pytest.approx(8.0)
    assert sampler_threads() == []
    _, rows = fit(tmp_path, carbon, TinyModel(on_train=add_joules(powercap, 2.0)), version=1)
    assert carbon.monitor.final_metrics[P + "energy_kwh"] * KWH == pytest.approx(16.0)
    assert [joules(row, "energy_kwh") for row in epoch_rows(rows)] == pytest.approx([8.0, 16.0])
    assert carbon.state_dict()["steps"] == 8
    assert sampler_threads() == []
    first, second = run_logs(tmp_path / "runs")
    assert check_complete(first)["energy_j"] == pytest.approx(8.0, rel=1e-9)
    assert check_complete(second)["energy_j"] == pytest.approx(16.0, rel=1e-9)
    assert first.header["run_id"] != second.header["run_id"]  # type: ignore[index]


def test_a_keras_callback_reused_for_a_second_fit_logs_that_fit_alone(
    powercap: FakePowercap, tmp_path: Path
) -> None:
    """Per epoch: TRAIN_BATCHES x TRAIN_J of training and VAL_BATCHES x VAL_J of validation."""
    epoch_j = TRAIN_BATCHES * TRAIN_J + VAL_BATCHES * VAL_J
    carbon = KerasCallback(**KERAS_OPTIONS)
    model = make_model()
    keras_fit(model, [Burn(powercap), carbon], epochs=2)
    assert sampler_threads() == []
    history = keras_fit(model, [Burn(powercap), carbon], epochs=1)
    assert history.history[P + "energy_kwh"][-1] * KWH == pytest.approx(epoch_j)
    assert sampler_threads() == []
    first, second = run_logs(tmp_path / "runs")
    assert check_complete(first)["energy_j"] == pytest.approx(2 * epoch_j, rel=1e-9)
    assert check_complete(second)["energy_j"] == pytest.approx(epoch_j, rel=1e-9)
    assert check_complete(second)["steps"] == TRAIN_BATCHES


def test_a_transformers_callback_reused_for_a_second_train_logs_that_run_alone(
    powercap: FakePowercap, tmp_path: Path
) -> None:
    """2 J an optimizer step, 4 steps an epoch: 2 epochs, then 1 epoch on the same Trainer."""
    carbon = HFCallback(summary=False, **OPTIONS)
    monitor = carbon.monitor  # taken before training, as a user's own code might
    trainer = Trainer(
        model=tiny_model(), args=training_args(tmp_path / "out"),
        train_dataset=TokenDataset(16), callbacks=[Recorder(powercap), carbon],
    )  # fmt: skip
    trainer.train()
    assert sampler_threads() == []
    trainer.args.num_train_epochs = 1
    trainer.train()
    step_j = STEP_UJ / 1e6
    totals = [e[P + "energy_kwh"] * KWH for e in trainer.state.log_history if P + "energy_kwh" in e]
    assert totals and totals[-1] == pytest.approx(4 * step_j)  # the second run's own
    assert sampler_threads() == []
    first, second = run_logs(tmp_path / "runs")
    assert check_complete(first)["energy_j"] == pytest.approx(8 * step_j, rel=1e-9)
    assert check_complete(second)["energy_j"] == pytest.approx(4 * step_j, rel=1e-9)
    assert check_complete(second)["steps"] == 4
    assert carbon.monitor is monitor and monitor.tracker is not None
    assert monitor.tracker.summary is not None
    assert monitor.tracker.summary.energy_j == pytest.approx(4 * step_j, rel=1e-9)


# -- restarting from a checkpoint in the same process ------------------------------------------


def fail_in_epoch_1(powercap: FakePowercap) -> Any:
    """A training step that burns 1 J, and raises at the third step of epoch 1."""

    def step(model: TinyModel, batch_idx: int) -> None:
        advance(powercap, 1.0)
        if model.current_epoch == 1 and batch_idx == 2:
            raise ValueError("boom: the fit fails mid-epoch")

    return step


@pytest.mark.parametrize("same_callback", [False, True], ids=["new-callback", "same-callback"])
def test_a_lightning_fit_restarted_from_its_checkpoint_continues_the_totals(
    powercap: FakePowercap, tmp_path: Path, same_callback: bool
) -> None:
    """Epoch 0 (4 J) is checkpointed; epoch 1 fails after 3 J; the restart reruns epoch 1 (4 J)."""
    checkpoints = tmp_path / "checkpoints"
    first = callback()
    with pytest.raises(ValueError, match="boom"):
        fit(
            tmp_path, first, TinyModel(on_train=fail_in_epoch_1(powercap)),
            enable_checkpointing=True,
            callbacks=[ModelCheckpoint(dirpath=checkpoints, save_top_k=-1)],
        )  # fmt: skip
    assert sampler_threads() == []
    (checkpoint,) = checkpoints.glob("epoch=0*.ckpt")

    resumed = first if same_callback else callback()
    _, rows = fit(
        tmp_path, resumed, TinyModel(on_train=add_joules(powercap, 1.0)),
        ckpt_path=str(checkpoint), version=1,
    )  # fmt: skip
    (epoch,) = epoch_rows(rows)
    assert epoch["epoch"] == "1" and joules(epoch, "epoch_energy_kwh") == pytest.approx(4.0)
    assert resumed.monitor.final_metrics[P + "energy_kwh"] * KWH == pytest.approx(8.0)
    assert resumed.state_dict()["steps"] == 8
    assert sampler_threads() == []
    failed, restarted = run_logs(tmp_path / "runs")
    assert check_complete(failed, "failed")["energy_j"] == pytest.approx(7.0, rel=1e-9)
    assert check_complete(restarted)["energy_j"] == pytest.approx(4.0, rel=1e-9)  # its own share


def test_a_fresh_fit_after_a_resumed_one_starts_its_totals_from_zero(
    powercap: FakePowercap, tmp_path: Path
) -> None:
    """The same callback: fit 1 epoch, resume it for a second, then a new fit from scratch."""
    checkpoints = tmp_path / "checkpoints"
    carbon = callback()
    fit(
        tmp_path, carbon, TinyModel(on_train=add_joules(powercap, 1.0)), max_epochs=1,
        enable_checkpointing=True, callbacks=[ModelCheckpoint(dirpath=checkpoints)],
    )  # fmt: skip
    (checkpoint,) = checkpoints.glob("*.ckpt")
    fit(
        tmp_path, carbon, TinyModel(on_train=add_joules(powercap, 1.0)),
        ckpt_path=str(checkpoint), version=1,
    )  # fmt: skip
    assert carbon.monitor.final_metrics[P + "energy_kwh"] * KWH == pytest.approx(8.0)

    _, rows = fit(tmp_path, carbon, TinyModel(on_train=add_joules(powercap, 2.0)), version=2)
    assert carbon.monitor.final_metrics[P + "energy_kwh"] * KWH == pytest.approx(16.0)
    assert [joules(row, "energy_kwh") for row in epoch_rows(rows)] == pytest.approx([8.0, 16.0])
    assert carbon.state_dict()["steps"] == 8
    assert sampler_threads() == []
