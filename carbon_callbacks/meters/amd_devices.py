"""Which AMD GPUs a process uses: amdsmi's devices matched to ROCm's visibility variables.

ROCm applies ``ROCR_VISIBLE_DEVICES`` first (indices into every GPU, or ``GPU-`` UUIDs), then
``HIP_VISIBLE_DEVICES`` (or, when that is unset, ``CUDA_VISIBLE_DEVICES``) to what is left, as
ROCm PyTorch does. amdsmi's device order need not be HIP's: each device's ``hip_id`` (from
``amdsmi_get_gpu_enumeration_info``) gives HIP's order where the library reports it. Pure logic
over data the meter has read: no amdsmi call is made here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

_NO_DEVICES = frozenset({"", "-1", "NoDevFiles"})
VISIBILITY_VARIABLES = ("ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES")
"""The variables ROCm reads: any of them set chooses which GPUs a process sees."""
UUID_FIX = (
    "Use indices, GPU- UUIDs (or unique prefixes) or PCI addresses, as `amd-smi list` shows them."
)
_BDF = re.compile(r"(?:[0-9a-f]{4}:)?[0-9a-f]{2}:[0-9a-f]{2}(?:\.[0-7])?")


@dataclass(frozen=True)
class AmdGpu:
    """An AMD GPU (a GCD on dual-die boards) as amdsmi enumerates it.

    Attributes:
        index: Position in ``amdsmi_get_processor_handles()``, as ``amd-smi list`` numbers GPUs.
        handle: amdsmi's processor handle.
        uuid: ``amdsmi_get_gpu_device_uuid``.
        bdf: ``amdsmi_get_gpu_device_bdf``, e.g. ``"0000:c1:00.0"`` (lower case).
        hip_id: HIP's index of the device with no visibility variable set; None if unknown.
        hip_uuid: The ``GPU-`` UUID ROCm's runtimes accept in their variables; None if unknown.
        package: What identifies the physical package (the board's serial); None if unknown.
    """

    index: int
    handle: Any
    uuid: str
    bdf: str
    hip_id: int | None = None
    hip_uuid: str | None = None
    package: str | None = None


@dataclass
class Pick:
    """A GPU chosen for measurement, with the caveats on how it was chosen (for ``Channel.how``)."""

    gpu: AmdGpu
    notes: list[str] = field(default_factory=list)


@dataclass
class Selection:
    """The GPUs picked, and why any entry named none (one sentence each, with the fix)."""

    picks: list[Pick] = field(default_factory=list)
    problems: list[tuple[str, str | None]] = field(default_factory=list)


def parse_visible(value: str | None) -> list[str] | None:
    """Split a ``*_VISIBLE_DEVICES`` value: None when unset, ``[]`` when it hides every GPU."""
    if value is None:
        return None
    value = value.strip()
    if value in _NO_DEVICES:
        return []
    return [entry.strip() for entry in value.split(",")]


def hip_order(gpus: Sequence[AmdGpu]) -> list[AmdGpu]:
    """The GPUs in HIP's order: by ``hip_id`` where every GPU has one, else amdsmi's order."""
    if gpus and all(gpu.hip_id is not None for gpu in gpus):
        return sorted(gpus, key=lambda gpu: gpu.hip_id or 0)
    return list(gpus)


def _by_uuid(gpus: Sequence[AmdGpu], entry: str) -> AmdGpu | None:
    """The one GPU whose HIP or amdsmi UUID starts with ``entry`` (``GPU-`` optional)."""
    wanted = entry.lower().removeprefix("gpu-")
    if not wanted:
        return None
    matches = [
        gpu
        for gpu in gpus
        if any(
            uuid.lower().removeprefix("gpu-").startswith(wanted)
            for uuid in (gpu.hip_uuid, gpu.uuid)
            if uuid
        )
    ]
    return matches[0] if len(matches) == 1 else None


def _by_bdf(gpus: Sequence[AmdGpu], entry: str) -> AmdGpu | None:
    """The one GPU at this PCI address (domain optional, function optional)."""
    wanted = entry.lower()
    if wanted.count(":") == 1:
        wanted = f"0000:{wanted}"
    matches = [gpu for gpu in gpus if gpu.bdf.lower().startswith(wanted)]
    return matches[0] if len(matches) == 1 else None


def by_name(gpus: Sequence[AmdGpu], entry: str) -> AmdGpu | None:
    """Resolve a string naming one GPU: a PCI address or a UUID (prefix)."""
    if _BDF.fullmatch(entry.lower()):
        return _by_bdf(gpus, entry)
    return _by_uuid(gpus, entry)


def _by_entry(pool: Sequence[AmdGpu], entry: str) -> AmdGpu | None:
    """One visibility entry: an index into ``pool``, else a UUID among ``pool``."""
    if entry.isascii() and entry.isdigit():
        index = int(entry)
        return pool[index] if index < len(pool) else None
    return _by_uuid(pool, entry)


def _filter(
    pool: list[AmdGpu], variable: str, entries: list[str], selection: Selection
) -> list[AmdGpu]:
    """Apply one variable's entries to ``pool``, stopping at the first that names no GPU."""
    kept: list[AmdGpu] = []
    for entry in entries:
        gpu = _by_entry(pool, entry)
        if gpu is None:
            reason = (
                f"{variable} entry {entry!r} matches no GPU, or several; "
                "ROCm ignores it and every entry after it"
            )
            selection.problems.append((reason, UUID_FIX))
            break
        if gpu not in kept:
            kept.append(gpu)
    return kept


def select_visible(gpus: Sequence[AmdGpu], environ: Mapping[str, str]) -> Selection:
    """The GPUs ROCm shows this process, from its three variables; every GPU when none is set."""
    selection = Selection()
    order = hip_order(gpus)
    pool = order
    rocr = parse_visible(environ.get("ROCR_VISIBLE_DEVICES"))
    if rocr is not None:
        pool = _filter(order, "ROCR_VISIBLE_DEVICES", rocr, selection)
    variable = "HIP_VISIBLE_DEVICES" if "HIP_VISIBLE_DEVICES" in environ else "CUDA_VISIBLE_DEVICES"
    entries = parse_visible(environ.get(variable))
    if entries is not None:
        pool = _filter(pool, variable, entries, selection)
    noted = any(name in environ for name in ("ROCR_VISIBLE_DEVICES", variable))
    unknown_order = noted and any(gpu.hip_id is None for gpu in gpus)
    for gpu in pool:
        notes = ["HIP order taken as amdsmi's (no hip_id reported)"] if unknown_order else []
        selection.picks.append(Pick(gpu, notes))
    return selection


def select_explicit(gpus: Sequence[AmdGpu], ids: Sequence[int | str]) -> Selection:
    """``gpu_ids``: ints are amdsmi indices, strings UUIDs (prefixes) or PCI addresses."""
    selection = Selection()
    for gpu_id in ids:
        if isinstance(gpu_id, int):
            gpu = next((g for g in gpus if g.index == gpu_id), None)
        else:
            gpu = by_name(gpus, gpu_id)
        if gpu is None:
            reason = f"gpu_ids entry {gpu_id!r} matches no AMD GPU, or several"
            selection.problems.append((reason, UUID_FIX))
        else:
            selection.picks.append(Pick(gpu))
    return selection


def select_torch(gpus: Sequence[AmdGpu], addresses: Sequence[str]) -> Selection:
    """The devices ROCm torch uses, by the PCI address it reports for each (exact)."""
    selection = Selection()
    for torch_index, address in enumerate(addresses):
        gpu = _by_bdf(gpus, address)
        if gpu is None:
            reason = f"torch device cuda:{torch_index} (PCI {address}) is not among amdsmi's GPUs"
            selection.problems.append((reason, None))
        else:
            selection.picks.append(Pick(gpu))
    return selection


def merge(picks: Sequence[Pick]) -> list[Pick]:
    """One pick per GPU, in first-seen order, with the notes of every pick of it."""
    merged: dict[int, Pick] = {}
    for pick in picks:
        kept = merged.setdefault(pick.gpu.index, Pick(pick.gpu))
        kept.notes.extend(note for note in pick.notes if note not in kept.notes)
    return list(merged.values())
