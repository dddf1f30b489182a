"""The Keras 3 adapter, through real ``model.fit`` runs on CPU (torch backend) over fake RAPL files.

Energy comes from the fake powercap tree, advanced by a callback as hardware would be: a fixed
amount a training batch and another a validation batch, so every epoch, phase and total is exact.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras
import numpy as np
import pytest
from pytest_httpserver import HTTPServer

from carbon_callbacks import CarbonCallbacksWarning, read_run_log
from carbon_callbacks.intensity.providers.uk import URL_ENV as UK_URL_ENV
from carbon_callbacks.keras import CarbonCallback
from carbon_callbacks.meters.rapl import RaplMeter
from tests.conftest import CHILD_TIMEOUT_S, sampler_threads
from tests.intensity.uk_payloads import serve_dip, wait_for_live
from tests.meters.fake_powercap import FakePowercap

ROOT = Path(__file__).resolve().parents[1]
PACKAGE, DRAM = "intel-rapl:0", "intel-rapl:0:0"
TRAIN_J, VAL_J = 1.0, 10.0  # per batch
TRAIN_BATCHES, VAL_BATCHES, BATCH_SIZE = 4, 2, 16
J_PER_KWH = 3.6e6
INTENSITY = 100.0  # gCO2e/kWh
# Only the fake counters count, also on a machine with GPUs.
OPTIONS: dict[str, Any] = {"gpu_ids": [], "intensity_g_per_kwh": INTENSITY, "metrics": "all"}
"""Every metric in the logs (the default shows the watched few), so the tests can check each."""


class Burn(keras.callbacks.Callback):
    """Advances the fake package counter: TRAIN_J a training batch, VAL_J a validation batch.

    Begin hooks only, which Keras always calls synchronously, so it does not change the dispatch.
    """

    def __init__(self, powercap: FakePowercap) -> None:
        super().__init__()
        self.powercap = powercap

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.powercap.add_energy(PACKAGE, round(TRAIN_J * 1e6))

    def on_test_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.powercap.add_energy(PACKAGE, round(VAL_J * 1e6))


class OnEpochBegin(keras.callbacks.Callback):
    """Runs ``action`` when epoch ``epoch`` begins."""

    def __init__(self, epoch: int, action: Callable[[], None]) -> None:
        super().__init__()
        self.epoch, self.action = epoch, action

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if epoch == self.epoch:
            self.action()


class ThreadProbe(keras.callbacks.Callback):
    """Records the thread each batch-end call runs on; declares itself safe to run anywhere."""

    async_safe = True

    def __init__(self) -> None:
        super().__init__()
        self.threads: set[str] = set()

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.threads.add(threading.current_thread().name)


class BatchEndCounter(keras.callbacks.Callback):
    """A plain callback with a batch-end hook: Keras must call it synchronously."""

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        pass


class Tripwire(keras.layers.Layer):
    """An identity layer that raises once armed, like a bug that shows only in later epochs."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = False

    def call(self, inputs: Any) -> Any:
        if self.armed:
            raise RuntimeError("tripwire")
        return inputs


def make_model(*layers: Any, steps_per_execution: int = 1) -> Any:
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8, activation="relu"),
            *layers,
            keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer="sgd", loss="mse", steps_per_execution=steps_per_execution)
    return model


def data(batches: int, seed: int = 0) -> tuple[Any, Any]:
    x = np.random.default_rng(seed).random((batches * BATCH_SIZE, 4), dtype="float32")
    return x, x[:, :1] * 2.0 - 1.0


def fit(model: Any, callbacks: list[Any], epochs: int = 2, validate: bool = True) -> Any:
    return model.fit(
        *data(TRAIN_BATCHES),
        validation_data=data(VAL_BATCHES, seed=1) if validate else None,
        batch_size=BATCH_SIZE,
        epochs=epochs,
        verbose=0,
        callbacks=callbacks,
    )


def run_logs(tmp_path: Path) -> list[Any]:
    """Every run log written in this test, oldest first."""
    paths = sorted((tmp_path / "runs").glob("*.jsonl"), key=lambda p: p.stat().st_mtime_ns)
    return [read_run_log(path) for path in paths]


