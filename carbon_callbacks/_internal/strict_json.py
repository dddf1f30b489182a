"""Strict JSON for files read from disk (run logs, the intensity cache, saved estimates).

Such a file is data anyone may have written: it is parsed as JSON only, and numbers JSON allows
but no figure of ours can be are refused while parsing, so no reader has to check for them later:
``NaN`` and ``Infinity`` (not JSON, though Python's parser takes them), floats that overflow
(``1e400``), and integers beyond 64 bits (refused before conversion, which costs time for a huge
one).
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_INTEGER = 2**63 - 1
"""The largest integer magnitude accepted: what a 64-bit signed integer holds."""


def loads(text: str | bytes) -> Any:
    """Parse one JSON document, refusing non-finite numbers and integers beyond 64 bits.

    Raises:
        ValueError: Not JSON, or a number is refused (``json.JSONDecodeError`` is one);
            ``UnicodeDecodeError`` (also one) for bytes that are not UTF-8.
        RecursionError: Nested too deep.
    """
    return json.loads(
        text, parse_constant=_refuse_constant, parse_float=_finite_float, parse_int=_bounded_int
    )


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not allowed: JSON has no such number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:20]} is out of range")
    return value


def _bounded_int(text: str) -> int:
    if len(text) > 20:  # refused before conversion: a huge one costs time and is never written
        raise ValueError(f"the integer {text[:20]}... has more than 64 bits")
    value = int(text)
    if abs(value) > MAX_INTEGER:
        raise ValueError(f"the integer {text} has more than 64 bits")
    return value
