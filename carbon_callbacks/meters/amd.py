"""AMD GPUs through amdsmi: the energy counter where supported, else integrated socket power.

Only the GPUs this process uses are measured: explicit ``gpu_ids``, else the devices ROCm torch
has initialised (matched by PCI address), else ROCm's visibility variables (see
``amd_devices``); of those, a rank given its ``VisiblePosition`` measures the one at its local
rank (``meters.visible``). Dual-die boards (MI250, MI250X: two GCDs in one package) may report the
package's energy on one GCD while the other reads 0: that figure is the package's, shared by its
dies, so each die this process uses counts its share and the package is counted once. ``amdsmi``
needs ROCm's ``libamd_smi.so`` at import; it is imported only in ``open``, with what it prints
there kept off stdout, and any failure is an ``Unavailable`` with the reason.
"""

from __future__ import annotations

import importlib
import io
import os
import sys
import threading
import time
import weakref
from collections.abc import Mapping
from contextlib import redirect_stdout, suppress
from dataclasses import dataclass
from typing import Any

from carbon_callbacks.meters.amd_devices import (
    VISIBILITY_VARIABLES,
    AmdGpu,
    Pick,
    Selection,
    merge,
    select_explicit,
    select_torch,
    select_visible,
)
from carbon_callbacks.meters.base import Channel, Quantity, Unavailable
from carbon_callbacks.meters.gpu_base import GpuMeterBase, GpuRead, GpuSource
from carbon_callbacks.meters.visible import at_position

SOURCE = "amdsmi"

_ENERGY_HOW = (
    "amdsmi energy counter (amdsmi_get_energy_count: energy_accumulator x counter_resolution)"
)
_POWER_HOW = "amdsmi {key} (amdsmi_get_power_info), integrated by the sampler"
_AVERAGE_NOTE = "a firmware average over about a second"
_POWER_CHOSEN = "power_only=True: any energy counter left unread"
_NOT_SUPPORTED = frozenset({2, 3})  # AMDSMI_STATUS_NOT_SUPPORTED, AMDSMI_STATUS_NOT_YET_IMPLEMENTED
_NO_PERMISSION = 10  # AMDSMI_STATUS_NO_PERM
_DRIVER_NOT_LOADED = 34  # AMDSMI_STATUS_DRIVER_NOT_LOADED
_POWER_KEYS = ("current_socket_power", "average_socket_power")
_WRAP_32 = 1 << 32
_MAX_PLAUSIBLE_W = 2000.0
"""A wrap implying more than this average power since the last read is no wrap but a reset."""
_PLAUSIBILITY_SLACK_S = 1.0
_RESET = (
    "amdsmi energy counter went backwards without wrapping (it was reset); the energy of that "
    "interval is lost and counting goes on from the new value"
)
_AMD_COMPUTE_MARKER = "/dev/kfd"
"""Present where ROCm can run on an AMD GPU: a GPU here would go unmeasured."""
_AMD_DRIVER_MARKERS = (_AMD_COMPUTE_MARKER, "/sys/module/amdgpu")
"""Either present: an AMD GPU driver is loaded, so the ``amd`` extra may measure something."""
_INSTALL_FIX = 'pip install "carbon-callbacks[amd]" (from a clone: pip install ".[amd]")'
_LIBRARY_FIX = (
    "Install ROCm's amd-smi library (package amd-smi-lib), or set ROCM_PATH to the ROCm install."
)


_library_users: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
"""Open AmdMeters per amdsmi module in this process: the library is initialised for the
first, shut down after the last. amdsmi keeps one library state per process, so one meter's
``amdsmi_shut_down`` must not pull it from under another still reading (two trackers measuring
different GPUs)."""
_library_lock = threading.Lock()
_fork_hook: list[bool] = []


def _forget_in_child() -> None:
    """A forked child inherits no usable amdsmi state: its meters start the library afresh."""
    _library_users.clear()


