"""Tracker configuration: keyword arguments, then ``CARBON_CALLBACKS_*`` variables, then defaults.

Every value is validated when the tracker is built, whichever of the three it came from, so a
mistake fails before training starts with a message that says what to write instead.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from carbon_callbacks._env import ENV_PREFIX, env_flag
from carbon_callbacks.intensity.resolve import IntensitySettings

DEFAULT_OUTPUT_DIR = "carbon-runs"


@dataclass(frozen=True)
class TrackerConfig:
    """Resolved, validated settings of a tracker.

    Attributes:
        interval_s: Sampler polling interval in seconds.
        pue: Power usage effectiveness of the data centre (>= 1.0), applied to every kWh figure.
        cpu_watts: Watts per busy core for the CPU estimate; None uses the documented default.
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
    interval = _number("interval_s", interval_s, env, default=0.1, minimum=0.001, example="0.1")
    pue_value = _number("pue", pue, env, default=1.0, minimum=1.0, example="1.2")
    watts = _number("cpu_watts", cpu_watts, env, default=None, minimum=0.0, example="10")
    if watts == 0.0:
        raise ValueError("cpu_watts must be > 0 watts per busy core; write e.g. cpu_watts=10")
    log_enabled = write_log if write_log is not None else env_flag("write_log", env, default=True)
    directory = output_dir if output_dir is not None else env.get(ENV_PREFIX + "OUTPUT_DIR")
    root = powercap_root if powercap_root is not None else env.get(ENV_PREFIX + "POWERCAP_ROOT")
    return TrackerConfig(
        interval_s=interval if interval is not None else 0.1,
        pue=pue_value if pue_value is not None else 1.0,
        cpu_watts=watts,
        output_dir=Path(directory or DEFAULT_OUTPUT_DIR) if log_enabled else None,
        gpu_ids=_gpu_ids(gpu_ids, env),
        powercap_root=None if root is None else os.fspath(root),
        run_name=run_name if run_name is not None else env.get(ENV_PREFIX + "RUN_NAME"),
        intensity=intensity if intensity is not None else IntensitySettings(),
    )


def _number(
    name: str,
    value: float | None,
    env: Mapping[str, str],
    *,
    default: float | None,
    minimum: float,
    example: str,
) -> float | None:
    variable = ENV_PREFIX + name.upper()
    if value is None and variable in env:
        raw = env[variable]
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(
                f"{variable}={raw!r} is not a number; write e.g. {variable}={example}"
            ) from None
        origin = variable
    else:
        origin = name
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, got {value!r}; write e.g. {name}={example}")
    if not math.isfinite(value) or value < minimum:
        raise ValueError(
            f"{origin} must be a finite number >= {minimum:g}, got {value!r}; "
            f"write e.g. {origin}={example}"
        )
    return float(value)


def _gpu_ids(
    gpu_ids: Sequence[int | str] | None, env: Mapping[str, str]
) -> tuple[int | str, ...] | None:
    from carbon_callbacks.meters.nvml import check_gpu_id

    variable = ENV_PREFIX + "GPU_IDS"
    if gpu_ids is None and variable in env:
        entries = [entry.strip() for entry in env[variable].split(",") if entry.strip()]
        gpu_ids = [int(entry) if entry.isdigit() else entry for entry in entries]
    if gpu_ids is None:
        return None
    if isinstance(gpu_ids, str | int):
        raise TypeError(
            f"gpu_ids must be a list, got {gpu_ids!r}; "
            "write e.g. gpu_ids=[0] or gpu_ids=['GPU-8f...']"
        )
    return tuple(check_gpu_id(entry) for entry in gpu_ids)
