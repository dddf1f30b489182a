"""What a tracker writes to its run log: the header, and the samples thinned to about one a second.

The records' format is ``carbon_callbacks.runlog.schema``'s; this module fills them from a running
tracker's sampler, configuration and intensity.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping, Sequence

from carbon_callbacks._version import __version__
from carbon_callbacks.intensity.base import ConstantIntensity, IntensityProvider
from carbon_callbacks.intensity.live import LiveIntensity
from carbon_callbacks.intensity.located import CloudLocated
from carbon_callbacks.meters.base import Channel, Unavailable
from carbon_callbacks.runlog.schema import SCHEMA_VERSION
from carbon_callbacks.tracking.config import TrackerConfig
from carbon_callbacks.tracking.sampler import Sample

SAMPLES_RECORD_SPACING_NS = 1_000_000_000
"""Samples written to the run log are at least this far apart (one a second)..."""
SAMPLES_RECORD_SPAN_FRACTION = 4096
"""... or, in long runs, the run's length so far over this, so a week-long run writes tens of
thousands of samples rather than 600,000 (a plot needs no more)."""


def cpu_model() -> str | None:
    """The processor's name (``/proc/cpuinfo``'s ``model name``) for reports; None if unknown."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or None


def header_record(
    *,
    run_id: str,
    started_unix: float,
    channels: Sequence[Channel],
    unavailable: Sequence[Unavailable],
    interval_s: float,
    config: TrackerConfig,
    intensity: Mapping[str, object],
    context: Mapping[str, object],
) -> dict[str, object]:
    """The run log's first record: the run, the machine, what is measured and how."""
    return {
        "type": "header",
        "schema": SCHEMA_VERSION,
        "run_id": run_id,
        "run_name": config.run_name,
        "started_unix": started_unix,
        "host": os.uname().nodename,
        "pid": os.getpid(),
        "library_version": __version__,
        "python": sys.version.split()[0],
        "platform": f"{sys.platform} {os.uname().release} {os.uname().machine}",
        "cpu": {"model": cpu_model(), "cores": os.cpu_count()},
        "channels": [channel.to_dict() for channel in channels],
        "unavailable": [item.to_dict() for item in unavailable],
        "sampler_interval_s": interval_s,
        "config": config.public_dict(),
        "log_dir": None if config.output_dir is None else str(config.output_dir.absolute()),
        "intensity": dict(intensity),
        "context": context,
    }


def thinned(fresh: Sequence[Sample], start_ns: int) -> list[Sample]:
    """``fresh`` samples about one a second apart (sparser in long runs), always the latest.

    Args:
        fresh: Samples not written yet, oldest first; not empty.
        start_ns: The run's start, which sets how sparse a long run's samples get.
    """
    spacing_ns = max(
        SAMPLES_RECORD_SPACING_NS,
        (fresh[-1].t_ns - start_ns) // SAMPLES_RECORD_SPAN_FRACTION,
    )
    kept = [fresh[0]]
    for sample in fresh[1:]:
        if sample.t_ns - kept[-1].t_ns >= spacing_ns:
            kept.append(sample)
    if kept[-1].t_ns != fresh[-1].t_ns:
        kept.append(fresh[-1])  # always the latest: the window's own end
    return kept


def samples_record(
    *,
    run_id: str,
    channels: Sequence[Channel],
    samples: Sequence[Sample],
    start_ns: int,
    step_slot: int,
) -> dict[str, object]:
    """A ``samples`` record: times since the run's start, steps done and joules per channel."""
    return {
        "type": "samples",
        "run_id": run_id,
        "channels": [channel.id for channel in channels],
        "t_s": [(sample.t_ns - start_ns) / 1e9 for sample in samples],
        "steps": [sample.steps_of(step_slot) for sample in samples],
        "joules": [list(sample.joules) for sample in samples],
    }


def describe_intensity(provider: IntensityProvider) -> dict[str, object]:
    """The header's account of where the run's intensity comes from."""
    if isinstance(provider, LiveIntensity | CloudLocated):
        return provider.describe()
    if isinstance(provider, ConstantIntensity):
        return provider.value.to_dict()
    return {"provider": repr(provider)}
