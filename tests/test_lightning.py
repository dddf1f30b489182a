"""The Lightning callback in real (tiny, CPU) training runs against a fake RAPL counter.

The model's steps advance the fake counter by known amounts, and nothing else changes it, so the
logged energy of every epoch, phase and run is known exactly.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from pytest_httpserver import HTTPServer
from torch.utils.data import DataLoader, TensorDataset

from carbon_callbacks import CarbonCallbacksWarning, read_run_log
from carbon_callbacks.intensity.providers.uk import URL_ENV as UK_URL_ENV
from carbon_callbacks.lightning import CarbonCallback
from carbon_callbacks.reporting.report import build_report
from carbon_callbacks.reporting.text import format_report
from tests.conftest import CHILD_TIMEOUT_S, sampler_threads
from tests.intensity.uk_payloads import serve_dip, wait_for_live
from tests.meters.fake_powercap import FakePowercap
from tests.meters.fake_pynvml import FakeGpu, FakePynvml, install

ROOT = Path(__file__).resolve().parents[1]
UJ = 1_000_000  # microjoules per joule
KWH = 3.6e6  # joules per kWh
INTENSITY = 100.0  # gCO2e/kWh
P = "carbon/"

pytestmark = pytest.mark.filterwarnings(
    "ignore::lightning.fabric.utilities.warnings.PossibleUserWarning"
)

StepHook = Callable[["TinyModel", int], None]


def data(samples: int) -> DataLoader[Any]:
    generator = torch.Generator().manual_seed(samples)
    x = torch.randn(samples, 4, generator=generator)
    return DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=8)


class TinyModel(L.LightningModule):
    """4 training batches of 8 an epoch, 2 validation batches (``limit_val_batches=0``: none)."""

    def __init__(self, on_train: StepHook | None = None, on_val: StepHook | None = None) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)
        self.on_train = on_train
        self.on_val = on_val

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        if self.on_train is not None:
            self.on_train(self, batch_idx)
        x, y = batch
        return torch.nn.functional.mse_loss(self.layer(x), y)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        if self.on_val is not None:
            self.on_val(self, batch_idx)
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.layer(x), y))

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=0.01)

    def train_dataloader(self) -> Any:
        return data(32)

    def val_dataloader(self) -> Any:
        return data(16)


def advance(powercap: FakePowercap, joules: float) -> None:
    """Advance the package counter in one atomic step: the sampler reads it concurrently, and
    ``FakePowercap.add_energy`` (truncate, then write) could let it read an empty file."""
    path = powercap.energy_path("intel-rapl:0")
    staged = path.with_name("energy_uj.new")
    staged.write_text(f"{int(path.read_text()) + round(joules * UJ)}\n")
    os.replace(staged, path)


def add_joules(powercap: FakePowercap, joules: float) -> StepHook:
    def hook(model: TinyModel, batch_idx: int) -> None:
        advance(powercap, joules)

    return hook


def callback(**options: Any) -> CarbonCallback:
    """Measures the fake RAPL tree only (no GPU even where there is one), at a known intensity."""
    settings: dict[str, Any] = {"gpu_ids": [], "intensity_g_per_kwh": INTENSITY}
    return CarbonCallback(**(settings | options))


def fit(
    tmp_path: Path,
    carbon: CarbonCallback,
    model: TinyModel,
    ckpt_path: str | None = None,
    **options: Any,
) -> tuple[Any, list[dict[str, str]]]:
    """Fit (2 epochs, no validation unless told) with a CSVLogger; return it and metrics.csv."""
    logger = CSVLogger(tmp_path / "logs", name="", version=options.pop("version", 0))
    settings = {
        "max_epochs": 2,
        "limit_val_batches": 0,
        "logger": logger,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "enable_checkpointing": False,
    } | options
    settings["callbacks"] = [carbon, *options.get("callbacks", [])]
    trainer = L.Trainer(**settings)
    trainer.fit(model, ckpt_path=ckpt_path)
    return trainer, read_rows(logger)


def read_rows(logger: Any) -> list[dict[str, str]]:
    with open(Path(logger.log_dir) / "metrics.csv", newline="") as file:
        return list(csv.DictReader(file))


def epoch_rows(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [row for row in rows if row.get(P + "epoch_energy_kwh")]


def direct_rows(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """Rows the callback wrote to the logger itself: step-level ones and the final totals."""
    return [row for row in rows if row.get(P + "energy_kwh") and not row.get("epoch")]


def joules(row: dict[str, str], name: str) -> float:
    return float(row[P + name]) * KWH


def run_log(carbon: CarbonCallback) -> Any:
    assert carbon.monitor.tracker is not None and carbon.monitor.tracker.log_path is not None
    return read_run_log(carbon.monitor.tracker.log_path)


def test_two_epochs_log_epochs_steps_and_validation_apart(
    powercap: FakePowercap, tmp_path: Path
) -> None:
    """1 J a training step, 0.5 J a validation step: 4 J + 1 J an epoch, 1 J in the sanity check."""
    # The sampler polls every 2 ms, so a logging step finds a new sample or (where the sampler
    # did not run since the previous one, as on a loaded machine) reads the meters itself.
    carbon = callback(prog_bar=True, log_every_n_steps=2, interval_s=0.002)
    model = TinyModel(on_train=add_joules(powercap, 1.0), on_val=add_joules(powercap, 0.5))
    trainer, rows = fit(tmp_path, carbon, model, log_every_n_steps=50, limit_val_batches=1.0)

    epochs = epoch_rows(rows)
    assert [row["epoch"] for row in epochs] == ["0", "1"]
    for row, total in zip(epochs, (6.0, 11.0), strict=True):  # the sanity check's 1 J is no epoch's
        assert joules(row, "epoch_energy_kwh") == pytest.approx(5.0, rel=1e-6)
        assert joules(row, "train_energy_kwh") == pytest.approx(4.0, rel=1e-6)
        assert joules(row, "val_energy_kwh") == pytest.approx(1.0, rel=1e-6)
        assert joules(row, "energy_kwh") == pytest.approx(total, rel=1e-6)
        assert float(row[P + "co2e_kg"]) == pytest.approx(total / KWH * INTENSITY / 1000, rel=1e-6)
        assert float(row[P + "power_w"]) > 0
        assert row[P + "estimated"] == "0.0"

    direct = direct_rows(rows)
    # every 2nd optimizer step at Lightning's own logging step, then the final totals
    assert [row["step"] for row in direct] == ["1", "3", "5", "7", "8"]
    for row in direct[:-1]:  # every logging step has its interval, sampled or read
        assert row[P + "power_w"], row["step"]
        assert float(row[P + "power_w"]) >= 0
        per_step, per_sample = (
            float(row[P + n]) for n in ("energy_per_step_j", "energy_per_sample_j")
        )
        assert per_sample * 8 == pytest.approx(per_step)  # 8 samples a step
    final = direct[-1]
    assert joules(final, "energy_kwh") == pytest.approx(11.0, rel=1e-9)
    assert float(final[P + "co2e_kg"]) == pytest.approx(11.0 / KWH * INTENSITY / 1000, rel=1e-9)
    assert not final.get(P + "power_w")  # the end of fit logs totals only

    assert P + "energy_kwh" in trainer.progress_bar_metrics
    assert P + "epoch_energy_kwh" in trainer.callback_metrics  # usable as a monitor
    assert not carbon.monitor.is_running and sampler_threads() == []
    log = run_log(carbon)
    assert log.summary["status"] == "completed"
    assert log.summary["energy_j"] == pytest.approx(11.0)
    assert log.summary["steps"] == 8


def test_the_interval_follows_the_trainer_and_counts_optimizer_steps(
    powercap: FakePowercap, tmp_path: Path
) -> None:
    """With gradient accumulation a step is an optimizer step; its samples are all its batches'."""
    carbon = callback()
    trainer, rows = fit(
        tmp_path,
        carbon,
        TinyModel(on_train=add_joules(powercap, 1.0)),
        log_every_n_steps=1,
        accumulate_grad_batches=2,
    )
    assert trainer.global_step == 4
    assert [row["step"] for row in direct_rows(rows)] == ["0", "1", "2", "3", "4"]
    state = carbon.state_dict()
    assert (state["steps"], state["samples"]) == (4, 64)
    assert state["energy_j"] == pytest.approx(8.0)


