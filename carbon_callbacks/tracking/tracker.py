"""The tracker: the framework-neutral measurement session every adapter and script uses.

```python
with Tracker(country="SE") as tracker:
    for epoch in range(3):
        tracker.begin_window(f"epoch {epoch}")
        for batch in data:
            train_step(batch)
            tracker.step()
        print(tracker.end_window(f"epoch {epoch}").energy_kwh)
print(tracker.summary)
```

Window boundaries take an exact, synchronous read of every meter; ``step`` only bumps a counter and
a timestamp; ``energy_between`` answers for any past interval from the sampler's timeline. CO2e is
the sum over the window's pieces of energy x the intensity valid for that piece (pieces split where
a live intensity series changes). Problems while measuring, fetching or writing the log warn once
and never raise into the caller.
"""

from __future__ import annotations

import os
import time
from collections.abc import Hashable, Mapping, Sequence
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from carbon_callbacks._internal.warnings import WarnOnce
from carbon_callbacks.intensity.base import IntensityProvider, IntensityValue
from carbon_callbacks.intensity.live import LiveIntensity
from carbon_callbacks.intensity.located import CloudLocated
from carbon_callbacks.intensity.resolve import (
    IntensitySettings,
    provider_for,
    resolve,
)
from carbon_callbacks.intensity.resolve import (
    intensity_settings as merged_settings,
)
from carbon_callbacks.meters.base import Channel, Meter, Unavailable
from carbon_callbacks.meters.defaults import default_meters
from carbon_callbacks.runlog.writer import RunLogWriter
from carbon_callbacks.tracking import launcher, lifetime, run_record, windows
from carbon_callbacks.tracking import sampler as sampling
from carbon_callbacks.tracking.checks import (
    checked_pids,
    checked_provider,
    checked_settings,
    checked_value,
    describe_unavailable,
    new_run_id,
)
from carbon_callbacks.tracking.config import resolve_config
from carbon_callbacks.tracking.launcher import RankInfo
from carbon_callbacks.tracking.lifetime import RunStatus
from carbon_callbacks.tracking.measurement import Measurement
from carbon_callbacks.tracking.progress import RunProgress
from carbon_callbacks.tracking.sampler import NO_COUNTS, Counts, Sample, Sampler
from carbon_callbacks.tracking.windows import Mark, channel_energies, window_intensity

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from carbon_callbacks.intensity.schedule import Choice
    from carbon_callbacks.intensity.settings import IntensityOptions

__all__ = ["RUN_WINDOW", "RankInfo", "RunStatus", "Tracker", "new_run_id"]

RUN_WINDOW = "run"


