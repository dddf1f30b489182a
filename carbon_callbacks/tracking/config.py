"""Tracker configuration: keyword arguments, then ``CARBON_CALLBACKS_*`` variables, then defaults.

Every value is validated when the tracker is built, whichever of the three it came from, so a
mistake fails before training starts with a message that says what to write instead.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from carbon_callbacks._internal.env import (
    ENV_PREFIX,
    checked_number,
    env_flag,
    env_number,
    env_text,
)
from carbon_callbacks.intensity.resolve import IntensitySettings
from carbon_callbacks.tracking.measurement import MAX_PUE

DEFAULT_OUTPUT_DIR = "carbon-runs"
MAX_CPU_WATTS = 10_000.0
"""The most watts per busy core accepted for the CPU estimate (real cores draw a few to ~20)."""
_INTEGER = re.compile(r"[+-]?[0-9]+")


@dataclass(frozen=True)
class TrackerConfig:
    """Resolved, validated settings of a tracker.

    Attributes:
        interval_s: Sampler polling interval in seconds.
        pue: Power usage effectiveness of the data centre (>= 1.0), applied to every kWh figure.
        cpu_watts: Watts per busy core for the CPU estimate; None: the CPU's TDP / cores from
            the embedded CPU table, else the documented default (12 W).
        output_dir: Folder of the JSONL run logs; None writes no log.
        gpu_ids: NVML indices or UUIDs to measure; None follows ``CUDA_VISIBLE_DEVICES``.
        powercap_root: Root of the powercap sysfs tree; None uses the standard locations.
        run_name: Free-form label stored in the run log.
        intensity: Location and intensity settings (see ``carbon_callbacks.intensity.resolve``).
    """

    interval_s: float = 0.1
    pue: float = 1.0
    cpu_watts: float | None = None
    output_dir: Path | None = Path(DEFAULT_OUTPUT_DIR)
    gpu_ids: tuple[int | str, ...] | None = None
    powercap_root: str | None = None
    run_name: str | None = None
    intensity: IntensitySettings = field(default_factory=IntensitySettings)

    def public_dict(self) -> dict[str, object]:
        """The configuration as JSON-ready values, for the run log header (holds no secrets)."""
        return {
            "interval_s": self.interval_s,
            "pue": self.pue,
            "cpu_watts": self.cpu_watts,
            "output_dir": None if self.output_dir is None else str(self.output_dir),
            "gpu_ids": None if self.gpu_ids is None else list(self.gpu_ids),
            "powercap_root": self.powercap_root,
            "run_name": self.run_name,
            "intensity": self.intensity.public_dict(),
        }


def resolve_config(
    *,
    interval_s: float | None = None,
    pue: float | None = None,
    cpu_watts: float | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    write_log: bool | None = None,
    gpu_ids: Sequence[int | str] | None = None,
    powercap_root: str | os.PathLike[str] | None = None,
    run_name: str | None = None,
    intensity: IntensitySettings | None = None,
    environ: Mapping[str, str] | None = None,
) -> TrackerConfig:
    """Merge arguments, environment and defaults into a validated ``TrackerConfig``.

    Raises:
        ValueError: A value is out of range or cannot be parsed; the message names the setting and
            shows a valid example.
    """
    env = os.environ if environ is None else environ
    interval = _number("interval_s", interval_s, env, minimum=0.001, example="0.1")
    pue_value = _number("pue", pue, env, minimum=1.0, maximum=MAX_PUE, example="1.2")
    watts = _number(
        "cpu_watts", cpu_watts, env, minimum=0.0, maximum=MAX_CPU_WATTS, above=True, example="10"
    )
    log_enabled = write_log if write_log is not None else env_flag("write_log", env, default=True)
    directory = output_dir if output_dir is not None else env_text("output_dir", env)
    root = powercap_root if powercap_root is not None else env_text("powercap_root", env)
    return TrackerConfig(
        interval_s=interval if interval is not None else 0.1,
        pue=pue_value if pue_value is not None else 1.0,
        cpu_watts=watts,
        output_dir=Path(directory or DEFAULT_OUTPUT_DIR) if log_enabled else None,
        gpu_ids=_gpu_ids(gpu_ids, env),
        powercap_root=None if root is None else os.fspath(root),
        run_name=run_name if run_name is not None else env_text("run_name", env),
        intensity=intensity if intensity is not None else IntensitySettings(),
    )


def _number(
    name: str,
    value: float | None,
    env: Mapping[str, str],
    *,
    minimum: float,
    maximum: float = math.inf,
    above: bool = False,
    example: str,
) -> float | None:
    """The argument when given, else its variable (blank is unset), checked the same way."""
    if value is None:
        return env_number(name, env, minimum=minimum, maximum=maximum, above=above, example=example)
    return checked_number(
        name, value, minimum=minimum, maximum=maximum, above=above, example=example
    )


def _gpu_ids(
    gpu_ids: Sequence[int | str] | None, env: Mapping[str, str]
) -> tuple[int | str, ...] | None:
    from carbon_callbacks.meters.gpu_base import check_gpu_id

    variable = ENV_PREFIX + "GPU_IDS"
    if gpu_ids is None and variable in env:
        return _gpu_ids_from(variable, env[variable])
    if gpu_ids is None:
        return None
    if isinstance(gpu_ids, str | int):
        raise TypeError(
            f"gpu_ids must be a list, got {gpu_ids!r}; "
            "write e.g. gpu_ids=[0] or gpu_ids=['GPU-8f...']"
        )
    return tuple(check_gpu_id(entry) for entry in gpu_ids)


def _gpu_ids_from(variable: str, raw: str) -> tuple[int | str, ...]:
    """``0,1`` or ``GPU-8f...,GPU-a1...``: comma-separated entries checked as ``gpu_ids`` are.

    An empty value means no GPU, as an empty ``CUDA_VISIBLE_DEVICES`` does.
    """
    from carbon_callbacks.meters.gpu_base import check_gpu_id

    entries = [entry.strip() for entry in raw.split(",") if entry.strip()]
    try:
        return tuple(
            check_gpu_id(int(entry) if _INTEGER.fullmatch(entry) else entry) for entry in entries
        )
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"{variable}={raw!r}: {error}; write e.g. {variable}=0,1 or {variable}=GPU-<uuid>"
        ) from None
