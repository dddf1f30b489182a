"""Fault injection for the reliability matrix: fake hardware, the faults, and four training loops.

A case is one frontend (the plain ``Tracker`` or one of the three callbacks) training a tiny seeded
model for ``EPOCHS`` x ``STEPS_PER_EPOCH`` steps, with one fault injected at one phase:

- ``"start"``: the fault is there before training starts (or, for faults that need the run's own
  objects, such as its open log file, at the first step, before any record but the header);
- ``"mid"``: at step ``TOTAL_STEPS // 2``, the first step of the second epoch;
- ``"stop"``: at the last step, so the final exact read meets it.

Every fake sits at the outermost boundary: a powercap tree of real files, the fake ``pynvml``
module, a local HTTP server standing in for the UK Carbon Intensity API, and real kernel faults
(``/dev/full`` for a full disk, a write-only sysfs file for a permission error even as root). A
user callback native to each framework, placed before ours, advances the fake counters at every
step (so every healthy channel's energy is known exactly) and injects the fault. Each fault says
what it must do to the figures (``Expect``); ``test_fault_matrix.py`` checks that.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import threading
import time
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pynvml
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from carbon_callbacks import CarbonCallbacksWarning, Tracker
from carbon_callbacks.intensity.base import IntensityValue
from carbon_callbacks.intensity.live import LiveIntensity
from carbon_callbacks.intensity.providers.uk import URL_ENV, UkCarbonIntensity
from tests.intensity.servers import closed_port
from tests.intensity.uk_payloads import national
from tests.meters.fake_powercap import FakePowercap
from tests.meters.fake_pynvml import FakeGpu, FakePynvml, error, install

Phase = Literal["start", "mid", "stop"]
PHASES: tuple[Phase, ...] = ("start", "mid", "stop")

EPOCHS = 2
STEPS_PER_EPOCH = 4
TOTAL_STEPS = EPOCHS * STEPS_PER_EPOCH
BATCH = 8
INJECT_STEP: dict[Phase, int] = {"start": 0, "mid": TOTAL_STEPS // 2, "stop": TOTAL_STEPS - 1}
"""The step at which a fault is injected (``"start"``: only faults that cannot exist earlier)."""

PACKAGE_ZONE, DRAM_ZONE = "intel-rapl:0", "intel-rapl:0:0"
CPU, DRAM, GPU = "cpu:package-0", "dram:package-0", "gpu:0"
CHANNELS = (GPU, CPU, DRAM)
PACKAGE_START_UJ = 100_000_000
PACKAGE_UJ_PER_STEP = 2_000_000
DRAM_UJ_PER_STEP = 500_000
IDLE_UJ_PER_TICK = 10_000
"""What each live RAPL counter gains every ``IDLE_TICK_S`` while a step waits (a real CPU package
and its DRAM never draw 0 W, and a counter still for 5 s is taken as stuck)."""
IDLE_TICK_S = 0.1
GPU_W = 100.0
GPU_S_PER_STEP = 1.0
INTENSITY_G = 250.0
"""The constant intensity of every case that does not fault the intensity."""
LIVE_G = 120.0
"""What the local UK API answers while healthy."""
UK_API = UkCarbonIntensity.name
STALL_HOLD_S = 6.0
"""How long a stuck counter is held: past the 5 s stall limit, and past 5.5 s, where a reason
that counted seconds would change its text (and warn again)."""
THREAD_END_S = 8.0
"""How long a carbon-callbacks thread may take to end after ``stop``: the longest bounded request
of the live intensity client (2 s to connect + 5 s to read) with a second to spare."""


# -- what a fault must do ---------------------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    """What a fault at one phase must do to the run's figures.

    Attributes:
        warnings: One regular expression per warning expected; each must match exactly one
            ``CarbonCallbacksWarning``, and there must be no other.
        faulty: Channel id to a regex of its ``fault``: the figure is partial, never above the
            energy drawn, and (for a fault after the start) keeps what was measured before it.
        missing: Channel id to a regex of the ``unavailable`` entry that replaces it: found, not
            measurable, listed in the run-log header.
        unmeasured: A missing device's energy goes uncounted (nothing stands in for it): every
            figure is partial and names it.
        estimated_cpu: The CPU estimate stands in for the RAPL package counter.
        intensity: ``"constant"`` (the configured value), ``"fallback"`` (the yearly value, its
            provenance naming the live API's failure), ``"live"`` (the live figures fetched
            before the fault still cover the run) or ``"none"`` (CO2e left out, never 0).
        log: ``"complete"``; ``"unwritable"`` (no log at all); ``"stopped"`` (readable up to the
            fault, no summary); ``"restarted"`` (deleted, started again with a header).
        windows_before: Epoch windows written before the fault (for the log faults).
    """

    warnings: tuple[str, ...] = ()
    faulty: dict[str, str] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    unmeasured: bool = False
    estimated_cpu: bool = False
    intensity: Literal["constant", "fallback", "live", "none"] = "constant"
    log: Literal["complete", "unwritable", "stopped", "restarted"] = "complete"
    windows_before: int = 0


# -- the fake world of one case ---------------------------------------------------------------


class Rig:
    """The fake hardware and surroundings of one case, and the energy truly drawn.

    Args:
        powercap: The fake powercap tree (package and DRAM zones), already the tracker's root.
        monkeypatch: For the fake ``pynvml`` module and environment variables.
        httpserver: A local HTTP server for the grid API (pytest-httpserver's).
        workdir: A fresh folder for this case.
    """

    def __init__(
        self,
        powercap: FakePowercap,
        monkeypatch: pytest.MonkeyPatch,
        httpserver: HTTPServer,
        workdir: Path,
    ) -> None:
        self.powercap = powercap
        self.monkeypatch = monkeypatch
        self.httpserver = httpserver
        self.workdir = workdir
        self.gpu = FakeGpu(uuid="GPU-0fa17000-0000-4000-8000-000000000000", power_w=GPU_W)
        self.nvml = install(monkeypatch, FakePynvml([self.gpu]))
        self.frozen: set[str] = set()
        """Zones whose counter no longer moves: gone, unreadable or stuck."""
        self.drawn_j = dict.fromkeys(CHANNELS, 0.0)
        """Energy each channel's device drew, whether or not it could be read."""
        self.options: dict[str, Any] = {"gpu_ids": [0], "intensity_g_per_kwh": INTENSITY_G}
        """The options every frontend passes to its tracker; faults may change them."""
        self.caught: list[warnings.WarningMessage] = []
        self.trackers: list[Tracker] = []
        """The trackers seen during the run, to close one a failed run left open."""
        self._cleanups: list[Callable[[], None]] = []
        # far from 0, so a counter reset is seen as going backwards whatever the step's burn
        powercap.set_energy(PACKAGE_ZONE, PACKAGE_START_UJ)

    def burn(self) -> None:
        """One training step's energy: drawn by every device, counted by the counters that move."""
        for zone, channel, microjoules in (
            (PACKAGE_ZONE, CPU, PACKAGE_UJ_PER_STEP),
            (DRAM_ZONE, DRAM, DRAM_UJ_PER_STEP),
        ):
            if zone not in self.frozen:
                self.powercap.add_energy(zone, microjoules)
            self.drawn_j[channel] += microjoules / 1e6
        self.nvml.advance(GPU_S_PER_STEP)
        self.drawn_j[GPU] += GPU_W * GPU_S_PER_STEP

    def idle(self, seconds: float, until: Callable[[], bool] | None = None) -> bool:
        """Let a step wait up to ``seconds`` (or until ``until()``), the host drawing idle power.

        Returns:
            True if ``until`` became true (always False without it).
        """
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if until is not None and until():
                return True
            time.sleep(IDLE_TICK_S)
            for zone, channel in ((PACKAGE_ZONE, CPU), (DRAM_ZONE, DRAM)):
                if zone not in self.frozen:
                    self.powercap.add_energy(zone, IDLE_UJ_PER_TICK)
                self.drawn_j[channel] += IDLE_UJ_PER_TICK / 1e6
        return until is not None and until()

    def carbon_warnings(self) -> list[str]:
        """The ``CarbonCallbacksWarning`` messages recorded so far."""
        return [
            str(w.message)
            for w in list(self.caught)
            if issubclass(w.category, CarbonCallbacksWarning)
        ]

    def wait_for_warning(self, pattern: str, timeout_s: float) -> None:
        """Block the training step until a warning matching ``pattern`` arrives (another thread
        emits it), so the fault is seen during the run rather than after it."""
        if not self.idle(
            timeout_s, lambda: any(re.search(pattern, m) for m in self.carbon_warnings())
        ):
            raise AssertionError(
                f"no warning matching {pattern!r} within {timeout_s} s: {self.carbon_warnings()}"
            )

    def on_close(self, cleanup: Callable[[], None]) -> None:
        """Run ``cleanup`` when the case ends (servers to stop)."""
        self._cleanups.append(cleanup)

    def close(self) -> None:
        """Run the clean-ups, last registered first, and stop a tracker a failed run left open.

        Keras and transformers have no hook for a training that raises, so their tracker stays
        open until the next ``fit`` or the interpreter's exit; the case has failed already, and
        stopping it keeps its sampler thread from failing every case after it.
        """
        for tracker in self.trackers:
            with contextlib.suppress(Exception):  # the failure that stopped the run, again
                tracker.stop("failed")
        while self._cleanups:
            self._cleanups.pop()()


class Fault(ABC):
    """One kind of fault: how to inject it and what it must do.

    Attributes:
        name: The id in test names.
        before_start: At ``"start"`` the fault is set up before training; False: at step 0.
        not_applicable: Phases where the fault cannot happen, with the reason.
    """

    name: str = ""
    before_start = True
    not_applicable: dict[Phase, str] = {}  # noqa: RUF012 (read-only class default)

    def is_slow(self, phase: Phase) -> bool:
        """Whether the case takes seconds (a stall, a network timeout)."""
        return False

    def prepare(self, rig: Rig, phase: Phase) -> None:  # noqa: B027 (optional hook)
        """Set up what the fault needs before training (servers, options, per-case state)."""

    @abstractmethod
    def inject(self, rig: Rig, tracker: Tracker | None) -> None:
        """Make the fault happen; ``tracker`` is the run's, None before training starts."""

    def observe(self, rig: Rig) -> None:  # noqa: B027 (optional hook)
        """Called in the training step right after injection: wait until the fault is seen."""

    @abstractmethod
    def expect(self, phase: Phase) -> Expect:
        """What the fault at ``phase`` must do to the run."""


# -- NVML -------------------------------------------------------------------------------------

_NVML_AT_INIT_ONLY = "NVML is initialised once, when the tracker opens its meters"


class NvmlInitFailure(Fault):
    """``nvmlInit`` fails: no channel for the GPU; a warning unless it means "no NVIDIA here"."""

    not_applicable = {"mid": _NVML_AT_INIT_ONLY, "stop": _NVML_AT_INIT_ONLY}  # noqa: RUF012

    def __init__(self, code_name: str, reason: str, *, gpu_hidden: bool) -> None:
        self.name = "nvml-init-" + code_name.removeprefix("NVML_ERROR_").lower().replace("_", "-")
        self.code = int(getattr(pynvml, code_name))
        self.reason = reason
        self.gpu_hidden = gpu_hidden

    def inject(self, rig: Rig, tracker: Tracker | None) -> None:
        """Make the next ``nvmlInit`` raise the error."""
        rig.nvml.init_error = self.code

    def expect(self, phase: Phase) -> Expect:
        """The GPU is unavailable; warned about when a GPU exists that goes unmeasured."""
        return Expect(
            warnings=(self.reason,) if self.gpu_hidden else (),
            missing={GPU: self.reason},
            unmeasured=self.gpu_hidden,
        )


class NvmlReadError(Fault):
    """Every energy read of the GPU raises ``NVMLError_Unknown``."""

    name = "nvml-read-error"

    def inject(self, rig: Rig, tracker: Tracker | None) -> None:
        """Set the GPU's fault."""
        rig.gpu.fault = error(rig.nvml.NVML_ERROR_UNKNOWN)

    def expect(self, phase: Phase) -> Expect:
        """At start the GPU cannot be opened; later its figure is partial."""
        if phase == "start":
            return Expect(
                warnings=("Unknown Error",), missing={GPU: "Unknown Error"}, unmeasured=True
            )
        return Expect(warnings=("gpu:0.*Unknown Error",), faulty={GPU: "NVML error: Unknown Error"})


class GpuLost(Fault):
    """The GPU falls off the bus: every NVML call on it raises ``NVMLError_GpuIsLost``."""

    name = "gpu-lost"

    def inject(self, rig: Rig, tracker: Tracker | None) -> None:
        """Let no further call on the GPU succeed."""
        rig.gpu.lost_after_reads = rig.gpu.reads

    def expect(self, phase: Phase) -> Expect:
        """At start the GPU cannot be listed; later its figure is partial."""
        if phase == "start":
            return Expect(warnings=("GPU is lost",), missing={GPU: "GPU is lost"}, unmeasured=True)
        return Expect(warnings=("gpu:0.*GPU is lost",), faulty={GPU: "GPU is lost"})


# -- RAPL -------------------------------------------------------------------------------------


def write_only_sysfs_file() -> Path | None:
    """A sysfs attribute with no read method: reading it fails with EACCES even for root.

    kernfs refuses to open such a file for reading whatever the caller's capabilities, so a
    counter linked to it gives a real kernel ``PermissionError`` (``chmod`` does not stop root).
    """
    for candidate in sorted(Path("/sys/bus").glob("*/uevent")):
        try:
            candidate.read_bytes()
        except PermissionError:
            return candidate
        except OSError:
            continue
    return None


class RaplVanished(Fault):
    """The package counter's ``energy_uj`` file disappears (a driver unloaded)."""

    name = "rapl-vanished"

    def inject(self, rig: Rig, tracker: Tracker | None) -> None:
        """Delete the package's counter file."""
        rig.frozen.add(PACKAGE_ZONE)
        rig.powercap.remove(PACKAGE_ZONE)

    def expect(self, phase: Phase) -> Expect:
        """At start the package is unavailable, the estimate stands in; later it is partial."""
        if phase == "start":
            return Expect(
                warnings=("energy_uj|RAPL|rapl",),
                missing={CPU: "energy_uj|RAPL|rapl"},
                estimated_cpu=True,
            )
        return Expect(
            warnings=("cannot read .*energy_uj",), faulty={CPU: "cannot read .*energy_uj"}
        )


class RaplPermissionDenied(Fault):
    """Reading the package counter fails with a real ``PermissionError`` from the kernel."""

    name = "rapl-permission-denied"

    def prepare(self, rig: Rig, phase: Phase) -> None:
        """Find a write-only sysfs file to stand in for the counter."""
        target = write_only_sysfs_file()
        if target is None:
            pytest.skip("no write-only sysfs attribute here to get EACCES from as root")
        self.target = target

    def inject(self, rig: Rig, tracker: Tracker | None) -> None:
        """Replace the counter file by a link to the unreadable sysfs file."""
        rig.frozen.add(PACKAGE_ZONE)
        path = rig.powercap.energy_path(PACKAGE_ZONE)
        link = path.with_name("energy_uj.denied")
        link.symlink_to(self.target)
        os.replace(link, path)

    def expect(self, phase: Phase) -> Expect:
        """At start: permission denied (with the fix), the estimate stands in; later partial."""
        if phase == "start":
            return Expect(
                warnings=("permission denied reading",),
                missing={CPU: "permission denied reading"},
                estimated_cpu=True,
            )
        return Expect(warnings=("Permission denied",), faulty={CPU: "Permission denied"})


class RaplBackwards(Fault):
    """The package counter drops to 0: too far for a wrap in the time since the last read."""

    name = "rapl-backwards"
    before_start = False

    def inject(self, rig: Rig, tracker: Tracker | None) -> None:
        """Reset the package counter."""
        rig.powercap.set_energy(PACKAGE_ZONE, 0)

    def expect(self, phase: Phase) -> Expect:
        """A reset: that interval counts 0 (never a wrap's worth), the channel is partial."""
        reason = "RAPL counter went backwards"
        return Expect(warnings=(reason,), faulty={CPU: "^" + reason})


class RaplStuck(Fault):
    """The package counter stops changing for longer than the stall limit (5 s)."""

    name = "rapl-stuck"

    def is_slow(self, phase: Phase) -> bool:
        """The stall limit is 5 s."""
        return True

    def inject(self, rig: Rig, tracker: Tracker | None) -> None:
        """Stop advancing the package counter."""
        rig.frozen.add(PACKAGE_ZONE)

    def observe(self, rig: Rig) -> None:
        """Hold the step past the stall limit, the other counters moving."""
        rig.idle(STALL_HOLD_S)

    def expect(self, phase: Phase) -> Expect:
        """One warning with a constant reason, the package figure partial."""
        reason = "RAPL counter has stopped changing"
        return Expect(warnings=(reason,), faulty={CPU: "^" + reason})


# -- carbon intensity -------------------------------------------------------------------------


@dataclass(frozen=True)
class GridFailure:
    """One way the grid API fails.

    Attributes:
        name: The id in test names.
        reason: Regex of the reason the warning gives.
        slow: A timeout: seconds through ``live=True`` (the client's 5 s read timeout, 7 s
            deadline), one or two through the quick provider.
    """

    name: str
    reason: str
    slow: bool = False


GRID_FAILURES = (
    GridFailure("http-500", "HTTP 500"),
    GridFailure("http-429", "HTTP 429"),
    GridFailure("http-401", "HTTP 401"),
    GridFailure("http-403", "HTTP 403"),
    GridFailure("malformed-json", "not valid JSON"),
    GridFailure("truncated-json", "truncated"),
    GridFailure("wrong-shape", "unexpected answer"),
    GridFailure("no-usable-data", "no usable data"),
    GridFailure("empty-body", "empty answer"),
    GridFailure("html", "HTML"),
    GridFailure("oversized", "larger than"),
    # a server gone mid-run may first drop the client's kept-alive connection: "failed"
    GridFailure("refused", "connection (refused|to .* failed)"),
    GridFailure("silent", "timed out", slow=True),
    GridFailure("trickle", "timed out", slow=True),
    GridFailure("stall", "timed out", slow=True),
)


class UkGrid:
    """A local UK Carbon Intensity API whose answers can turn bad while a run uses it.

    Args:
        server: The HTTP server to answer on (pytest-httpserver's, shared by the session); None
            starts one of its own, which ``stop`` can take away (a refused connection).
        deadline_s: The client's whole-request bound (connect + read timeouts): a hanging answer
            lasts a little longer, then ends, or ends at ``stop``.
    """

    def __init__(self, server: HTTPServer | None, deadline_s: float) -> None:
        self.mode = "ok"
        self._hang_s = deadline_s + 1.0
        self._closing = threading.Event()
        self._own = server is None
        self.server = (
            HTTPServer(host="127.0.0.1", port=0, threaded=True) if server is None else server
        )
        self.server.expect_request(re.compile("^/")).respond_with_handler(self._answer)
        if self._own:
            self.server.start()

    @property
    def url(self) -> str:
        """The API's base address."""
        return self.server.url_for("/")

    def stop(self) -> None:
        """End hanging answers; stop a server of its own (its port then refuses). Idempotent."""
        self._closing.set()
        if self._own and self.server.is_running():
            self.server.stop()

    def _answer(self, request: Request) -> Response:
        mode = self.mode
        if mode == "ok":
            now = time.time()
            start = now - now % 1800 - 7200
            slots = [(start + k * 1800, start + (k + 1) * 1800, LIVE_G, LIVE_G) for k in range(8)]
            return Response(json.dumps(national(*slots)), content_type="application/json")
        statuses = {"http-500": 500, "http-429": 429, "http-401": 401, "http-403": 403}
        if mode in statuses:
            headers = {"Retry-After": "1"} if mode == "http-429" else {}
            body = json.dumps({"error": {"message": f"test {mode}"}})
            return Response(body, statuses[mode], headers, content_type="application/json")
        bodies = {
            "malformed-json": '{"data": [oops]}',
            "truncated-json": '{"data": [{"from": "2024-05-01T1',
            "wrong-shape": '{"data": {"unexpected": true}}',
            "no-usable-data": '{"data": [{"from": "yesterday", "to": 5, "intensity": {}}]}',
            "empty-body": "",
            "html": "<html><body>Service Unavailable</body></html>",
        }
        if mode in bodies:
            return Response(bodies[mode], content_type="application/json")
        if mode == "silent":
            self._closing.wait(self._hang_s)
            return Response("", 504)
        streams = {"oversized": self._oversized, "trickle": self._trickle, "stall": self._stall}
        length = {"oversized": 2 * 1_048_576, "trickle": 9999, "stall": 100}[mode]
        return Response(
            streams[mode](),
            headers={"Content-Length": str(length)},
            content_type="application/json",
            direct_passthrough=True,
        )

    def _oversized(self) -> Iterator[bytes]:
        for _ in range(32):
            yield b" " * 65_536

    def _trickle(self) -> Iterator[bytes]:
        deadline = time.monotonic() + self._hang_s
        while time.monotonic() < deadline and not self._closing.wait(0.1):
            yield b" "

    def _stall(self) -> Iterator[bytes]:
        yield b'{"data": ['
        self._closing.wait(self._hang_s)


class LiveIntensityFailure(Fault):
    """The live grid API fails in one way.

    Failing from the start, through ``live=True`` for zone GB (the configuration users write):
    the yearly value covers the run. Timeouts, and failures mid-run or at the stop, go through a
    ``LiveIntensity`` given as ``intensity=``, with 1 s limits for the timeouts (the configured
    client waits up to 7 s) and a refresh every 50 ms (the configured one refreshes every 15
    minutes); healthy until a fault mid-run or at the stop, whose live figures fetched before
    still cover the run.
    """

    def __init__(self, failure: GridFailure) -> None:
        self.failure = failure
        self.name = f"intensity-{failure.name}"

    def is_slow(self, phase: Phase) -> bool:
        """Timeouts take seconds, however short the client's limits."""
        return self.failure.slow

    def prepare(self, rig: Rig, phase: Phase) -> None:
        """Serve the API locally; point a ``live=True`` tracker or a quick provider at it."""
        rig.options.pop("intensity_g_per_kwh")
        refused = self.failure.name == "refused"
        self.phase = phase
        # short limits for the timeouts; generous ones elsewhere, so a busy machine's slow answer
        # before the fault cannot be taken for it
        timeout = (1.0, 1.0) if self.failure.slow else (5.0, 5.0)
        self.grid = UkGrid(None if refused else rig.httpserver, sum(timeout))
        rig.on_close(self.grid.stop)
        self.provider: LiveIntensity | None = None
        if phase == "start":
            self.grid.mode = self.failure.name
        if phase == "start" and not self.failure.slow:
            url = f"http://127.0.0.1:{closed_port()}/" if refused else self.grid.url
            rig.monkeypatch.setenv(URL_ENV, url)
            rig.options |= {"zone": "GB", "live": True}
            return
        source = UkCarbonIntensity(environ={URL_ENV: self.grid.url}, timeout=timeout)
        fallback = IntensityValue(INTENSITY_G, "test yearly value", zone="GB", year=2024)
        self.provider = LiveIntensity(source, fallback, refresh_s=0.05, backoff_s=0.01, attempts=2)
        rig.options["intensity"] = self.provider

    def inject(self, rig: Rig, tracker: Tracker | None) -> None:
        """Turn the API bad mid-run, once the live figures have arrived (bad from the start)."""
        provider = self.provider
        if self.phase == "start" or provider is None:
            return
        if not rig.idle(10, lambda: provider.slot_at(time.time()) is not None):
            raise AssertionError(f"no live figures before the fault: {provider.last_error}")
        if self.failure.name == "refused":
            self.grid.stop()
        else:
            self.grid.mode = self.failure.name

    def observe(self, rig: Rig) -> None:
        """Wait until the fetch thread has met the fault and warned."""
        rig.wait_for_warning(f"live carbon intensity from {UK_API}", timeout_s=15)

    def expect(self, phase: Phase) -> Expect:
        """One warning naming the API and reason; CO2e from the fallback or the earlier data."""
        warning = f"live carbon intensity from {UK_API} .*unavailable: .*{self.failure.reason}"
        return Expect(warnings=(warning,), intensity="fallback" if phase == "start" else "live")


class FailingProvider:
    """A user's own provider (``intensity=``) that answers until armed, then fails.

    Args:
        kind: ``"raises"`` (a ``ConnectionError``) or ``"wrong-type"`` (a bare number instead of
            an ``IntensityValue``).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.armed = False

    def intensity(self, start_unix: float, end_unix: float) -> Any:
        """The constant test value, or the failure once armed."""
        if not self.armed:
            return IntensityValue(INTENSITY_G, "user provider", zone="SE")
        if self.kind == "raises":
            raise ConnectionError("the user's grid service is down")
        return INTENSITY_G


class ProviderFailure(Fault):
    """A custom intensity provider fails: CO2e is left out (never 0), with one warning."""

    def __init__(self, kind: str) -> None:
        self.name = f"provider-{kind}"
        self.kind = kind

    def prepare(self, rig: Rig, phase: Phase) -> None:
        """Give a new provider to the tracker."""
        self.provider = FailingProvider(self.kind)
        rig.options.pop("intensity_g_per_kwh")
        rig.options["intensity"] = self.provider

    def inject(self, rig: Rig, tracker: Tracker | None) -> None:
        """Arm the provider."""
        self.provider.armed = True

    def expect(self, phase: Phase) -> Expect:
        """One warning; the run's CO2e is unknown."""
        return Expect(warnings=("carbon intensity unavailable",), intensity="none")


# -- the run log ------------------------------------------------------------------------------

_LOG_OPENED_AT_START = "the run log is opened at start; its folder is not used again"
_LOG_WARNING = "run log"


def windows_before(phase: Phase) -> int:
    """Epoch windows a run has written before the step where a ``phase`` fault is injected."""
    return INJECT_STEP[phase] // STEPS_PER_EPOCH


class LogFolderUnwritable(Fault):
    """The run-log folder cannot be created: ``output_dir`` lies below a regular file."""

    name = "log-folder-unwritable"
    not_applicable = {"mid": _LOG_OPENED_AT_START, "stop": _LOG_OPENED_AT_START}  # noqa: RUF012

    def inject(self, rig: Rig, tracker: Tracker | None) -> None:
        """Point ``output_dir`` below a file (ENOTDIR, which stops root too)."""
        blocker = rig.workdir / "not-a-folder"
        blocker.write_text("")
        rig.options["output_dir"] = blocker / "runs"

    def expect(self, phase: Phase) -> Expect:
        """One warning, no log, measurement unharmed."""
        return Expect(warnings=(_LOG_WARNING,), log="unwritable")


def open_descriptor(path: Path) -> int:
    """The file descriptor this process has open on ``path`` (from ``/proc/self/fd``)."""
    target = os.path.realpath(path)
    for entry in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/self/fd/{entry}") == target:
                return int(entry)
    raise AssertionError(f"{path} is not open in this process")


class DiskFull(Fault):
    """Every write to the run log fails with the kernel's ENOSPC (its descriptor now /dev/full)."""

    name = "disk-full"
    before_start = False

    def inject(self, rig: Rig, tracker: Tracker | None) -> None:
        """Put ``/dev/full`` under the run log's open descriptor."""
        assert tracker is not None and tracker.log_path is not None
        descriptor = open_descriptor(tracker.log_path)
        full = os.open("/dev/full", os.O_WRONLY)
        try:
            os.dup2(full, descriptor)
        finally:
            os.close(full)

    def expect(self, phase: Phase) -> Expect:
        """One warning; the log stops where the disk filled up."""
        return Expect(warnings=(_LOG_WARNING,), log="stopped", windows_before=windows_before(phase))


class LogDeleted(Fault):
    """The run log is deleted while the run goes on (a clean-up script)."""

    name = "log-deleted"
    before_start = False

    def inject(self, rig: Rig, tracker: Tracker | None) -> None:
        """Unlink the open run log."""
        assert tracker is not None and tracker.log_path is not None
        tracker.log_path.unlink()

    def expect(self, phase: Phase) -> Expect:
        """One warning; the log starts again with a header and ends with the summary."""
        return Expect(
            warnings=(_LOG_WARNING,), log="restarted", windows_before=windows_before(phase)
        )


FAULTS: tuple[Fault, ...] = (
    NvmlInitFailure("NVML_ERROR_NO_PERMISSION", "no permission to use NVML", gpu_hidden=True),
    NvmlInitFailure("NVML_ERROR_LIB_RM_VERSION_MISMATCH", "versions differ", gpu_hidden=True),
    NvmlInitFailure("NVML_ERROR_DRIVER_NOT_LOADED", "driver is not loaded", gpu_hidden=False),
    NvmlReadError(),
    GpuLost(),
    RaplVanished(),
    RaplPermissionDenied(),
    RaplBackwards(),
    RaplStuck(),
    *(LiveIntensityFailure(failure) for failure in GRID_FAILURES),
    ProviderFailure("raises"),
    ProviderFailure("wrong-type"),
    LogFolderUnwritable(),
    DiskFull(),
    LogDeleted(),
)
"""Every fault. A fault keeps per-case state (servers, providers) only from ``prepare`` on."""


# -- frontends --------------------------------------------------------------------------------

StepHook = Callable[[int, "Tracker | None"], None]
"""Called at every training step, before our callback's hook: (step index, the run's tracker)."""


@dataclass
class Outcome:
    """What a training run left.

    Attributes:
        weights: The trained parameters, to compare with a run without the callback.
        steps: Optimizer steps the framework ran.
        tracker: The run's tracker (None without the callback).
        final_metrics: The callback's final ``carbon/*`` totals (``monitor.final_metrics``),
            taken from the stop's own read.
        printed: Everything the run printed or logged through Lightning's info logger.
        logged_metrics: The ``carbon/*`` metrics of the framework's last log entry (Keras's
            last epoch, the Trainer's last ``log_history`` entry with them): read at the last
            epoch end, a moment before the stop.
    """

    weights: list[Any]
    steps: int
    tracker: Tracker | None = None
    final_metrics: dict[str, float] | None = None
    printed: str = ""
    logged_metrics: dict[str, float] | None = None


class Frontend(ABC):
    """A way to train with carbon-callbacks measuring: the plain tracker or a callback.

    Attributes:
        name: The id in test names.
        prints_summary: The run prints a summary at the end (the callbacks do).
    """

    name = ""
    prints_summary = True

    @abstractmethod
    def run(self, options: dict[str, Any] | None, on_step: StepHook, workdir: Path) -> Outcome:
        """Train ``EPOCHS`` x ``STEPS_PER_EPOCH`` steps; measure with ``options`` (None: no
        measurement at all, the baseline). ``on_step`` runs at each step before our hook."""


@contextlib.contextmanager
def captured_output() -> Iterator[io.StringIO]:
    """Collect stdout, stderr and Lightning's info log (where its callback shows the summary).

    ``rank_zero_info`` writes to ``lightning_utilities.core.rank_zero.log``, a logger that each
    Lightning package renames on import: ``pytorch_lightning.*`` once the standalone package has
    been imported in this process, ``lightning.pytorch.*`` otherwise. The handler goes on that one.
    """
    import lightning_utilities.core.rank_zero as rank_zero_module

    sink = io.StringIO()
    handler = logging.StreamHandler(sink)
    logger = rank_zero_module.log
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            yield sink
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def regression_data() -> tuple[Any, Any]:
    """``TOTAL`` samples of 4 features and a linear target, the same for every frontend."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((STEPS_PER_EPOCH * BATCH, 4)).astype("float32")
    y = (x @ np.array([[1.0], [-2.0], [0.5], [3.0]], dtype="float32") + 0.25).astype("float32")
    return x, y


class PlainTracker(Frontend):
    """A hand-written loop: SGD on a linear model in NumPy, a window per epoch, ``step()``."""

    name = "plain"
    prints_summary = False

    def run(self, options: dict[str, Any] | None, on_step: StepHook, workdir: Path) -> Outcome:
        """Train, with the tracker as a context manager around the loop."""
        if options is None:
            weights, steps = self._train(None, on_step)
            return Outcome(weights, steps)
        with Tracker(**options) as tracker:
            weights, steps = self._train(tracker, on_step)
        return Outcome(weights, steps, tracker)

    @staticmethod
    def _train(tracker: Tracker | None, on_step: StepHook) -> tuple[list[Any], int]:
        x, y = regression_data()
        w: Any = np.zeros((4, 1), dtype="float64")
        b = 0.0
        step = 0
        for epoch in range(EPOCHS):
            if tracker is not None:
                tracker.begin_window(f"epoch {epoch}")
            for batch in range(STEPS_PER_EPOCH):
                on_step(step, tracker)
                rows = slice(batch * BATCH, (batch + 1) * BATCH)
                xb, yb = x[rows], y[rows]
                error_ = xb @ w + b - yb
                w = w - 0.05 * (2 * xb.T @ error_ / BATCH)
                b = b - 0.05 * float(2 * error_.mean())
                if tracker is not None:
                    tracker.step()
                step += 1
            if tracker is not None:
                tracker.end_window(f"epoch {epoch}")
        return [w, np.array([b])], step


class LightningFrontend(Frontend):
    """``lightning.pytorch.Trainer`` on CPU, a linear model, no logger, checkpoint or bar."""

    name = "lightning"

    def run(self, options: dict[str, Any] | None, on_step: StepHook, workdir: Path) -> Outcome:
        """Fit 2 epochs with a step hook before our callback."""
        import lightning as L
        import torch
        from torch.utils.data import DataLoader, TensorDataset

        from carbon_callbacks.lightning import CarbonCallback

        x, y = regression_data()
        loader = DataLoader(
            TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), batch_size=BATCH
        )

        class Linear(L.LightningModule):
            def __init__(self) -> None:
                super().__init__()
                self.layer = torch.nn.Linear(4, 1)

            def training_step(self, batch: Any, batch_idx: int) -> Any:
                xb, yb = batch
                return torch.nn.functional.mse_loss(self.layer(xb), yb)

            def configure_optimizers(self) -> Any:
                return torch.optim.SGD(self.parameters(), lr=0.05)

        carbon = CarbonCallback(**options) if options is not None else None

        class StepHookCallback(L.Callback):
            def on_train_batch_start(self, trainer: Any, *args: Any) -> None:
                on_step(trainer.global_step, carbon.monitor.tracker if carbon else None)

        torch.manual_seed(0)
        model = Linear()
        trainer = L.Trainer(
            max_epochs=EPOCHS,
            accelerator="cpu",
            devices=1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            callbacks=[StepHookCallback(), *([carbon] if carbon else [])],
        )
        with captured_output() as printed:
            trainer.fit(model, train_dataloaders=loader)
        return Outcome(
            [p.detach().numpy().copy() for p in model.parameters()],
            trainer.global_step,
            carbon.monitor.tracker if carbon else None,
            dict(carbon.monitor.final_metrics) if carbon else None,
            printed.getvalue(),
        )


class KerasFrontend(Frontend):
    """Keras 3 ``model.fit`` on the torch backend, a linear model, no shuffling."""

    name = "keras"

    def run(self, options: dict[str, Any] | None, on_step: StepHook, workdir: Path) -> Outcome:
        """Fit 2 epochs with a step hook before our callback and a log recorder after it."""
        os.environ.setdefault("KERAS_BACKEND", "torch")
        import keras

        from carbon_callbacks.keras import CarbonCallback

        # every metric: the matrix reads the partial flag from the epoch logs, which the default
        # set (the few a person watches in the progress bar) leaves out
        carbon = CarbonCallback(**options, metrics="all") if options is not None else None

        def tracker() -> Tracker | None:
            # the Keras callback keeps its monitor private; the harness only reads its tracker
            return carbon.monitor.tracker if carbon is not None else None

        class StepHookCallback(keras.callbacks.Callback):
            """Begin hooks only: Keras calls them synchronously, in list order."""

            def __init__(self) -> None:
                super().__init__()
                self.step = 0

            def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
                on_step(self.step, tracker())
                self.step += 1

        class LastEpochLogs(keras.callbacks.Callback):
            """After ours: the last epoch's logs, our metrics included."""

            logs: dict[str, float] = {}  # noqa: RUF012

            def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                self.logs = dict(logs or {})

        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05), loss="mse")
        hook, last = StepHookCallback(), LastEpochLogs()
        with captured_output() as printed:
            model.fit(
                *regression_data(),
                batch_size=BATCH,
                epochs=EPOCHS,
                shuffle=False,
                verbose=0,
                callbacks=[hook, *([carbon] if carbon else []), last],
            )
        logged = {k: float(v) for k, v in last.logs.items() if k.startswith("carbon/")}
        return Outcome(
            [np.array(w) for w in model.get_weights()],
            hook.step,
            tracker(),
            dict(carbon.monitor.final_metrics) if carbon else None,
            printed.getvalue(),
            logged if carbon else None,
        )


