"""Reading ``CARBON_CALLBACKS_*`` variables: one parser per kind, shared by every setting.

A variable set to nothing (``VAR=`` or blanks) counts as unset, for every kind. A value that cannot
be used fails with a message naming the variable, its value, and a value that works.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

ENV_PREFIX = "CARBON_CALLBACKS_"


def env_text(name: str, env: Mapping[str, str]) -> str | None:
    """The variable ``CARBON_CALLBACKS_<NAME>`` as written, or None when unset or blank."""
    raw = env.get(ENV_PREFIX + name.upper())
    return raw if raw is not None and raw.strip() else None


def env_flag(name: str, env: Mapping[str, str], *, default: bool) -> bool:
    """The boolean variable ``CARBON_CALLBACKS_<NAME>``: 1/true/yes/on or 0/false/no/off.

    Raises:
        ValueError: Any other value; the message shows both valid forms.
    """
    variable = ENV_PREFIX + name.upper()
    raw = env_text(name, env)
    if raw is None:
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"{variable}={raw!r} is not a boolean; write {variable}=1 or {variable}=0")


def env_number(
    name: str,
    env: Mapping[str, str],
    *,
    minimum: float,
    maximum: float = math.inf,
    above: bool = False,
    example: str,
) -> float | None:
    """The numeric variable ``CARBON_CALLBACKS_<NAME>``, or None when unset or blank.

    Args:
        name: The setting's name; the variable is its upper-case form after the prefix.
        env: The environment.
        minimum: The smallest value allowed.
        maximum: The largest value allowed.
        above: True when ``minimum`` itself is not allowed.
        example: A valid value, shown in the error.

    Raises:
        ValueError: Not a number, not finite (``nan``, ``inf``, ``1e400``) or out of range.
    """
    variable = ENV_PREFIX + name.upper()
    raw = env_text(name, env)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(
            f"{variable}={raw!r} is not a number; write e.g. {variable}={example}"
        ) from None
    if not in_range(value, minimum, maximum, above=above):
        raise ValueError(
            f"{variable}={raw!r} is out of range: it must be {range_text(minimum, maximum, above)} "
            f"(a finite number); write e.g. {variable}={example}"
        )
    return value


def checked_number(
    name: str,
    value: object,
    *,
    minimum: float,
    maximum: float = math.inf,
    above: bool = False,
    example: str,
) -> float:
    """The keyword argument ``name`` checked: a finite number within the bounds.

    The message is worded for Python callers (``write e.g. pue=1.2``); the command line words
    it in its flags, so one check reads the same wherever the value came from.

    Raises:
        TypeError: Not a number.
        ValueError: Not finite or out of range.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, got {value!r}; write e.g. {name}={example}")
    if not in_range(value, minimum, maximum, above=above):
        raise ValueError(
            f"{name} must be {range_text(minimum, maximum, above)} (a finite number), "
            f"got {value!r}; write e.g. {name}={example}"
        )
    return float(value)


def in_range(value: float, minimum: float, maximum: float, *, above: bool = False) -> bool:
    """Whether ``value`` is finite and within the bounds (``minimum`` excluded when ``above``)."""
    try:
        number = float(value)
    except OverflowError:  # an int beyond the float range
        return False
    if not math.isfinite(number) or number > maximum:
        return False
    return number > minimum if above else number >= minimum


def range_text(minimum: float, maximum: float, above: bool) -> str:
    """``>= 1`` or ``> 0 and <= 10000``: the bounds, as the messages write them."""
    lower = f"> {minimum:g}" if above else f">= {minimum:g}"
    return lower if math.isinf(maximum) else f"{lower} and <= {maximum:g}"
