"""Keras 3 callback: the energy and CO2e of ``model.fit``, in its epoch logs and the run log.

```python
from carbon_callbacks.keras import CarbonCallback

model.fit(x, y, epochs=10, callbacks=[CarbonCallback(country="SE")])
```

Written for every Keras 3 backend (the tests train on torch). The hooks map onto
``TrainingMonitor``: ``on_train_begin`` starts it, each epoch is an exact window, the validation
Keras runs at the end of an epoch (``on_test_begin``/``on_test_end`` inside the epoch) is a
``"val"`` phase, and ``on_train_end`` finishes the run and prints the summary.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from keras.callbacks import Callback

from carbon_callbacks.reporting.text import format_forecast_line, format_training_summary
from carbon_callbacks.training.metrics import MetricSet
from carbon_callbacks.training.monitor import DEFAULT_PREFIX, TrainingMonitor
from carbon_callbacks.training.outcome import ForecastFigures

_STEP_LOCK = threading.Lock()
"""Serialises step counting: Keras may run ``on_train_batch_end`` on several worker threads at once.

Module-level rather than per callback so that a callback stays deep-copyable before its first fit
(tuners copy the callbacks of every trial)."""


class CarbonCallback(Callback):
    """Adds energy and CO2e to the epoch logs of ``model.fit`` and prints a summary at the end.

    From the first epoch on, ``on_epoch_end`` adds ``carbon/`` metrics to the epoch's ``logs``, so
    they reach ``History``, ``CSVLogger``, ``TensorBoard`` and the progress bar. Keras's progress
    bar prints every key of ``logs``, so by default only the few a person watches go there
    (``carbon_callbacks.training.WATCHED``: energy and CO2e so far, power, the forecast once
    known); ``metrics="all"`` adds every name of ``carbon_callbacks.training.METRICS``, the
    ``predicted_*`` ones from the first epoch on (NaN until known), since ``CSVLogger`` fixes its
    columns at its first epoch. Keras hands one ``logs`` dict to the
    callbacks in list order, so place this callback before the ones that read the logs;
    ``CSVLogger`` in particular fixes its columns at its first epoch and would never write ours if
    it came first. A figure that cannot be measured is left out of the logs, never written as 0.

    The callback declares ``async_safe``: its batch-end hook only counts steps (never touches
    ``self.model``), so Keras keeps dispatching batch-end callbacks asynchronously.

    Keras calls no hook when ``fit`` raises. The run then stays open until this callback's next
    ``fit``, which closes it as ``"unfinished"``, or the interpreter's exit, which closes it as
    ``"failed"`` (``"interrupted"`` after Ctrl-C); its figures then run to that moment. SIGTERM
    closes it as ``"interrupted"`` and then ends the process as it would have without us.

    Args:
        prefix: Prepended to every metric name.
        summary: Print the run's summary to stderr when training ends, and the one-line
            forecast once it is known; False prints neither.
        metrics: ``"default"``: the watched few in ``logs`` (so also in the progress bar);
            ``"all"``: every metric.
        check_every_n_steps: Steps between forecast updates and budget checks inside an epoch
            (0: only at epoch ends); Keras logs per epoch, so nothing is logged there.
        tracker_options: Passed to ``Tracker`` (``country=``, ``zone=``, ``pue=``,
            ``output_dir=``, ...) and checked now.

    Raises:
        ValueError, TypeError: An option is invalid; the message says what to write instead.
    """

    async_safe = True
    """Read by Keras's ``CallbackList``: batch hooks may run on its worker threads."""

    def __init__(
        self,
        *,
        prefix: str = DEFAULT_PREFIX,
        summary: bool = True,
        metrics: MetricSet = "default",
        check_every_n_steps: int = 50,
        **tracker_options: Any,
    ) -> None:
        super().__init__()
        if isinstance(check_every_n_steps, bool) or not isinstance(check_every_n_steps, int):
            raise TypeError(
                f"check_every_n_steps must be an int, got {check_every_n_steps!r}; "
                "write check_every_n_steps=50 (0: check only at epoch ends)"
            )
        if check_every_n_steps < 0:
            raise ValueError(
                f"check_every_n_steps must be >= 0, got {check_every_n_steps}; write "
                "check_every_n_steps=50 (0: check only at epoch ends)"
            )
        self._monitor = TrainingMonitor(
            prefix=prefix, quiet=not summary, metrics=metrics, **tracker_options
        )
        self._monitor.announce = _announce
        self._summary = summary
        self._check_every_n_steps = check_every_n_steps
        self._last_batch = -1
        self._steps_seen = 0

    @property
    def monitor(self) -> TrainingMonitor:
        """The measurement behind the callback; ``monitor.tracker.summary`` after training."""
        return self._monitor

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        """Start measuring; first close a run that an earlier ``fit`` left open by raising."""
        if self._monitor.is_running:
            self._monitor.stop("unfinished")
        self._monitor.start()
        params = self.params or {}
        epochs, steps = params.get("epochs"), params.get("steps")
        if isinstance(epochs, int) and isinstance(steps, int):
            self._monitor.set_total_steps(epochs * steps)
        self._steps_seen = 0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Open the epoch's window."""
        self._last_batch = -1
        self._monitor.begin_epoch()

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Count the batches run since the previous call (several with ``steps_per_execution``).

        ``batch`` is the index of the call's last batch. Calls may arrive out of order from
        Keras's worker threads, so only batches past the highest index seen are counted.
        """
        with _STEP_LOCK:
            if batch > self._last_batch:
                done = batch - self._last_batch
                self._monitor.step(count=done)
                self._last_batch = batch
                self._steps_seen += done
                every = self._check_every_n_steps
                if every and self._steps_seen % every < done:
                    self._monitor.step_metrics()  # refreshes the forecast and the budget check
                    self._obey_budget()

    def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
        """Open the validation phase: ``fit`` validates at the end of an epoch through ``evaluate``.

        A standalone ``evaluate`` happens outside ``fit``, where no epoch is open: nothing it does
        reaches an epoch's figures.
        """
        self._monitor.begin_phase("val")

    def on_test_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Mark a validation batch's start (Keras calls begin hooks in order, on its thread).

        The forecast takes the first pass, which compiles, at its median batch's pace.
        """
        self._monitor.phase_batch("val")

    def on_test_end(self, logs: dict[str, Any] | None = None) -> None:
        """Close the validation phase; its energy goes into the epoch's ``val_energy_kwh``."""
        self._monitor.end_phase("val")

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Close the epoch and add its metrics to ``logs`` in place, for the callbacks after us."""
        # every predicted_* name the logs show, from the first epoch on (NaN while unknown):
        # CSVLogger fixes its columns at the first epoch, History lists values by epoch
        metrics = self._monitor.end_epoch(every_forecast_name=True)
        self._obey_budget()
        if logs is not None:
            logs.update(self._monitor.shown(metrics))

    def _obey_budget(self) -> None:
        """Ask Keras to stop when a budget with ``on_budget="stop"`` is reached.

        As ``TerminateOnNaN`` does: it sets ``stop_training`` and reads no model state.
        """
        if self._monitor.should_stop and self.model is not None:
            self.model.stop_training = True

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        """Finish the run (also after early stopping) and print its summary."""
        lines = format_training_summary(self._monitor.finish())
        if self._summary and lines:
            print("\n".join(lines), file=sys.stderr)


def _announce(forecast: ForecastFigures) -> None:
    """Show the first forecast on stderr, where the summary goes (Keras has no logger)."""
    print(format_forecast_line(forecast), file=sys.stderr)
