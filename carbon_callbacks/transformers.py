"""Energy and CO2e of a Hugging Face ``Trainer`` run, logged where the trainer logs.

```python
from carbon_callbacks.transformers import CarbonCallback

trainer = Trainer(model, args, train_dataset=data, callbacks=[CarbonCallback(country="SE")])
trainer.train()  # carbon/* metrics land in log_history and every report_to integration;
                 # the console prints energy, CO2e, power and the forecast with the trainer's line
```

Why the metrics ride on ``Trainer.log``: user callbacks run after the ``report_to``
integrations, and ``Trainer.log`` appends to ``state.log_history`` before calling ``on_log``, so a
callback that adds keys to ``logs`` in ``on_log`` reaches neither. Callbacks are not given the
trainer either (``CallbackHandler.call_event`` passes model, processing class, optimizer,
scheduler and dataloaders), so ``on_train_begin`` looks a few frames up the stack for the
``Trainer`` whose ``_inner_training_loop`` called it, and wraps that trainer's ``log`` (on the
instance, until ``on_train_end``): at a logging step the carbon metrics join the trainer's own
dict before it is stored, so ``log_history`` holds one entry with both and every callback,
integrations included, receives every metric in the same ``on_log``. Our ``on_log`` then removes
the metrics the console does not show (all but ``WATCHED``, unless ``metrics="all"``) from that
dict, so the progress printer, which comes after every user callback, prints the trainer's
figures and the watched few on one line. An epoch's own figures, unless the trainer logs at
that step, go out in a log call of their own (after the evaluation that follows the epoch, if
any), made through ``transformers.Trainer.log`` itself: a subclass's ``log`` may merge its
pending metrics into whatever it is given (TRL's ``SFTTrainer`` adds ``entropy``,
``mean_token_accuracy`` and ``num_tokens``, then clears them), which would move the trainer's
figures into our entry and out of its next one. Without a trainer there (a custom loop driving
the callbacks) the metrics are appended to ``log_history`` only, with a warning.

Hook mapping (transformers ``trainer.py`` / ``trainer_callback.py``):

- ``on_train_begin``: start measuring (the GPU this rank trains on, none on CPU; its process tree;
  the host on local rank 0; rank 0's run id shared through a collective), resume the totals
  of a checkpoint's ``stateful_callbacks`` entry.
- ``on_epoch_begin`` / ``on_epoch_end``: an epoch's exact window; its metrics are logged at once, or
  after the trainer's log (``logging_strategy="epoch"``) or its evaluation, which both come right
  after ``on_epoch_end``.
- ``on_step_end``: one optimizer step (its samples, and its tokens when the trainer counts them).
  When ``control.should_log`` is set, step-level metrics are logged right after the trainer's own
  log of that step; when ``control.should_evaluate`` is set, the ``val`` phase opens, since
  evaluation follows (transformers has no hook at evaluation start) and ``on_evaluate`` closes it.
- ``Trainer.log`` (wrapped): at a logging step, the step-level metrics join the trainer's dict.
- ``on_log``: leaves the console the watched metrics (the trainer's dict, after the integrations).
- ``on_train_end``: stop, print the summary on global rank 0 (to stderr, as the other adapters).

transformers has no hook for a training that raises: its measurement then goes on until the next
``train()`` with this callback, which closes the run as ``unfinished``, or until the interpreter
exits, which closes it as ``failed`` (``interrupted`` after Ctrl-C). SIGTERM closes it as
``interrupted`` and then ends the process as it would have without us.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping
from types import FrameType
from typing import Any

from transformers import Trainer, TrainerCallback
from transformers.trainer_callback import ExportableState

from carbon_callbacks._internal.warnings import WarnOnce
from carbon_callbacks.reporting.text import format_forecast_line, format_training_summary
from carbon_callbacks.training.metrics import MetricSet
from carbon_callbacks.training.monitor import DEFAULT_PREFIX, RankInfo, TrainingMonitor
from carbon_callbacks.training.outcome import ForecastFigures
from carbon_callbacks.training.torch_runtime import distributed_sum, gpu_ids_of

__all__ = ["CarbonCallback"]

_TRAINER_SEARCH_DEPTH = 8
"""How many frames above ``on_train_begin`` may hold the trainer: the handler's two frames, then
``Trainer._inner_training_loop`` (the third in transformers 4.45 to 5.x), with room to spare."""

_STATE_KEY = "totals"
"""Where ``state()`` puts the monitor's totals among the saved ``attributes``."""


