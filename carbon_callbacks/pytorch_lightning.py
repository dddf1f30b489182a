"""Energy and CO2e of training with Lightning (the standalone ``pytorch_lightning`` package).

```python
import pytorch_lightning as pl
from carbon_callbacks.pytorch_lightning import CarbonCallback

trainer = pl.Trainer(max_epochs=3, callbacks=[CarbonCallback(country="SE")])
trainer.fit(model)
```

Metrics (``carbon/energy_kwh``, ``carbon/co2e_kg``, ...; see ``carbon_callbacks.training.METRICS``)
reach every logger the trainer has. For ``lightning.pytorch`` (the ``lightning`` package), whose
classes are distinct from these, use ``carbon_callbacks.lightning`` instead.
"""

from __future__ import annotations

from pytorch_lightning.callbacks import Callback
from pytorch_lightning.utilities.rank_zero import rank_zero_info

from carbon_callbacks.reporting.text import format_forecast_line, format_training_summary
from carbon_callbacks.training.lightning_hooks import LightningCarbonHooks

__all__ = ["CarbonCallback"]


class CarbonCallback(LightningCarbonHooks, Callback):
    """``carbon_callbacks.lightning.CarbonCallback`` for the standalone ``pytorch_lightning``.

    The same hooks, arguments and metrics (see ``LightningCarbonHooks``); only the base class and
    the summary's ``rank_zero_info`` come from ``pytorch_lightning``.
    """

    _info = staticmethod(rank_zero_info)
    _forecast_line = staticmethod(format_forecast_line)
    _summary_lines = staticmethod(format_training_summary)
