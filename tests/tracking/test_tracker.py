from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from carbon_callbacks import Tracker, read_run_log
from carbon_callbacks._internal.warnings import CarbonCallbacksWarning
from carbon_callbacks.intensity.base import ConstantIntensity, IntensityValue
from carbon_callbacks.meters.base import Reading
from carbon_callbacks.meters.cpu_estimate import CpuEstimateMeter
from carbon_callbacks.meters.host import HostMeter
from carbon_callbacks.meters.rapl import RaplMeter
from tests.conftest import CHILD_TIMEOUT_S, sampler_threads
from tests.meters.fake_powercap import FakePowercap

ROOT = Path(__file__).resolve().parents[2]
HANG_GUARD_S = 60.0
"""Backstop for waits on another thread: a working one gets there in milliseconds, so only a broken
one (or a hang a test is about) lasts this long, and the test then fails instead of hanging."""


def test_windows_take_exact_reads_of_the_counters(powercap: FakePowercap) -> None:
    with Tracker(write_log=False) as tracker:
        ids = {c.id: c for c in tracker.channels}
        assert {"cpu:package-0", "dram:package-0"} <= set(ids)
        assert ids["cpu:package-0"].method == "measured"
        tracker.begin_window("epoch 0")
        powercap.add_energy("intel-rapl:0", 30_000_000)  # 30 J
        powercap.add_energy("intel-rapl:0:0", 6_000_000)  # 6 J
        for _ in range(7):
            tracker.step()
        epoch = tracker.end_window("epoch 0")
    assert epoch is not None
    figures = {c.channel.id: c.energy_j for c in epoch.channels}
    assert figures["cpu:package-0"] == pytest.approx(30.0)
    assert figures["dram:package-0"] == pytest.approx(6.0)
    assert epoch.steps == 7
    assert not epoch.estimated and not epoch.partial
    assert tracker.summary is not None
    assert tracker.summary.energy_j == pytest.approx(epoch.energy_j)


def test_pue_and_constant_intensity_give_kwh_and_co2e(powercap: FakePowercap) -> None:
    with Tracker(pue=1.5, intensity_g_per_kwh=400.0, write_log=False) as tracker:
        tracker.begin_window("w")
        powercap.add_energy("intel-rapl:0", 3_600_000_000)  # 3600 J = 1 Wh
        window = tracker.end_window("w")
    assert window is not None
    assert window.energy_j == pytest.approx(3600.0)
    assert window.energy_kwh == pytest.approx(0.0015)  # 1 Wh x PUE 1.5
    assert window.co2e_kg == pytest.approx(0.0015 * 400 / 1000)
    assert window.intensity == IntensityValue(400.0, "user-supplied constant")


def test_a_failing_intensity_provider_warns_and_leaves_co2e_out(powercap: FakePowercap) -> None:
    class Offline:
        def intensity(self, start_unix: float, end_unix: float) -> IntensityValue | None:
            raise ConnectionError("grid API down")

    with (
        pytest.warns(CarbonCallbacksWarning, match="grid API down"),
        Tracker(intensity=Offline(), write_log=False) as tracker,
    ):
        pass
    assert tracker.summary is not None
    assert tracker.summary.co2e_kg is None
    assert tracker.summary.energy_j is not None


def test_vanishing_counter_marks_only_that_channel_partial(powercap: FakePowercap) -> None:
    with (
        pytest.warns(CarbonCallbacksWarning, match="dram:package-0"),
        Tracker(write_log=False) as tracker,
    ):
        tracker.begin_window("w")
        powercap.add_energy("intel-rapl:0", 2_000_000)
        powercap.remove("intel-rapl:0:0")
        window = tracker.end_window("w")
    assert window is not None
    by_id = {c.channel.id: c for c in window.channels}
    assert by_id["dram:package-0"].partial
    assert by_id["dram:package-0"].fault is not None
    assert not by_id["cpu:package-0"].partial
    assert by_id["cpu:package-0"].energy_j == pytest.approx(2.0)
    assert window.partial