class CarbonCallback(TrainerCallback, ExportableState):
    """Measures a ``Trainer`` run and logs its energy and CO2e as ``carbon/*`` metrics.

    Add it with ``Trainer(..., callbacks=[CarbonCallback()])`` or ``trainer.add_callback(...)``.
    The metrics and their meanings are ``carbon_callbacks.training.METRICS``.

    Resuming (``trainer.train(resume_from_checkpoint=...)``) continues the totals saved in the
    checkpoint's ``trainer_state.json``, whatever ``restore_callback_states_from_checkpoint`` says.
    When that argument is True, transformers replaces this callback by a new one built from the
    saved arguments: options that are not plain JSON values (a custom ``intensity`` provider,
    ``meters``) and tokens are not saved, so the new callback goes without them.

    Args:
        prefix: Prepended to every metric name.
        summary: Print the run's summary to stderr on global rank 0 when training ends, and
            the one-line forecast once it is known; False prints neither.
        metrics: What the console prints of each log: ``"default"``, the watched few
            (``carbon_callbacks.training.WATCHED``), or ``"all"``. ``log_history`` and the
            ``report_to`` integrations get every metric either way.
        tracker_options: Passed to ``Tracker`` (``country=``, ``zone=``, ``pue=``, ``output_dir=``,
            ...); checked now.

    Raises:
        ValueError, TypeError: An option is invalid; the message says what to write instead.
    """

    def __init__(
        self,
        *,
        prefix: str = DEFAULT_PREFIX,
        summary: bool = True,
        metrics: MetricSet = "default",
        **tracker_options: Any,
    ) -> None:
        self._prefix = prefix
        self._summary = summary
        self._metrics = metrics
        self._options = tracker_options
        self._monitor = TrainingMonitor(
            prefix=prefix, quiet=not summary, metrics=metrics, **tracker_options
        )
        self._monitor.announce = _announce
        self._trainer: Any = None
        self._wrapped: tuple[Any, Any, bool] | None = None
        """The trainer whose ``log`` we wrapped, its own ``log``, whether that was set on it."""
        self._warn_once = WarnOnce()
        self._samples_per_step = 0
        self._counts_tokens = False
        self._tokens_seen = 0
        self._log_due = False
        self._epoch_ending = False
        self._in_val = False
        self._evaluations_left = 0

    @property
    def monitor(self) -> TrainingMonitor:
        """The measurement behind the callback; ``monitor.tracker.summary`` after training."""
        return self._monitor

    # -- training ----------------------------------------------------------------------------

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Start measuring; a checkpoint being resumed contributes its totals."""
        if self._monitor.is_running:  # the previous train() raised: nothing told us it ended
            self._monitor.stop("unfinished")
        self._monitor.load_state_dict({})  # a new run: no totals carried over from an earlier one
        self._unwrap_log()  # a previous train() that raised left it wrapped
        self._trainer = _find_trainer()
        if self._trainer is not None:
            self._wrap_log(self._trainer)
        else:
            self._warn_once(
                "no-trainer",
                "carbon-callbacks: no transformers.Trainer found calling on_train_begin; carbon "
                "metrics go to state.log_history only, not to the report_to integrations",
            )
        self._reset_progress(args, state)
        name = type(self).__name__
        if state.global_step > 0:  # a fresh TrainerState starts at 0: this one is a checkpoint's
            self._resume(args, state.stateful_callbacks.get(name))
        # transformers' _save_checkpoint indexes stateful_callbacks by class name; a resumed
        # checkpoint saved without this callback lacks the key, which would fail the next save.
        state.stateful_callbacks.setdefault(name, self.state())
        reduce = distributed_sum(args.device) if args.world_size > 1 else None
        self._monitor.start(_rank_info(args), reduce)
        self._monitor.set_total_steps(state.max_steps)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Stop measuring and print the summary on global rank 0, to stderr."""
        self._settle(state)
        lines = format_training_summary(self._monitor.finish())
        if self._summary and lines:
            print("\n".join(lines), file=sys.stderr)
        self._unwrap_log()
        self._trainer = None

    # -- epochs ------------------------------------------------------------------------------

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Open the epoch's window."""
        self._settle(state)
        self._monitor.begin_epoch()

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Close the epoch now, or after the trainer's log or evaluation that follow."""
        self._settle(state)
        if self._monitor.should_stop:
            control.should_training_stop = True
        self._epoch_ending = True
        self._log_due = control.should_log
        if control.should_evaluate:
            self._begin_val()
        elif not self._log_due:
            self._log(self._monitor.end_epoch(), state)
            self._epoch_ending = False

    # -- steps -------------------------------------------------------------------------------

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Count one optimizer step; note a logging step and an evaluation about to run."""
        tokens = None
        if self._counts_tokens:
            seen = state.num_input_tokens_seen
            tokens, self._tokens_seen = seen - self._tokens_seen, seen
        self._monitor.step(self._samples_per_step, tokens)
        if self._monitor.should_stop:  # decided at the previous log or epoch end, on every rank
            control.should_training_stop = True
        if control.should_log:
            self._log_due = True
        if control.should_evaluate:
            self._begin_val()

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
        """Leave the console the watched metrics; without a wrapped trainer, log ours here."""
        if self._log_due:  # no trainer.log of ours carried them: log_history only
            self._log(self._due_metrics(), state)
        if isinstance(logs, dict):  # the integrations before us have read it; the printer follows
            for name in self._monitor.hidden(list(logs)):
                del logs[name]
        if self._monitor.should_stop:  # the trainer reads control right after this log
            control.should_training_stop = True

    # -- evaluation --------------------------------------------------------------------------

    def on_evaluate(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Close the ``val`` phase after the trainer's evaluation (each of its eval datasets)."""
        if not self._in_val:
            return
        self._evaluations_left -= 1
        if self._evaluations_left <= 0:
            self._end_val(state)

    # -- resume ------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """What transformers saves in ``trainer_state.json``: JSON-ready arguments and totals."""
        arguments: dict[str, Any] = {
            "prefix": self._prefix,
            "summary": self._summary,
            "metrics": self._metrics,
        }
        for key, value in self._options.items():
            value = os.fspath(value) if isinstance(value, os.PathLike) else value
            if "token" not in key and _is_json_value(value):
                arguments[key] = value
        return {"args": arguments, "attributes": {_STATE_KEY: self._monitor.state_dict()}}

    # -- internals ---------------------------------------------------------------------------

    def _reset_progress(self, args: Any, state: Any) -> None:
        """Per-run counters: samples per step, the token count, the epoch and phase flags."""
        batch = state.train_batch_size or args.train_batch_size
        self._samples_per_step = batch * args.gradient_accumulation_steps
        # num_input_tokens_seen is gathered over all ranks: rank 0 alone counts it, so the sum
        # over ranks that step-level metrics take is the trainer's figure.
        self._counts_tokens = args.include_num_input_tokens_seen not in ("no", False)
        self._counts_tokens = self._counts_tokens and args.process_index == 0
        self._tokens_seen = state.num_input_tokens_seen
        self._log_due = self._epoch_ending = self._in_val = False

    def _resume(self, args: Any, saved: Any) -> None:
        """Continue the totals a checkpoint holds (written by global rank 0, so credited there)."""
        if isinstance(saved, list):  # several callbacks of this class: transformers keeps a list
            saved = saved[0] if saved else None
        if not isinstance(saved, Mapping) or args.process_index != 0:
            return
        totals = saved.get("attributes", {}).get(_STATE_KEY)
        if not isinstance(totals, Mapping):
            return
        try:
            self._monitor.load_state_dict(totals)
        except (TypeError, ValueError) as error:
            self._warn_once(
                "resume",
                f"carbon-callbacks: the checkpoint's carbon totals are unreadable ({error}); "
                "totals start from this run",
            )

    def _due_metrics(self) -> dict[str, float]:
        """The step-level metrics of a logging step, with the epoch's when it just ended."""
        self._log_due = False  # before logging: our own trainer.log calls on_log again
        metrics = self._monitor.step_metrics()
        if self._epoch_ending and not self._in_val:
            metrics |= self._monitor.end_epoch()
            self._epoch_ending = False
        return metrics

    def _wrap_log(self, trainer: Any) -> None:
        """Have the trainer's own ``log`` carry the metrics of a logging step (one entry)."""
        original = trainer.log
        own_attribute = "log" in vars(trainer)  # before ours is set: someone else's wrapper

        def log(logs: Any, *args: Any, **kwargs: Any) -> Any:
            if self._log_due and isinstance(logs, dict):
                try:
                    logs.update(self._due_metrics())
                except Exception as error:  # never into the trainer: its log goes on without ours
                    self._warn_once(
                        f"log:{type(error).__name__}",
                        f"carbon-callbacks: carbon metrics left out of a log entry ({error!r})",
                    )
            return original(logs, *args, **kwargs)

        trainer.log = log
        self._wrapped = (trainer, original, own_attribute)

    def _unwrap_log(self) -> None:
        """Give the trainer its own ``log`` back."""
        if self._wrapped is None:
            return
        trainer, original, own_attribute = self._wrapped
        self._wrapped = None
        if own_attribute:
            trainer.log = original
        else:
            vars(trainer).pop("log", None)

    def _begin_val(self) -> None:
        if self._in_val:
            return
        self._in_val = True
        eval_dataset = getattr(self._trainer, "eval_dataset", None)
        self._evaluations_left = len(eval_dataset) if isinstance(eval_dataset, dict) else 1
        self._monitor.begin_phase("val")

    def _end_val(self, state: Any) -> None:
        self._in_val = False
        self._monitor.end_phase("val")
        if self._epoch_ending:
            self._epoch_ending = False
            self._log(self._monitor.end_epoch(), state)

    def _settle(self, state: Any) -> None:
        """Close what an expected log or evaluation that never came left open."""
        self._log_due = False
        if self._in_val:
            self._end_val(state)
        elif self._epoch_ending:
            self._epoch_ending = False
            self._log(self._monitor.end_epoch(), state)

    def _log(self, metrics: dict[str, float], state: Any) -> None:
        """Log an entry of our own (every callback, ``log_history``), or append it to the history.

        Through transformers' ``Trainer.log``, not the subclass's: TRL's trainers merge the
        metrics they gathered since their last log into any entry, and clear them.
        """
        if not metrics:
            return
        if self._trainer is not None:
            Trainer.log(self._trainer, metrics)
        else:
            state.log_history.append({**metrics, "epoch": state.epoch, "step": state.global_step})


