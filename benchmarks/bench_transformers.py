"""Per-step overhead of ``CarbonCallback`` in Hugging Face ``Trainer`` runs.

Run from the repository root: ``python benchmarks/bench_transformers.py [--json PATH]``. Two
figures, each for three variants (no callback, an empty callback with the same hooks, ours):

- whole training steps: the same tiny BERT trained on CPU, variants alternated over several rounds,
  per-step time taken between two ``on_step_end`` calls by a timing callback placed first in every
  variant (so the measurement costs the same in all three); logging steps included. A Trainer step
  costs milliseconds here, so this figure bounds the overhead only to its noise.
- the step hook alone: ``CallbackHandler.on_step_end`` (what the trainer calls once per optimizer
  step) called in a tight loop on a started callback, alternated the same way; ours minus the empty
  callback is the cost our hook adds to a step.

Prints a Markdown table of medians and ratios; ``--json`` writes the raw figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from transformers import (  # noqa: E402
    BertConfig,
    BertForSequenceClassification,
    PrinterCallback,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)
from transformers.utils import logging as hf_logging  # noqa: E402

from carbon_callbacks.transformers import CarbonCallback  # noqa: E402

VARIANTS = ("none", "empty", "carbon")
HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end", "on_step_end",
         "on_log", "on_evaluate")  # fmt: skip


class EmptyCallback(TrainerCallback):
    """Implements the hooks ``CarbonCallback`` implements, doing nothing in them."""


for _hook in HOOKS:
    setattr(EmptyCallback, _hook, lambda self, args, state, control, **kwargs: None)


class StepClock(TrainerCallback):
    """Notes the time of every ``on_step_end``; placed first, identical in every variant."""

    def __init__(self) -> None:
        self.times: list[int] = []

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.times.append(time.perf_counter_ns())


class TokenDataset(torch.utils.data.Dataset):
    """Random token ids and labels, generated in code."""

    def __init__(self, size: int, length: int = 4) -> None:
        generator = torch.Generator().manual_seed(0)
        self.ids = torch.randint(1, 16, (size, length), generator=generator)
        self.labels = torch.randint(0, 2, (size,), generator=generator)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"input_ids": self.ids[index], "labels": self.labels[index]}


def make_trainer(callbacks: list[Any], steps: int, output_dir: str) -> Trainer:
    """The smallest BERT the config allows, trained for ``steps`` steps of batch 1, one epoch."""
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=16, hidden_size=2, num_hidden_layers=1, num_attention_heads=1,
        intermediate_size=2, max_position_embeddings=4, num_labels=2,
    )  # fmt: skip
    args = TrainingArguments(
        output_dir=output_dir, num_train_epochs=1, per_device_train_batch_size=1, use_cpu=True,
        report_to=[], disable_tqdm=True, save_strategy="no", logging_steps=50,
        dataloader_num_workers=0, log_level="error",
    )  # fmt: skip
    trainer = Trainer(
        model=BertForSequenceClassification(config), args=args,
        train_dataset=TokenDataset(steps), callbacks=callbacks,
    )  # fmt: skip
    trainer.remove_callback(PrinterCallback)  # printing every log would dominate the timing
    return trainer


def extra_callbacks(variant: str) -> list[Any]:
    if variant == "empty":
        return [EmptyCallback()]
    if variant == "carbon":
        return [CarbonCallback(summary=False, write_log=False)]
    return []


def step_us(variant: str, steps: int, output_dir: str) -> float:
    """Median microseconds between consecutive optimizer steps of one training run."""
    clock = StepClock()
    make_trainer([clock, *extra_callbacks(variant)], steps, output_dir).train()
    gaps = [(b - a) / 1000 for a, b in zip(clock.times[10:], clock.times[11:], strict=False)]
    return statistics.median(gaps)


def hook_ns(variant: str, calls: int, output_dir: str) -> float:
    """Nanoseconds per ``CallbackHandler.on_step_end`` call, the hook started as in training."""
    trainer = make_trainer(extra_callbacks(variant), 4, output_dir)
    handler, args, state, control = (
        trainer.callback_handler,
        trainer.args,
        trainer.state,
        trainer.control,
    )
    state.global_step = 1  # not a logging step: DefaultFlowCallback leaves should_log unset
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no Trainer up this stack: the fallback warns once
        handler.on_train_begin(args, state, control)
    try:
        start = time.perf_counter_ns()
        for _ in range(calls):
            handler.on_step_end(args, state, control)
        return (time.perf_counter_ns() - start) / calls
    finally:
        handler.on_train_end(args, state, control)


def alternate(measure: Callable[[str], float], rounds: int) -> dict[str, list[float]]:
    """``rounds`` rounds of every variant in turn, so drift in the machine hits all alike."""
    figures: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    for _ in range(rounds):
        for variant in VARIANTS:
            figures[variant].append(measure(variant))
    return figures


def run(rounds: int, steps: int, calls: int) -> dict[str, Any]:
    """Every figure, raw, with the machine and versions."""
    import transformers

    hf_logging.set_verbosity_error()
    torch.set_num_threads(1)  # a tiny model gains nothing from threads, and they add noise
    with tempfile.TemporaryDirectory() as output_dir:
        steps_raw = alternate(lambda variant: step_us(variant, steps, output_dir), rounds)
        hooks_raw = alternate(lambda variant: hook_ns(variant, calls, output_dir), rounds)
    return {
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpus": os.cpu_count(), "torch": torch.__version__,
                    "transformers": transformers.__version__},
        "settings": {"rounds": rounds, "steps": steps, "hook_calls": calls},
        "step_us": steps_raw,
        "hook_ns": hooks_raw,
    }  # fmt: skip


def table(results: dict[str, Any]) -> str:
    """Markdown table of the medians, with ours against the empty callback."""
    step = {v: statistics.median(results["step_us"][v]) for v in VARIANTS}
    hook = {v: statistics.median(results["hook_ns"][v]) for v in VARIANTS}
    step_extra, hook_extra = step["carbon"] - step["empty"], hook["carbon"] - hook["empty"]
    rows = [
        ("Trainer step, median us", *(f"{step[v]:.1f}" for v in VARIANTS),
         f"{step['carbon'] / step['empty']:.3f}", f"{step_extra:+.1f} us"),
        ("on_step_end dispatch, median ns", *(f"{hook[v]:.0f}" for v in VARIANTS),
         f"{hook['carbon'] / hook['empty']:.3f}", f"{hook_extra / 1000:+.3f} us"),
    ]  # fmt: skip
    header = (
        "| what | no callback | empty callback | CarbonCallback | ours / empty | ours - empty |"
    )
    lines = [header, "| --- | --- | --- | --- | --- | --- |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=400, help="optimizer steps per training run")
    parser.add_argument("--calls", type=int, default=20_000, help="hook calls per timing loop")
    options = parser.parse_args()
    results = run(options.rounds, options.steps, options.calls)
    print(table(results))
    if options.json:
        options.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
