"""NVIDIA GPUs through NVML: the total-energy counter (Volta and newer), else integrated power.

Only the GPUs this process can see are measured: explicit ``gpu_ids``, else the devices CUDA itself
would pick from ``CUDA_VISIBLE_DEVICES`` (indices, UUIDs, UUID prefixes, MIG instances), matched to
NVML by UUID because CUDA's device order need not be NVML's; of those, a rank given its
``VisiblePosition`` measures the one at its local rank (``meters.visible``). NVML has no
per-MIG-instance energy, so a MIG instance is measured through its parent GPU. ``pynvml`` (from
``nvidia-ml-py``) is imported only in ``open``, so importing this module costs nothing on
machines without NVIDIA GPUs.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from carbon_callbacks.meters.base import Channel, Quantity, Unavailable
from carbon_callbacks.meters.gpu_base import GpuMeterBase, GpuSource
from carbon_callbacks.meters.visible import at_position

SOURCE = "nvml"

_ENERGY_HOW = "NVML total energy counter (nvmlDeviceGetTotalEnergyConsumption)"
_POWER_HOW = "NVML power draw (nvmlDeviceGetPowerUsage), integrated by the sampler"
_POWER_CHOSEN = "power_only=True: any energy counter left unread"
_MIG_NOTE = "the whole GPU's figure, shared by the MIG instances on it"
_NO_DEVICES = frozenset({"", "-1", "NoDevFiles"})
_UUID_FIX = (
    "Use NVML indices, GPU-/MIG- UUIDs or unique UUID prefixes, as `nvidia-smi -L` lists them."
)
_BARE_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_INIT_FAILURES: dict[str, tuple[str, str | None]] = {
    "NVMLError_LibraryNotFound": (
        "NVIDIA driver not found (libnvidia-ml.so.1 could not be loaded)",
        None,
    ),
    "NVMLError_DriverNotLoaded": (
        "NVIDIA driver is not loaded",
        "Check that `nvidia-smi` works on this machine.",
    ),
    "NVMLError_NoPermission": (
        "no permission to use NVML",
        "Give the process access to the /dev/nvidia* devices.",
    ),
    "NVMLError_LibRmVersionMismatch": (
        "NVML library and NVIDIA kernel driver versions differ",
        "Reboot, or reload the NVIDIA kernel module, after a driver update.",
    ),
}


def parse_cuda_visible_devices(value: str | None) -> list[str] | None:
    """Split a ``CUDA_VISIBLE_DEVICES`` value into its entries, without judging them.

    Args:
        value: The variable's value, or None when it is unset.

    Returns:
        None when unset (every GPU is visible), an empty list when no GPU is visible (``""``,
        ``"-1"``, Slurm's ``"NoDevFiles"``), else the stripped entries in order. Whether an entry
        names a device is decided later, against the devices present, as CUDA does.
    """
    if value is None:
        return None
    value = value.strip()
    if value in _NO_DEVICES:
        return []
    return [entry.strip() for entry in value.split(",")]


@dataclass(frozen=True)
class _Gpu:
    """A physical GPU as NVML enumerates it."""

    index: int
    handle: Any
    uuid: str


@dataclass
class _Pick:
    """A GPU chosen for measurement, with the caveats on how it was chosen (for ``Channel.how``)."""

    gpu: _Gpu
    notes: list[str] = field(default_factory=list)


class _Inventory:
    """NVML's GPUs by index and UUID; MIG instances are enumerated on first need only."""

    def __init__(self, nvml: Any, gpus: list[_Gpu]) -> None:
        self._nvml = nvml
        self.gpus = gpus
        self._mig_parents: dict[str, _Gpu] | None = None

    def by_index(self, index: int) -> _Pick | None:
        """The GPU at this NVML index, if there is one."""
        return next((_Pick(gpu) for gpu in self.gpus if gpu.index == index), None)

    def by_uuid(self, prefix: str) -> _Pick | None:
        """The device whose UUID starts with ``prefix``, if exactly one does.

        ``GPU-`` prefixes match GPUs; ``MIG-`` prefixes match MIG instances and pick their parent.
        """
        if prefix in ("GPU-", "MIG-"):
            return None
        is_mig = prefix.startswith("MIG-")
        pool = self._mig() if is_mig else {gpu.uuid: gpu for gpu in self.gpus}
        matches = [gpu for uuid, gpu in pool.items() if uuid.startswith(prefix)]
        if len(matches) != 1:
            return None
        return _Pick(matches[0], [_MIG_NOTE] if is_mig else [])

    def _mig(self) -> dict[str, _Gpu]:
        if self._mig_parents is None:
            self._mig_parents = {
                uuid: gpu for gpu in self.gpus for uuid in _mig_uuids(self._nvml, gpu.handle)
            }
        return self._mig_parents


def _mig_uuids(nvml: Any, handle: Any) -> list[str]:
    """UUIDs of the MIG instances on one GPU; none when MIG is unsupported or disabled."""
    try:
        slots = int(nvml.nvmlDeviceGetMaxMigDeviceCount(handle))
    except nvml.NVMLError:
        return []
    uuids = []
    for slot in range(slots):
        try:
            mig = nvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, slot)
            uuids.append(_text(nvml.nvmlDeviceGetUUID(mig)))
        except nvml.NVMLError:
            continue  # an empty slot
    return uuids