def _acquire_library(amdsmi: Any) -> None:
    """``amdsmi_init`` for the first user in this process; raises what it raises."""
    with _library_lock:
        if not _fork_hook:
            os.register_at_fork(after_in_child=_forget_in_child)
            _fork_hook.append(True)
        users = _library_users.get(amdsmi, 0)
        if users == 0:
            amdsmi.amdsmi_init(amdsmi.AmdSmiInitFlags.INIT_AMD_GPUS)
        _library_users[amdsmi] = users + 1


def _release_library(amdsmi: Any) -> None:
    """``amdsmi_shut_down`` after the last user in this process; never raises."""
    with _library_lock:
        users = _library_users.pop(amdsmi, 0) - 1
        if users > 0:
            _library_users[amdsmi] = users
            return
        with suppress(Exception):
            amdsmi.amdsmi_shut_down()


def amd_gpu_driver_present() -> bool:
    """Whether an AMD GPU driver or the ROCm compute device is present on this machine."""
    return any(os.path.exists(marker) for marker in _AMD_DRIVER_MARKERS)


def _error_reason(amdsmi: Any, exc: Exception) -> str:
    """A short, constant reason for a fault or an unavailable device."""
    if isinstance(exc, amdsmi.AmdSmiException):
        detail = getattr(exc, "err_info", None) or str(exc) or type(exc).__name__
        return f"amdsmi error: {' '.join(str(detail).split())}"
    return f"unexpected error: {exc!r}"


def _error_code(amdsmi: Any, exc: Exception) -> int | None:
    """The library's status code of an amdsmi error, if it has one."""
    if isinstance(exc, amdsmi.AmdSmiLibraryException):
        return int(exc.err_code)
    return None


def _import_amdsmi() -> tuple[Any, Unavailable | None]:
    """The ``amdsmi`` module, or why it cannot be had (None when nothing here needs it).

    The real package prints its library-loading failure to stdout and then raises (a
    ``KeyError``, not an ``ImportError``): the print is kept off stdout, any exception caught.
    """
    printed = io.StringIO()
    try:
        with redirect_stdout(printed):
            return importlib.import_module("amdsmi"), None
    except ModuleNotFoundError as exc:
        if exc.name == "amdsmi":
            if not amd_gpu_driver_present():
                return None, None  # no AMD GPU here to miss
            return None, Unavailable(
                SOURCE,
                "amdsmi is not installed",
                _INSTALL_FIX,
                degrades=os.path.exists(_AMD_COMPUTE_MARKER),
            )
        detail = repr(exc)
    except Exception as exc:
        detail = next(iter(printed.getvalue().strip().splitlines()), "") or repr(exc)
    return None, Unavailable(
        SOURCE,
        f"amdsmi is installed but could not load ROCm's libamd_smi.so ({detail})",
        _LIBRARY_FIX if amd_gpu_driver_present() else None,  # no AMD GPU: nothing to gain
        degrades=os.path.exists(_AMD_COMPUTE_MARKER),
    )


def _init_failure(amdsmi: Any, exc: Exception) -> Unavailable:
    """Why ``amdsmi_init`` failed, in words, with a fix where one exists."""
    code = _error_code(amdsmi, exc)
    if code == _DRIVER_NOT_LOADED:
        return Unavailable(SOURCE, "the amdgpu driver is not loaded")
    if code == _NO_PERMISSION:
        return Unavailable(
            SOURCE,
            "no permission to use the AMD GPUs",
            "Add the user to the groups that own /dev/kfd and /dev/dri/renderD* (render, video).",
            degrades=True,
        )
    return Unavailable(
        SOURCE,
        f"amdsmi could not be initialised ({_error_reason(amdsmi, exc)})",
        degrades=os.path.exists(_AMD_COMPUTE_MARKER),
    )


def _torch_addresses() -> list[str] | None:
    """PCI addresses of the devices ROCm torch has initialised; None if it has not (or no ROCm).

    Torch's devices are exactly the ones ROCm chose for this process. Torch is never imported
    and no device initialised here.
    """
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    try:
        if not torch.version.hip or not torch.cuda.is_initialized():
            return None
        addresses = []
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            addresses.append(
                f"{props.pci_domain_id:04x}:{props.pci_bus_id:02x}:{props.pci_device_id:02x}"
            )
        return addresses
    except Exception:
        return None


