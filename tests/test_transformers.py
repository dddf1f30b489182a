"""The Hugging Face adapter: real Trainer runs of a tiny BERT on CPU, energy from a fake RAPL tree.

A recording callback placed before ours (where report_to integrations sit) adds known energy to the
fake package counter at every optimizer step and every evaluation batch, so epoch and phase figures
can be checked exactly, and records what it receives in on_log.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any, cast

import pytest
from pytest_httpserver import HTTPServer

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from torch.utils.data import Dataset  # noqa: E402
from transformers import (  # noqa: E402
    BertConfig,
    BertForSequenceClassification,
    EarlyStoppingCallback,
    Trainer,
    TrainerCallback,
    TrainerControl,
    TrainerState,
    TrainingArguments,
)

from carbon_callbacks import CarbonCallbacksWarning, read_run_log  # noqa: E402
from carbon_callbacks.intensity.providers.uk import URL_ENV as UK_URL_ENV  # noqa: E402
from carbon_callbacks.reporting.report import build_report  # noqa: E402
from carbon_callbacks.training import METRICS, WATCHED  # noqa: E402
from carbon_callbacks.transformers import CarbonCallback  # noqa: E402
from tests.conftest import CHILD_TIMEOUT_S, sampler_threads  # noqa: E402
from tests.intensity.uk_payloads import serve_dip, wait_for_live  # noqa: E402
from tests.meters.fake_powercap import FakePowercap  # noqa: E402
from tests.meters.fake_pynvml import FakeGpu, FakePynvml, install  # noqa: E402
from tests.secret_tokens import TOKEN  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
J_PER_KWH = 3_600_000.0
STEP_UJ = 2_000_000  # 2 J per optimizer step
EVAL_UJ = 500_000  # 0.5 J per evaluation batch
SEQ = 8
BATCH = 4


class TokenDataset(Dataset):
    """Random token ids and binary labels, generated in code."""

    def __init__(self, size: int, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(1, 32, (size, SEQ), generator=generator)
        self.labels = torch.randint(0, 2, (size,), generator=generator)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict[str, Any]:
        ids = self.ids[index]
        return {
            "input_ids": ids,
            "attention_mask": torch.ones_like(ids),
            "labels": self.labels[index],
        }


class FailingBert(BertForSequenceClassification):
    """Raises from forward once ``fail_after`` more batches have gone through."""

    fail_after: int | None = None

    def forward(self, input_ids: Any = None, attention_mask: Any = None, labels: Any = None) -> Any:
        if self.fail_after is not None:
            if self.fail_after == 0:
                raise RuntimeError("boom: the model failed mid-epoch")
            self.fail_after -= 1
        return super().forward(input_ids=input_ids, attention_mask=attention_mask, labels=labels)


def tiny_model() -> FailingBert:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=32, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=16, max_position_embeddings=16, num_labels=2,
    )  # fmt: skip
    return FailingBert(config)


def training_args(output_dir: Path, **overrides: Any) -> TrainingArguments:
    options: dict[str, Any] = {
        "output_dir": str(output_dir), "num_train_epochs": 2, "per_device_train_batch_size": BATCH,
        "per_device_eval_batch_size": BATCH, "use_cpu": True, "report_to": [],
        "disable_tqdm": True, "save_strategy": "no", "logging_steps": 2,
        "dataloader_num_workers": 0,
    }  # fmt: skip
    return TrainingArguments(**(options | overrides))


def add_energy(powercap: FakePowercap, microjoules: int) -> None:
    """Advance the package counter by replacing its file whole, as the sampler reads concurrently
    (``FakePowercap.add_energy`` truncates then writes, which a concurrent read can see empty)."""
    path = powercap.energy_path("intel-rapl:0")
    if not path.exists():  # removed by a fault test
        return
    staged = path.with_name("energy_uj.new")
    staged.write_text(f"{int(path.read_text()) + microjoules}\n")
    os.replace(staged, path)


class Recorder(TrainerCallback):
    """Sits before ours: feeds the fake counter and records every on_log it receives."""

    def __init__(self, powercap: FakePowercap | None = None) -> None:
        self.powercap = powercap
        self.logs: list[dict[str, float]] = []

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.powercap is not None:
            add_energy(self.powercap, STEP_UJ)

    def on_prediction_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.powercap is not None:
            add_energy(self.powercap, EVAL_UJ)

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
        self.logs.append(dict(logs))


def carbon_entries(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [entry for entry in history if any(key.startswith("carbon/") for key in entry)]


def epoch_entries(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [entry for entry in history if "carbon/epoch_energy_kwh" in entry]


def joules(entry: dict[str, Any], name: str) -> float:
    return float(entry[f"carbon/{name}"]) * J_PER_KWH


def test_metrics_reach_log_history_and_an_earlier_callback(
    powercap: FakePowercap, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recorder = Recorder(powercap)
    trainer = Trainer(
        model=tiny_model(),
        args=training_args(tmp_path, eval_strategy="epoch", include_num_input_tokens_seen=True),
        train_dataset=TokenDataset(16),  # 4 steps per epoch
        eval_dataset=TokenDataset(8, seed=1),  # 2 evaluation batches
        callbacks=[recorder, CarbonCallback(intensity_g_per_kwh=100)],
    )
    trainer.train()
    history = trainer.state.log_history

    epochs = epoch_entries(history)
    assert [entry["epoch"] for entry in epochs] == [1.0, 2.0]  # epoch 0 included
    for entry in epochs:
        assert joules(entry, "epoch_energy_kwh") == pytest.approx(4 * 2.0 + 2 * 0.5)
        assert joules(entry, "val_energy_kwh") == pytest.approx(2 * 0.5)
        assert joules(entry, "train_energy_kwh") == pytest.approx(4 * 2.0)
        assert entry["carbon/estimated"] == 0.0
        assert entry["carbon/intensity_g_per_kwh"] == pytest.approx(100)
        assert entry["carbon/co2e_kg"] == pytest.approx(entry["carbon/energy_kwh"] * 0.1)
    assert joules(epochs[-1], "energy_kwh") == pytest.approx(2 * 9.0)

    steps = [entry for entry in carbon_entries(history) if entry not in epochs]
    assert [entry["step"] for entry in steps] == [2, 4, 6, 8]  # the trainer's logging steps
    intervals = [entry for entry in steps if "carbon/energy_per_step_j" in entry]
    assert [entry["step"] for entry in intervals] == [2, 4, 6, 8]  # the first from the start
    for entry in intervals:
        per_sample = entry["carbon/energy_per_step_j"] / BATCH
        assert entry["carbon/energy_per_sample_j"] == pytest.approx(per_sample)
        assert entry["carbon/energy_per_token_j"] == pytest.approx(per_sample / SEQ)

    # In the trainer's own log of the same step (one entry), and seen by a callback placed before
    # ours (where report_to integrations sit) exactly as log_history holds it: every metric.
    assert all("loss" in entry for entry in steps if "carbon/energy_per_step_j" in entry)
    received = carbon_entries(recorder.logs)
    assert received == [
        {k: v for k, v in e.items() if k != "step"} for e in carbon_entries(history)
    ]
    # The console (transformers' printer, after every user callback) gets the watched few.
    console = capsys.readouterr()
    printed = [line for line in console.out.splitlines() if "carbon/" in line]
    assert len(printed) == len(carbon_entries(history))
    for line in printed:
        names = {name for name in METRICS if f"'carbon/{name}'" in line}
        assert names and names <= set(WATCHED), line
    assert sampler_threads() == []
    assert "carbon-callbacks: training completed" in console.err


@pytest.mark.parametrize("eval_strategy", ["no", "epoch"])
def test_epoch_logging_strategy(powercap: FakePowercap, tmp_path: Path, eval_strategy: str) -> None:
    args = training_args(tmp_path, logging_strategy="epoch", eval_strategy=eval_strategy)
    trainer = Trainer(
        model=tiny_model(), args=args, train_dataset=TokenDataset(16),
        eval_dataset=TokenDataset(8, seed=1), callbacks=[Recorder(powercap), CarbonCallback()],
    )  # fmt: skip
    trainer.train()
    history = trainer.state.log_history
    val_j = 2 * 0.5 if eval_strategy == "epoch" else 0.0
    epochs = epoch_entries(history)
    assert [entry["epoch"] for entry in epochs] == [1.0, 2.0]
    for entry in epochs:
        assert joules(entry, "epoch_energy_kwh") == pytest.approx(4 * 2.0 + val_j)
    # The trainer's epoch log carries our interval metrics (and the epoch's own figures when no
    # evaluation follows: with one, those come after it).
    logged = [entry for entry in history if "loss" in entry]
    assert len(logged) == 2
    assert all("carbon/energy_per_sample_j" in entry for entry in logged[1:])
    assert all(("carbon/epoch_energy_kwh" in entry) is (eval_strategy == "no") for entry in logged)


def test_added_after_construction_with_evaluation_inside_epochs(
    powercap: FakePowercap, tmp_path: Path
) -> None:
    recorder = Recorder(powercap)
    trainer = Trainer(
        model=tiny_model(),
        args=training_args(tmp_path, eval_strategy="steps", eval_steps=2),
        train_dataset=TokenDataset(16),
        eval_dataset=TokenDataset(8, seed=1),
        callbacks=[recorder],
    )
    trainer.add_callback(CarbonCallback(summary=False))
    trainer.train()

    epochs = epoch_entries(trainer.state.log_history)
    assert [entry["epoch"] for entry in epochs] == [1.0, 2.0]
    for entry in epochs:  # two evaluations per epoch, after steps 2 and 4 of it
        assert joules(entry, "val_energy_kwh") == pytest.approx(2 * 2 * 0.5)
        assert joules(entry, "train_energy_kwh") == pytest.approx(4 * 2.0)
    assert carbon_entries(recorder.logs)


def test_early_stopping_mid_epoch_closes_the_epoch_and_the_run(
    powercap: FakePowercap, tmp_path: Path
) -> None:
    args = training_args(
        tmp_path, num_train_epochs=3, eval_strategy="steps", eval_steps=2,
        metric_for_best_model="eval_loss",
    )  # fmt: skip
    trainer = Trainer(
        model=tiny_model(),
        args=args,
        train_dataset=TokenDataset(32),  # 8 steps per epoch
        eval_dataset=TokenDataset(8, seed=1),
        callbacks=[
            Recorder(powercap),
            EarlyStoppingCallback(early_stopping_patience=1, early_stopping_threshold=1e9),
            CarbonCallback(summary=False),
        ],
    )
    trainer.train()
    assert trainer.state.global_step == 4  # stopped at the second evaluation
    (epoch,) = epoch_entries(trainer.state.log_history)
    assert epoch["epoch"] == 0.5
    assert joules(epoch, "val_energy_kwh") == pytest.approx(2 * 2 * 0.5)
    assert sampler_threads() == []


def test_a_failed_training_is_closed_by_the_next_one(
    powercap: FakePowercap, tmp_path: Path
) -> None:
    model = tiny_model()
    model.fail_after = 5  # mid-epoch 1 (4 batches per epoch)
    trainer = Trainer(
        model=model, args=training_args(tmp_path), train_dataset=TokenDataset(16),
        callbacks=[CarbonCallback(summary=False)],
    )  # fmt: skip
    with pytest.raises(RuntimeError, match="boom"):
        trainer.train()
    assert len(sampler_threads()) == 1  # no hook tells a callback that train() raised

    model.fail_after = None
    trainer.train()
    assert sampler_threads() == []
    runs = sorted(Path(os.environ["CARBON_CALLBACKS_OUTPUT_DIR"]).glob("*.jsonl"))
    statuses = [(read_run_log(path).summary or {}).get("status") for path in runs]
    assert sorted(statuses) == ["completed", "unfinished"]  # type: ignore[type-var]


FAILING_SCRIPT = """
import warnings
from pathlib import Path
from tests.test_transformers import CarbonCallback, TokenDataset, Trainer, tiny_model, training_args
warnings.simplefilter("ignore")
model = tiny_model()
model.fail_after = 3
Trainer(model=model, args=training_args(Path({out!r})), train_dataset=TokenDataset(16),
        callbacks=[CarbonCallback()]).train()
