"""Order-preserving de-duplication, the one helper every stage uses."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import TypeVar

H = TypeVar("H", bound=Hashable)


def unique(items: Iterable[H]) -> list[H]:
    """``items`` without repeats, each kept where it first appears."""
    return list(dict.fromkeys(items))