def _text(value: object) -> str | None:
    """An amdsmi string, or None where it says ``"N/A"`` or nothing."""
    text = str(value).strip()
    return None if text in ("", "N/A") else text


def _accumulator(count: Mapping[str, Any]) -> int:
    """The energy count in resolution units; amdsmi before 6.1 called the key ``"power"``."""
    return int(count["energy_accumulator"] if "energy_accumulator" in count else count["power"])


def _watts(info: Mapping[str, Any], key: str) -> float | None:
    """A power field in watts, or None where amdsmi says ``"N/A"``."""
    value = info.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class _Package:
    """Dies of one package of which one (``reader``) reports the package's figure."""

    reader: AmdGpu
    members: tuple[AmdGpu, ...]


class _EnergyCounter:
    """One GPU's accumulator, unwrapped into joules since the first read."""

    def __init__(self, amdsmi: Any, handle: Any) -> None:
        self._amdsmi, self._handle = amdsmi, handle
        self._last: tuple[int, float] | None = None
        self._joules = 0.0

    def read(self) -> tuple[float, str | None]:
        count = self._amdsmi.amdsmi_get_energy_count(self._handle)
        raw, resolution_uj = _accumulator(count), float(count["counter_resolution"])
        now, fault = time.monotonic(), None
        if self._last is not None:
            last_raw, last_time = self._last
            delta = raw - last_raw
            if delta < 0:
                wrapped = delta + _WRAP_32 if last_raw < _WRAP_32 else None
                plausible_uj = (now - last_time + _PLAUSIBILITY_SLACK_S) * _MAX_PLAUSIBLE_W * 1e6
                if wrapped is None or wrapped * resolution_uj > plausible_uj:
                    wrapped, fault = 0, _RESET
                delta = wrapped
            self._joules += delta * resolution_uj * 1e-6
        self._last = (raw, now)
        return self._joules, fault