@pytest.mark.parametrize(
    ("error", "status"), [(ValueError, "failed"), (KeyboardInterrupt, "interrupted")]
)
def test_a_fit_that_raises_stops_measuring(
    powercap: FakePowercap, tmp_path: Path, error: type[BaseException], status: str
) -> None:
    def fail_at_third_step(model: TinyModel, batch_idx: int) -> None:
        advance(powercap, 1.0)
        if batch_idx == 2:
            raise error("boom")

    carbon = callback()
    sigint = signal.getsignal(signal.SIGINT)
    try:
        # Lightning turns KeyboardInterrupt into SystemExit and ignores SIGINT from then on
        with pytest.raises(ValueError if error is ValueError else SystemExit):
            fit(tmp_path, carbon, TinyModel(on_train=fail_at_third_step))
    finally:
        signal.signal(signal.SIGINT, sigint)
    assert not carbon.monitor.is_running and sampler_threads() == []
    log = run_log(carbon)
    assert log.summary["status"] == status
    assert log.summary["energy_j"] == pytest.approx(3.0)
    final = direct_rows(read_rows(CSVLogger(tmp_path / "logs", name="", version=0)))[-1]
    # the totals so far reached the logger, from the sampler's latest reading (not a fresh read)
    assert 0 <= joules(final, "energy_kwh") <= 3.0


