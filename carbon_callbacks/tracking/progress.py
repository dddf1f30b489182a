"""What a running tracker appends to its run log between its header and its summary.

- ``samples`` records (power over time, for plots), about one a second, written at window ends
  and at the stop;
- ``window`` records, one for each window closed;
- ``checkpoint`` records: the run's figures so far (each channel's joules since the start, the
  time, the steps and the CO2e). A process killed outright (SIGKILL: Ray ending the other workers
  when one fails, an out-of-memory kill, a lost node) writes no summary, but its log's last
  checkpoint still says what the run used until then, and ``report`` gives those figures.

Checkpoints are written from the sampler thread, at most every ``CHECKPOINT_SPACING_S`` (sparser
in long runs, as the samples are: the run's length so far over ``CHECKPOINT_SPAN_FRACTION``), and
at every window end from the exact read that closes the window.
"""

from __future__ import annotations

from collections.abc import Callable

from carbon_callbacks._internal.signals import DeferringLock
from carbon_callbacks._internal.warnings import WarnOnce
from carbon_callbacks.intensity.base import ConstantIntensity, IntensityProvider
from carbon_callbacks.intensity.live import LiveIntensity
from carbon_callbacks.intensity.located import CloudLocated
from carbon_callbacks.runlog.writer import RunLogWriter
from carbon_callbacks.tracking import run_record
from carbon_callbacks.tracking.measurement import Measurement
from carbon_callbacks.tracking.sampler import Sample, Sampler
from carbon_callbacks.tracking.windows import Mark

CHECKPOINT_SPACING_S = 30.0
"""Periodic checkpoints are at least this far apart (read when a run starts: tests lower it)..."""
CHECKPOINT_SPAN_FRACTION = 1024
"""... or, in long runs, the run's length so far over this: 1024 checkpoints in the first 8.5
hours, then about 1024 more each time the run's length grows e-fold (a week: about 4100)."""

Measure = Callable[[Mark, bool], Measurement]
"""The run's figures from its start to a mark; False leaves the intensity (and the CO2e) out."""


class RunProgress:
    """Appends one run's samples, windows and checkpoints; never raises into the run.

    Args:
        writer: The run log (its header written).
        sampler: The run's sampler.
        run_mark: The run's start.
        step_slot: The run's step counter in the sampler's samples.
        run_id: Written in every record.
        measure: The run's figures from its start to a mark.
        mark: The mark (wall-clock time, steps done) of a sample the sampler thread took.
        provider: The run's intensity provider. Periodic checkpoints ask the library's own
            providers from the sampler thread; a custom one is asked only from the thread that
            closes windows, as before, so a periodic checkpoint of such a run has no CO2e.
    """

    def __init__(
        self,
        *,
        writer: RunLogWriter,
        sampler: Sampler,
        run_mark: Mark,
        step_slot: int,
        run_id: str,
        measure: Measure,
        mark: Callable[[Sample], Mark],
        provider: IntensityProvider,
    ) -> None:
        self._writer = writer
        self._sampler = sampler
        self._start_ns = run_mark.sample.t_ns
        self._step_slot = step_slot
        self._run_id = run_id
        self._measure = measure
        self._mark = mark
        self._intensity_off_thread = isinstance(
            provider, ConstantIntensity | LiveIntensity | CloudLocated
        )
        self._samples_written_ns = 0
        self._spacing_ns = round(CHECKPOINT_SPACING_S * 1e9)
        self._checkpoint_ns = self._start_ns
        self._closed = False
        self._lock = DeferringLock()
        self._warn_once = WarnOnce()

    def offer(self, sample: Sample) -> None:
        """The sampler thread's call after each periodic read: a checkpoint when one is due."""
        elapsed_ns = sample.t_ns - self._start_ns
        spacing_ns = max(self._spacing_ns, elapsed_ns // CHECKPOINT_SPAN_FRACTION)
        if sample.t_ns - self._checkpoint_ns >= spacing_ns:
            self._checkpoint(self._mark(sample), self._intensity_off_thread)

    def window_ended(self, window: Measurement, end: Mark) -> None:
        """A window closed at ``end`` (an exact read): the samples, the window, a checkpoint."""
        self.write_samples()
        self._writer.write({"type": "window"} | window.to_dict())
        self._checkpoint(end, True)

    def close(self) -> None:
        """No checkpoint after this (the summary follows); the samples not written yet."""
        with self._lock:  # waits for a checkpoint being written
            self._closed = True
        self.write_samples()

    def write_samples(self) -> None:
        """Append the samples taken since the last such record, about one a second.

        They let a report or plot show power over time; windows alone give only averages.
        """
        after_ns = max(self._samples_written_ns, self._start_ns - 1)  # a shared sampler's older
        fresh = [s for s in self._sampler.history() if s.t_ns > after_ns]
        if not fresh:
            return
        kept = run_record.thinned(fresh, self._start_ns)
        self._samples_written_ns = kept[-1].t_ns
        self._writer.write(
            run_record.samples_record(
                run_id=self._run_id,
                channels=self._sampler.channels,
                samples=kept,
                start_ns=self._start_ns,
                step_slot=self._step_slot,
            )
        )

    def _checkpoint(self, end: Mark, with_intensity: bool) -> None:
        with self._lock:
            if self._closed or end.sample.t_ns <= self._checkpoint_ns:
                return  # stopped, or a later checkpoint is written already: they stay in order
            self._checkpoint_ns = end.sample.t_ns
            try:
                figures = self._measure(end, with_intensity).to_dict()
                self._writer.write(
                    {"type": "checkpoint", "run_id": self._run_id, "t_unix": end.unix} | figures
                )
            except Exception as error:  # a bug here must cost the checkpoint, never the run
                self._warn_once(
                    f"checkpoint:{type(error).__name__}",
                    f"carbon-callbacks: a run-log checkpoint failed ({error!r}); measurement "
                    "continues, but a run cut off now would report an earlier checkpoint.",
                )
