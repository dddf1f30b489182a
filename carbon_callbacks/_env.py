"""Reading ``CARBON_CALLBACKS_*`` variables: one parser per kind, shared by every setting."""

from __future__ import annotations

from collections.abc import Mapping

ENV_PREFIX = "CARBON_CALLBACKS_"


def env_flag(name: str, env: Mapping[str, str], *, default: bool) -> bool:
    """The boolean variable ``CARBON_CALLBACKS_<NAME>``: 1/true/yes/on or 0/false/no/off.

    Raises:
        ValueError: Any other value; the message shows both valid forms.
    """
    variable = ENV_PREFIX + name.upper()
    raw = env.get(variable)
    if raw is None or not raw.strip():
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"{variable}={raw!r} is not a boolean; write {variable}=1 or {variable}=0")