def test_early_stopping_on_the_energy_metric_ends_measuring(
    powercap: FakePowercap, tmp_path: Path
) -> None:
    carbon = callback()
    stop = EarlyStopping(monitor=P + "energy_kwh", mode="min", patience=1)
    trainer, rows = fit(
        tmp_path,
        carbon,
        TinyModel(on_train=add_joules(powercap, 1.0)),
        max_epochs=10,
        callbacks=[stop],
    )
    assert trainer.current_epoch == 2 and stop.stopped_epoch == 1  # energy only ever grows
    assert len(epoch_rows(rows)) == 2
    assert not carbon.monitor.is_running and sampler_threads() == []
    assert run_log(carbon).summary["status"] == "completed"


def test_a_resumed_fit_continues_the_checkpointed_totals(
    powercap: FakePowercap, tmp_path: Path
) -> None:
    checkpoints = tmp_path / "checkpoints"
    first = callback()
    fit(
        tmp_path,
        first,
        TinyModel(on_train=add_joules(powercap, 1.0)),
        max_epochs=1,
        enable_checkpointing=True,
        callbacks=[ModelCheckpoint(dirpath=checkpoints)],
    )
    (path,) = checkpoints.glob("*.ckpt")
    saved = torch.load(path, weights_only=True)["callbacks"]["CarbonCallback"]
    assert saved["energy_j"] == pytest.approx(4.0) and saved["steps"] == 4

    resumed = callback()
    _, rows = fit(
        tmp_path,
        resumed,
        TinyModel(on_train=add_joules(powercap, 1.0)),
        ckpt_path=str(path),
        version=1,
    )
    (epoch,) = epoch_rows(rows)  # only epoch 1 ran
    assert epoch["epoch"] == "1"
    assert joules(epoch, "epoch_energy_kwh") == pytest.approx(4.0, rel=1e-6)
    assert joules(epoch, "energy_kwh") == pytest.approx(8.0, rel=1e-6)
    assert joules(direct_rows(rows)[-1], "energy_kwh") == pytest.approx(8.0, rel=1e-9)
    assert run_log(resumed).summary["energy_j"] == pytest.approx(4.0)  # this run's own share
    assert resumed.state_dict()["steps"] == 8


class Preempted(Exception):
    """Stands in for a job killed part-way (a preemption, a node failure)."""


