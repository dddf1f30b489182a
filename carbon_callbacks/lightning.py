"""Energy and CO2e of training with Lightning (``lightning.pytorch``, the ``lightning`` package).

```python
import lightning as L
from carbon_callbacks.lightning import CarbonCallback

trainer = L.Trainer(max_epochs=3, callbacks=[CarbonCallback(country="SE")])
trainer.fit(model)
```

Metrics (``carbon/energy_kwh``, ``carbon/co2e_kg``, ...; see ``carbon_callbacks.training.METRICS``)
reach every logger the trainer has. For the standalone ``pytorch_lightning`` package, whose classes
are distinct from these, use ``carbon_callbacks.pytorch_lightning`` instead.
"""

from __future__ import annotations

from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.rank_zero import rank_zero_info

from carbon_callbacks.reporting.text import format_forecast_line, format_training_summary
from carbon_callbacks.training.lightning_hooks import LightningCarbonHooks

__all__ = ["CarbonCallback"]


class CarbonCallback(LightningCarbonHooks, Callback):
    """Measures a ``fit``'s energy and CO2e and logs them with the trainer's loggers.

    Epoch-level metrics are logged at the end of every training epoch, with validation's share
    apart; step-level ones every ``log_every_n_steps``; the totals and a summary at the end of
    ``fit``. Checkpoints carry the totals, so a resumed run continues them.

    Args:
        prefix: Prepended to every metric name (default ``"carbon/"``).
        prog_bar: Also show metrics in the progress bar (the watched few, or all with
            ``metrics="all"``); the loggers get every metric either way.
        log_every_n_steps: Steps between step-level metrics; default: the trainer's; 0: none.
        summary: Print a summary of the run's energy and CO2e at the end of ``fit``.
        metrics: ``"default"`` or ``"all"``: what ``prog_bar=True`` shows.
        tracker_options: Passed to ``carbon_callbacks.Tracker``: ``country=``, ``zone=``,
            ``pue=``, ``intensity_g_per_kwh=``, ``output_dir=``, ``write_log=``, ...

    Raises:
        ValueError, TypeError: An option is invalid; the message says what to write instead.
    """

    _info = staticmethod(rank_zero_info)
    _forecast_line = staticmethod(format_forecast_line)
    _summary_lines = staticmethod(format_training_summary)
