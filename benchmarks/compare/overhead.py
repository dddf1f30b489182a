"""Overhead, start-up, thread CPU and memory: carbon-callbacks vs CodeCarbon vs Carbontracker.

Run from the repository root, in the benchmark-only environment that has the peers installed::

    .venv-compare/bin/python benchmarks/compare/overhead.py \
        --json benchmarks/results/compare_overhead.json

The same tiny Lightning ``fit`` (about 1 ms a step on CPU, one torch thread) runs with each variant:
no tracker, an empty callback, ours (``CarbonCallback``), CodeCarbon's ``OfflineEmissionsTracker``
(started before and stopped after ``fit``, at its default ``measure_power_secs`` and at 1 s) and
Carbontracker (``epoch_start``/``epoch_end`` from a minimal callback). Every variant of every round
runs in a fresh subprocess, alternated round by round, because the trackers start threads and patch
process state. Start-up (construction until the first measurement) and cold import times are
measured in fresh processes of their own. See README.md next to this file for the method.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
MARK = "OVERHEAD-RESULT "
BATCH_SIZE = 32
FEATURES = 16
INTENSITY_G_PER_KWH = 50.0
COUNTRY_ISO3 = "SWE"
VARIANTS = ("none", "empty", "ours", "codecarbon", "codecarbon_1s", "carbontracker")
# What a user imports, per tool, as (module, name): in training (after Lightning) and alone (cold).
TOOL_IMPORTS = {
    "ours": (("carbon_callbacks.lightning", "CarbonCallback"), ("carbon_callbacks", "Tracker")),
    "codecarbon": (("codecarbon", "OfflineEmissionsTracker"),) * 2,
    "carbontracker": (("carbontracker.tracker", "CarbonTracker"),) * 2,
}
TOOL_OF = {"ours": "ours", "codecarbon": "codecarbon", "codecarbon_1s": "codecarbon",
           "carbontracker": "carbontracker"}  # fmt: skip
PACKAGES = ("carbon-callbacks", "codecarbon", "carbontracker", "lightning", "torch", "psutil",
            "nvidia-ml-py", "pandas", "py-cpuinfo", "geocoder")  # fmt: skip


# -- one training run (the child) ------------------------------------------------------------


class Tracker:
    """One variant's tracker: built and started before ``fit``, stopped after it."""

    def __init__(self, variant: str, epochs: int) -> None:
        self.variant = variant
        self.callbacks: list[Any] = []
        self._stop: Callable[[], object] = lambda: None
        if variant == "empty":
            self.callbacks = [empty_callback()]
        elif variant == "ours":
            from carbon_callbacks.lightning import CarbonCallback

            ours = CarbonCallback(
                write_log=False, summary=False, intensity_g_per_kwh=INTENSITY_G_PER_KWH
            )
            self.callbacks = [ours]
        elif variant.startswith("codecarbon"):
            self._stop = start_codecarbon(1.0 if variant == "codecarbon_1s" else None).stop
        elif variant == "carbontracker":
            tracker = new_carbontracker(epochs)
            self.callbacks = [carbontracker_callback(tracker)]
            self._stop = tracker.stop

    def stop(self) -> None:
        """Stop the tracker (peers only: ours stops itself at the end of ``fit``)."""
        self._stop()


def start_codecarbon(measure_power_secs: float | None) -> Any:
    """A started offline CodeCarbon tracker: no network, no file, errors only."""
    codecarbon = importlib.import_module("codecarbon")
    options: dict[str, Any] = {"country_iso_code": COUNTRY_ISO3, "log_level": "error",
                               "save_to_file": False}  # fmt: skip
    if measure_power_secs is not None:
        options["measure_power_secs"] = measure_power_secs
    tracker = codecarbon.OfflineEmissionsTracker(**options)
    tracker.start()
    return tracker