def test_permission_denied_warns_with_the_fix_and_falls_back_to_the_estimate(
    powercap: FakePowercap,
) -> None:
    def denied(path: Path) -> str:
        if path.name == "energy_uj":
            raise PermissionError(13, "Permission denied", str(path))
        return path.read_text().strip()

    host = HostMeter(RaplMeter(read_file=denied), CpuEstimateMeter())
    with (
        pytest.warns(CarbonCallbacksWarning, match="chmod"),
        Tracker(meters=[host], write_log=False) as tracker,
    ):
        assert [c.id for c in tracker.channels] == ["cpu:estimate"]
    assert tracker.summary is not None
    assert tracker.summary.estimated


def test_energy_between_interpolates_past_intervals(powercap: FakePowercap) -> None:
    # Exact reads put samples where the test needs them, whenever the polling thread runs:
    # ``start`` between two reads before the energy, ``end`` between two reads after it.
    with Tracker(write_log=False) as tracker:
        start = time.monotonic_ns()
        tracker.so_far(exact=True)
        powercap.add_energy("intel-rapl:0", 10_000_000)
        tracker.so_far(exact=True)
        end = time.monotonic_ns()
        tracker.so_far(exact=True)
        interval = tracker.energy_between(start, end)
        assert tracker.energy_between(start - 10**12, end) is None  # not in the timeline
    assert interval is not None
    package = next(c for c in interval.channels if c.channel.id == "cpu:package-0")
    assert package.energy_j == pytest.approx(10.0)


def test_end_window_without_begin_is_a_clear_error(powercap: FakePowercap) -> None:
    with Tracker(write_log=False) as tracker:
        tracker.begin_window("train")
        with pytest.raises(ValueError, match=r"no open window named 'valid'.*'train'"):
            tracker.end_window("valid")


def test_opening_an_open_window_again_warns_naming_it(powercap: FakePowercap) -> None:
    with Tracker(write_log=False) as tracker:
        tracker.begin_window("a")
        powercap.add_energy("intel-rapl:0", 5_000_000)
        with pytest.warns(CarbonCallbacksWarning, match=r"begin_window\('a'\) was called again"):
            tracker.begin_window("a")
        powercap.add_energy("intel-rapl:0", 2_000_000)
        window = tracker.end_window("a")
    assert window is not None
    assert window.channel("cpu:package-0").energy_j == pytest.approx(2.0)  # restarted


def test_exception_in_with_block_stops_the_sampler_and_logs_failure(
    powercap: FakePowercap, tmp_path: Path
) -> None:
    with pytest.raises(ZeroDivisionError), Tracker(output_dir=tmp_path) as tracker:
        assert len(sampler_threads()) == 1
        _ = 1 / 0
    assert sampler_threads() == []
    assert tracker.log_path is not None
    log = read_run_log(tracker.log_path)
    assert log.summary is not None and log.summary["status"] == "failed"


def test_run_log_holds_header_windows_and_summary(powercap: FakePowercap, tmp_path: Path) -> None:
    with Tracker(output_dir=tmp_path, run_name="demo", pue=1.2) as tracker:
        for epoch in range(2):
            tracker.begin_window(f"epoch {epoch}")
            powercap.add_energy("intel-rapl:0", 1_000_000)
            tracker.end_window(f"epoch {epoch}")
    assert tracker.log_path is not None and tracker.log_path.parent == tmp_path
    log = read_run_log(tracker.log_path)
    assert log.problems == []
    assert log.header is not None
    assert log.header["run_name"] == "demo" and log.header["config"]["pue"] == 1.2
    assert [c["id"] for c in log.header["channels"]] == ["cpu:package-0", "dram:package-0"]
    assert [w["name"] for w in log.windows] == ["epoch 0", "epoch 1"]
    assert log.windows[0]["channels"][0]["energy_j"] == pytest.approx(1.0)
    assert log.summary is not None and log.summary["status"] == "completed"


def test_stop_is_idempotent_and_start_after_stop_does_nothing(powercap: FakePowercap) -> None:
    tracker = Tracker(write_log=False).start()
    first = tracker.stop()
    assert first is not None
    assert tracker.stop() is first
    tracker.start()
    assert not tracker.is_running
    tracker.begin_window("late")
    assert tracker.end_window("late") is None


