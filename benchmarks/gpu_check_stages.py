"""The stages of ``gpu_check.py`` that run in a child process each, one per command line.

``python benchmarks/gpu_check_stages.py STAGE --device cuda|cpu [--quick] --result FILE`` runs one
stage and writes its figures to FILE as JSON; ``gpu_check.py`` starts each with its own timeout,
so a stage that hangs or crashes (a wedged driver, a framework missing) costs that stage only.

Every stage runs the same fixed workload: a square matrix product of fixed size, repeated a fixed
number of steps (``WORKLOADS``), so that figures from different machines compare. Torch runs it on
``--device``: ``cuda`` is the GPU under CUDA and ROCm alike; ``cpu`` is the fallback the tests use,
with ``--quick``. Which GPUs are measured is the library's business (its default meters), so the
stages name no vendor.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from carbon_callbacks.meters.base import Channel, Meter  # noqa: E402
from carbon_callbacks.tracking.measurement import Measurement  # noqa: E402


@dataclass(frozen=True)
class Workload:
    """The fixed matrix-product workload: ``steps`` products of two ``size`` x ``size`` matrices."""

    size: int
    steps: int
    hook_idle_steps: int
    """Steps the per-step hook is timed with the device idle (it then costs little time)."""
    idle_s: float
    """The idle window of the counter-versus-power stage."""
    bursts: int
    """Busy bursts, each followed by ``idle_s / 4`` of rest, in the bursty window."""


WORKLOADS = {
    "full": Workload(size=8192, steps=4000, hook_idle_steps=20000, idle_s=2.0, bursts=8),
    "quick": Workload(size=128, steps=60, hook_idle_steps=2000, idle_s=0.3, bursts=3),
}
"""``full`` on a GPU: about 1.1 TFLOP a step in float16, about 1.5 ms on an H100-class GPU;
``quick`` for the tests' CPU runs and a first look."""

LOG_EVERY = 50
"""Steps between the timed logging calls (``step_metrics``) of the per-step hook stage."""


def dtype_name(device: str) -> str:
    """float16 on a GPU (tensor cores on every recent one), float32 on the CPU fallback."""
    return "float32" if device == "cpu" else "float16"


def operands(size: int, device: str) -> tuple[Any, Any]:
    """Two fixed random matrices on ``device``, the same on every machine (seed 0)."""
    import torch

    generator = torch.Generator().manual_seed(0)
    dtype = getattr(torch, dtype_name(device))
    a, b = (torch.randn(size, size, generator=generator) for _ in range(2))
    return a.to(device=device, dtype=dtype), b.to(device=device, dtype=dtype)


class StepSpan:
    """From the first step's start to the last step's end: the time the workload itself took.

    It lies inside every measured window (a callback starts before the first batch and stops
    after the last), so a constant power times it is a lower bound of the window's energy.
    """

    def __init__(self) -> None:
        self.first: float | None = None
        self.last: float | None = None

    def begin(self) -> None:
        if self.first is None:
            self.first = time.perf_counter()

    def end(self) -> None:
        self.last = time.perf_counter()

    @property
    def seconds(self) -> float | None:
        return None if self.first is None or self.last is None else self.last - self.first


SPAN = StepSpan()


def matmul_loss(a: Any, b: Any, scale: Any) -> Any:
    """One step: the product, reduced to a scalar, waited for (so a step's energy is in it)."""
    SPAN.begin()
    loss = (a @ b).mean() * scale
    synchronize("cuda" if a.is_cuda else "cpu")
    SPAN.end()
    return loss


def synchronize(device: str) -> None:
    """Wait for the queued device work (nothing to wait for on the CPU)."""
    if device != "cpu":
        import torch

        torch.cuda.synchronize()


def callback_summary(callback: Any) -> dict[str, Any] | None:
    """A callback's run figures as JSON, or None when it never measured (it never started)."""
    tracker = callback.monitor.tracker
    summary = None if tracker is None else tracker.summary
    return None if summary is None else summary.to_dict()


def callback_options(device: str) -> dict[str, Any]:
    """On the GPU the callback finds the trainer's device itself, as in real use; on the CPU
    fallback ``gpu_ids=None`` says every visible GPU, so the fake GPUs are measured."""
    return {"summary": True, "gpu_ids": None} if device == "cpu" else {"summary": True}