def test_a_resumed_fit_is_one_training_and_forecasts_are_compared_like_with_like(
    powercap: FakePowercap, tmp_path: Path
) -> None:
    """3 epochs of 4 steps at 1 J a step, cut after epoch 0 and resumed in a new callback.

    The first run's steps take 0.5 s each, the resumed run's 0.05 s, so the first run's time is
    far longer than the resumed run's: a forecast of the whole training must count it, and one
    of the resumed run alone must not.
    """
    runs, checkpoints = tmp_path / "runs", tmp_path / "checkpoints"

    def step(model: TinyModel, batch_idx: int, seconds: float = 0.5) -> None:
        advance(powercap, 1.0)
        time.sleep(seconds)  # the steps' work (not synchronisation): slow in the first run

    def until_preempted(model: TinyModel, batch_idx: int) -> None:
        if model.current_epoch == 1:
            raise Preempted  # after epoch 0's checkpoint
        step(model, batch_idx)

    first = callback(output_dir=runs, warmup_steps=0)
    with pytest.raises(Preempted):
        fit(
            tmp_path,
            first,
            TinyModel(on_train=until_preempted),
            max_epochs=3,
            enable_checkpointing=True,
            callbacks=[ModelCheckpoint(dirpath=checkpoints)],
        )
    (path,) = checkpoints.glob("*.ckpt")
    saved = torch.load(path, weights_only=True)["callbacks"]["CarbonCallback"]
    first_id = run_log(first).header["run_id"]
    assert saved["run_id"] == first_id and saved["steps"] == 4
    assert saved["duration_s"] >= 4 * 0.5

    resumed = callback(output_dir=runs, warmup_steps=0)
    _, rows = fit(
        tmp_path,
        resumed,
        TinyModel(on_train=lambda model, batch_idx: step(model, batch_idx, 0.05)),
        ckpt_path=str(path),
        max_epochs=3,
        version=1,
    )
    log = run_log(resumed)
    assert log.resume is not None and log.resume["resumes"] == first_id
    assert log.resume["steps"] == 4 and log.resume["energy_kwh"] * KWH == pytest.approx(4.0)
    # the forecast at epoch 1's end (none is made once every planned step has run); energy and
    # duration both cover the whole training, the earlier run included
    last = [row for row in epoch_rows(rows) if row.get(P + "predicted_energy_kwh")][-1]
    assert joules(last, "predicted_energy_kwh") == pytest.approx(12.0, rel=0.05)
    assert float(last[P + "predicted_duration_s"]) >= saved["duration_s"]

    report = build_report(runs)
    (training,) = report.trainings
    assert [run.run_ids[0] for run in training.segments] == [first_id, log.header["run_id"]]
    assert training.energy_kwh is not None and training.energy_kwh * KWH == pytest.approx(12.0)
    assert training.steps == 12 and training.status == "completed"
    whole = training.predictions[0]  # made in the first run, for the whole 12 steps
    assert whole.total_steps == 12 and whole.actual_complete
    assert whole.actual_energy_kwh is not None
    assert whole.actual_energy_kwh * KWH == pytest.approx(12.0)  # beside the whole training
    (segment,) = [run for run in report.runs if run.resume is not None]
    latest = segment.predictions[-1]  # the resumed run's own part, beside its own figures
    assert latest.total_steps == 8
    assert latest.actual_energy_kwh is not None and latest.actual_energy_kwh * KWH == pytest.approx(
        8.0
    )
    record = log.predictions[-1]  # the whole training's forecast, with the earlier part stated
    earlier = record["resumed"]
    assert earlier["steps"] == 4 and earlier["duration_s"] == saved["duration_s"]
    assert earlier["energy_kwh"] * KWH == pytest.approx(4.0)
    assert latest.energy_kwh[1] == pytest.approx(record["energy_kwh"][1] - earlier["energy_kwh"])
    assert latest.duration_s[1] == pytest.approx(record["duration_s"][1] - earlier["duration_s"])
    shown = "\n".join(format_report(report))
    assert "resumed from checkpoints" in shown and "segment 2 of 2" in shown


def test_a_counter_that_vanishes_mid_training_never_fails_the_fit(
    powercap: FakePowercap, tmp_path: Path
) -> None:
    def remove_counter(model: TinyModel, batch_idx: int) -> None:
        if model.current_epoch == 0 and batch_idx == 1:
            powercap.remove("intel-rapl:0")

    carbon = callback(log_every_n_steps=1)
    # the package counter's own fault, not the stall warning the never-moving DRAM counter gets
    # once 5 s have passed (which a loaded machine can take before this point)
    with pytest.warns(CarbonCallbacksWarning, match="cpu:package-0: cannot read"):
        trainer, rows = fit(tmp_path, carbon, TinyModel(on_train=remove_counter))
    assert trainer.state.finished and trainer.current_epoch == 2
    assert len(epoch_rows(rows)) == 2
    assert not carbon.monitor.is_running and sampler_threads() == []
    summary = run_log(carbon).summary
    assert summary["status"] == "completed" and summary["partial"] is True
    assert next(c for c in summary["channels"] if c["id"] == "cpu:package-0")["partial"]