"""


def test_a_process_that_dies_in_training_leaves_a_failed_run_log(tmp_path: Path) -> None:
    env = os.environ | {"PYTHONPATH": str(ROOT), "CARBON_CALLBACKS_OUTPUT_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", FAILING_SCRIPT.format(out=str(tmp_path / "out"))],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=CHILD_TIMEOUT_S,
    )  # fmt: skip
    assert result.returncode != 0 and "boom" in result.stderr
    (run,) = tmp_path.glob("*.jsonl")
    summary = read_run_log(run).summary
    assert summary is not None and summary["status"] == "failed"


@pytest.mark.parametrize("restore_flag", [False, True])
def test_a_resumed_run_continues_the_checkpoint_totals(
    powercap: FakePowercap, tmp_path: Path, restore_flag: bool
) -> None:
    def trainer(callback: CarbonCallback) -> Trainer:
        args = training_args(
            tmp_path / "out", save_strategy="epoch",
            restore_callback_states_from_checkpoint=restore_flag,
        )  # fmt: skip
        return Trainer(
            model=tiny_model(), args=args, train_dataset=TokenDataset(16),
            callbacks=[Recorder(powercap), callback],
        )  # fmt: skip

    trainer(CarbonCallback(summary=False, country="SE")).train()
    checkpoint = tmp_path / "out" / "checkpoint-4"
    saved = json.loads((checkpoint / "trainer_state.json").read_text())
    carbon_state = saved["stateful_callbacks"]["CarbonCallback"]
    assert carbon_state["args"] == {
        "prefix": "carbon/", "summary": False, "metrics": "default", "country": "SE"
    }  # fmt: skip
    totals = carbon_state["attributes"]["totals"]
    assert totals["energy_j"] == pytest.approx(4 * 2.0)  # the epoch's exact read came before
    assert (totals["steps"], totals["samples"]) == (4, 4 * BATCH)

    callback = CarbonCallback(summary=False, country="SE")
    resumed = trainer(callback)
    resumed.train(resume_from_checkpoint=str(checkpoint))
    last = epoch_entries(resumed.state.log_history)[-1]
    assert last["step"] == 8
    assert joules(last, "epoch_energy_kwh") == pytest.approx(4 * 2.0)
    assert joules(last, "energy_kwh") == pytest.approx(totals["energy_j"] + 4 * 2.0)
    ours = [cb for cb in resumed.callback_handler.callbacks if isinstance(cb, CarbonCallback)]
    assert len(ours) == 1 and (ours[0] is callback) is not restore_flag  # the flag replaces it


def test_a_run_resumed_after_a_failure_is_one_training_in_the_report(
    powercap: FakePowercap, tmp_path: Path
) -> None:
    """Fails at step 7 (after the checkpoint of step 4), resumed from step 4 in a new trainer."""
    runs = tmp_path / "runs"
    args = training_args(tmp_path / "out", save_strategy="epoch")

    def train(callback: CarbonCallback, model: FailingBert, checkpoint: str | None) -> None:
        Trainer(
            model=model, args=args, train_dataset=TokenDataset(16),
            callbacks=[Recorder(powercap), callback],
        ).train(resume_from_checkpoint=checkpoint)  # fmt: skip

    first = CarbonCallback(summary=False, country="SE", output_dir=runs)
    failing = tiny_model()
    failing.fail_after = 6
    with pytest.raises(RuntimeError, match="boom"):
        train(first, failing, None)
    first.monitor.stop("failed")  # as the exit of the failed job would (no hook says it failed)
    assert first.monitor.tracker is not None
    first_id = first.monitor.tracker.run_id
    checkpoint = tmp_path / "out" / "checkpoint-4"
    saved = json.loads((checkpoint / "trainer_state.json").read_text())
    totals = saved["stateful_callbacks"]["CarbonCallback"]["attributes"]["totals"]
    assert totals["run_id"] == first_id

    second = CarbonCallback(summary=False, country="SE", output_dir=runs)
    train(second, tiny_model(), str(checkpoint))
    assert second.monitor.tracker is not None and second.monitor.tracker.log_path is not None
    log = read_run_log(second.monitor.tracker.log_path)
    assert log.resume is not None and log.resume["resumes"] == first_id
    assert log.resume["steps"] == 4
    assert log.resume["energy_kwh"] * J_PER_KWH == pytest.approx(4 * 2.0)

    report = build_report(runs)
    (training,) = report.trainings
    assert log.header is not None
    assert [run.run_ids for run in training.segments] == [(first_id,), (log.header["run_id"],)]
    assert [run.status for run in training.segments] == ["failed", "completed"]
    parts = [run.measurement.energy_kwh for run in training.segments if run.measurement]
    assert len(parts) == 2 and None not in parts
    assert training.energy_kwh == pytest.approx(sum(cast(list[float], parts)))  # wasted steps too
    assert training.steps == 6 + 4 and training.carried is None


def test_resuming_a_checkpoint_saved_without_the_callback(tmp_path: Path) -> None:
    """transformers' _save_checkpoint indexes stateful_callbacks by name: the key must exist."""
    args = training_args(tmp_path / "out", save_strategy="epoch", num_train_epochs=1)
    Trainer(model=tiny_model(), args=args, train_dataset=TokenDataset(16)).train()
    args = training_args(tmp_path / "out", save_strategy="epoch", num_train_epochs=2)
    trainer = Trainer(
        model=tiny_model(), args=args, train_dataset=TokenDataset(16),
        callbacks=[CarbonCallback(summary=False, write_log=False)],
    )  # fmt: skip
    trainer.train(resume_from_checkpoint=str(tmp_path / "out" / "checkpoint-4"))
    saved = json.loads((tmp_path / "out" / "checkpoint-8" / "trainer_state.json").read_text())
    assert saved["stateful_callbacks"]["CarbonCallback"]["attributes"]["totals"]["steps"] == 4