def test_never_started_tracker_stops_to_none() -> None:
    assert Tracker(write_log=False).stop() is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pue": 0.9}, r"pue must be .*>= 1.*write e\.g\. pue=1\.2"),
        ({"interval_s": 0}, r"interval_s must be"),
        ({"cpu_watts": 0}, r"cpu_watts must be > 0"),
        ({"intensity_g_per_kwh": float("nan")}, r"intensity_g_per_kwh must be a finite"),
        ({"intensity_g_per_kwh": -5.0}, r"write intensity_g_per_kwh=250"),
        ({"intensity": 250.0}, r"for a constant write intensity_g_per_kwh=250\.0"),
        ({"country": "SWD"}, r"SE"),
        ({"country": "SE", "zone": "SE-SE3"}, r"give one location"),
        ({"cloud": "aws"}, r"cloud and region go together"),
        ({"cloud": "aws", "region": "eu-nort-1"}, r"eu-north-1"),
        ({"zone": "XX-YY"}, r"XX"),
        ({"live": True}, r"live=True needs a location"),
        ({"live": True, "country": "PL"}, r"ELECTRICITYMAPS_API_TOKEN"),
        ({"live": True, "country": "DK"}, r"zone='DK-DK1'"),
        ({"intensity_g_per_kwh": 5.0, "intensity": ConstantIntensity(5.0)}, r"give only one"),
        ({"gpu_ids": 0}, r"gpu_ids must be a list"),
    ],
)
def test_configuration_mistakes_fail_at_construction(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        Tracker(**kwargs)  # type: ignore[arg-type]
    assert sampler_threads() == []


def test_environment_variables_are_validated_like_arguments(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CARBON_CALLBACKS_PUE", "fast")
    with pytest.raises(ValueError, match=r"CARBON_CALLBACKS_PUE='fast' is not a number"):
        Tracker()
    monkeypatch.setenv("CARBON_CALLBACKS_PUE", "1.3")
    assert Tracker().config.pue == 1.3
    assert Tracker(pue=1.1).config.pue == 1.1  # an argument wins over the environment


def _run_script(body: str, tmp_path: Path, powercap: FakePowercap) -> subprocess.Popen[str]:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(body))
    env = os.environ | {
        "PYTHONPATH": str(ROOT),
        "CARBON_CALLBACKS_OUTPUT_DIR": str(tmp_path / "logs"),
    }
    return subprocess.Popen(
        [sys.executable, str(script)], env=env, stdout=subprocess.PIPE, text=True
    )


def test_sigkill_leaves_a_log_readable_up_to_the_last_boundary(
    powercap: FakePowercap, tmp_path: Path
) -> None:
    process = _run_script(
        """
        import sys, time
        from carbon_callbacks import Tracker
        tracker = Tracker().start()
        for epoch in range(3):
            tracker.begin_window(f"epoch {epoch}")
            tracker.end_window(f"epoch {epoch}")
        print("ready", flush=True)
        time.sleep(60)
        """,
        tmp_path,
        powercap,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    (path,) = (tmp_path / "logs").glob("*.jsonl")
    log = read_run_log(path)
    assert log.problems == []
    assert log.header is not None
    assert [w["name"] for w in log.windows] == ["epoch 0", "epoch 1", "epoch 2"]
    assert log.summary is None


def test_interpreter_exit_without_stop_closes_the_run(
    powercap: FakePowercap, tmp_path: Path
) -> None:
    process = _run_script(
        """
        import threading
        from carbon_callbacks import Tracker
        tracker = Tracker().start()
        tracker.step()
        """,
        tmp_path,
        powercap,
    )
    assert process.wait(timeout=60) == 0
    (path,) = (tmp_path / "logs").glob("*.jsonl")
    log = read_run_log(path)
    assert log.summary is not None
    assert log.summary["status"] == "unfinished"
    assert log.summary["steps"] == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_does_not_write_or_count(powercap: FakePowercap, tmp_path: Path) -> None:
    tracker = Tracker(output_dir=tmp_path).start()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            tracker.begin_window("child")
            if tracker.end_window("child") is not None or tracker.stop() is not None:
                code = 1
            if tracker.is_running:
                code = 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    summary = tracker.stop()
    assert summary is not None
    assert tracker.log_path is not None
    log = read_run_log(tracker.log_path)
    assert log.windows == []
    assert [json.loads(line)["type"] for line in tracker.log_path.read_text().splitlines()] == [
        "header",
        "samples",  # the parent's own, written at its stop
        "summary",
    ]


class HangingRapl(RaplMeter):
    """Real RAPL reads of a fake tree, until the 'driver' wedges the polling thread's next read.

    ``stuck`` is set once the polling thread is inside that read (holding the sampler's lock),
    ``returned`` once the test has released it and it has answered.
    """

    def __init__(self, root: Path) -> None:
        super().__init__(root=root)
        self.wedged = False
        self.stuck = threading.Event()
        self.release = threading.Event()
        self.returned = threading.Event()

    def read(self) -> Reading:
        if self.wedged:
            self.stuck.set()
            self.release.wait(HANG_GUARD_S)
            self.returned.set()
        return super().read()


def test_a_hanging_device_cannot_hang_a_window_or_stop(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from carbon_callbacks.tracking import sampler as sampler_module

    tree = FakePowercap(tmp_path / "fs")
    tree.add_zone("intel-rapl:0", "package-0")
    meter = HangingRapl(tree.class_root)
    monkeypatch.setattr(sampler_module, "JOIN_TIMEOUT_S", 0.2)
    tracker = Tracker(meters=[meter], write_log=False, interval_s=0.01).start()
    tracker.begin_window("epoch 0")
    meter.wedged = True
    try:
        assert meter.stuck.wait(HANG_GUARD_S)  # the sampler thread is now stuck inside read()
        with pytest.warns(CarbonCallbacksWarning, match="hanging"):
            epoch = tracker.end_window("epoch 0")
            summary = tracker.stop()
        assert not meter.returned.is_set()  # both came back while the read still hung
    finally:
        meter.release.set()  # let the stuck thread finish so the test leaves none behind
        for thread in sampler_threads():
            thread.join(HANG_GUARD_S)
    assert epoch is not None and summary is not None
    assert epoch.partial and epoch.channels[0].fault == "a device read is hanging"


def test_two_trackers_share_one_sampler_and_keep_their_own_figures(
    powercap: FakePowercap,
) -> None:
    outer = Tracker(write_log=False).start()
    outer.begin_window("epoch")
    powercap.add_energy("intel-rapl:0", 10_000_000)  # 10 J before the inner run
    outer.step(3)
    with Tracker(write_log=False) as inner:
        assert len(sampler_threads()) == 1  # one thread polls for both
        powercap.add_energy("intel-rapl:0", 4_000_000)  # 4 J inside the inner run
        inner.step(2)
    assert inner.summary is not None and inner.summary.steps == 2
    assert inner.summary.channel("cpu:package-0").energy_j == pytest.approx(4.0)
    assert outer.is_running and len(sampler_threads()) == 1  # still polling for the outer run
    powercap.add_energy("intel-rapl:0", 1_000_000)
    epoch = outer.end_window("epoch")
    summary = outer.stop()
    assert epoch is not None and summary is not None
    assert epoch.channel("cpu:package-0").energy_j == pytest.approx(15.0)
    assert summary.steps == 3
    assert sampler_threads() == []


def test_trackers_measuring_different_things_do_not_share(powercap: FakePowercap) -> None:
    with Tracker(write_log=False), Tracker(write_log=False, measure_host=False):
        assert len(sampler_threads()) == 2


def test_each_tracker_has_its_own_step_timeline(powercap: FakePowercap) -> None:
    with Tracker(write_log=False) as first, Tracker(write_log=False) as second:
        first.step(5)
        first.so_far(exact=True)
        second.so_far(exact=True)
        assert first.step_timeline()[-1][1] == 5
        assert second.step_timeline()[-1][1] == 0


def test_a_deleted_log_is_started_again_with_its_header(
    powercap: FakePowercap, tmp_path: Path
) -> None:
    tracker = Tracker(output_dir=tmp_path).start()
    tracker.begin_window("epoch 0")
    tracker.end_window("epoch 0")
    path = tracker.log_path
    assert path is not None
    path.unlink()
    tracker.begin_window("epoch 1")
    with pytest.warns(CarbonCallbacksWarning, match="was deleted during the run") as caught:
        tracker.end_window("epoch 1")
        tracker.stop()
    assert len(caught) == 1
    log = read_run_log(path)
    assert log.problems == []
    assert log.header is not None and log.header["restarted_unix"] > 0
    assert [w["name"] for w in log.windows] == ["epoch 1"]
    assert log.summary is not None and log.summary["status"] == "completed"
    assert tracker.log_problem is not None and "deleted" in tracker.log_problem


def test_disk_full_mid_run_keeps_measuring(powercap: FakePowercap, tmp_path: Path) -> None:
    tracker = Tracker(output_dir=tmp_path).start()
    path = tracker.log_path
    assert path is not None and path.exists()
    # A real ENOSPC from the kernel: the log's open descriptor now points at /dev/full.
    full = os.open("/dev/full", os.O_WRONLY)
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/self/fd/{name}") == str(path):
                os.dup2(full, int(name))
    os.close(full)
    tracker.begin_window("epoch 0")
    powercap.add_energy("intel-rapl:0", 2_000_000)
    with pytest.warns(CarbonCallbacksWarning, match="No space left on device") as caught:
        epoch = tracker.end_window("epoch 0")
        summary = tracker.stop()
    assert len(caught) == 1
    assert epoch is not None and epoch.channel("cpu:package-0").energy_j == pytest.approx(2.0)
    assert summary is not None
    assert tracker.log_problem is not None and "incomplete" in tracker.log_problem
    log = read_run_log(path)
    assert log.header is not None and log.windows == [] and log.summary is None


@pytest.mark.parametrize(
    ("ending", "status"),
    [
        ("raise KeyboardInterrupt", "interrupted"),
        ("raise RuntimeError('boom')", "failed"),
        ("sys.exit(3)", "unfinished"),
    ],
)
def test_interpreter_exit_says_why_the_run_ended(
    ending: str, status: str, powercap: FakePowercap, tmp_path: Path
) -> None:
    process = _run_script(
        f"""
        import sys
        from carbon_callbacks import Tracker
        tracker = Tracker().start()
        tracker.step()
        {ending}
        """,
        tmp_path,
        powercap,
    )
    process.wait(timeout=60)
    (path,) = (tmp_path / "logs").glob("*.jsonl")
    log = read_run_log(path)
    assert log.summary is not None and log.summary["status"] == status


def test_sigterm_closes_the_run_as_interrupted_and_still_ends_the_process(
    powercap: FakePowercap, tmp_path: Path
) -> None:
    process = _run_script(
        """
        import os, signal
        from carbon_callbacks import Tracker
        tracker = Tracker().start()
        tracker.begin_window("epoch 0")
        tracker.end_window("epoch 0")
        tracker.step(4)
        os.kill(os.getpid(), signal.SIGTERM)
        print("survived", flush=True)
        """,
        tmp_path,
        powercap,
    )
    stdout, _ = process.communicate(timeout=60)
    assert process.returncode == -signal.SIGTERM  # what SIGTERM does without the library
    assert "survived" not in stdout
    (path,) = (tmp_path / "logs").glob("*.jsonl")
    log = read_run_log(path)
    assert [w["name"] for w in log.windows] == ["epoch 0"]
    assert log.summary is not None
    assert log.summary["status"] == "interrupted" and log.summary["steps"] == 4


def test_sigterm_goes_on_to_the_handler_installed_before(
    powercap: FakePowercap, tmp_path: Path
) -> None:
    process = _run_script(
        """
        import os, signal, sys
        from carbon_callbacks import Tracker
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(7))
        tracker = Tracker().start()
        os.kill(os.getpid(), signal.SIGTERM)
        """,
        tmp_path,
        powercap,
    )
    assert process.wait(timeout=60) == 7
    (path,) = (tmp_path / "logs").glob("*.jsonl")
    summary = read_run_log(path).summary
    assert summary is not None and summary["status"] == "interrupted"


def test_an_ignored_sigterm_stays_ignored(powercap: FakePowercap, tmp_path: Path) -> None:
    process = _run_script(
        """
        import os, signal
        from carbon_callbacks import Tracker
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        with Tracker():
            os.kill(os.getpid(), signal.SIGTERM)
        """,
        tmp_path,
        powercap,
    )
    assert process.wait(timeout=60) == 0
    (path,) = (tmp_path / "logs").glob("*.jsonl")
    summary = read_run_log(path).summary
    assert summary is not None and summary["status"] == "completed"


def test_the_sigterm_handler_is_there_only_while_a_run_is(powercap: FakePowercap) -> None:
    before = signal.getsignal(signal.SIGTERM)
    with Tracker(write_log=False, handle_sigterm=False):
        assert signal.getsignal(signal.SIGTERM) == before
    with Tracker(write_log=False):
        assert signal.getsignal(signal.SIGTERM) != before
        with Tracker(write_log=False):
            pass
        assert signal.getsignal(signal.SIGTERM) != before  # the outer run still holds it
    assert signal.getsignal(signal.SIGTERM) == before


def test_a_provider_answering_the_wrong_type_warns_and_leaves_co2e_out(
    powercap: FakePowercap,
) -> None:
    class Sloppy:
        def intensity(self, start_unix: float, end_unix: float) -> float:
            return 250.0  # a number, not an IntensityValue

    tracker = Tracker(intensity=Sloppy(), write_log=False)  # type: ignore[arg-type]
    with pytest.warns(CarbonCallbacksWarning, match="returned float, not an IntensityValue"):
        tracker.start()
        tracker.begin_window("w")
        window = tracker.end_window("w")
        assert tracker.intensity_ahead(60.0) is None
        tracker.stop()
    assert window is not None and window.intensity is None and window.co2e_kg is None


def test_sigterm_inside_an_exact_read_on_the_main_thread_waits_for_the_read(
    tmp_path: Path, powercap: FakePowercap
) -> None:
    """The handler must not take the sampler's lock the interrupted main thread holds.

    Before the fix the handler's stop waited ``JOIN_TIMEOUT_S`` on that lock, then marked every
    channel partial ("a device read is hanging").
    """
    process = _run_script(
        """
        import os, signal, threading
        from carbon_callbacks import Tracker
        from carbon_callbacks.meters.base import Channel, Reading

        class Counter:
            source = "counter"
            max_interval_s = None
            unavailable = []
            joules = 0.0
            kill_on_main = False
            def open(self):
                return [Channel("cpu:counter", "cpu", "counter", "measured", "a counter")]
            def read(self):
                self.joules += 1.0
                if self.kill_on_main and threading.current_thread() is threading.main_thread():
                    self.kill_on_main = False
                    os.kill(os.getpid(), signal.SIGTERM)  # the handler runs inside this read
                    self.joules += 1.0  # the read goes on after the handler returns
                return Reading(values={"cpu:counter": self.joules})
            def close(self):
                pass

        meter = Counter()
        tracker = Tracker(meters=[meter], interval_s=3600).start()
        tracker.step(3)
        meter.kill_on_main = True
        tracker.begin_window("epoch 0")  # an exact read on the main thread
        print("survived", flush=True)
        """,
        tmp_path,
        powercap,
    )
    stdout, _ = process.communicate(timeout=CHILD_TIMEOUT_S)
    assert process.returncode == -signal.SIGTERM
    assert "survived" not in stdout
    (path,) = (tmp_path / "logs").glob("*.jsonl")
    summary = read_run_log(path).summary
    assert summary is not None
    assert summary["status"] == "interrupted" and summary["steps"] == 3
    (channel,) = summary["channels"]
    # after the start's read: the interrupted read (+2, the handler waited for it), the stop's (+1)
    assert channel["fault"] is None and not summary["partial"]
    assert channel["energy_j"] == pytest.approx(3.0)


def test_print_of_the_summary_is_readable_lines_with_mean_power(powercap: FakePowercap) -> None:
    with Tracker(write_log=False, intensity_g_per_kwh=100.0) as tracker:
        powercap.add_energy("intel-rapl:0", 36_000_000)  # 36 J
    summary = tracker.summary
    assert summary is not None
    text = str(summary)
    assert text.splitlines()[1].startswith("energy:   10 mWh")
    assert "power:    " in text and "Measurement(" not in text
    assert summary.to_dict()["mean_power_w"] == pytest.approx(36.0 / summary.duration_s)