def test_the_pytorch_lightning_package_has_its_own_callback(
    powercap: FakePowercap, tmp_path: Path
) -> None:
    import pytorch_lightning as pl

    from carbon_callbacks.pytorch_lightning import CarbonCallback as PLCarbonCallback

    class PLModel(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(4, 1)

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            advance(powercap, 1.0)
            x, y = batch
            return torch.nn.functional.mse_loss(self.layer(x), y)

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.01)

        def train_dataloader(self) -> Any:
            return data(32)

    carbon = PLCarbonCallback(gpu_ids=[], intensity_g_per_kwh=INTENSITY)
    assert not isinstance(carbon, L.Callback) and isinstance(carbon, pl.Callback)
    trainer = pl.Trainer(
        max_epochs=1,
        callbacks=[carbon],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    trainer.fit(PLModel())
    assert float(trainer.callback_metrics[P + "energy_kwh"]) * KWH == pytest.approx(4.0, rel=1e-6)
    assert not carbon.monitor.is_running and sampler_threads() == []


def test_each_flavour_imports_only_its_own_lightning_package() -> None:
    check = "import sys, carbon_callbacks.{} as _; assert {!r} not in sys.modules, 'imported'"
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", check.format(module, other)],
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        for module, other in (
            ("lightning", "pytorch_lightning"),
            ("pytorch_lightning", "lightning"),
        )
    ]
    for run in runs:
        _, stderr = run.communicate(timeout=CHILD_TIMEOUT_S)
        assert run.returncode == 0, stderr


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"country": "Narnia"}, ValueError, "Narnia"),
        ({"log_every_n_steps": -1}, ValueError, "log_every_n_steps"),
        ({"log_every_n_steps": 2.5}, ValueError, "log_every_n_steps"),
        ({"prefix": 3}, TypeError, "prefix"),
        ({"no_such_option": 1}, TypeError, "no_such_option"),
    ],
)
def test_a_bad_option_fails_at_construction(
    options: dict[str, Any], error: type[Exception], match: str
) -> None:
    from carbon_callbacks.pytorch_lightning import CarbonCallback as PLCarbonCallback

    for flavour in (CarbonCallback, PLCarbonCallback):
        with pytest.raises(error, match=match):
            flavour(**options)