def _by_uuid_entry(inventory: _Inventory, entry: str) -> _Pick | None:
    """Resolve a UUID entry: ``GPU-...``, ``MIG-...``, a bare prefix or ``MIG-GPU-<uuid>/gi/ci``."""
    if entry.startswith("MIG-GPU-"):  # pre-R470 syntax: MIG-GPU-<parent uuid>/<gi>/<ci>
        pick = inventory.by_uuid(entry.removeprefix("MIG-").split("/")[0])
        return None if pick is None else _Pick(pick.gpu, [_MIG_NOTE])
    return inventory.by_uuid(entry if entry.startswith(("GPU-", "MIG-")) else f"GPU-{entry}")


def _by_cuda_entry(inventory: _Inventory, entry: str, pci_order: bool) -> _Pick | None:
    """Resolve one ``CUDA_VISIBLE_DEVICES`` entry; None where CUDA would stop reading the list."""
    if not (entry.isascii() and entry.isdigit()):
        return _by_uuid_entry(inventory, entry)
    index = int(entry)
    pick = inventory.by_index(index)
    if pick is not None and not pci_order:
        pick.notes.append(f"CUDA index {index} taken as NVML index {index} (PCI bus order)")
    return pick


def _by_torch_uuid(inventory: _Inventory, uuid: str) -> _Pick | None:
    """Resolve a CUDA device UUID as torch prints it (bare hex, no ``GPU-``/``MIG-``)."""
    if not _BARE_UUID.fullmatch(uuid):
        return None
    return inventory.by_uuid(f"GPU-{uuid}") or inventory.by_uuid(f"MIG-{uuid}")


def _torch_uuids() -> list[str] | None:
    """UUIDs of the devices torch sees, if torch has already initialised CUDA; else None.

    Torch's devices are exactly the ones CUDA chose for this process, so they settle any doubt
    about device order. Torch is never imported and CUDA never initialised here.
    """
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    try:
        cuda = torch.cuda
        if not cuda.is_initialized():
            return None
        return [str(cuda.get_device_properties(k).uuid) for k in range(cuda.device_count())]
    except Exception:
        return None


def _merge(picks: list[_Pick]) -> list[_Pick]:
    """One pick per physical GPU, in first-seen order, with the notes of every pick of it."""
    merged: dict[int, _Pick] = {}
    for pick in picks:
        kept = merged.setdefault(pick.gpu.index, _Pick(pick.gpu))
        kept.notes.extend(note for note in pick.notes if note not in kept.notes)
    return list(merged.values())


_NVIDIA_DRIVER_MARKER = "/proc/driver/nvidia/version"
"""Present when the NVIDIA kernel driver is loaded: GPUs exist that would go unmeasured."""


def _text(value: str | bytes) -> str:
    """NVML strings: ``str`` from current bindings, ``bytes`` from old ones."""
    return value.decode() if isinstance(value, bytes) else value


def _error_reason(nvml: Any, exc: Exception) -> str:
    """A short reason for a fault or an unavailable device."""
    if isinstance(exc, nvml.NVMLError):
        return f"NVML error: {exc}"
    return f"unexpected error: {exc!r}"


_NO_NVIDIA_HERE = frozenset({"NVMLError_LibraryNotFound", "NVMLError_DriverNotLoaded"})
"""Init failures that mean there is no NVIDIA GPU to measure; any other one hides a GPU."""