class RemoveCounter(TrainerCallback):
    """Deletes the package counter as the second epoch begins, as when a driver goes away."""

    def __init__(self, powercap: FakePowercap) -> None:
        self.powercap = powercap

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.epoch == 1.0:
            self.powercap.remove("intel-rapl:0")


def test_a_counter_vanishing_mid_training_never_fails_it(
    powercap: FakePowercap, tmp_path: Path
) -> None:
    trainer = Trainer(
        model=tiny_model(), args=training_args(tmp_path), train_dataset=TokenDataset(16),
        callbacks=[Recorder(powercap), RemoveCounter(powercap), CarbonCallback(summary=False)],
    )  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.train()
    assert trainer.state.global_step == 8
    # the package counter's own fault, not the stall warning the never-moving DRAM counter gets
    # once 5 s have passed (which a loaded machine can take before this point)
    assert any(
        issubclass(w.category, CarbonCallbacksWarning)
        and "cpu:package-0: cannot read" in str(w.message)
        for w in caught
    )
    first, second = epoch_entries(trainer.state.log_history)
    assert joules(first, "epoch_energy_kwh") == pytest.approx(4 * 2.0)
    # The package's last reading stands for the run total (marked partial in the run log).
    assert joules(second, "energy_kwh") == pytest.approx(4 * 2.0)
    assert sampler_threads() == []


