"""A cloud run's intensity: the time-zone or World value, then the region's once it is known.

The region comes from the vendor's metadata service (``intensity.cloud``).

How it behaves, and why:

- Nothing happens at construction or import. ``start`` (the tracker's start, after its first
  exact read) starts one daemon thread that asks the metadata service; the lookup has
  ``DEADLINE_S`` in all, counted from ``start``.
- ``intensity`` never waits: until the answer comes it gives the fallback, saying the cloud
  metadata has not answered yet; an answer within the deadline switches every later figure to
  the region; an answer after it, or none, leaves the fallback, saying why.
- ``settle`` waits for the rest of the deadline. The tracker calls it before the run's own figure,
  so the summary of even the shortest run uses the answer when it came in time; only runs
  shorter than the deadline ever wait, and never more than what is left of it.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from carbon_callbacks.intensity.base import IntensityValue, ProviderError
from carbon_callbacks.intensity.cloud import (
    DEADLINE_S,
    CloudLookup,
    located_value,
    query_region,
    service_name,
    with_note,
)

if TYPE_CHECKING:
    import requests

THREAD_NAME = "carbon-callbacks-cloud-metadata"


class CloudLocated:
    """An intensity provider that moves from ``fallback`` to the cloud region once it is known.

    Args:
        lookup: What to ask, from ``cloud.cloud_lookup``.
        fallback: The value to use until (or unless) the region is known.
        deadline_s: Seconds the lookup may take from ``start``.
        session: A session to send with instead of a new, proxy-free one (tests).
    """

    def __init__(
        self,
        lookup: CloudLookup,
        fallback: IntensityValue,
        *,
        deadline_s: float = DEADLINE_S,
        session: requests.Session | None = None,
    ) -> None:
        self.lookup = lookup
        self.fallback = fallback
        self.deadline_s = deadline_s
        self._session = session
        self._deadline: float | None = None
        self._answer: IntensityValue | None = None
        self._failure: str | None = None
        self._done = threading.Event()

    def start(self) -> None:
        """Start the lookup in a daemon thread; later calls do nothing."""
        if self._deadline is not None:
            return
        self._deadline = time.monotonic() + self.deadline_s
        threading.Thread(target=self._look_up, name=THREAD_NAME, daemon=True).start()

    def settle(self) -> IntensityValue:
        """Wait at most for what is left of the deadline, then return the value in force."""
        if self._deadline is not None:
            self._done.wait(max(0.0, self._deadline - time.monotonic()))
        return self.value

    @property
    def value(self) -> IntensityValue:
        """The value in force now: the region's, or the fallback saying why not (yet)."""
        answer = self._answer
        if answer is not None:
            return answer
        name = service_name(self.lookup.vendor)
        if self._deadline is None or (
            not self._done.is_set() and time.monotonic() < self._deadline
        ):
            return with_note(self.fallback, f"{name} had not answered yet")
        reason = self._failure or f"no answer within {self.deadline_s:g} s"
        return with_note(self.fallback, f"{name} gave no region ({reason})")

    def intensity(self, start_unix: float, end_unix: float) -> IntensityValue:
        """The value in force now, whatever the interval: the machine does not move."""
        return self.value

    def describe(self) -> dict[str, object]:
        """JSON-ready description for the run-log header, written before the answer comes."""
        return {
            "cloud_metadata": self.lookup.vendor,
            "deadline_s": self.deadline_s,
            "fallback": self.fallback.to_dict(),
        }

    def _look_up(self) -> None:
        """The thread: ask, and keep the answer only if it came before the deadline."""
        assert self._deadline is not None
        try:
            region = query_region(self.lookup, self._deadline, self._session)
            value = located_value(self.lookup, region, self.fallback)
            if time.monotonic() <= self._deadline:
                self._answer = value
            else:
                self._failure = f"answered after the {self.deadline_s:g} s deadline"
        except ProviderError as error:
            self._failure = error.reason
        except Exception as error:  # never into training: the fallback stays, saying why
            self._failure = f"lookup failed ({type(error).__name__})"
        finally:
            self._done.set()

    def __repr__(self) -> str:
        return f"CloudLocated({self.lookup.vendor!r}, fallback={self.fallback.g_per_kwh!r})"
