"""One warning per distinct problem, so a fault repeating every sample never floods the console."""

from __future__ import annotations

import threading
import warnings


class CarbonCallbacksWarning(UserWarning):
    """Measurement, network or disk trouble that degraded a figure but let training continue."""


_seen: set[str] = set()
_seen_lock = threading.Lock()


def warn_once(key: str, message: str) -> None:
    """Emit ``message`` as a ``CarbonCallbacksWarning`` the first time ``key`` is seen.

    Args:
        key: Identifies the distinct problem (e.g. ``"fault:gpu:0:GPU is lost"``).
        message: What happened and what it means for the figures.
    """
    with _seen_lock:
        if key in _seen:
            return
        _seen.add(key)
    warnings.warn(message, CarbonCallbacksWarning, stacklevel=3)