def test_a_cpu_fit_on_a_gpu_machine_measures_no_gpu(
    powercap: FakePowercap, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The trainer uses the CPU: the two visible (fake) GPUs are not its energy."""
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    gpus = [FakeGpu(f"GPU-{n}aaaaaaa-1111-2222-3333-444444444444", power_w=300.0) for n in (1, 2)]
    install(monkeypatch, FakePynvml(gpus))
    carbon = CarbonCallback(intensity_g_per_kwh=INTENSITY)  # no gpu_ids: the trainer's devices
    fit(tmp_path, carbon, TinyModel(on_train=add_joules(powercap, 1.0)), accelerator="cpu")
    header = run_log(carbon).header
    assert [c["id"] for c in header["channels"]] == ["cpu:package-0", "dram:package-0"]
    assert carbon.monitor.final_metrics[P + "energy_kwh"] * KWH == pytest.approx(8.0)


def test_ddp_on_cpu_counts_the_host_once(powercap: FakePowercap, tmp_path: Path) -> None:
    """Two ranks on one host: rank 0 alone measures it, and the logged totals are summed once."""
    joules_added = 36.0
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tests" / "lightning_ddp_run.py"),
            "--root", str(tmp_path / "logs"),
            "--counter", str(powercap.energy_path("intel-rapl:0")),
            "--joules", str(joules_added),
        ],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=CHILD_TIMEOUT_S,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert output.count("carbon-callbacks: training completed") == 1
    assert "total (all 2 ranks): 10 mWh" in output
    assert "sync_dist" not in output  # no Lightning warning about our (already summed) metrics

    rows = read_rows(CSVLogger(tmp_path / "logs", name="", version=0))
    epochs = epoch_rows(rows)
    assert [row["epoch"] for row in epochs] == ["0", "1"]
    assert joules(epochs[0], "epoch_energy_kwh") == pytest.approx(joules_added, rel=1e-6)
    assert joules(epochs[0], "train_energy_kwh") == pytest.approx(joules_added, rel=1e-6)
    assert joules(epochs[0], "val_energy_kwh") == 0  # validation ran on both ranks, used nothing
    assert joules(epochs[1], "epoch_energy_kwh") == 0
    assert joules(epochs[1], "energy_kwh") == pytest.approx(joules_added, rel=1e-6)
    direct = direct_rows(rows)
    assert [row["step"] for row in direct] == ["0", "1", "2", "3", "4"]  # once, not per rank
    assert joules(direct[-1], "energy_kwh") == pytest.approx(joules_added, rel=1e-9)

    logs: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}
    for path in (tmp_path / "runs").glob("*.jsonl"):
        log = read_run_log(path)
        assert log.header is not None and log.summary is not None
        rank = log.header["context"]["distributed"]
        assert rank["world_size"] == 2 and log.summary["status"] == "completed"
        logs[rank["global_rank"]] = (log.header, log.summary)
    assert sorted(logs) == [0, 1]
    (header0, summary0), (header1, summary1) = logs[0], logs[1]
    assert {c["id"] for c in header0["channels"]} == {"cpu:package-0", "dram:package-0"}
    assert summary0["energy_j"] == pytest.approx(joules_added)
    assert header1["channels"] == []  # RAPL is rank 0's, no GPU: rank 1 measures nothing
    assert header0["run_id"] == header1["run_id"] == summary1["run_id"]  # rank 0's, shared
    assert summary1["energy_j"] is None


def test_a_budget_stops_both_ddp_ranks_at_the_same_step(
    powercap: FakePowercap, tmp_path: Path
) -> None:
    """1 J a step on rank 0's host: the summed total first passes 2.5 J at global step 3."""
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tests" / "lightning_ddp_run.py"),
            "--root", str(tmp_path / "logs"),
            "--counter", str(powercap.energy_path("intel-rapl:0")),
            "--joules", "1", "--every-step", "--budget-joules", "2.5", "--max-epochs", "5",
        ],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=CHILD_TIMEOUT_S,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "rank 0 stopped at step 3" in output and "rank 1 stopped at step 3" in output
    assert "budget reached" in output
    summaries = [read_run_log(p).summary for p in (tmp_path / "runs").glob("*.jsonl")]
    assert [s["status"] if s else None for s in summaries] == ["completed", "completed"]


def test_the_example_trains_and_prints_the_summary(tmp_path: Path) -> None:
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, str(ROOT / "integrations" / "lightning_example.py"), "--max-epochs", "1",
         "--json", str(tmp_path / "summary.json")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=CHILD_TIMEOUT_S,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "carbon-callbacks: training completed" in output
    assert "energy:" in output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["energy_j"] > 0


def test_the_benchmark_produces_figures() -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import bench_lightning

    results = bench_lightning.run(steps=4, rounds=1, hook_calls=200)
    assert set(results["median_us_per_step"]) == {"none", "empty", "ours"}
    assert all(value > 0 for value in results["median_us_per_step"].values())
    assert results["hook_ns"]["ours"] > 0 and results["step_metrics_us"] > 0
    assert "CarbonCallback" in bench_lightning.table(results)


def test_a_budget_stops_the_fit_at_the_step_that_reaches_it(
    powercap: FakePowercap, tmp_path: Path
) -> None:
    # 1 J a step; the meters are read at every logging step (no sample arrives on its own), so
    # the 6th step's 6 J is the first total over 5.5 J.
    carbon = callback(
        max_energy_kwh=5.5 / KWH, on_budget="stop", log_every_n_steps=1, interval_s=60.0
    )
    with pytest.warns(CarbonCallbacksWarning, match="budget reached"):
        trainer, _ = fit(
            tmp_path, carbon, TinyModel(on_train=add_joules(powercap, 1.0)), max_epochs=5
        )
    assert trainer.global_step == 6
    assert run_log(carbon).summary["status"] == "completed"
    assert sampler_threads() == []