def new_carbontracker(epochs: int) -> Any:
    """A Carbontracker for ``epochs`` epochs of the CPU, quiet, without log files.

    It has no offline switch: its constructor asks ipinfo.io for the location (``geocoder``) and
    falls back to the world-average intensity when that fails, as it does fast here (no DNS).
    """
    module = importlib.import_module("carbontracker.tracker")
    return module.CarbonTracker(
        epochs=epochs, components="cpu", verbose=0, log_dir=None, ignore_errors=True
    )


def empty_callback() -> Any:
    """A callback overriding the hooks ours overrides, doing nothing in them."""
    import lightning as L

    class EmptyCallback(L.Callback):
        def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
            pass

        def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
            pass

        def on_train_batch_end(
            self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
        ) -> None:
            pass

        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            pass

        def on_validation_start(self, trainer: Any, pl_module: Any) -> None:
            pass

        def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
            pass

        def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
            pass

        def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
            pass

        def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
            pass

    return EmptyCallback()


def carbontracker_callback(tracker: Any) -> Any:
    """The minimal Lightning callback Carbontracker's README loop asks for."""
    import lightning as L

    class CarbontrackerCallback(L.Callback):
        def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
            tracker.epoch_start()

        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            tracker.epoch_end()

    return CarbontrackerCallback()


def step_timer() -> Any:
    """A callback (placed last) timing each epoch's steps: first batch start to last batch end."""
    import lightning as L

    class StepTimer(L.Callback):
        def __init__(self) -> None:
            self.start_ns = 0
            self.seconds_per_step: list[float] = []

        def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, idx: int) -> None:
            if idx == 0:
                self.start_ns = time.perf_counter_ns()

        def on_train_batch_end(
            self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, idx: int
        ) -> None:
            steps = trainer.num_training_batches
            if idx == steps - 1:
                self.seconds_per_step.append((time.perf_counter_ns() - self.start_ns) / 1e9 / steps)

    return StepTimer()


def model_and_data(steps: int) -> tuple[Any, Any]:
    """A two-layer regression model and ``steps`` batches of generated data."""
    import lightning as L
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    class Tiny(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Sequential(
                torch.nn.Linear(FEATURES, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1)
            )

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            x, y = batch
            return torch.nn.functional.mse_loss(self.net(x), y)

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.01)

    x = torch.rand(steps * BATCH_SIZE, FEATURES, generator=torch.Generator().manual_seed(0))
    return Tiny(), DataLoader(TensorDataset(x, x[:, :1] * 2.0), batch_size=BATCH_SIZE)


