"""What the framework adapters share: the training monitor, its forecast and budget, torch helpers.

``carbon_callbacks.training`` names the monitor's public parts, for a training loop of your own:
``TrainingMonitor``, ``RankInfo``, ``Reducer``, ``METRICS``, ``WATCHED`` (the metrics the console
shows by default) and ``DEFAULT_PREFIX``.
"""

from carbon_callbacks.training.monitor import (
    DEFAULT_PREFIX,
    METRICS,
    WATCHED,
    RankInfo,
    Reducer,
    TrainingMonitor,
)

__all__ = ["DEFAULT_PREFIX", "METRICS", "WATCHED", "RankInfo", "Reducer", "TrainingMonitor"]