def test_without_a_trainer_metrics_go_to_log_history_with_a_warning(powercap: FakePowercap) -> None:
    """A custom loop driving the hooks itself: no Trainer up the stack."""
    args, state, control = (
        TrainingArguments(use_cpu=True, report_to=[]),
        TrainerState(),
        TrainerControl(),
    )
    callback = CarbonCallback(summary=False, write_log=False)
    with pytest.warns(CarbonCallbacksWarning, match="log_history only"):
        callback.on_train_begin(args, state, control)
    callback.on_epoch_begin(args, state, control)
    add_energy(powercap, STEP_UJ)
    callback.on_step_end(args, state, control)
    state.global_step, state.epoch = 1, 1.0
    callback.on_epoch_end(args, state, control)
    callback.on_train_end(args, state, control)
    (entry,) = state.log_history
    assert (entry["step"], entry["epoch"]) == (1, 1.0)
    assert joules(entry, "epoch_energy_kwh") == pytest.approx(2.0)


def test_saved_state_is_json_without_secrets(tmp_path: Path) -> None:
    callback = CarbonCallback(
        prefix="energy/", output_dir=tmp_path / "runs", electricitymaps_token=TOKEN,
        zone="DK-DK1",
    )  # fmt: skip
    text = json.dumps(callback.state())
    assert TOKEN not in text
    expected = {"prefix": "energy/", "summary": True, "metrics": "default"}
    expected["output_dir"] = str(tmp_path / "runs")
    assert json.loads(text)["args"] == expected | {"zone": "DK-DK1"}