# -- stages -------------------------------------------------------------------------------------


def stage_environment(work: Workload, device: str) -> dict[str, Any]:
    """Torch's view of the accelerators, and the driver versions the vendor libraries report.

    In a child of its own, since initialising a driver is what hangs on a wedged machine.
    """
    import torch

    cuda = torch.cuda
    available = bool(cuda.is_available())
    return {
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "torch_hip": getattr(torch.version, "hip", None),
        "cuda_available": available,
        "torch_devices": [cuda.get_device_name(k) for k in range(cuda.device_count())]
        if available
        else [],
        "drivers": driver_versions(),
    }


def driver_versions() -> dict[str, str]:
    """The GPU drivers found: NVIDIA's through NVML, AMD's from the amdgpu module or amdsmi."""
    found: dict[str, str] = {}
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            version = pynvml.nvmlSystemGetDriverVersion()
            found["nvidia"] = version.decode() if isinstance(version, bytes) else str(version)
        finally:
            pynvml.nvmlShutdown()
    except Exception as error:  # no binding, no driver: say what happened, measure on
        found["nvidia"] = f"unknown ({type(error).__name__})"
    amdgpu = Path("/sys/module/amdgpu/version")
    if amdgpu.exists():
        found["amdgpu"] = amdgpu.read_text().strip() or "loaded (no version file content)"
    else:  # an in-kernel amdgpu has no version file: ask amdsmi
        version = amdsmi_driver_version()
        if version is not None:
            found["amdgpu"] = version
    return found


def amdsmi_driver_version() -> str | None:
    """The amdgpu driver version amdsmi reports for its first GPU; None without amdsmi."""
    try:
        import amdsmi
    except ModuleNotFoundError:
        return None  # no ROCm binding: no AMD GPU to name a driver for
    except Exception as error:  # the binding without ROCm's library raises at import
        return f"unknown ({type(error).__name__})"
    try:
        amdsmi.amdsmi_init(amdsmi.AmdSmiInitFlags.INIT_AMD_GPUS)
        try:
            handles = amdsmi.amdsmi_get_processor_handles()
            if not handles:
                return "unknown (amdsmi lists no GPU)"
            return str(amdsmi.amdsmi_get_gpu_driver_info(handles[0])["driver_version"])
        finally:
            amdsmi.amdsmi_shut_down()
    except Exception as error:
        return f"unknown ({type(error).__name__})"


def stage_workload(work: Workload, device: str) -> dict[str, Any]:
    """The bare workload (what ``carbon-callbacks run`` measures from outside)."""
    import torch

    a, b = operands(work.size, device)
    scale = torch.ones((), device=device)
    for _ in range(work.steps):
        matmul_loss(a, b, scale)
    return {"workload_s": SPAN.seconds, "steps": work.steps}


def stage_lightning(work: Workload, device: str) -> dict[str, Any]:
    """The workload as a Lightning fit with ``carbon_callbacks.lightning.CarbonCallback``."""
    import lightning as L
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from carbon_callbacks.lightning import CarbonCallback

    class MatmulModule(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            a, b = operands(work.size, "cpu")
            self.register_buffer("a", a.to(getattr(torch, dtype_name(device))))
            self.register_buffer("b", b.to(getattr(torch, dtype_name(device))))
            self.scale = torch.nn.Parameter(torch.ones(()))

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            return matmul_loss(self.a, self.b, self.scale)

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.0)

    callback = CarbonCallback(**callback_options(device))
    trainer = L.Trainer(
        max_epochs=1,
        accelerator="cpu" if device == "cpu" else "gpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[callback],
    )
    data = DataLoader(TensorDataset(torch.zeros(work.steps, 1)), batch_size=1)
    trainer.fit(MatmulModule(), data)
    return {
        "workload_s": SPAN.seconds,
        "steps": int(trainer.global_step),
        "measurement": callback_summary(callback),
    }


