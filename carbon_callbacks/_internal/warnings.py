"""One warning per distinct problem, so a fault repeating every sample never floods the console."""

from __future__ import annotations

import sys
import warnings

from carbon_callbacks._internal.signals import DeferringLock

MAX_DISTINCT_PROBLEMS = 64
"""Distinct problems one owner reports; then one last line says that further ones are not shown,
so a fault whose message keeps changing cannot flood the console or grow memory."""


class CarbonCallbacksWarning(UserWarning):
    """Measurement, network or disk trouble that degraded a figure but let training continue."""


class WarnOnce:
    """Emits each distinct problem once for the lifetime of its owner (a tracker, a sampler, a log).

    Scoping the memory to the owner means every run warns about its own faults, while a fault that
    repeats at every sample of that run is reported only the first time.
    """

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._lock = DeferringLock()

    def __call__(self, key: str, message: str) -> None:
        """Emit ``message`` as a ``CarbonCallbacksWarning`` the first time ``key`` is seen.

        Under ``-W error`` the warning would be an exception raised into the training loop; it is
        printed to stderr instead, since measurement trouble must never stop a run.

        Args:
            key: Identifies the distinct problem (e.g. ``"fault:gpu:0:GPU is lost"``).
            message: What happened and what it means for the figures.
        """
        with self._lock:
            if key in self._seen or len(self._seen) > MAX_DISTINCT_PROBLEMS:
                return
            self._seen.add(key)
            if len(self._seen) > MAX_DISTINCT_PROBLEMS:
                message = (
                    f"carbon-callbacks: more than {MAX_DISTINCT_PROBLEMS} distinct measurement "
                    "problems; further ones are not shown."
                )
        try:
            warnings.warn(message, CarbonCallbacksWarning, stacklevel=3)
        except Exception as error:  # `-W error` turns warnings into exceptions: never into training
            print(f"{message} ({type(error).__name__} while warning)", file=sys.stderr)
