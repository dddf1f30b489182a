"""The Lightning hooks mapped onto ``TrainingMonitor``, written once for both Lightning packages.

``lightning.pytorch`` and the standalone ``pytorch_lightning`` are separate class hierarchies, so
each gets a thin ``Callback`` subclass over ``LightningCarbonHooks``: ``carbon_callbacks.lightning``
and ``carbon_callbacks.pytorch_lightning``. This module imports neither package; it touches the
trainer through its public attributes and the private counters Lightning's own monitoring callbacks
(``LearningRateMonitor``, ``DeviceStatsMonitor``, ``ThroughputMonitor``) use.

Hook mapping (``lightning/pytorch/trainer/trainer.py`` ``_run``, ``loops/fit_loop.py``,
``loops/training_epoch_loop.py``, ``trainer/call.py``):

- ``setup(stage="fit")``: start, with this rank's place and ``strategy.reduce`` as the reducer;
  it runs after the process group exists and before a checkpoint's callback state is loaded.
- ``on_train_epoch_start`` / ``on_train_epoch_end``: the epoch window; its metrics go through
  ``pl_module.log_dict`` (so they reach every logger, the progress bar and ``callback_metrics``).
- ``on_validation_start`` / ``on_validation_end`` (not during the sanity check): the ``"val"``
  phase, which Lightning runs inside the training epoch; ``on_validation_batch_start`` marks its
  batches.
- ``on_train_batch_end``: one step per optimizer step; every ``log_every_n_steps`` the
  step-level metrics go straight to ``trainer.loggers`` on global rank 0 (as Lightning's
  ``LearningRateMonitor`` and ``DeviceStatsMonitor`` do), and to the progress bar if asked.
- ``on_fit_end``: the final totals to the loggers, ``finish`` and the summary. ``self.log`` is
  not allowed there, nor in ``on_exception`` and ``teardown``.
- ``on_exception``: ``stop("failed")`` or ``stop("interrupted")`` (Ctrl-C, or SIGTERM: Lightning's
  own handler turns it into ``SIGTERMException``, so the tracker leaves SIGTERM to Lightning);
  ``teardown``: ``stop`` as a last resort (Lightning skips the callback ``teardown`` hooks when
  fitting raises).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, ClassVar

import torch

from carbon_callbacks.training.metrics import MetricSet
from carbon_callbacks.training.monitor import DEFAULT_PREFIX, RankInfo, Reducer, TrainingMonitor
from carbon_callbacks.training.outcome import ForecastFigures, TrainingOutcome
from carbon_callbacks.training.torch_runtime import gpu_ids_of


class LightningCarbonHooks:
    """Energy and CO2e of a Lightning ``fit``, logged to the trainer's loggers.

    Args:
        prefix: Prepended to every metric name (default ``"carbon/"``).
        prog_bar: Also show metrics in the progress bar: the watched few (``WATCHED``) by
            default, every one with ``metrics="all"``. The loggers get every metric either way.
        log_every_n_steps: Steps between step-level metrics; default: the trainer's
            ``log_every_n_steps``; 0 logs epoch-level metrics only.
        summary: Print a summary of the run's energy and CO2e at the end of ``fit``, and the
            one-line forecast once it is known; False prints neither.
        metrics: ``"default"`` or ``"all"``: what ``prog_bar=True`` shows.
        tracker_options: Passed to ``Tracker``: ``country=``, ``zone=``, ``pue=``,
            ``intensity_g_per_kwh=``, ``output_dir=``, ``write_log=``, ...

    Raises:
        ValueError, TypeError: An option is invalid; the message says what to write instead.
    """

    _info: ClassVar[Callable[[str], object]]
    """How the summary is shown: the Lightning package's ``rank_zero_info``."""

    @staticmethod
    def _forecast_line(forecast: ForecastFigures) -> str:
        """How the first forecast is worded: the adapter sets ``reporting.text``'s."""
        raise NotImplementedError

    @staticmethod
    def _summary_lines(outcome: TrainingOutcome | None) -> list[str]:
        """How the end-of-training summary is worded: the adapter sets ``reporting.text``'s."""
        raise NotImplementedError

    def __init__(
        self,
        *,
        prefix: str = DEFAULT_PREFIX,
        prog_bar: bool = False,
        log_every_n_steps: int | None = None,
        summary: bool = True,
        metrics: MetricSet = "default",
        **tracker_options: Any,
    ) -> None:
        if log_every_n_steps is not None and (
            isinstance(log_every_n_steps, bool)
            or not isinstance(log_every_n_steps, int)
            or log_every_n_steps < 0
        ):
            raise ValueError(
                f"log_every_n_steps must be an int >= 0 or None, got {log_every_n_steps!r}; "
                "write log_every_n_steps=50, 0 for epoch-level metrics only, or leave it out "
                "to follow the trainer"
            )
        # Lightning turns SIGTERM into SIGTERMException at the next batch (``on_exception``).
        tracker_options["handle_sigterm"] = False
        self.monitor = TrainingMonitor(
            prefix=prefix, quiet=not summary, metrics=metrics, **tracker_options
        )
        """The measurement behind the callback; ``monitor.tracker.summary`` after ``fit``."""
        self._prog_bar = prog_bar
        self._log_every_n_steps = log_every_n_steps
        self._summary = summary
        self._every = 0
        self._pending_samples = 0
        self._global_rank = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        """Start measuring a ``fit`` on this rank: its device, process tree and (local rank 0) host.

        The device is the one it trains on: none on CPU, one GPU for ``devices=[1]``, never
        every visible GPU.
        """
        self._global_rank = trainer.global_rank
        if stage != "fit":
            return
        strategy = trainer.strategy
        rank = RankInfo(
            global_rank=trainer.global_rank,
            local_rank=trainer.local_rank,
            world_size=trainer.world_size,
            num_nodes=trainer.num_nodes,
            devices=gpu_ids_of(strategy.root_device),
        )
        self.monitor.announce = partial(_announce, type(self)._info, type(self)._forecast_line)
        # A fresh fit owes nothing to an earlier one with this callback; a resumed fit gets its
        # checkpoint's totals after this (Lightning restores callback state after ``setup``).
        self.monitor.load_state_dict({})
        self.monitor.start(rank, _strategy_sum(strategy))
        self.monitor.set_total_steps(_finite_steps(trainer.estimated_stepping_batches))
        every = self._log_every_n_steps
        self._every = trainer.log_every_n_steps if every is None else every
        self._pending_samples = 0

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        """Stop (on every rank: it sums over them), log the final totals and show the summary."""
        outcome = self.monitor.finish("completed")
        self._log_to_loggers(trainer, self.monitor.final_metrics)
        lines = type(self)._summary_lines(outcome)
        if self._summary and lines:
            type(self)._info("\n".join(lines))

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        """Stop without a collective: other ranks may be gone.

        Ctrl-C and SIGTERM (which Lightning raises as ``SIGTERMException``) close the run as
        ``"interrupted"``; any other exception as ``"failed"``.
        """
        interrupted = isinstance(exception, KeyboardInterrupt) or (
            type(exception).__name__ == "SIGTERMException"
        )
        try:
            if not self.monitor.rank.distributed:  # the totals need no other rank: log them
                self._log_to_loggers(trainer, self.monitor.totals(collective=False))
        finally:  # a logger failing here must not leave the run, and its sampler, open
            self.monitor.stop("interrupted" if interrupted else "failed")

    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        """Stop if ``fit`` ended without ``on_fit_end`` (a tuner's early exit); else a no-op."""
        self.monitor.stop("interrupted")

    # -- epochs, validation and steps --------------------------------------------------------

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        """Open the epoch's window."""
        self.monitor.begin_epoch()

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        """Log the epoch's figures and the totals so far through Lightning's own logging."""
        metrics = self.monitor.end_epoch()
        self._obey_budget(trainer)
        shown = self.monitor.shown(metrics)
        for part, prog_bar in ((shown, self._prog_bar), (_without(metrics, shown), False)):
            if not part:
                continue
            # The values are already summed over ranks, the same on each. rank_zero_only=True makes
            # Lightning skip its own sync (no collective: a rank whose metrics differ after a
            # failed sum cannot hang the others); sync_dist=True says they are synced, which
            # spares users Lightning's warning about unsynced epoch-level values.
            pl_module.log_dict(
                part,
                on_step=False,
                on_epoch=True,
                prog_bar=prog_bar,
                sync_dist=True,
                rank_zero_only=True,
            )

    def on_validation_start(self, trainer: Any, pl_module: Any) -> None:
        """Open the validation phase inside the training epoch (not for the sanity check)."""
        if not trainer.sanity_checking:
            self.monitor.begin_phase("val")

    def on_validation_batch_start(
        self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        """Mark a validation batch's start (the forecast paces the first pass by its median)."""
        if not trainer.sanity_checking:
            self.monitor.phase_batch("val")

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        """Close the validation phase."""
        if not trainer.sanity_checking:
            self.monitor.end_phase("val")

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """Count an optimizer step and its samples; log step-level metrics at the interval."""
        samples = self._pending_samples + _batch_size(batch)
        if trainer.accumulate_grad_batches > 1 and trainer.fit_loop._should_accumulate():
            self._pending_samples = samples  # no optimizer step yet: carry the samples over
            return
        self._pending_samples = 0
        self.monitor.step(samples)
        every = self._every
        # Lightning's own step-logging test (``_LoggerConnector.should_update_logs``): the same
        # on every rank, which the collective in ``step_metrics`` needs.
        if every and (trainer.fit_loop.epoch_loop._batches_that_stepped + 1) % every == 0:
            metrics = self.monitor.step_metrics()
            self._obey_budget(trainer)
            self._log_to_loggers(trainer, metrics)
            shown = self.monitor.shown(metrics)
            if self._prog_bar and shown:
                pl_module.log_dict(shown, on_step=True, on_epoch=False, prog_bar=True, logger=False)

    # -- resume ------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The totals so far, saved in Lightning checkpoints."""
        return dict(self.monitor.state_dict())

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Continue a checkpoint's totals.

        Lightning checkpoints hold global rank 0's state only and give it to every rank; only
        rank 0 takes it, so a resumed distributed run does not count it once per rank.
        """
        if self._global_rank == 0:
            self.monitor.load_state_dict(state_dict)

    # -- internals ---------------------------------------------------------------------------

    def _obey_budget(self, trainer: Any) -> None:
        """Ask Lightning to stop when a budget with ``on_budget="stop"`` is reached.

        The decision comes from totals summed over the ranks, so every rank sets the flag at the
        same step; Lightning then ends the epoch loop, checkpoints and loggers finishing normally.
        """
        if self.monitor.should_stop:
            trainer.should_stop = True

    def _log_to_loggers(self, trainer: Any, metrics: dict[str, float]) -> None:
        """Write metrics to every logger at Lightning's logging step, on global rank 0 only."""
        if not metrics or trainer.global_rank != 0:
            return
        step = trainer.fit_loop.epoch_loop._batches_that_stepped
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=step)