class Tracker:
    """Measures the energy (and, given an intensity, the CO2e) of a run and of windows inside it.

    Args:
        gpu_ids: GPU indices or UUIDs to measure; default: those this process sees (a rank's GPU).
        interval_s: Sampler polling interval in seconds (default 0.1).
        pue: Data-centre power usage effectiveness, >= 1.0 (default 1.0: no overhead counted).
        intensity_g_per_kwh: A constant carbon intensity that overrides every other source.
            It and the location options up to ``electricitymaps_token`` are the fields of
            ``IntensitySettings`` (``carbon_callbacks.intensity.settings``), merged with their
            ``CARBON_CALLBACKS_*`` variables.
        country: ISO 3166 alpha-2 or alpha-3 code (or English name) of where the run uses power.
        zone: A grid zone (Electricity Maps names: ``"DK-DK1"``, ``"GB"``, ``"US-CAL-CISO"``).
        cloud: ``"gcp"``, ``"aws"`` or ``"azure"``, with ``region``.
        region: The cloud region, e.g. ``"eu-north-1"``.
        uk_postcode: Outward UK postcode for regional live UK data.
        live: Use live grid data for the zone (UK, Denmark, or any zone with an Electricity Maps
            token); the yearly value covers any gap.
        electricitymaps_token: Electricity Maps API token (default ``ELECTRICITYMAPS_API_TOKEN``).
        intensity_settings: The location and intensity options as one object, already merged
            and checked by ``carbon_callbacks.intensity.resolve.intensity_settings`` (as the
            command line builds them), instead of the keyword options above.
        intensity: A custom ``IntensityProvider`` used instead of the resolution above.
        cpu_watts: Watts per busy core for the CPU estimate (used only without RAPL); default:
            the CPU's TDP / cores from the embedded CPU table, else 12.
        output_dir: Folder for the JSONL run log (default ``carbon-runs``).
        write_log: False writes no run log.
        run_name: Label stored in the run log.
        powercap_root: Root of the powercap sysfs tree (default: the standard locations).
        meters: Meters to use instead of the default NVML + RAPL/estimate set.
        rank: Where this process sits in a distributed run (``RankInfo``), overriding what the
            launcher's environment says (``RANK``/``WORLD_SIZE``, ``srun``, MPI: see
            ``tracking.launcher``); ``RankInfo()`` is a single process. Local rank 0 measures the
            host, every rank its own process tree and GPU (``meters.visible``); ranks share an id.
        measure_host: Whether to measure the host-level channels (RAPL CPU packages and DRAM: the
            whole socket); default: on local rank 0 only. The CPU estimate, which covers this
            process tree alone, is measured either way.
        exclude_pids: Processes (with their descendants) the CPU estimate leaves out: the other
            ranks of a distributed run, which measure themselves.
        run_id: The run's id (default: ``<UTC time>-<6 hex digits>``, new, or for a rank derived
            from the launcher's job identity, alike on every rank); letters, digits, ``.``, ``_``
            and ``-`` only. A rank's log file is ``<run_id>-rank<global rank>.jsonl``.
        context: JSON-ready facts stored in the run log's header and summary (e.g. the rank,
            world size and node count of a distributed run).
        handle_sigterm: While running, close the run as ``"interrupted"`` when SIGTERM arrives
            (then the signal goes on to the handler before, or ends the process as by default).
            False leaves SIGTERM alone, for frameworks that handle it (Lightning does).

    Raises:
        ValueError, TypeError: A setting is invalid; the message says what to write instead.
    """

    def __init__(
        self,
        *,
        gpu_ids: Sequence[int | str] | None = None,
        interval_s: float | None = None,
        pue: float | None = None,
        intensity_settings: IntensitySettings | None = None,
        intensity: IntensityProvider | None = None,
        cpu_watts: float | None = None,
        output_dir: str | os.PathLike[str] | None = None,
        write_log: bool | None = None,
        run_name: str | None = None,
        powercap_root: str | os.PathLike[str] | None = None,
        meters: Sequence[Meter] | None = None,
        rank: RankInfo | None = None,
        measure_host: bool | None = None,
        exclude_pids: Sequence[int] = (),
        run_id: str | None = None,
        context: Mapping[str, object] | None = None,
        handle_sigterm: bool = True,
        **location: Unpack[IntensityOptions],
    ) -> None:
        settings = checked_settings(intensity_settings, location)
        self._warn_once = WarnOnce()
        roles = launcher.roles_for(
            rank, gpu_ids, measure_host, run_id=run_id, context=context, warn=self._warn_once
        )
        self.config = resolve_config(
            interval_s=interval_s,
            pue=pue,
            cpu_watts=cpu_watts,
            output_dir=output_dir,
            write_log=write_log,
            gpu_ids=roles.gpu_ids,
            powercap_root=powercap_root,
            run_name=run_name,
            intensity=settings or merged_settings(**location),
        )
        settings = self.config.intensity
        if intensity is not None and (settings.g_per_kwh is not None or settings.live):
            raise ValueError(
                "intensity= (a provider) replaces intensity_g_per_kwh= and live=; give only one"
            )
        self._intensity = (
            checked_provider(intensity)
            if intensity is not None
            else provider_for(resolve(settings))
        )
        self._meters = list(meters) if meters is not None else None
        self.rank, self._measure_host = roles.rank, roles.measure_host
        self._gpu_position = roles.gpu_position
        self._exclude_pids = checked_pids(exclude_pids)
        self._handle_sigterm = handle_sigterm
        self.context, self.run_id = roles.context, roles.run_id
        self._sampler: Sampler | None = None
        self._sampler_key: Hashable | None = None
        self._step_slot = 0
        self._writer: RunLogWriter | None = None
        self._progress: RunProgress | None = None
        self._windows: dict[str, Mark] = {}
        self._run_mark: Mark | None = None
        self._summary: Measurement | None = None
        self._unmeasured: tuple[str, ...] = ()
        self._owner_pid = os.getpid()
        self._counts: Counts = NO_COUNTS
        self._last_step_ns = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Tracker:
        """Open the meters, start the sampler and write the run-log header. Idempotent."""
        if self._sampler is not None or not self._is_owner():
            return self
        self._sampler_key = self._shared_sampler_key()
        self._sampler, self._step_slot = sampling.attach(
            self._sampler_key, self._new_sampler, lambda: self._counts
        )
        lifetime.opened(self)
        for item in self._sampler.unavailable:
            if item.degrades:
                self._warn_once(
                    f"unavailable:{item.source}:{item.reason}", describe_unavailable(item)
                )
        self._unmeasured = tuple(
            f"{item.source}: {item.reason}" for item in self._sampler.unavailable if item.unmeasured
        )
        self._run_mark = self._mark(self._sampler.sample())  # exact, also on a shared sampler
        if isinstance(self._intensity, LiveIntensity | CloudLocated):
            self._intensity.start()  # in the background: the first read is taken already
        if self.config.output_dir is not None:
            self._writer = RunLogWriter(self.config.output_dir.absolute() / self._log_file_name())
            self._writer.write(
                run_record.header_record(
                    run_id=self.run_id,
                    started_unix=self._run_mark.unix,
                    channels=self._sampler.channels,
                    unavailable=self._sampler.unavailable,
                    interval_s=self._sampler.interval_s,
                    config=self.config,
                    intensity=run_record.describe_intensity(self._intensity),
                    context=self.context,
                )
            )
            self._progress = RunProgress(
                writer=self._writer,
                sampler=self._sampler,
                run_mark=self._run_mark,
                step_slot=self._step_slot,
                run_id=self.run_id,
                measure=partial(self._measure, "so far", self._run_mark),
                mark=self._mark,
                provider=self._intensity,
            )
            self._sampler.listen(self._step_slot, self._progress.offer)  # checkpoints
        return self

    def stop(self, status: RunStatus = "completed") -> Measurement | None:
        """Take a last exact read, write the summary, stop the sampler and return the run's figures.

        Idempotent: later calls return the same summary. Returns None if the tracker was never
        started, or in a forked child (the parent owns the run).
        """
        if self._summary is not None or self._sampler is None or not self._is_owner():
            return self._summary
        lifetime.stopping(self)
        sampler = self._sampler
        assert self._run_mark is not None
        end = self._mark(sampler.sample())
        if isinstance(self._intensity, CloudLocated):
            self._intensity.settle()  # waits only in a run shorter than the lookup's deadline
        self._summary = self._measure(RUN_WINDOW, self._run_mark, end)
        sampling.detach(self._sampler_key, sampler, self._step_slot)
        lifetime.stopped(self)
        if isinstance(self._intensity, LiveIntensity):
            self._intensity.stop()
        if self._progress is not None:
            self._progress.close()  # the last samples; no checkpoint after the summary
        if self._writer is not None:
            self._writer.write(
                {"type": "summary", "status": status, "run_id": self.run_id}
                | self._summary.to_dict()
                | ({"context": self.context} if self.context else {})
            )
            self._writer.close()
        return self._summary

    def __enter__(self) -> Tracker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.stop("completed")
        elif issubclass(exc_type, KeyboardInterrupt):
            self.stop("interrupted")
        else:
            self.stop("failed")

    # -- hot path ----------------------------------------------------------------------------

    def step(self, count: int = 1, *, samples: int = 0, tokens: int = 0) -> None:
        """Record ``count`` finished steps and the samples and tokens they processed; no I/O."""
        steps_done, samples_done, tokens_done = self._counts  # replaced whole: the sampler
        self._counts = (steps_done + count, samples_done + samples, tokens_done + tokens)
        self._last_step_ns = time.monotonic_ns()

    # -- windows -----------------------------------------------------------------------------

    def begin_window(self, name: str) -> None:
        """Open the window ``name`` with an exact read.

        Opening a name that is already open (no ``end_window`` in between) warns once, naming the
        window, and restarts it from now: a missing ``end_window`` is usually a caller's bug.
        """
        if self._sampler is None or self._summary is not None or not self._is_owner():
            return
        if name in self._windows:
            self._warn_once(
                f"window-reopened:{name}",
                f"begin_window({name!r}) was called again without end_window({name!r}): the "
                "window restarts now and what it measured so far is dropped; call "
                f"end_window({name!r}) before opening it again",
            )
        self._windows[name] = self._mark(self._sampler.sample())

    def end_window(self, name: str) -> Measurement | None:
        """Close the window ``name`` with an exact read, log it, and return its figures.

        Returns None when the tracker is not running (never started, stopped, forked child).

        Raises:
            ValueError: No window of that name is open: a programming error in the caller.
        """
        if self._sampler is None or self._summary is not None or not self._is_owner():
            return None
        start = self._windows.pop(name, None)
        if start is None:
            open_names = ", ".join(repr(n) for n in self._windows) or "none"
            raise ValueError(
                f"no open window named {name!r} (open: {open_names}); call begin_window(name) first"
            )
        end = self._mark(self._sampler.sample())
        measurement = self._measure(name, start, end)
        if self._progress is not None:
            self._progress.window_ended(measurement, end)  # samples, the window, a checkpoint
        return measurement

    def energy_between(
        self, start_ns: int, end_ns: int, name: str = "interval"
    ) -> Measurement | None:
        """Figures for a past interval of ``time.monotonic_ns`` times, interpolated between samples.

        No meter is read. Returns None when the interval is not inside the retained timeline.
        """
        if self._sampler is None or end_ns < start_ns:
            return None
        start = self._sampler.joules_at(start_ns)
        end = self._sampler.joules_at(end_ns)
        if start is None or end is None:
            return None
        now_unix, now_ns = time.time(), time.monotonic_ns()
        return self._measure(
            name,
            Mark(Sample(start_ns, start), now_unix - (now_ns - start_ns) / 1e9, None),
            Mark(Sample(end_ns, end), now_unix - (now_ns - end_ns) / 1e9, None),
        )

    def so_far(self, *, exact: bool = False, name: str = "so far") -> Measurement | None:
        """The run's figures from ``start`` until now, all of one sample (its time and counts).

        Args:
            exact: Read every meter now (a window boundary's cost); False answers from the latest
                sample and reads nothing, cheap enough for step-level logging.
            name: The name given to the returned measurement.

        Returns:
            None when the tracker is not running.
        """
        if self._sampler is None or self._summary is not None or not self._is_owner():
            return None
        assert self._run_mark is not None
        sample = self._sampler.sample() if exact else self._sampler.latest()
        return self._measure(name, self._run_mark, self._mark(sample))

    def step_timeline(self) -> list[tuple[float, int, float | None]]:
        """(seconds since start, steps done, joules so far) through the run, for prediction.

        Dense for the recent past, sparser further back; joules are device joules (before PUE)
        over the channels with a figure, None where none had one.
        """
        if self._sampler is None or self._run_mark is None:
            return []
        return windows.step_timeline(self._sampler.history(), self._run_mark, self._step_slot)

    def intensity_ahead(self, seconds: float) -> IntensityValue | None:
        """The intensity expected over the next ``seconds`` (a live forecast where there is one)."""
        now = time.time()
        try:
            return checked_value(self._intensity.intensity(now, now + max(seconds, 0.0)))
        except Exception:  # a provider fault: the prediction goes without CO2e
            return None

    def cleanest_start(self, duration_s: float, within_s: float) -> Choice | None:
        """The start up to ``within_s`` after this run's with the lowest live forecast mean.

        Over a run of ``duration_s``, from the slots fetched so far (no request); None without a
        live forecast covering such a run (``live_forecast_known`` tells whether one has come).
        """
        if not isinstance(self._intensity, LiveIntensity) or self._run_mark is None:
            return None
        return self._intensity.cleanest_start(self._run_mark.unix, duration_s, within_s)

    @property
    def live_forecast_known(self) -> bool:
        """True once the live intensity source has fetched a forecast (False without one)."""
        return isinstance(self._intensity, LiveIntensity) and self._intensity.has_forecast

    def record(self, kind: str, fields: Mapping[str, object]) -> None:
        """Append a record of type ``kind`` (e.g. ``"prediction"``) to the run log, if one is kept.

        Args:
            kind: The record's ``type``; ``read_run_log`` files the types it knows.
            fields: JSON-ready fields; ``run_id`` and ``t_unix`` are added.
        """
        if self._writer is not None and self._summary is None and self._is_owner():
            self._writer.write(
                {"type": kind, "run_id": self.run_id, "t_unix": time.time()} | dict(fields)
            )

    # -- state -------------------------------------------------------------------------------

    @property
    def handles_sigterm(self) -> bool:
        """True when SIGTERM closes the run as ``"interrupted"`` (``handle_sigterm=``)."""
        return self._handle_sigterm

    @property
    def steps(self) -> int:
        """Steps recorded so far."""
        return self._counts[0]

    @property
    def started_ns(self) -> int | None:
        """``time.monotonic_ns()`` of the run's first sample, None before ``start``."""
        return None if self._run_mark is None else self._run_mark.sample.t_ns

    @property
    def last_step_ns(self) -> int:
        """``time.monotonic_ns()`` of the latest ``step`` call, 0 before the first."""
        return self._last_step_ns

    @property
    def channels(self) -> tuple[Channel, ...]:
        """What is being measured (empty before ``start``)."""
        return self._sampler.channels if self._sampler is not None else ()

    @property
    def unavailable(self) -> list[Unavailable]:
        """Sources found but not usable, with the reason and fix (empty before ``start``)."""
        return self._sampler.unavailable if self._sampler is not None else []

    @property
    def is_running(self) -> bool:
        """True between ``start`` and ``stop`` in the process that started it."""
        return self._sampler is not None and self._summary is None and self._is_owner()

    @property
    def summary(self) -> Measurement | None:
        """The whole run's figures once stopped, else None."""
        return self._summary

    @property
    def log_problem(self) -> str | None:
        """What went wrong with the run log (a failed write, a deleted file), or None."""
        return self._writer.problem if self._writer is not None else None

    @property
    def log_path(self) -> Path | None:
        """The run log being written, or None when logging is off or not started."""
        return self._writer.path if self._writer is not None else None

    # -- internals ---------------------------------------------------------------------------

    def _is_owner(self) -> bool:
        return os.getpid() == self._owner_pid

    def _shared_sampler_key(self) -> Hashable | None:
        """What the default meters measure: trackers with the same key share one sampler."""
        if self._meters is not None:
            return None  # meters of its own: a sampler of its own
        config = self.config
        return (
            config.gpu_ids,
            self._gpu_position,
            self._measure_host,
            self._exclude_pids,
            config.powercap_root,
            config.cpu_watts,
            config.interval_s,
        )

    def _log_file_name(self) -> str:
        """``<run_id>.jsonl``; ``<run_id>-rank<N>.jsonl`` for a rank, whose id others share."""
        rank = self.context.get("distributed")
        global_rank = rank.get("global_rank") if isinstance(rank, Mapping) else None
        if isinstance(global_rank, int) and not isinstance(global_rank, bool):
            return f"{self.run_id}-rank{global_rank}.jsonl"
        return f"{self.run_id}.jsonl"

    def _new_sampler(self) -> Sampler:
        meters = (
            self._meters
            if self._meters is not None
            else default_meters(
                gpu_ids=self.config.gpu_ids,
                powercap_root=self.config.powercap_root,
                cpu_watts=self.config.cpu_watts,
                measure_host=self._measure_host,
                exclude_pids=self._exclude_pids,
                visible_position=self._gpu_position,
            )
        )
        return Sampler(meters, interval_s=self.config.interval_s)

    def _mark(self, sample: Sample) -> Mark:
        """A boundary at ``sample`` with its own counts (not the live ones: those came later)."""
        unix = time.time() - (time.monotonic_ns() - sample.t_ns) / 1e9
        return Mark(sample, unix, sample.counts_of(self._step_slot))

    def _measure(self, name: str, start: Mark, end: Mark, co2e: bool = True) -> Measurement:
        assert self._sampler is not None
        faults = self._sampler.faults_between(start.sample.t_ns, end.sample.t_ns)
        steps, samples, tokens = windows.counted_between(start, end)
        return Measurement(
            name=name,
            start_unix=start.unix,
            duration_s=(end.sample.t_ns - start.sample.t_ns) / 1e9,
            channels=channel_energies(self._sampler.channels, start.sample, end.sample, faults),
            pue=self.config.pue,
            steps=steps,
            samples=samples,  # for the monitor's per-sample figures
            tokens=tokens,
            intensity=self._intensity_for(start, end) if co2e else None,
            unmeasured=self._unmeasured,
        )

    def _intensity_for(self, start: Mark, end: Mark) -> IntensityValue | None:
        """The window's energy-weighted mean intensity; None (warned once) on a provider fault."""
        assert self._sampler is not None
        try:
            return window_intensity(self._intensity, start, end, self._sampler)
        except Exception as error:  # a provider fault must not reach the training loop
            self._warn_once(
                f"intensity:{type(error).__name__}",
                f"carbon-callbacks: carbon intensity unavailable ({error}); CO2e is left out.",
            )
            return None