def _init_failure(nvml: Any, exc: Exception) -> Unavailable:
    """Why ``nvmlInit`` failed, in words, with a fix where one exists.

    Failures other than a missing driver degrade the figures (a GPU draws power that goes
    unmeasured), so the tracker warns about them.
    """
    name = type(exc).__name__
    reason, fix = _INIT_FAILURES.get(
        name, (f"NVML could not be initialised ({_error_reason(nvml, exc)})", None)
    )
    return Unavailable(SOURCE, reason, fix, degrades=name not in _NO_NVIDIA_HERE)


class NvmlMeter(GpuMeterBase):
    """Energy of the NVIDIA GPUs this process uses, one channel per physical GPU.

    Volta and newer GPUs expose a millijoule counter read directly; older ones only report power,
    which the sampler integrates. The constructor touches nothing: ``pynvml`` is imported and NVML
    initialised in ``open``.

    Args:
        gpu_ids: GPUs to measure, overriding ``CUDA_VISIBLE_DEVICES``: ints are NVML indices,
            strings are ``GPU-``/``MIG-`` UUIDs or unique prefixes of them.
        environ: Environment to read ``CUDA_VISIBLE_DEVICES`` and ``CUDA_DEVICE_ORDER`` from at
            ``open``; defaults to ``os.environ``.
        power_only: Read the power draw (integrated by the sampler) even where the energy counter
            exists, to compare the two methods (``benchmarks/gpu_check.py`` does); the counter,
            chosen by default, is the better figure.
        visible_position: A rank's place on its node: of the visible GPUs (CUDA's order), the one
            at its local rank (see ``meters.visible``); None: every visible GPU. Ignored with
            ``gpu_ids``.

    Raises:
        TypeError: A ``gpu_ids`` entry is neither an int nor a str.
        ValueError: A ``gpu_ids`` entry is a negative index, an empty string or a digit string.
    """

    source = SOURCE
    library_name = "NVML"

    def _start_library(self) -> Any:
        try:
            nvml: Any = importlib.import_module("pynvml")
        except ImportError:
            self._unavailable.append(
                Unavailable(
                    SOURCE,
                    "nvidia-ml-py is not installed",
                    'pip install "carbon-callbacks[nvidia]" '
                    '(from a clone: pip install ".[nvidia]")',
                    degrades=os.path.exists(_NVIDIA_DRIVER_MARKER),
                )
            )
            return None
        try:
            nvml.nvmlInit()
        except Exception as exc:
            self._unavailable.append(_init_failure(nvml, exc))
            return None
        return nvml

    def _stop_library(self, library: Any) -> None:
        with suppress(Exception):
            library.nvmlShutdown()

    def _describe(self, exc: Exception) -> str:
        return _error_reason(self._library, exc)

    def _open_channels(self) -> None:
        inventory = _Inventory(self._library, self._enumerate())
        for pick in _merge(self._select(inventory)):
            self._open_channel(pick)

    def _enumerate(self) -> list[_Gpu]:
        """Every GPU NVML lists; one whose handle or UUID cannot be had is reported unavailable."""
        nvml = self._library
        count = int(nvml.nvmlDeviceGetCount())
        if count == 0:
            self._unavailable.append(Unavailable(SOURCE, "NVML reports no NVIDIA GPU"))
        gpus = []
        for index in range(count):
            try:
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                gpus.append(_Gpu(index, handle, _text(nvml.nvmlDeviceGetUUID(handle))))
            except nvml.NVMLError as exc:
                self._unavailable.append(
                    Unavailable(SOURCE, f"GPU {index}: {_error_reason(nvml, exc)}", degrades=True)
                )
        return gpus

    def _select(self, inventory: _Inventory) -> list[_Pick]:
        """The GPUs this process uses: ``gpu_ids``, else torch's devices, else CUDA's variable.

        Of torch's or CUDA's GPUs, a rank given its visible position takes the one there.
        """
        if self._gpu_ids is not None:
            return self._select_explicit(inventory, self._gpu_ids)
        environ = os.environ if self._environ is None else self._environ
        torch_uuids = _torch_uuids()
        entries = parse_cuda_visible_devices(environ.get("CUDA_VISIBLE_DEVICES"))
        if torch_uuids is not None:
            visible = self._select_torch(inventory, torch_uuids)
        elif entries is None and self._position is None:
            visible = [_Pick(gpu) for gpu in inventory.gpus]
        else:  # a position counts in CUDA's order: with no variable, every index
            entries = [str(gpu.index) for gpu in inventory.gpus] if entries is None else entries
            pci_order = environ.get("CUDA_DEVICE_ORDER") == "PCI_BUS_ID"
            visible = self._select_cuda_visible(inventory, entries, pci_order)
        narrowed = "CUDA_VISIBLE_DEVICES" in environ
        picks, problems = at_position(visible, self._position, narrowed=narrowed, source=SOURCE)
        self._unavailable.extend(problems)
        return picks

    def _select_explicit(self, inventory: _Inventory, ids: tuple[int | str, ...]) -> list[_Pick]:
        picks = []
        for gpu_id in ids:
            pick = (
                inventory.by_index(gpu_id)
                if isinstance(gpu_id, int)
                else _by_uuid_entry(inventory, gpu_id)
            )
            if pick is None:
                reason = f"gpu_ids entry {gpu_id!r} matches no GPU, or several"
                self._unavailable.append(Unavailable(SOURCE, reason, _UUID_FIX))
            else:
                picks.append(pick)
        return picks

    def _select_torch(self, inventory: _Inventory, uuids: list[str]) -> list[_Pick]:
        picks = []
        for cuda_index, uuid in enumerate(uuids):
            pick = _by_torch_uuid(inventory, uuid)
            if pick is None:
                reason = f"CUDA device {cuda_index} (UUID {uuid}) is not among NVML's devices"
                self._unavailable.append(Unavailable(SOURCE, reason))
            else:
                picks.append(pick)
        return picks

    def _select_cuda_visible(
        self, inventory: _Inventory, entries: list[str], pci_order: bool
    ) -> list[_Pick]:
        """Resolve entries in order, stopping at the first one CUDA would reject, as CUDA does."""
        picks = []
        for entry in entries:
            pick = _by_cuda_entry(inventory, entry, pci_order)
            if pick is None:
                reason = (
                    f"CUDA_VISIBLE_DEVICES entry {entry!r} matches no GPU, or several; "
                    "CUDA ignores it and every entry after it"
                )
                self._unavailable.append(Unavailable(SOURCE, reason, _UUID_FIX))
                break
            picks.append(pick)
        return picks

    def _open_channel(self, pick: _Pick) -> None:
        """Add the GPU's channel, energy counter first, power second; else report it unavailable."""
        nvml, gpu = self._library, pick.gpu
        label = f"GPU {gpu.index}"
        try:
            name = _text(nvml.nvmlDeviceGetName(gpu.handle))
            label = f"GPU {gpu.index} ({name})"
            probed = _probe(nvml, gpu.handle, self._power_only)
        except Exception as exc:
            self._unavailable.append(
                Unavailable(SOURCE, f"{label}: {_error_reason(nvml, exc)}", degrades=True)
            )
            return
        if probed is None:
            reason = f"{label}: neither energy counter nor power reading is supported"
            self._unavailable.append(Unavailable(SOURCE, reason, degrades=True))
            return
        quantity, how, getter = probed
        notes = [_POWER_CHOSEN, *pick.notes] if self._power_only else pick.notes
        channel_id = f"gpu:{gpu.index}"
        self._channels.append(
            Channel(
                id=channel_id,
                kind="gpu",
                device=name,
                method="measured",
                how="; ".join([how, *notes]),
                quantity=quantity,
                scope="device",
            )
        )
        self._sources.append(GpuSource(channel_id, partial(_in_base_units, getter, gpu.handle)))


def _in_base_units(getter: Callable[[Any], int], handle: Any) -> tuple[float, str | None]:
    """An NVML getter's milli-units (mJ or mW) in joules or watts; NVML flags no fault."""
    return getter(handle) / 1000.0, None


def _probe(
    nvml: Any, handle: Any, power_only: bool = False
) -> tuple[Quantity, str, Callable[[Any], int]] | None:
    """The best reading the GPU supports: the energy counter, else power; None if neither.

    ``power_only`` skips the counter, so that power alone is tried.

    Only "not supported" (or a driver too old to have the function) moves on to the next reading;
    any other NVML error propagates, since it says the GPU is unusable rather than old.
    """
    unsupported = (nvml.NVMLError_NotSupported, nvml.NVMLError_FunctionNotFound)
    options: list[tuple[Quantity, str, Callable[[Any], int]]] = [
        ("energy", _ENERGY_HOW, nvml.nvmlDeviceGetTotalEnergyConsumption),
        ("power", _POWER_HOW, nvml.nvmlDeviceGetPowerUsage),
    ]
    for quantity, how, getter in options[1:] if power_only else options:
        try:
            getter(handle)
        except unsupported:
            continue
        return quantity, how, getter
    return None
