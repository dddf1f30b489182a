"""carbon-callbacks: energy and carbon accounting for deep-learning training.

Importing the package is cheap and silent: names are loaded on first use, so ``import
carbon_callbacks`` starts no thread, opens no device, touches no network and imports no framework.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from carbon_callbacks._version import __version__

if TYPE_CHECKING:
    from carbon_callbacks._internal.warnings import CarbonCallbacksWarning
    from carbon_callbacks.intensity.base import ConstantIntensity, IntensityValue
    from carbon_callbacks.meters.base import Channel, Unavailable
    from carbon_callbacks.runlog.reader import RunLog, read_run_log
    from carbon_callbacks.tracking.launcher import RankInfo
    from carbon_callbacks.tracking.measurement import ChannelEnergy, Measurement
    from carbon_callbacks.tracking.tracker import Tracker

_LAZY = {
    "CarbonCallbacksWarning": "carbon_callbacks._internal.warnings",
    "Channel": "carbon_callbacks.meters.base",
    "ChannelEnergy": "carbon_callbacks.tracking.measurement",
    "ConstantIntensity": "carbon_callbacks.intensity.base",
    "IntensityValue": "carbon_callbacks.intensity.base",
    "Measurement": "carbon_callbacks.tracking.measurement",
    "RankInfo": "carbon_callbacks.tracking.launcher",
    "RunLog": "carbon_callbacks.runlog.reader",
    "Tracker": "carbon_callbacks.tracking.tracker",
    "Unavailable": "carbon_callbacks.meters.base",
    "read_run_log": "carbon_callbacks.runlog.reader",
}

__all__ = [
    "CarbonCallbacksWarning",
    "Channel",
    "ChannelEnergy",
    "ConstantIntensity",
    "IntensityValue",
    "Measurement",
    "RankInfo",
    "RunLog",
    "Tracker",
    "Unavailable",
    "__version__",
    "read_run_log",
]


def __getattr__(name: str) -> Any:
    """Import a public name's module on first access (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'carbon_callbacks' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
