"""The Hugging Face adapter under TRL's ``SFTTrainer``: a tiny GPT-2 trained on CPU, offline.

``SFTTrainer.log`` merges the metrics it gathered since its last log (``entropy``,
``mean_token_accuracy``, ``num_tokens``) into whatever it is asked to log, and clears them after
the integrations have run: any log call of ours through it would carry (and take away) the
trainer's metrics. A run without our callback is the reference for where those metrics belong.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("trl")
datasets = pytest.importorskip("datasets")

from tokenizers import Regex, Tokenizer, models, pre_tokenizers  # noqa: E402
from transformers import (  # noqa: E402
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedTokenizerFast,
    TrainerCallback,
)
from trl import SFTConfig, SFTTrainer  # noqa: E402

from carbon_callbacks.transformers import CarbonCallback  # noqa: E402
from tests.meters.fake_powercap import FakePowercap  # noqa: E402
from tests.test_transformers import Recorder, carbon_entries  # noqa: E402

# SFTConfig defaults gradient_checkpointing to True, a name transformers 5 deprecates
pytestmark = pytest.mark.filterwarnings("ignore:`gradient_checkpointing`:FutureWarning")

TRL_METRICS = ("entropy", "mean_token_accuracy", "num_tokens")
"""What ``SFTTrainer`` computes in its loss and adds to its next log."""

CHARACTERS = "abcdefghijklmnopqrstuvwxyz "
TEXTS = ["hello world", "the quick brown fox", "jumps over", "the lazy dog"] * 4
BATCH = 4  # 16 texts: 4 steps per epoch


def character_tokenizer() -> PreTrainedTokenizerFast:
    """One token per character, built in code (no download)."""
    vocab = {"<pad>": 0, "<eos>": 1, "<unk>": 2} | {c: i + 3 for i, c in enumerate(CHARACTERS)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>"
    )


def sft_trainer(tmp_path: Path, callbacks: list[TrainerCallback]) -> SFTTrainer:
    """Two epochs of 4 steps, logged every 3 steps: the epochs end between logging steps."""
    tokenizer = character_tokenizer()
    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=32, n_embd=8, n_layer=1, n_head=2,
        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    args = SFTConfig(
        output_dir=str(tmp_path / "out"), num_train_epochs=2, per_device_train_batch_size=BATCH,
        logging_steps=3, include_num_input_tokens_seen=True, max_length=32, use_cpu=True,
        report_to=[], disable_tqdm=True, save_strategy="no", dataloader_num_workers=0, seed=0,
    )  # fmt: skip
    torch.manual_seed(0)  # the same weights in every run
    model = GPT2LMHeadModel(config)
    return SFTTrainer(
        model=model, args=args, train_dataset=datasets.Dataset.from_dict({"text": TEXTS}),
        processing_class=tokenizer, callbacks=callbacks,
    )  # fmt: skip


def trl_entries(history: list[dict[str, Any]]) -> list[tuple[int | None, dict[str, float]]]:
    """Each entry holding TRL's metrics: its step (None where not recorded) and those metrics."""
    return [
        (entry.get("step"), {name: entry[name] for name in TRL_METRICS if name in entry})
        for entry in history
        if any(name in entry for name in TRL_METRICS)
    ]


def test_sft_trainer_metrics_are_logged_once_and_ours_reach_the_integrations(
    powercap: FakePowercap, tmp_path: Path
) -> None:
    reference = Recorder()
    baseline = sft_trainer(tmp_path / "baseline", [reference])
    baseline.train()
    expected = trl_entries(baseline.state.log_history)
    # the logging steps and the end of training: TRL's metrics belong to the trainer's own logs
    assert [step for step, _ in expected] == [3, 6, 8]
    assert all(set(metrics) == set(TRL_METRICS) for _, metrics in expected)

    integration = Recorder(powercap)  # before ours, where the report_to integrations sit
    trainer = sft_trainer(tmp_path / "measured", [integration, CarbonCallback(summary=False)])
    trainer.train()
    history = trainer.state.log_history

    # Once per logging step, where the trainer put them, averaged over the same steps.
    logged = trl_entries(history)
    assert [step for step, _ in logged] == [step for step, _ in expected]
    for (_, metrics), (_, reference_metrics) in zip(logged, expected, strict=True):
        assert metrics == pytest.approx(reference_metrics, rel=1e-5)
    assert trl_entries(integration.logs) == [(None, metrics) for _, metrics in logged]
    assert trl_entries(reference.logs) == [(None, metrics) for _, metrics in expected]

    # Ours reach the integrations as log_history holds them, the epochs' figures included.
    received = carbon_entries(integration.logs)
    assert received == [
        {k: v for k, v in entry.items() if k != "step"} for entry in carbon_entries(history)
    ]
    assert sum("carbon/epoch_energy_kwh" in entry for entry in received) == 2

    # The energy per token at the trainer's logging steps (include_num_input_tokens_seen).
    steps = [entry for entry in history if "loss" in entry]
    assert [entry["step"] for entry in steps] == [3, 6]
    per_token = [entry["carbon/energy_per_token_j"] for entry in steps]
    assert all(math.isfinite(value) for value in per_token), per_token