def _find_trainer() -> Any:
    """The ``Trainer`` whose training loop called ``on_train_begin``, or None.

    Reads ``self`` in the few frames between this callback and the training loop; the frames are
    released before returning.
    """
    frame: FrameType | None = sys._getframe(2)  # skip this function and on_train_begin
    try:
        for _ in range(_TRAINER_SEARCH_DEPTH):
            if frame is None:
                return None
            candidate = frame.f_locals.get("self")
            if isinstance(candidate, Trainer):
                return candidate
            frame = frame.f_back
        return None
    finally:
        del frame


def _rank_info(args: Any) -> RankInfo:
    """Where this process sits, from the ``TrainingArguments`` (accelerate's process state)."""
    return RankInfo(
        global_rank=args.process_index,
        local_rank=args.local_process_index,
        world_size=args.world_size,
        num_nodes=_num_nodes(args.world_size),
        # one process on several GPUs (n_gpu > 1) trains with DataParallel on every visible one
        devices=gpu_ids_of(args.device) if args.n_gpu <= 1 else None,
    )


def _num_nodes(world_size: int) -> int:
    """The number of nodes, which only describes the run (in its log).

    World size / ``LOCAL_WORLD_SIZE`` (set by torchrun and accelerate's launchers), else
    ``SLURM_JOB_NUM_NODES``, else 1.
    """
    local = os.environ.get("LOCAL_WORLD_SIZE", "")
    if world_size > 1 and local.isdigit() and int(local) > 0:
        return max(1, math.ceil(world_size / int(local)))
    nodes = os.environ.get("SLURM_JOB_NUM_NODES", "")
    return int(nodes) if world_size > 1 and nodes.isdigit() and int(nodes) > 0 else 1


def _is_json_value(value: Any) -> bool:
    """True for what ``json.dumps`` writes without help: scalars and lists of them."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return True
    return isinstance(value, (list, tuple)) and all(_is_json_value(item) for item in value)


def _announce(forecast: ForecastFigures) -> None:
    """Show the first forecast on stderr, with the summary.

    As Keras's callback and Lightning's ``rank_zero_info`` (whose handler writes to stderr) do:
    transformers' own logger would hide both at its default verbosity (warnings only).
    """
    print(format_forecast_line(forecast), file=sys.stderr)