def _without(metrics: Mapping[str, float], shown: Mapping[str, float]) -> dict[str, float]:
    """The metrics not in ``shown``: logged, not shown in the progress bar."""
    return {name: value for name, value in metrics.items() if name not in shown}


def _strategy_sum(strategy: Any) -> Reducer:
    """A reducer summing across ranks with the strategy's own collective (float64)."""

    def reduce(values: Sequence[float]) -> Sequence[float]:
        tensor = torch.tensor(list(values), dtype=torch.float64, device=strategy.root_device)
        reduced: list[float] = strategy.reduce(tensor, reduce_op="sum").tolist()
        return reduced

    return reduce


def _finite_steps(value: Any) -> int | None:
    """``estimated_stepping_batches`` as an int, or None when the run has no known length."""
    try:
        steps = float(value)
    except (TypeError, ValueError):
        return None
    return int(steps) if steps != float("inf") and steps > 0 else None


def _batch_size(batch: Any) -> int:
    """Samples in a batch: the length of its first tensor, or 0 when it has none (cheap)."""
    if isinstance(batch, (list, tuple)):
        batch = batch[0] if batch else None
    elif isinstance(batch, Mapping):
        batch = next(iter(batch.values()), None)
    if isinstance(batch, torch.Tensor):
        shape = batch.shape  # a quarter of len(batch)'s cost
        return shape[0] if shape else 0
    return 0


def _announce(
    show: Callable[[str], object], word: Callable[[ForecastFigures], str], forecast: ForecastFigures
) -> None:
    """Show the first forecast as ``word`` puts it (a module-level function: it pickles)."""
    show(word(forecast))