@pytest.mark.parametrize("summary", [True, False])
def test_summary_false_prints_neither_the_forecast_nor_the_summary(
    powercap: FakePowercap, tmp_path: Path, caplog: pytest.LogCaptureFixture, summary: bool
) -> None:
    """The forecast is logged either way; only its one-line announcement is silenced."""
    carbon = callback(summary=summary, warmup_steps=0)
    with caplog.at_level(logging.INFO):
        _, rows = fit(tmp_path, carbon, TinyModel(on_train=add_joules(powercap, 1.0)), max_epochs=4)
    assert any(row.get(P + "predicted_energy_kwh") for row in rows)
    shown = caplog.text
    assert ("predicted for" in shown) == summary, shown
    assert ("carbon-callbacks: training completed" in shown) == summary, shown


class LongerEpochs(TinyModel):
    """20 training batches an epoch instead of 4."""

    def train_dataloader(self) -> Any:
        return data(160)


def test_a_logged_forecast_is_never_below_the_energy_used(
    powercap: FakePowercap, tmp_path: Path
) -> None:
    """1 J a step in epoch 0, then 10 J: the forecast made at the end of epoch 0 (60 J for the
    run) is passed 6 steps into epoch 1. Every logging step must give a forecast made from its
    own figures, whose low end is at least the energy already used."""

    def burn(model: TinyModel, batch_idx: int) -> None:
        advance(powercap, 1.0 if model.current_epoch == 0 else 10.0)

    carbon = callback(log_every_n_steps=1, interval_s=0.002, warmup_steps=0)
    _, rows = fit(tmp_path, carbon, LongerEpochs(on_train=burn), max_epochs=3)
    logged = [row for row in direct_rows(rows) if row.get(P + "predicted_energy_kwh")]
    in_epoch_1 = [row for row in logged if 20 < int(row["step"]) < 40]
    assert len(in_epoch_1) >= 15  # the forecast is logged at (nearly) every step after epoch 0
    for row in logged:
        used = joules(row, "energy_kwh")
        assert joules(row, "predicted_energy_kwh_low") >= used * (1 - 1e-12), row["step"]
        assert joules(row, "predicted_energy_kwh") >= used, row["step"]


@pytest.mark.parametrize(
    ("saving", "summary", "hinted"), [(0.6, True, True), (0.6, False, False), (0.1, True, False)]
)
def test_the_forecast_says_when_a_later_start_would_have_been_much_cleaner(
    powercap: FakePowercap,
    httpserver: HTTPServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    saving: float,
    summary: bool,
    hinted: bool,
) -> None:
    """Live UK data whose forecast drops by ``saving`` 10 minutes on: a line under the forecast
    from a fifth on, unless ``summary=False`` silences the announcement."""
    serve_dip(httpserver, saving)
    monkeypatch.setenv(UK_URL_ENV, httpserver.url_for("/"))
    carbon = CarbonCallback(gpu_ids=[], zone="GB", live=True, summary=summary, warmup_steps=0)

    def live_then_joules(model: TinyModel, batch_idx: int) -> None:
        if model.global_step == 0:  # the first forecast comes once live data is there
            wait_for_live(carbon.monitor.tracker)
        advance(powercap, 1.0)

    with caplog.at_level(logging.INFO):
        fit(tmp_path, carbon, TinyModel(on_train=live_then_joules), max_epochs=4)
    shown = caplog.text
    assert ("predicted for 16 steps" in shown) == summary, shown
    hint = f"would have emitted about {saving:.0%} less CO2e"
    assert (hint in shown) == hinted, shown
    assert shown.count("would have emitted") == (1 if hinted else 0)


def test_the_summary_names_the_run_log_by_its_absolute_path(
    powercap: FakePowercap,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Ray runs each worker in a folder of its own: a relative ``output_dir`` lands there."""
    worker = tmp_path / "ray-session" / "worker"
    worker.mkdir(parents=True)
    monkeypatch.chdir(worker)
    carbon = callback(output_dir="carbon-runs")
    with caplog.at_level(logging.INFO):
        fit(tmp_path, carbon, TinyModel(on_train=add_joules(powercap, 1.0)))
    path = carbon.monitor.tracker.log_path if carbon.monitor.tracker is not None else None
    assert path is not None and path.is_absolute()
    assert path.parent == worker / "carbon-runs"
    assert f"  run log: {path}" in caplog.text.splitlines(), caplog.text
    header = run_log(carbon).header
    assert header is not None and header["log_dir"] == str(worker / "carbon-runs")