def test_a_cpu_run_on_a_gpu_machine_measures_no_gpu(
    powercap: FakePowercap, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``use_cpu=True``: the two visible (fake) GPUs are not the run's energy."""
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    gpus = [FakeGpu(f"GPU-{n}aaaaaaa-1111-2222-3333-444444444444", power_w=300.0) for n in (1, 2)]
    install(monkeypatch, FakePynvml(gpus))
    carbon = CarbonCallback(intensity_g_per_kwh=100)  # no gpu_ids: the trainer's devices
    trainer = Trainer(
        model=tiny_model(),
        args=training_args(tmp_path, num_train_epochs=1),
        train_dataset=TokenDataset(8),
        callbacks=[carbon],
    )
    trainer.train()
    tracker = carbon.monitor.tracker
    assert tracker is not None and tracker.log_path is not None
    header = read_run_log(tracker.log_path).header
    assert header is not None
    assert [c["id"] for c in header["channels"]] == ["cpu:package-0", "dram:package-0"]


@pytest.mark.parametrize(
    ("options", "error"),
    [({"country": "XX"}, ValueError), ({"pue": 0.5}, ValueError), ({"colour": "green"}, TypeError)],
)
def test_a_bad_option_fails_at_construction(
    options: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        CarbonCallback(**options)


def test_the_example_trains_and_prints_the_summary(tmp_path: Path) -> None:
    env = os.environ | {"PYTHONPATH": str(ROOT), "CARBON_CALLBACKS_OUTPUT_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, str(ROOT / "integrations" / "transformers_example.py")],
        capture_output=True, text=True, env=env, timeout=CHILD_TIMEOUT_S,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "carbon-callbacks: training completed" in result.stderr
    assert "'carbon/energy_kwh'" in result.stdout
    assert "carbon/estimated" not in result.stdout  # stored in log_history, not printed


def test_the_benchmark_runs(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import bench_transformers

    variants = ("none", "empty", "carbon")
    step = bench_transformers.step_us("carbon", 14, str(tmp_path))  # one training: the slow part
    results = {
        "step_us": {v: [step] for v in variants},
        "hook_ns": {v: [bench_transformers.hook_ns(v, 50, str(tmp_path))] for v in variants},
    }
    assert all(figures[0] > 0 for part in results.values() for figures in part.values())
    assert "| on_step_end dispatch, median ns |" in bench_transformers.table(results)


def test_a_budget_stops_training_at_the_logging_step_that_reaches_it(
    powercap: FakePowercap, tmp_path: Path
) -> None:
    # 2 J a step, read at every logging step (each step here): the 3rd step's 6 J is the first
    # total over 5 J, and the trainer stops right after that log.
    trainer = Trainer(
        model=tiny_model(),
        args=training_args(tmp_path, num_train_epochs=5, logging_steps=1),
        train_dataset=TokenDataset(16),  # 4 steps per epoch, 20 in all
        callbacks=[
            Recorder(powercap),
            CarbonCallback(
                intensity_g_per_kwh=100, max_energy_kwh=5.0 / J_PER_KWH, on_budget="stop",
                interval_s=60.0,
            ),
        ],
    )  # fmt: skip
    with pytest.warns(CarbonCallbacksWarning, match="budget reached"):
        trainer.train()
    assert trainer.state.global_step == 3
    assert sampler_threads() == []


@pytest.mark.parametrize("summary", [True, False])
def test_summary_false_prints_neither_the_forecast_nor_the_summary(
    powercap: FakePowercap, tmp_path: Path, capsys: pytest.CaptureFixture[str], summary: bool
) -> None:
    """The forecast is logged either way; only its one-line announcement is silenced."""
    trainer = Trainer(
        model=tiny_model(),
        args=training_args(tmp_path, num_train_epochs=4),
        train_dataset=TokenDataset(16),
        callbacks=[
            Recorder(powercap),
            CarbonCallback(summary=summary, warmup_steps=0, intensity_g_per_kwh=100),
        ],
    )
    trainer.train()
    assert any("carbon/predicted_energy_kwh" in entry for entry in trainer.state.log_history)
    printed = capsys.readouterr()
    assert ("predicted for" in printed.err) == summary, printed.err
    assert ("carbon-callbacks: training completed" in printed.err) == summary, printed.err


def test_after_training_the_trainer_has_its_own_log_method_back(
    powercap: FakePowercap, tmp_path: Path
) -> None:
    """The callback wraps the trainer's ``log`` for a run (one log entry); nothing stays after."""
    trainer = Trainer(
        model=tiny_model(), args=training_args(tmp_path / "out", num_train_epochs=1),
        train_dataset=TokenDataset(16),
        callbacks=[CarbonCallback(summary=False, intensity_g_per_kwh=100.0)],
    )  # fmt: skip
    assert "log" not in vars(trainer)
    trainer.train()
    assert "log" not in vars(trainer)  # the class's method again, no instance attribute left


class WaitForLive(TrainerCallback):
    """After ours: holds the start of training until the run's live source has answered."""

    def __init__(self, carbon: CarbonCallback) -> None:
        self.carbon = carbon

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        wait_for_live(self.carbon.monitor.tracker)


@pytest.mark.parametrize(("saving", "summary"), [(0.6, True), (0.6, False), (0.1, True)])
def test_the_forecast_says_when_a_later_start_would_have_been_much_cleaner(
    powercap: FakePowercap,
    httpserver: HTTPServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    saving: float,
    summary: bool,
) -> None:
    """Live UK data whose forecast drops by ``saving`` 10 minutes on: a line under the forecast
    from a fifth on, unless ``summary=False`` silences the announcement."""
    serve_dip(httpserver, saving)
    monkeypatch.setenv(UK_URL_ENV, httpserver.url_for("/"))
    carbon = CarbonCallback(summary=summary, warmup_steps=0, zone="GB", live=True)
    trainer = Trainer(
        model=tiny_model(),
        args=training_args(tmp_path, num_train_epochs=4),
        train_dataset=TokenDataset(16),
        callbacks=[Recorder(powercap), carbon, WaitForLive(carbon)],
    )
    trainer.train()
    err = capsys.readouterr().err
    assert ("predicted for" in err) == summary, err
    hinted = summary and saving >= 0.2
    assert err.count(f"would have emitted about {saving:.0%} less CO2e") == hinted, err
    assert ("would have emitted" in err) == hinted, err