class AmdMeter(GpuMeterBase):
    """Energy of the AMD GPUs this process uses, one channel per GPU (or per shared package).

    The constructor touches nothing: ``amdsmi`` is imported and initialised in ``open``.

    Args:
        gpu_ids: GPUs to measure, overriding the visibility variables: ints are amdsmi indices
            (as ``amd-smi list`` numbers them), strings ``GPU-`` UUIDs, unique prefixes of them,
            or PCI addresses (``0000:c1:00.0``).
        environ: Environment to read ``ROCR_VISIBLE_DEVICES``, ``HIP_VISIBLE_DEVICES`` and
            ``CUDA_VISIBLE_DEVICES`` from at ``open``; defaults to ``os.environ``.
        power_only: Read the socket power (integrated by the sampler) even where the energy
            counter exists, to compare the two methods (``benchmarks/gpu_check.py`` does); the
            counter, chosen by default, is the better figure.
        visible_position: A rank's place on its node: of the visible GPUs (HIP's order), the one
            at its local rank (see ``meters.visible``); None: every visible GPU. Ignored with
            ``gpu_ids``.

    Raises:
        TypeError: A ``gpu_ids`` entry is neither an int nor a str.
        ValueError: A ``gpu_ids`` entry is a negative index, an empty string or a digit string.
    """

    source = SOURCE
    library_name = "amdsmi"

    def _start_library(self) -> Any:
        amdsmi, problem = _import_amdsmi()
        if amdsmi is None:
            self._unavailable.extend([problem] if problem is not None else [])
            return None
        try:
            _acquire_library(amdsmi)
        except Exception as exc:
            self._unavailable.append(_init_failure(amdsmi, exc))
            return None
        return amdsmi

    def _stop_library(self, library: Any) -> None:
        _release_library(library)

    def _describe(self, exc: Exception) -> str:
        return _error_reason(self._library, exc)

    def _open_channels(self) -> None:
        gpus = self._enumerate()
        selection = self._select(gpus)
        for reason, fix in selection.problems:
            self._unavailable.append(Unavailable(SOURCE, reason, fix))
        picks = merge(selection.picks)
        packages = self._shared_packages(gpus, picks)
        groups: dict[int, list[Pick]] = {}
        for pick in picks:
            package = packages.get(pick.gpu.index)
            reader = pick.gpu if package is None else package.reader
            groups.setdefault(reader.index, []).append(pick)
        for group in groups.values():
            self._open_channel(group, packages.get(group[0].gpu.index))

    def _enumerate(self) -> list[AmdGpu]:
        """Every GPU amdsmi lists; one whose identity cannot be had is reported unavailable."""
        amdsmi = self._library
        handles = list(amdsmi.amdsmi_get_processor_handles())
        if not handles:
            self._unavailable.append(Unavailable(SOURCE, "amdsmi reports no AMD GPU"))
        gpus = []
        for index, handle in enumerate(handles):
            try:
                uuid = str(amdsmi.amdsmi_get_gpu_device_uuid(handle))
                bdf = str(amdsmi.amdsmi_get_gpu_device_bdf(handle)).lower()
            except Exception as exc:
                reason = f"GPU {index}: {_error_reason(amdsmi, exc)}"
                self._unavailable.append(Unavailable(SOURCE, reason, degrades=True))
                continue
            hip_id, hip_uuid, package = None, None, None
            with suppress(Exception):  # older libraries lack it: amdsmi's order is taken
                enumeration = amdsmi.amdsmi_get_gpu_enumeration_info(handle)
                hip_id = enumeration["hip_id"] if isinstance(enumeration["hip_id"], int) else None
                hip_uuid = _text(enumeration["hip_uuid"])
            with suppress(Exception):  # no board serial: the GPU is taken as its own package
                package = _text(amdsmi.amdsmi_get_gpu_board_info(handle)["product_serial"])
            gpus.append(AmdGpu(index, handle, uuid, bdf, hip_id, hip_uuid, package))
        return gpus

    def _select(self, gpus: list[AmdGpu]) -> Selection:
        """The GPUs this process uses: ``gpu_ids``, else torch's devices, else the variables'.

        Of torch's or the variables' GPUs, a rank given its visible position takes the one there.
        """
        if self._gpu_ids is not None:
            return select_explicit(gpus, self._gpu_ids)
        environ = os.environ if self._environ is None else self._environ
        addresses = _torch_addresses()
        if addresses is not None:
            selection = select_torch(gpus, addresses)
        else:
            selection = select_visible(gpus, environ)
        narrowed = any(name in environ for name in VISIBILITY_VARIABLES)
        selection.picks, problems = at_position(
            selection.picks, self._position, narrowed=narrowed, source=SOURCE
        )
        self._unavailable.extend(problems)
        return selection

    def _shared_packages(self, gpus: list[AmdGpu], picks: list[Pick]) -> dict[int, _Package]:
        """Dies (by index) of the picked packages where one die reports and the others read 0."""
        picked_packages = {pick.gpu.package for pick in picks if pick.gpu.package is not None}
        found: dict[int, _Package] = {}
        for serial in picked_packages:
            members = tuple(gpu for gpu in gpus if gpu.package == serial)
            values = [self._first_value(gpu) for gpu in members]
            if len(members) < 2 or any(value is None for value in values):
                continue
            reporting = [gpu for gpu, value in zip(members, values, strict=True) if value]
            if len(reporting) == 1:
                found.update((gpu.index, _Package(reporting[0], members)) for gpu in members)
        return found

    def _first_value(self, gpu: AmdGpu) -> float | None:
        """What the GPU reads now (accumulator, else power); None when it cannot be read.

        With ``power_only`` the power, so that the counter stays unread.
        """
        amdsmi = self._library
        if not self._power_only:
            try:
                return float(_accumulator(amdsmi.amdsmi_get_energy_count(gpu.handle)))
            except Exception:
                pass
        try:
            info = amdsmi.amdsmi_get_power_info(gpu.handle)
        except Exception:
            return None
        return next((w for w in (_watts(info, key) for key in _POWER_KEYS) if w is not None), None)

    def _open_channel(self, picks: list[Pick], package: _Package | None) -> None:
        """Add one channel: energy counter first, power second; else report it unavailable."""
        amdsmi = self._library
        gpu = picks[0].gpu if package is None else package.reader
        label = f"GPU {gpu.index}"
        try:
            name = _text(amdsmi.amdsmi_get_gpu_asic_info(gpu.handle)["market_name"]) or "AMD GPU"
            label = f"GPU {gpu.index} ({name})"
            probed = self._probe(gpu.handle)
        except Exception as exc:
            reason = f"{label}: {_error_reason(amdsmi, exc)}"
            self._unavailable.append(Unavailable(SOURCE, reason, degrades=True))
            return
        if probed is None:
            reason = f"{label}: neither energy counter nor power reading is supported"
            self._unavailable.append(Unavailable(SOURCE, reason, degrades=True))
            return
        quantity, how, read = probed
        notes = [note for pick in picks for note in pick.notes]
        if self._power_only:
            notes.insert(0, _POWER_CHOSEN)
        share = 1.0
        if package is not None:
            dies = ", ".join(f"GPU {member.index}" for member in package.members)
            share = len(picks) / len(package.members)
            name = f"{name} (package of {dies})"
            notes.append(_package_note(package, len(picks)))
        channel_id = f"gpu:amd{gpu.index}"
        how = "; ".join(dict.fromkeys([how, *notes]))
        self._channels.append(Channel(channel_id, "gpu", name, "measured", how, quantity))
        self._sources.append(GpuSource(channel_id, read, share))

    def _probe(self, handle: Any) -> tuple[Quantity, str, GpuRead] | None:
        """The best reading the GPU supports: the energy counter, else power; None if neither.

        ``power_only`` skips the counter, so that power alone is tried. Only "not supported"
        moves on to the next reading; any other amdsmi error propagates, since it says the GPU
        is unusable rather than old.
        """
        amdsmi = self._library
        try:
            count = None if self._power_only else amdsmi.amdsmi_get_energy_count(handle)
            if count is not None and float(count["counter_resolution"]) > 0:
                return "energy", _ENERGY_HOW, _EnergyCounter(amdsmi, handle).read
        except amdsmi.AmdSmiLibraryException as exc:
            if exc.err_code not in _NOT_SUPPORTED:
                raise
        try:
            info = amdsmi.amdsmi_get_power_info(handle)
        except amdsmi.AmdSmiLibraryException as exc:
            if exc.err_code not in _NOT_SUPPORTED:
                raise
            return None
        key = next((key for key in _POWER_KEYS if _watts(info, key) is not None), None)
        if key is None:
            return None
        how = _POWER_HOW.format(key=key)
        if key == "average_socket_power":
            how = f"{how}; {_AVERAGE_NOTE}"
        return "power", how, _power_reader(amdsmi, handle, key)


def _power_reader(amdsmi: Any, handle: Any, key: str) -> GpuRead:
    """Read one power field in watts; a field that turns ``"N/A"`` raises, becoming a fault."""

    def read() -> tuple[float, str | None]:
        watts = _watts(amdsmi.amdsmi_get_power_info(handle), key)
        if watts is None:
            raise amdsmi.AmdSmiException(f"{key} is N/A")
        return watts, None

    return read


def _package_note(package: _Package, used: int) -> str:
    """The channel's words for a package figure reported by one die for all its dies."""
    others = ", ".join(f"GPU {m.index}" for m in package.members if m is not package.reader)
    total = len(package.members)
    counted = (
        "counted once for the package"
        if used == total
        else f"this process uses {used} of its {total} dies and counts {used}/{total} of it"
    )
    return (
        f"the package's figure, shared by its {total} dies: GPU {package.reader.index} reports "
        f"it while {others} read 0; {counted}"
    )