def train(variant: str, steps: int, epochs: int) -> dict[str, Any]:
    """One ``fit`` with the variant's tracker: step times, wall, CPU of the other threads, RSS."""
    import lightning as L
    import torch

    torch.set_num_threads(1)
    tool = TOOL_OF.get(variant)
    import_s = import_s_of(*TOOL_IMPORTS[tool][0]) if tool is not None else 0.0
    model, data = model_and_data(steps)
    timer = step_timer()
    begin = time.perf_counter()
    tracker = Tracker(variant, epochs)
    trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", logger=False,
                        callbacks=[*tracker.callbacks, timer], enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
    cpu, main_cpu, fit_start = time.process_time(), time.thread_time(), time.perf_counter()
    trainer.fit(model, data)
    fit_s = time.perf_counter() - fit_start
    other_cpu_s = (time.process_time() - cpu) - (time.thread_time() - main_cpu)
    threads = sorted(t.name for t in threading.enumerate() if t is not threading.main_thread())
    tracker.stop()
    result = {
        "variant": variant,
        "seconds_per_step": timer.seconds_per_step,
        "fit_s": fit_s,
        "end_to_end_s": time.perf_counter() - begin,
        "other_threads_cpu_s": other_cpu_s,
        "python_threads_at_fit_end": threads,
        "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    return result | ({"import_s": import_s} if tool is not None else {})


# -- start-up probes (children too) ------------------------------------------------------------


def first_sample_s(tool: str) -> float:
    """Seconds from the tracker's construction until its first measurement exists.

    Ours: ``Tracker(...).start()`` returns after the sampler's first sample (``Sampler.open``).
    CodeCarbon: ``start()`` ends with a synchronous ``_measure_power_and_energy()``. Carbontracker:
    construction, then ``epoch_start()``; its thread measures asynchronously, so the first entry
    in the CPU component's ``power_usages`` is polled for every millisecond.
    """
    started = time.perf_counter()
    if tool == "ours":
        from carbon_callbacks import Tracker as OurTracker

        ours = OurTracker(write_log=False, intensity_g_per_kwh=INTENSITY_G_PER_KWH).start()
        elapsed = time.perf_counter() - started
        ours.stop()
    elif tool == "codecarbon":
        codecarbon = start_codecarbon(None)
        elapsed = time.perf_counter() - started
        codecarbon.stop()
    else:
        carbontracker = new_carbontracker(epochs=1)
        carbontracker.epoch_start()
        component = carbontracker.tracker.components[0]
        while not (component.power_usages and component.power_usages[-1]):
            time.sleep(0.001)
        elapsed = time.perf_counter() - started
        carbontracker.stop()
    return elapsed


def import_s_of(module: str, name: str) -> float:
    """Seconds to import ``module`` and get ``name`` from it (lazy packages load on the latter)."""
    started = time.perf_counter()
    getattr(importlib.import_module(module), name)
    return time.perf_counter() - started


# -- the parent -------------------------------------------------------------------------------


def child(argv: list[str]) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter and return its result (or its error)."""
    command = [sys.executable, str(Path(__file__).resolve()), *argv]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith(MARK)]
    if done.returncode != 0 or not lines:
        return {"argv": argv, "error": f"exit {done.returncode}: {done.stderr[-2000:]}"}
    result: dict[str, Any] = json.loads(lines[-1][len(MARK) :])
    return result


def run(
    variants: Iterable[str], rounds: int, steps: int, epochs: int, probes: int, isolate: bool = True
) -> dict[str, Any]:
    """Alternate the variants for ``rounds`` rounds, then probe start-up ``probes`` times a tool.

    ``isolate=False`` runs everything in this process (a smoke test; memory figures then mean
    nothing).
    """
    variants = list(variants)
    runs: list[dict[str, Any]] = []
    for _ in range(rounds):
        for variant in variants:
            if isolate:
                runs.append(child(["--child", variant, f"--steps={steps}", f"--epochs={epochs}"]))
            else:
                runs.append(train(variant, steps, epochs))
    tools = sorted({TOOL_OF[v] for v in variants if v in TOOL_OF})
    startup: dict[str, dict[str, list[float]]] = {}
    for tool in tools:
        startup[tool] = {"first_sample_s": [], "cold_import_s": []}
        for _ in range(probes):
            for kind in ("first_sample_s", "cold_import_s"):
                value = (child(["--probe", kind, tool]) if isolate
                         else {"value": probe(kind, tool)})  # fmt: skip
                if "value" in value:
                    startup[tool][kind].append(value["value"])
    return {"settings": {"rounds": rounds, "steps_per_epoch": steps, "epochs": epochs,
                         "probes": probes, "isolated": isolate, "torch_threads": 1,
                         "batch_size": BATCH_SIZE},
            "runs": runs, "startup": startup}  # fmt: skip


def probe(kind: str, tool: str) -> float:
    """One start-up figure: ``first_sample_s`` or ``cold_import_s`` of ``tool``."""
    cold = import_s_of(*TOOL_IMPORTS[tool][1])
    return first_sample_s(tool) if kind == "first_sample_s" else cold


def summarize(results: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per variant medians: step time (epochs after the first), wall, thread CPU, RSS, import."""
    values: dict[str, dict[str, list[float]]] = {}
    for run_ in results["runs"]:
        if "error" in run_:
            continue
        entry = values.setdefault(run_["variant"], {})
        for key in ("end_to_end_s", "other_threads_cpu_s", "maxrss_mib", "import_s"):
            if key in run_:
                entry.setdefault(key, []).append(run_[key])
        entry.setdefault("step_s", []).extend(run_["seconds_per_step"][1:])
    return {
        variant: {key: statistics.median(figures) for key, figures in entry.items() if figures}
        for variant, entry in values.items()
    }


def table(results: dict[str, Any]) -> str:
    """The medians as a Markdown table, each against the no-tracker run."""
    summary, startup = results["summary"], results["startup"]
    base = summary.get("none", {})
    lines = [
        "| variant | step (us) | ratio | end-to-end (s) | other-thread CPU in fit (ms) "
        "| peak RSS (MiB) | import after Lightning (ms) | cold import (ms) "
        "| to first sample (ms) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for variant in results["variants"]:
        row = summary.get(variant)
        if row is None:
            lines.append(f"| {variant} | failed: see runs[].error in the JSON | | | | | | | |")
            continue
        tool = startup.get(TOOL_OF.get(variant, ""), {})
        cells = [
            variant,
            f"{row['step_s'] * 1e6:.0f}",
            ratio(row["step_s"], base.get("step_s")),
            with_delta(row["end_to_end_s"], base.get("end_to_end_s"), 1.0, "{:.2f}"),
            with_delta(row["other_threads_cpu_s"], base.get("other_threads_cpu_s"), 1e3, "{:.0f}"),
            with_delta(row["maxrss_mib"], base.get("maxrss_mib"), 1.0, "{:.0f}"),
            median_ms([row["import_s"]] if "import_s" in row else []),
            median_ms(tool.get("cold_import_s", [])),
            median_ms(tool.get("first_sample_s", [])),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ratio(value: float, base: float | None) -> str:
    """``value / base`` to three decimals, or a dash without a baseline."""
    return f"{value / base:.3f}" if base else "-"


def with_delta(value: float, base: float | None, scale: float, form: str) -> str:
    """The scaled value, followed by its difference from the scaled baseline."""
    text = form.format(value * scale)
    if base is None:
        return text
    sign = "+" if value >= base else "-"
    return f"{text} ({sign}{form.format(abs(value - base) * scale)})"


def median_ms(values: list[float]) -> str:
    """The median of seconds in milliseconds, or a dash."""
    return f"{statistics.median(values) * 1e3:.0f}" if values else "-"


def machine() -> dict[str, Any]:
    """Cores, CPU model, Python and the platform."""
    model = ""
    with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"cpus": os.cpu_count(), "cpu_model": model, "python": platform.python_version(),
            "platform": platform.platform()}  # fmt: skip


def versions() -> dict[str, str]:
    """Installed versions of the tools and the frameworks (absent ones omitted)."""
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def report(results: dict[str, Any]) -> str:
    """The Markdown table with the command, date, machine and versions under it."""
    facts = results["machine"]
    return "\n".join([
        table(results),
        "",
        f"Command: `{results['command']}`",
        f"Date: {results['date']}",
        f"Machine: {facts['cpus']} cores, {facts['cpu_model']}, Python {facts['python']}, "
        f"{facts['platform']}",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in results["versions"].items()),
        "Settings: " + ", ".join(f"{k}={v}" for k, v in results["settings"].items()),
    ])  # fmt: skip


def main() -> None:
    """Run the comparison (or, with ``--child``/``--probe``, one measurement of it)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=300, help="steps per epoch")
    parser.add_argument("--epochs", type=int, default=5, help="the first is left out of step times")
    parser.add_argument("--probes", type=int, default=3, help="start-up probes per tool")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--probe", nargs=2, metavar=("KIND", "TOOL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(MARK + json.dumps(train(args.child, args.steps, args.epochs)), flush=True)
        return
    if args.probe is not None:
        print(MARK + json.dumps({"value": probe(*args.probe)}), flush=True)
        return
    variants = args.variants.split(",")
    date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    results = run(variants, args.rounds, args.steps, args.epochs, args.probes)
    results |= {
        "variants": variants,
        "command": " ".join([sys.executable, *sys.argv]),
        "date": date,
        "machine": machine(),
        "versions": versions(),
    }
    results["summary"] = summarize(results)
    print(report(results))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