def test_history_and_csv_get_exact_epoch_and_phase_energy_from_epoch_0(
    powercap: FakePowercap, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_path = tmp_path / "log.csv"
    carbon = CarbonCallback(**OPTIONS)
    history = fit(make_model(), [Burn(powercap), carbon, keras.callbacks.CSVLogger(str(csv_path))])
    assert sampler_threads() == []
    epoch_j = TRAIN_BATCHES * TRAIN_J + VAL_BATCHES * VAL_J
    expected = {
        "carbon/epoch_energy_kwh": [epoch_j / J_PER_KWH] * 2,
        "carbon/val_energy_kwh": [VAL_BATCHES * VAL_J / J_PER_KWH] * 2,
        "carbon/train_energy_kwh": [TRAIN_BATCHES * TRAIN_J / J_PER_KWH] * 2,
        "carbon/energy_kwh": [epoch_j / J_PER_KWH, 2 * epoch_j / J_PER_KWH],
        "carbon/co2e_kg": [k * epoch_j / J_PER_KWH * INTENSITY / 1000 for k in (1, 2)],
        "carbon/intensity_g_per_kwh": [INTENSITY] * 2,
        "carbon/estimated": [0.0, 0.0],
    }
    for key, values in expected.items():
        assert history.history[key] == pytest.approx(values, rel=1e-9), key
    assert len(history.history["carbon/power_w"]) == 2
    assert len(history.history["loss"]) == 2

    rows = list(csv.DictReader(csv_path.open()))
    assert [row["epoch"] for row in rows] == ["0", "1"]
    for key, values in expected.items():
        assert [float(row[key]) for row in rows] == pytest.approx(values, rel=1e-9), key

    (log,) = run_logs(tmp_path)
    assert log.summary["status"] == "completed"
    assert log.summary["steps"] == 2 * TRAIN_BATCHES
    assert log.summary["energy_j"] == pytest.approx(2 * epoch_j)
    stderr = capsys.readouterr().err
    assert "carbon-callbacks: training completed" in stderr
    assert "CO2e:" in stderr


def test_by_default_the_progress_bar_and_history_get_the_watched_few(
    powercap: FakePowercap, capsys: pytest.CaptureFixture[str]
) -> None:
    options = OPTIONS | {"metrics": "default"}
    history = make_model().fit(
        *data(TRAIN_BATCHES), validation_data=data(VAL_BATCHES, seed=1), batch_size=BATCH_SIZE,
        epochs=2, verbose=2, callbacks=[Burn(powercap), CarbonCallback(**options)],
    )  # fmt: skip
    ours = sorted(key for key in history.history if key.startswith("carbon/"))
    watched = ["co2e_kg", "energy_kwh", "power_w", "predicted_co2e_kg", "predicted_energy_kwh"]
    assert ours == [f"carbon/{name}" for name in watched]  # forecasts NaN while unknown
    epoch_lines = [line for line in capsys.readouterr().out.splitlines() if "val_loss" in line]
    assert len(epoch_lines) == 2
    for line in epoch_lines:  # Keras's own epoch line: ours are the five watched figures
        assert line.count("carbon/") == 5, line
    with pytest.raises(ValueError, match="write metrics='all'"):
        CarbonCallback(metrics="everything")  # type: ignore[arg-type]


def test_a_csv_logger_listed_before_ours_never_sees_our_columns(
    powercap: FakePowercap, tmp_path: Path
) -> None:
    """Why the docstring asks for our callback first: CSVLogger fixes its columns at epoch 0."""
    before, after = tmp_path / "before.csv", tmp_path / "after.csv"
    fit(
        make_model(),
        [
            keras.callbacks.CSVLogger(str(before)),
            CarbonCallback(**OPTIONS),
            keras.callbacks.CSVLogger(str(after)),
        ],
    )
    assert not any(c.startswith("carbon/") for c in before.read_text().splitlines()[0].split(","))
    assert "carbon/energy_kwh" in after.read_text().splitlines()[0].split(",")


def test_without_validation_there_is_no_val_split_and_no_summary_when_asked(
    powercap: FakePowercap, capsys: pytest.CaptureFixture[str]
) -> None:
    history = fit(
        make_model(), [Burn(powercap), CarbonCallback(summary=False, **OPTIONS)], validate=False
    )
    assert "carbon/val_energy_kwh" not in history.history
    assert "carbon/train_energy_kwh" not in history.history
    assert history.history["carbon/epoch_energy_kwh"] == pytest.approx(
        [TRAIN_BATCHES * TRAIN_J / J_PER_KWH] * 2, rel=1e-9
    )
    assert "carbon-callbacks" not in capsys.readouterr().err


def test_steps_are_counted_with_asynchronous_batch_dispatch(
    powercap: FakePowercap, tmp_path: Path
) -> None:
    probe = ThreadProbe()
    fit(make_model(), [probe, CarbonCallback(**OPTIONS)])
    (log,) = run_logs(tmp_path)
    assert log.summary["steps"] == 2 * TRAIN_BATCHES
    # Keras ran the batch-end callbacks on its worker threads, not on the training thread.
    assert probe.threads and threading.main_thread().name not in probe.threads


def test_batches_run_together_are_all_counted_even_out_of_order(
    powercap: FakePowercap, tmp_path: Path
) -> None:
    """The JAX and TensorFlow trainers with ``steps_per_execution=2`` (torch allows only 1).

    One batch-end call per two batches, with the index of the last; calls made on Keras's worker
    threads may arrive out of order.
    """
    carbon = CarbonCallback(**OPTIONS)
    callbacks = keras.callbacks.CallbackList([carbon], model=make_model())
    callbacks.on_train_begin()
    for epoch, ends in enumerate([(1, 3), (3, 1)]):
        callbacks.on_epoch_begin(epoch)
        for end in ends:
            callbacks.on_train_batch_begin(end - 1)
            callbacks.on_train_batch_end(end, {})
        callbacks.on_epoch_end(epoch, {})
    callbacks.on_train_end()
    (log,) = run_logs(tmp_path)
    assert log.summary["steps"] == 8


def test_our_callback_does_not_make_keras_fall_back_to_synchronous_dispatch() -> None:
    assert keras.backend.backend() == "torch"  # a thread-safe backend: async dispatch is on offer
    ours = keras.callbacks.CallbackList([CarbonCallback(write_log=False)])
    assert ours._async_train and ours._async_test and ours._async_predict
    # The control: an ordinary batch-end hook makes Keras call the batch-end hooks synchronously.
    plain = keras.callbacks.CallbackList([CarbonCallback(write_log=False), BatchEndCounter()])
    assert not plain._async_train
    probe = ThreadProbe()
    fit(make_model(), [probe, BatchEndCounter()], epochs=1, validate=False)
    assert probe.threads == {threading.main_thread().name}


def test_early_stopping_still_finishes_the_run(powercap: FakePowercap, tmp_path: Path) -> None:
    stop = keras.callbacks.EarlyStopping(monitor="loss", min_delta=1e9, patience=0)
    history = fit(make_model(), [CarbonCallback(**OPTIONS), stop], epochs=5)
    assert history.epoch == [0, 1]
    assert sampler_threads() == []
    (log,) = run_logs(tmp_path)
    assert log.summary["status"] == "completed"
    assert log.summary["steps"] == 2 * TRAIN_BATCHES


def test_a_stop_requested_mid_epoch_still_finishes_the_run(
    powercap: FakePowercap, tmp_path: Path
) -> None:
    class StopAfterSecondBatch(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            if batch == 1:
                self.model.stop_training = True

    history = fit(make_model(), [CarbonCallback(**OPTIONS), StopAfterSecondBatch()], epochs=3)
    assert history.epoch == [0]
    assert "carbon/epoch_energy_kwh" in history.history
    assert sampler_threads() == []
    (log,) = run_logs(tmp_path)
    assert log.summary["status"] == "completed"
    assert log.summary["steps"] == 2


def still_clock() -> float:
    """A RAPL stall clock that never moves: no counter is ever "stalled" (5 s without a change).

    The fake DRAM counter never moves and the package counter moves only at batches: by the real
    clock, a machine loaded enough to take 5 s to reach epoch 1 would see them reported stalled,
    and epoch 0 marked partial.
    """
    return 0.0


def test_a_counter_that_disappears_mid_training_never_fails_the_run(
    powercap: FakePowercap, tmp_path: Path
) -> None:
    unplug = OnEpochBegin(1, lambda: powercap.remove(DRAM))
    carbon = CarbonCallback(**OPTIONS, meters=[RaplMeter(clock=still_clock)])
    with pytest.warns(CarbonCallbacksWarning, match="dram:package-0: cannot read"):
        history = fit(make_model(), [unplug, Burn(powercap), carbon])
    assert history.epoch == [0, 1]
    # The package counter goes on measuring; the lost DRAM counter adds nothing, never a fake 0.
    epoch_j = TRAIN_BATCHES * TRAIN_J + VAL_BATCHES * VAL_J
    assert history.history["carbon/epoch_energy_kwh"] == pytest.approx(
        [epoch_j / J_PER_KWH] * 2, rel=1e-9
    )
    assert history.history["carbon/partial"] == [0.0, 1.0]
    (log,) = run_logs(tmp_path)
    assert log.summary["status"] == "completed"
    channels = {c["id"]: c for c in log.summary["channels"]}
    assert channels["dram:package-0"]["partial"] and channels["dram:package-0"]["fault"]
    assert not channels["cpu:package-0"]["partial"]


def test_a_fit_that_raises_leaves_the_run_open_until_the_next_fit_closes_it(
    powercap: FakePowercap, tmp_path: Path
) -> None:
    tripwire = Tripwire()
    model = make_model(tripwire)
    carbon = CarbonCallback(**OPTIONS)
    with pytest.raises(RuntimeError, match="tripwire"):
        fit(model, [OnEpochBegin(1, lambda: setattr(tripwire, "armed", True)), carbon])
    # Keras calls no callback when fit raises: the sampler goes on (interpreter exit stops it).
    assert len(sampler_threads()) == 1
    tripwire.armed = False
    history = fit(model, [carbon])
    assert history.epoch == [0, 1]
    assert sampler_threads() == []
    failed, completed = run_logs(tmp_path)
    assert failed.summary["status"] == "unfinished"
    assert completed.summary["status"] == "completed"


FAILING_SCRIPT = """
import os, sys
sys.path.insert(0, os.environ["ROOT"])
from tests.test_keras import OPTIONS, OnEpochBegin, Tripwire, fit, make_model
from carbon_callbacks.keras import CarbonCallback

tripwire = Tripwire()
fit(make_model(tripwire), [
    OnEpochBegin(1, lambda: setattr(tripwire, "armed", True)), CarbonCallback(**OPTIONS)
])
"""


def test_a_process_whose_fit_raises_exits_and_logs_the_run_as_failed(
    powercap: FakePowercap, tmp_path: Path
) -> None:
    env = os.environ | {"ROOT": str(ROOT), "KERAS_BACKEND": keras.backend.backend()}
    result = subprocess.run(
        [sys.executable, "-c", FAILING_SCRIPT],
        capture_output=True,
        text=True,
        env=env,
        timeout=CHILD_TIMEOUT_S,
    )
    assert result.returncode == 1
    assert "RuntimeError" in result.stderr and "tripwire" in result.stderr
    assert "training completed" not in result.stderr
    (log,) = run_logs(tmp_path)
    assert log.summary["status"] == "failed"  # the uncaught exception, seen at interpreter exit
    assert log.summary["steps"] == TRAIN_BATCHES  # epoch 0; epoch 1 failed in its first batch


def test_a_standalone_evaluate_starts_nothing(powercap: FakePowercap, tmp_path: Path) -> None:
    carbon = CarbonCallback(**OPTIONS)
    model = make_model()
    model.evaluate(*data(VAL_BATCHES), batch_size=BATCH_SIZE, verbose=0, callbacks=[carbon])
    assert sampler_threads() == []
    fit(model, [carbon], epochs=1)
    model.evaluate(*data(VAL_BATCHES), batch_size=BATCH_SIZE, verbose=0, callbacks=[carbon])
    assert sampler_threads() == []
    assert len(run_logs(tmp_path)) == 1


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"pue": 0.5}, ValueError, "pue"),
        ({"country": "Atlantis"}, ValueError, "country"),
        ({"prefix": 3}, TypeError, "prefix"),
        ({"bogus": 1}, TypeError, "bogus"),
    ],
)
def test_a_bad_option_fails_at_construction(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        CarbonCallback(**options)
    assert sampler_threads() == []


def test_the_benchmark_runs() -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import bench_keras

    results = bench_keras.run(steps=5, rounds=1, hook_calls=100)
    assert set(results["median_us_per_step"]) == {"none", "empty", "ours"}
    assert all(value > 0 for value in results["median_us_per_step"].values())
    assert results["hook_ns"]["ours"] > 0
    assert "| fit step, CarbonCallback |" in bench_keras.table(results)


def test_the_integration_example_runs(tmp_path: Path) -> None:
    env = os.environ | {"PYTHONPATH": str(ROOT), "KERAS_BACKEND": keras.backend.backend()}
    result = subprocess.run(
        [sys.executable, str(ROOT / "integrations" / "keras_example.py"),
         "--epochs", "2", "--samples", "2000", "--csv", str(tmp_path / "log.csv")],
        capture_output=True, text=True, env=env, timeout=CHILD_TIMEOUT_S,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert any(line.startswith("epoch 1: ") for line in result.stdout.splitlines())
    assert "'carbon/energy_kwh'" in result.stdout
    assert "carbon-callbacks: training completed" in result.stderr
    (log,) = run_logs(tmp_path)
    assert log.summary["status"] == "completed"


@pytest.mark.parametrize("dispatch", ["synchronous", "asynchronous"])
def test_a_budget_stops_fit_at_the_step_that_reaches_it(
    powercap: FakePowercap, dispatch: str
) -> None:
    """1 J a batch, checked at every batch with a read of the meters: 6 J is the first total
    over 5.5 J, so the 6th batch (the 2nd of epoch 1, at 4 batches an epoch) asks Keras to stop.

    Called synchronously (a plain batch-end hook makes Keras do so), the check ends the fit right
    after that batch. Dispatched to Keras's worker threads, it can lag any number of batches
    behind on a loaded machine, but Keras waits for every batch-end call when the epoch ends, so
    the fit still ends within epoch 1: after the 6th, 7th or 8th batch of 20.
    """
    carbon = CarbonCallback(
        **OPTIONS, max_energy_kwh=5.5 / J_PER_KWH, on_budget="stop", check_every_n_steps=1,
        interval_s=60.0,
    )  # fmt: skip
    callbacks = [Burn(powercap), carbon]
    if dispatch == "synchronous":
        callbacks.append(BatchEndCounter())
    with pytest.warns(CarbonCallbacksWarning, match="budget reached"):
        fit(make_model(), callbacks, epochs=5, validate=False)
    summary = carbon.monitor.tracker.summary  # type: ignore[union-attr]
    assert summary is not None
    assert summary.steps in ((6,) if dispatch == "synchronous" else (6, 7, 8))
    assert sampler_threads() == []


@pytest.mark.parametrize("summary", [True, False])
def test_summary_false_prints_neither_the_forecast_nor_the_summary(
    powercap: FakePowercap, capsys: pytest.CaptureFixture[str], summary: bool
) -> None:
    """The forecast is logged either way; only its one-line announcement is silenced."""
    carbon = CarbonCallback(**OPTIONS, summary=summary, warmup_steps=0)
    history = fit(make_model(), [Burn(powercap), carbon], epochs=4, validate=False)
    assert any(
        value == value for value in history.history["carbon/predicted_energy_kwh"]
    )  # not NaN
    err = capsys.readouterr().err
    assert ("predicted for" in err) == summary, err
    assert ("carbon-callbacks: training completed" in err) == summary, err


LONG_BATCHES = 20
"""Training batches an epoch in the forecast tests, each 5 ms or more long (``PacedBurn``)."""
VAL_PACE_S = 0.025
"""Sleeps around a validation batch's energy in the forecast tests: five polls of the sampler."""


class PacedBurn(Burn):
    """``Burn``, and 5 ms asleep a training batch: a step timeline that the sampler (polling every
    5 ms, and free to run while the main thread sleeps) resolves into several points an epoch.
    A validation batch adds its energy between two sleeps of ``VAL_PACE_S``, so the sampler
    sees the counter before and after it. Validation is left to ``CompilingValidation`` when it
    is there too."""

    def __init__(self, powercap: FakePowercap, validation: bool = True) -> None:
        super().__init__(powercap)
        self.validation = validation

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        super().on_train_batch_begin(batch, logs)
        time.sleep(0.005)

    def on_test_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.validation:
            time.sleep(VAL_PACE_S)
            super().on_test_batch_begin(batch, logs)
            time.sleep(VAL_PACE_S)


def fit_long(callbacks: list[Any], epochs: int, val_batches: int = VAL_BATCHES) -> Any:
    """``LONG_BATCHES`` training and ``val_batches`` validation batches an epoch.

    Ours goes first where the others spend energy in validation's batch-begin hooks, so that it
    marks a batch's start before that batch's energy, as a real batch spends it after the hooks.
    """
    return make_model().fit(
        *data(LONG_BATCHES),
        validation_data=data(val_batches, seed=1),
        batch_size=BATCH_SIZE,
        epochs=epochs,
        verbose=0,
        callbacks=callbacks,
    )


def test_the_first_forecast_adds_validation_per_epoch_and_charges_none_to_the_steps(
    powercap: FakePowercap, tmp_path: Path
) -> None:
    """An epoch is 20 J of training and 20 J of validation. The first forecast, at the end of
    epoch 0, must add 20 J for each of the 3 epochs to come and charge none of it to the steps:
    4 x 40 J = 160 J in all (the steps alone would give 100 J)."""
    carbon = CarbonCallback(**OPTIONS, warmup_steps=0, interval_s=0.005)
    fit_long([carbon, PacedBurn(powercap)], epochs=4)
    (log,) = run_logs(tmp_path)
    first = log.predictions[0]
    assert first["steps_done"] == LONG_BATCHES  # made at the end of epoch 0
    epoch_j = LONG_BATCHES * TRAIN_J + VAL_BATCHES * VAL_J
    assert log.summary["energy_j"] == pytest.approx(4 * epoch_j)
    low, mid, high = (kwh * J_PER_KWH for kwh in first["energy_kwh"])
    assert mid == pytest.approx(4 * epoch_j, rel=0.25)
    assert low <= log.summary["energy_j"] <= high


class CompilingValidation(keras.callbacks.Callback):
    """Validation batches of ``VAL_J`` each in 2 x ``VAL_PACE_S``; the very first one compiles
    (as JAX compiles the evaluation step at its first call): ``COMPILE_J`` more, at the same
    power, so in 10 times as long. Each batch adds its energy between sleeps, so the sampler
    sees the counter before and after every batch.
    """

    def __init__(self, powercap: FakePowercap) -> None:
        super().__init__()
        self.powercap = powercap
        self.compiled = False

    def on_test_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        time.sleep(VAL_PACE_S)
        if not self.compiled:
            self.compiled = True
            self.powercap.add_energy(PACKAGE, round(COMPILE_J * 1e6))
            time.sleep(2 * VAL_PACE_S * COMPILE_J / VAL_J)
        self.powercap.add_energy(PACKAGE, round(VAL_J * 1e6))
        time.sleep(VAL_PACE_S)


COMPILE_J = 100.0


def test_a_validation_that_compiles_at_its_first_batch_is_not_forecast_to_compile_again(
    powercap: FakePowercap, tmp_path: Path
) -> None:
    """Epochs of 20 J training and 5 x 10 J validation; the first validation batch compiles
    (100 J once). The first forecast, at the end of epoch 0, must count each pass to come at
    50 J: 380 J in all (the first pass as it came, 150 J, would give 680 J)."""
    carbon = CarbonCallback(**OPTIONS, warmup_steps=0, interval_s=0.005)
    callbacks = [carbon, PacedBurn(powercap, validation=False), CompilingValidation(powercap)]
    fit_long(callbacks, epochs=4, val_batches=5)
    (log,) = run_logs(tmp_path)
    first = log.predictions[0]
    assert first["steps_done"] == LONG_BATCHES
    truth = 4 * (LONG_BATCHES * TRAIN_J + 5 * VAL_J) + COMPILE_J
    assert log.summary["energy_j"] == pytest.approx(truth)
    assert first["energy_kwh"][1] * J_PER_KWH == pytest.approx(truth, rel=0.25)


@pytest.mark.parametrize(
    ("metric_set", "names"),
    [
        ("all", ("energy_kwh", "co2e_kg", "duration_s")),
        ("default", ("energy_kwh", "co2e_kg")),  # the watched forecasts
    ],
)
def test_forecast_columns_are_in_every_epoch_nan_until_known(
    powercap: FakePowercap, tmp_path: Path, metric_set: str, names: tuple[str, ...]
) -> None:
    """With the whole first epoch left out as warm-up, the first forecast comes at the end of
    epoch 1; CSVLogger's columns (fixed at epoch 0) and History's lists must have it anyway,
    whichever metrics the epoch line shows."""
    csv_path = tmp_path / "log.csv"
    options = OPTIONS | {"metrics": metric_set}
    carbon = CarbonCallback(**options, warmup_steps=LONG_BATCHES, interval_s=0.005)
    history = fit_long(
        [PacedBurn(powercap), carbon, keras.callbacks.CSVLogger(str(csv_path))], epochs=3
    )
    names = tuple(f"carbon/predicted_{name}" for name in names)
    for name in names:
        values = history.history[name]
        assert len(values) == 3, name
        assert np.isnan(values[0]) and not np.isnan(values[-1]), (name, values)
    rows = list(csv.DictReader(csv_path.open()))
    for name in names:
        assert rows[0][name] == "nan", name
        assert float(rows[-1][name]) > 0, name


def test_the_forecast_tests_also_pass_on_the_jax_backend() -> None:
    """JAX compiles at the first call of a step (validation's too) and runs steps
    asynchronously, so batch-end calls, which count the steps, can reach us during validation.
    The backend is fixed when Keras is imported: a child pytest runs the tests on JAX."""
    tests = [
        f"{__file__}::test_the_first_forecast_adds_validation_per_epoch_and_charges_none_to_the_steps",
        f"{__file__}::test_forecast_columns_are_in_every_epoch_nan_until_known",
        f"{__file__}::test_a_validation_that_compiles_at_its_first_batch_is_not_forecast_to_"
        "compile_again",
    ]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
        cwd=ROOT, env=os.environ | {"KERAS_BACKEND": "jax"},
        capture_output=True, text=True, timeout=CHILD_TIMEOUT_S,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout  # the columns test runs for both metric sets


def test_the_validation_benchmark_runs() -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import bench_keras_validation

    results = bench_keras_validation.run("torch", epochs=3, train_steps=20, runs=1)
    (result,) = results["runs"]  # a forecast or not: the run may be too short to resolve steps
    assert result["total_steps"] == 60 and result["actual_kwh"] > 0
    assert bench_keras_validation.table(results).count("\n") == 2


class WaitForLive(keras.callbacks.Callback):
    """After ours: holds the start of training until the run's live source has answered."""

    def __init__(self, carbon: CarbonCallback) -> None:
        super().__init__()
        self.carbon = carbon

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        wait_for_live(self.carbon.monitor.tracker)


@pytest.mark.parametrize(("saving", "summary"), [(0.6, True), (0.6, False), (0.1, True)])
def test_the_forecast_says_when_a_later_start_would_have_been_much_cleaner(
    powercap: FakePowercap,
    httpserver: HTTPServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    saving: float,
    summary: bool,
) -> None:
    """Live UK data whose forecast drops by ``saving`` 10 minutes on: a line under the forecast
    from a fifth on, unless ``summary=False`` silences the announcement."""
    serve_dip(httpserver, saving)
    monkeypatch.setenv(UK_URL_ENV, httpserver.url_for("/"))
    carbon = CarbonCallback(gpu_ids=[], zone="GB", live=True, summary=summary, warmup_steps=0)
    fit(make_model(), [Burn(powercap), carbon, WaitForLive(carbon)], epochs=4, validate=False)
    err = capsys.readouterr().err
    assert ("predicted for" in err) == summary, err
    hinted = summary and saving >= 0.2
    assert err.count(f"would have emitted about {saving:.0%} less CO2e") == hinted, err
    assert ("would have emitted" in err) == hinted, err