class TransformersFrontend(Frontend):
    """A Hugging Face ``Trainer`` on CPU training a tiny ``torch.nn.Module`` that returns a loss."""

    name = "transformers"

    def run(self, options: dict[str, Any] | None, on_step: StepHook, workdir: Path) -> Outcome:
        """Train 2 epochs with a step hook before our callback."""
        import torch
        from transformers import Trainer, TrainerCallback, TrainingArguments

        from carbon_callbacks.transformers import CarbonCallback

        class Linear(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.layer = torch.nn.Linear(4, 1)

            def forward(self, x: Any, labels: Any = None) -> dict[str, Any]:
                out = self.layer(x)
                return {"loss": torch.nn.functional.mse_loss(out, labels), "logits": out}

        x, y = regression_data()
        dataset = [
            {"x": torch.from_numpy(a), "labels": torch.from_numpy(b)}
            for a, b in zip(x, y, strict=True)
        ]
        carbon = CarbonCallback(**options) if options is not None else None

        def tracker() -> Tracker | None:
            # the callback keeps its monitor private; the harness only reads its tracker
            return carbon.monitor.tracker if carbon is not None else None

        class StepHookCallback(TrainerCallback):
            def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                on_step(state.global_step, tracker())

        torch.manual_seed(0)
        args = TrainingArguments(
            output_dir=str(workdir / "hf"),
            num_train_epochs=EPOCHS,
            per_device_train_batch_size=BATCH,
            learning_rate=0.05,
            use_cpu=True,
            report_to=[],
            save_strategy="no",
            logging_strategy="no",
            disable_tqdm=True,
            dataloader_num_workers=0,
            seed=0,
        )
        trainer = Trainer(
            model=Linear(),
            args=args,
            train_dataset=dataset,
            callbacks=[StepHookCallback(), *([carbon] if carbon else [])],
        )
        with captured_output() as printed:
            trainer.train()
        last: dict[str, Any] = next(
            (e for e in reversed(trainer.state.log_history) if "carbon/energy_kwh" in e), {}
        )
        return Outcome(
            [p.detach().numpy().copy() for p in trainer.model.parameters()],
            trainer.state.global_step,
            tracker(),
            dict(carbon.monitor.final_metrics) if carbon else None,
            printed.getvalue(),
            {k: float(v) for k, v in last.items() if k.startswith("carbon/")} if carbon else None,
        )


FRONTENDS: tuple[Frontend, ...] = (
    PlainTracker(),
    LightningFrontend(),
    KerasFrontend(),
    TransformersFrontend(),
)


# -- one case ---------------------------------------------------------------------------------


@dataclass
class Case:
    """A finished case: the run's outcome and the warnings it gave."""

    outcome: Outcome
    warnings: list[str]


def run_case(frontend: Frontend, fault: Fault, phase: Phase, rig: Rig) -> Case:
    """Train with ``frontend`` while ``fault`` strikes at ``phase``; record every warning."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rig.caught = caught
        fault.prepare(rig, phase)
        at_step = None if phase == "start" and fault.before_start else INJECT_STEP[phase]
        if at_step is None:
            fault.inject(rig, None)

        def on_step(step: int, tracker: Tracker | None) -> None:
            if tracker is not None and tracker not in rig.trackers:
                rig.trackers.append(tracker)
            if step == at_step:
                fault.inject(rig, tracker)
            rig.burn()
            if step == (0 if at_step is None else at_step):
                fault.observe(rig)

        outcome = frontend.run(rig.options, on_step, rig.workdir)
        found = rig.carbon_warnings()
    return Case(outcome, found)


def lingering_threads() -> list[str]:
    """carbon-callbacks threads still alive after waiting ``THREAD_END_S`` for each to end."""
    deadline = time.monotonic() + THREAD_END_S
    for thread in threading.enumerate():
        if thread.name.startswith("carbon-callbacks"):
            thread.join(max(deadline - time.monotonic(), 0.0))
    return [t.name for t in threading.enumerate() if t.name.startswith("carbon-callbacks")]