def stage_transformers(work: Workload, device: str) -> dict[str, Any]:
    """The workload as a Hugging Face ``Trainer`` run: a model built from a config in code."""
    import torch
    from transformers import PretrainedConfig, PreTrainedModel, Trainer, TrainingArguments

    from carbon_callbacks.transformers import CarbonCallback

    class MatmulConfig(PretrainedConfig):
        model_type = "gpu-check-matmul"

        def __init__(self, size: int = 128, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.size = size

    class MatmulModel(PreTrainedModel):
        config_class = MatmulConfig

        def __init__(self, config: MatmulConfig) -> None:
            super().__init__(config)
            a, b = operands(config.size, "cpu")
            self.register_buffer("a", a.to(getattr(torch, dtype_name(device))))
            self.register_buffer("b", b.to(getattr(torch, dtype_name(device))))
            self.scale = torch.nn.Parameter(torch.ones(()))

        def forward(self, x: Any) -> dict[str, Any]:
            return {"loss": matmul_loss(self.a, self.b, self.scale)}

    callback = CarbonCallback(**callback_options(device))
    with tempfile.TemporaryDirectory() as output_dir:
        args = TrainingArguments(
            output_dir=output_dir,
            max_steps=work.steps,
            per_device_train_batch_size=1,
            learning_rate=0.0,
            logging_steps=max(work.steps // 4, 1),
            save_strategy="no",
            report_to="none",
            use_cpu=device == "cpu",
            disable_tqdm=True,
            dataloader_pin_memory=False,
        )
        data = [{"x": torch.zeros(())} for _ in range(work.steps)]
        trainer = Trainer(
            model=MatmulModel(MatmulConfig(size=work.size)),
            args=args,
            train_dataset=data,
            callbacks=[callback],
        )
        trainer.train()
    return {
        "workload_s": SPAN.seconds,
        "steps": int(trainer.state.global_step),
        "measurement": callback_summary(callback),
    }


def stage_keras(work: Workload, device: str) -> dict[str, Any]:
    """The workload as a Keras fit; skipped, saying so, where Keras is not installed."""
    try:
        import keras
    except ImportError as error:
        return {"skipped": f"Keras is not installed ({error})"}
    import numpy as np

    from carbon_callbacks.keras import CarbonCallback

    dtype = dtype_name(device)
    a, b = (m.cpu().float().numpy() for m in operands(work.size, "cpu"))

    class MatmulLayer(keras.layers.Layer):
        def build(self, input_shape: Any) -> None:
            self.a = self.add_weight(shape=a.shape, dtype=dtype, trainable=False)
            self.b = self.add_weight(shape=b.shape, dtype=dtype, trainable=False)
            self.a.assign(a.astype(dtype))
            self.b.assign(b.astype(dtype))
            self.scale = self.add_weight(shape=(), initializer="ones")

        def call(self, x: Any) -> Any:
            product = keras.ops.mean(keras.ops.matmul(self.a, self.b))
            return x * 0.0 + keras.ops.cast(product, "float32") * self.scale

    class Synchronize(keras.callbacks.Callback):
        """Waits for each batch's device work, as the other stages' steps do, and times them."""

        def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
            SPAN.begin()

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            if keras.backend.backend() == "torch":
                synchronize(device)
            SPAN.end()

    inputs = keras.Input(shape=(1,))
    model = keras.Model(inputs, MatmulLayer()(inputs))
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), loss="mse")
    callback = CarbonCallback(summary=True)
    zeros = np.zeros((work.steps, 1), dtype="float32")
    model.fit(zeros, zeros, batch_size=1, epochs=1, verbose=0, callbacks=[Synchronize(), callback])
    return {
        "workload_s": SPAN.seconds,
        "steps": work.steps,
        "backend": keras.backend.backend(),
        "measurement": callback_summary(callback),
    }


def gpu_meters() -> tuple[list[Meter], list[Meter], list[str]]:
    """The library's GPU meters as it picks them, and a power-only twin of each where offered.

    Returns:
        The meters that found a GPU (closed again), their ``power_only=True`` twins, and a note
        for each GPU meter that has no such option.
    """
    from carbon_callbacks.meters.defaults import default_meters

    counters: list[Meter] = []
    powers: list[Meter] = []
    notes: list[str] = []
    for meter in default_meters():
        found = any(channel.kind == "gpu" for channel in meter.open())
        meter.close()
        if not found:
            continue
        counters.append(meter)
        meter_type = type(meter)
        if "power_only" in inspect.signature(meter_type).parameters:
            powers.append(meter_type(power_only=True))  # type: ignore[call-arg]
        else:
            notes.append(f"{meter_type.__name__} offers no power-only reading")
    return counters, powers, notes


def stage_counter_vs_power(work: Workload, device: str) -> dict[str, Any]:
    """The same windows measured by the energy counter and by 10 Hz power integration."""
    import torch

    from carbon_callbacks import Tracker

    counters, powers, notes = gpu_meters()
    if not counters:
        raise RuntimeError("no GPU meter found a GPU: nothing to compare")
    counter = Tracker(meters=counters, write_log=False, interval_s=0.1).start()
    power = Tracker(meters=powers, write_log=False, interval_s=0.1).start() if powers else None
    trackers = [t for t in (counter, power) if t is not None]
    a, b = operands(work.size, device)
    scale = torch.ones((), device=device)
    burst_steps = max(work.steps // (2 * work.bursts), 1)

    def busy(steps: int) -> None:
        for _ in range(steps):
            matmul_loss(a, b, scale)

    def bursty() -> None:
        for _ in range(work.bursts):
            busy(burst_steps)
            time.sleep(work.idle_s / 4)

    bodies: list[tuple[str, Callable[[], object]]] = [
        ("idle", lambda: time.sleep(work.idle_s)),
        ("busy", lambda: busy(work.steps)),
        ("bursty", bursty),
    ]
    spans: dict[str, list[int]] = {}
    figures: dict[str, list[Measurement | None]] = {}

    def begin(name: str) -> None:
        spans[name] = [time.monotonic_ns()]
        for tracker in trackers:
            tracker.begin_window(name)
        spans[name].append(time.monotonic_ns())

    def end(name: str) -> None:
        spans[name].append(time.monotonic_ns())
        figures[name] = [tracker.end_window(name) for tracker in trackers]
        spans[name].append(time.monotonic_ns())

    begin("whole")
    for name, body in bodies:
        begin(name)
        body()
        end(name)
    end("whole")
    for tracker in trackers:
        tracker.stop()
    windows = [
        window_figures(name, spans[name], *figures[name], power_offered=power is not None)
        for name in [*(name for name, _ in bodies), "whole"]
    ]
    return {"windows": windows, "notes": notes, "burst_steps": burst_steps}


def window_figures(
    name: str,
    span_ns: list[int],
    counted: Measurement | None,
    powered: Measurement | None = None,
    *,
    power_offered: bool,
) -> dict[str, Any]:
    """One window's GPUs side by side, with the bounds of when its reads happened.

    ``inner_s`` runs from the last begin read to the first end read, ``outer_s`` from the first
    begin read to the last end read: every reading of the window happened between them.
    """
    begin_start, begin_end, end_start, end_end = span_ns
    gpus = []
    for figure in [] if counted is None else counted.channels:
        if figure.channel.kind != "gpu":
            continue
        twin = None
        if powered is not None:
            twin = next((c for c in powered.channels if c.channel.id == figure.channel.id), None)
        counter_j = figure.energy_j if _is_counter(figure.channel) else None
        power_j = twin.energy_j if twin is not None else None
        if power_j is None and not _is_counter(figure.channel):
            power_j = figure.energy_j  # no counter: the default meter integrates power itself
        gpus.append(
            {
                "id": figure.channel.id,
                "device": figure.channel.device,
                "counter_j": counter_j,
                "power_j": power_j,
                "relative_difference": relative(power_j, counter_j),
                "counter_how": figure.channel.how if counter_j is not None else None,
                "power_how": (twin or figure).channel.how if power_j is not None else None,
                "note": None
                if _is_counter(figure.channel)
                else "no energy counter: only power integration",
            }
        )
    return {
        "name": name,
        "duration_s": None if counted is None else counted.duration_s,
        "inner_s": (end_start - begin_end) / 1e9,
        "outer_s": (end_end - begin_start) / 1e9,
        "power_offered": power_offered,
        "gpus": gpus,
    }


def _is_counter(channel: Channel) -> bool:
    return channel.quantity == "energy"


def relative(value: float | None, reference: float | None) -> float | None:
    """(value - reference) / reference; None where either is unknown or the reference is 0."""
    if value is None or reference is None or reference == 0:
        return None
    return (value - reference) / reference


def percentiles(samples: Iterable[int]) -> dict[str, float | None]:
    """Median and 99th percentile (nearest rank) of per-call nanoseconds, and the count."""
    ordered = sorted(samples)
    if not ordered:
        return {"median_ns": None, "p99_ns": None, "calls": 0}
    middle = len(ordered) // 2
    median = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    p99 = ordered[max(math.ceil(0.99 * len(ordered)) - 1, 0)]
    return {"median_ns": float(median), "p99_ns": float(p99), "calls": len(ordered)}


def stage_step_hook(work: Workload, device: str) -> dict[str, Any]:
    """Per-call time of the callbacks' per-step path, the device idle and then busy.

    Each step times an empty call (the timer's own cost), ``Tracker.step``,
    ``TrainingMonitor.step`` (what every adapter's batch-end hook calls) and, every ``LOG_EVERY``
    steps, ``TrainingMonitor.step_metrics`` (a logging step). Busy: one product is queued on the
    device before each step's calls and not waited for, so the device computes while the hooks
    run, the sampler polls the meters beside them, and a full queue makes the enqueue, not the
    hooks, wait.
    """
    import torch

    from carbon_callbacks.training import TrainingMonitor

    options: dict[str, Any] = {"gpu_ids": None} if device == "cpu" else {}
    monitor = TrainingMonitor(quiet=True, write_log=False, **options)
    monitor.start()
    tracker = monitor.tracker
    assert tracker is not None
    a, b = operands(work.size, device)

    def empty() -> None:
        pass

    calls: dict[str, Callable[[], object]] = {
        "empty call": empty,
        "Tracker.step": tracker.step,
        "TrainingMonitor.step": lambda: monitor.step(1),
    }

    def timed(steps: int, queue_work: bool) -> dict[str, dict[str, float | None]]:
        times: dict[str, list[int]] = {
            name: [] for name in [*calls, "TrainingMonitor.step_metrics"]
        }
        clock = time.perf_counter_ns
        started = time.perf_counter()
        for index in range(steps):
            if queue_work:
                torch.matmul(a, b)
            for name, call in calls.items():
                before = clock()
                call()
                times[name].append(clock() - before)
            if index % LOG_EVERY == LOG_EVERY - 1:
                before = clock()
                monitor.step_metrics()
                times["TrainingMonitor.step_metrics"].append(clock() - before)
        synchronize(device)
        figures = {name: percentiles(series) for name, series in times.items()}
        figures["wall"] = {"seconds": time.perf_counter() - started, "steps": steps}
        return figures

    monitor.begin_epoch()
    idle = timed(work.hook_idle_steps, queue_work=False)
    busy = timed(work.steps, queue_work=True)
    monitor.end_epoch()
    monitor.stop()
    return {"idle": idle, "busy": busy, "log_every": LOG_EVERY}


STAGES: dict[str, Callable[[Workload, str], dict[str, Any]]] = {
    "environment": stage_environment,
    "workload": stage_workload,
    "lightning": stage_lightning,
    "transformers": stage_transformers,
    "keras": stage_keras,
    "counter_vs_power": stage_counter_vs_power,
    "step_hook": stage_step_hook,
}


def main(argv: list[str] | None = None) -> int:
    """Run one stage and write its figures (with the workload's parameters) to ``--result``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=sorted(STAGES))
    parser.add_argument("--device", default="cuda", help="torch device type: cuda or cpu")
    parser.add_argument("--quick", action="store_true", help="the small workload")
    parser.add_argument("--result", required=True, help="JSON file to write the figures to")
    args = parser.parse_args(argv)
    work = WORKLOADS["quick" if args.quick else "full"]
    figures = STAGES[args.stage](work, args.device)
    figures["workload"] = asdict(work) | {"dtype": dtype_name(args.device), "device": args.device}
    Path(args.result).write_text(json.dumps(figures, indent=2, allow_nan=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
