from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from carbon_callbacks.meters import cpu_estimate
from carbon_callbacks.meters.cpu_estimate import (
    CHANNEL_ID,
    DEFAULT_WATTS_PER_CORE,
    CpuEstimateMeter,
)
from carbon_callbacks.meters.cpu_models import find_cpu
from tests.meters.cpuinfo_samples import (
    EPYC_7763_VM,
    EPYC_UNNAMED_VM,
    GRAVITON2_ARM64,
    x86_cpuinfo,
)

TICK_S = 1 / os.sysconf("SC_CLK_TCK")
READ_SLACK_S = 5 * TICK_S
"""How far the CPU time the meter takes from one process may fall short of the truth, never above
it. The meter reads psutil, which reads /proc: user, system, children's user and children's system
time, each cut down to a whole clock tick; and a thread running on another core may lack its
current slice (at most a scheduler tick, no longer than a clock tick)."""
BURN_S = 0.3
"""CPU seconds a busy loop uses."""
BURN = "import time\nt = time.process_time()\nwhile time.process_time() - t < {seconds}: pass\n"
REPORT_THEN_WAIT = "import sys\nprint('burnt', flush=True)\nsys.stdin.read()\n"
"""Appended to BURN: say the CPU time is used, then stay alive until stdin is closed."""


def burn(seconds: float) -> None:
    """Use ``seconds`` of this process's CPU time."""
    start = time.process_time()
    while time.process_time() - start < seconds:
        pass


def test_channel_is_labelled_estimated_with_its_model() -> None:
    meter = CpuEstimateMeter(watts_per_core=7.5)
    (channel,) = meter.open()
    assert channel.id == CHANNEL_ID
    assert channel.method == "estimated"
    assert channel.scope == "process" and not channel.host_level  # every rank measures its own
    assert "7.5 W per busy core" in channel.how
    assert meter.unavailable == []
    meter.close()


def test_own_cpu_time_becomes_joules_at_the_given_wattage() -> None:
    watts = 5.0  # far from the 12 W default, so ignoring it could not pass
    meter = CpuEstimateMeter(watts_per_core=watts)
    before_open = time.process_time()
    meter.open()
    after_open = time.process_time()
    burn(BURN_S)
    before_read = time.process_time()
    joules = meter.read().values[CHANNEL_ID]
    after_read = time.process_time()
    # The meter's two readings were taken inside these brackets, each up to READ_SLACK_S short.
    least_s = before_read - after_open - READ_SLACK_S
    most_s = after_read - before_open + READ_SLACK_S
    assert least_s * watts <= joules <= most_s * watts
    meter.close()


def test_children_count_while_running_and_after_they_exit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cpu_estimate, "DESCENDANTS_REFRESH_S", 0.0)  # list them at every read
    meter = CpuEstimateMeter(watts_per_core=1.0)
    meter.open()
    child = subprocess.Popen(
        [sys.executable, "-c", BURN.format(seconds=BURN_S) + REPORT_THEN_WAIT],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        assert child.stdout.readline() == "burnt\n"  # it has used BURN_S and waits, alive
        live = meter.read().values[CHANNEL_ID]
    finally:
        child.kill()
        child.wait()
        child.stdin.close()
        child.stdout.close()
    assert live >= BURN_S - 2 * READ_SLACK_S  # the live child's CPU time is counted (2 processes)
    # A child that runs and is reaped between two reads is counted through children_* times.
    before = meter.read().values[CHANNEL_ID]
    subprocess.run([sys.executable, "-c", BURN.format(seconds=BURN_S)], check=True)
    after = meter.read().values[CHANNEL_ID]
    assert after - before >= BURN_S - READ_SLACK_S
    meter.close()


def test_excluded_processes_and_their_descendants_are_left_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another rank started as a child (Lightning's launcher) measures itself: not counted here."""
    monkeypatch.setattr(cpu_estimate, "DESCENDANTS_REFRESH_S", 0.0)  # list them at every read
    grandchild = BURN.format(seconds=BURN_S) + REPORT_THEN_WAIT
    other_rank = (
        "import subprocess, sys\n"
        f"grand = subprocess.Popen([sys.executable, '-c', {grandchild!r}], "
        "stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)\n"
        "assert grand.stdout.readline() == 'burnt\\n'\n"
        + BURN.format(seconds=BURN_S)
        + REPORT_THEN_WAIT
    )
    before_open = time.process_time()
    child = subprocess.Popen(
        [sys.executable, "-c", other_rank], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    meter = CpuEstimateMeter(watts_per_core=1.0, exclude_pids=[child.pid])
    meter.open()
    assert child.stdin is not None and child.stdout is not None
    try:
        assert child.stdout.readline() == "burnt\n"  # both have used BURN_S, and wait, alive
        joules = meter.read().values[CHANNEL_ID]
        after_read = time.process_time()
    finally:
        child.stdin.close()  # the child ends, and its end closes the grandchild's stdin
        child.wait()
        child.stdout.close()
    # this process's own CPU time only; the two burners would add 2 x BURN_S
    assert joules <= after_read - before_open + READ_SLACK_S
    meter.close()


def test_idle_process_tree_estimates_almost_nothing() -> None:
    watts = 12.0
    before_open = time.process_time()
    meter = CpuEstimateMeter(watts_per_core=watts)
    meter.open()
    time.sleep(0.3)  # wall time passes; CPU time hardly does
    joules = meter.read().values[CHANNEL_ID]
    after_read = time.process_time()
    # Only the CPU time actually used counts (were wall time counted: 0.3 s x 12 W = 3.6 J).
    assert joules <= (after_read - before_open + READ_SLACK_S) * watts
    meter.close()


def test_read_before_open_is_a_fault_not_zero() -> None:
    reading = CpuEstimateMeter().read()
    assert reading.values == {}
    assert CHANNEL_ID in reading.faults


def write_cpuinfo(tmp_path: Path, text: str) -> Path:
    """A cpuinfo file of ``text`` for the meter to read instead of /proc/cpuinfo."""
    path = tmp_path / "cpuinfo"
    path.write_text(text)
    return path


def test_known_cpu_uses_its_tdp_per_core_and_says_so(tmp_path: Path) -> None:
    meter = CpuEstimateMeter(cpuinfo_path=write_cpuinfo(tmp_path, EPYC_7763_VM))
    before_open = time.process_time()
    (channel,) = meter.open()
    after_open = time.process_time()
    assert channel.method == "estimated"
    assert channel.how == (
        "estimate: CPU time of this process tree (psutil) x 4.38 W per busy core (AMD EPYC 7763:"
        " 280 W TDP / 64 cores, Green Algorithms table; 2 threads per core: a busy thread counts"
        " as a busy core)"
    )
    burn(BURN_S)
    before_read = time.process_time()
    joules = meter.read().values[CHANNEL_ID]
    after_read = time.process_time()
    watts = 280 / 64  # the chip's TDP over the chip's cores, not over the 2 the VM shows
    assert (before_read - after_open - READ_SLACK_S) * watts <= joules
    assert joules <= (after_read - before_open + READ_SLACK_S) * watts
    meter.close()


def test_known_cpu_without_visible_smt_has_no_thread_note(tmp_path: Path) -> None:
    text = x86_cpuinfo(
        "Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz",
        sockets=2,
        cores=20,
        threads_per_core=1,
        vendor="GenuineIntel",
    )
    (channel,) = CpuEstimateMeter(cpuinfo_path=write_cpuinfo(tmp_path, text)).open()
    assert channel.how.endswith(
        "x 7.5 W per busy core (Xeon Gold 6248: 150 W TDP / 20 cores, Green Algorithms table)"
    )


@pytest.mark.parametrize(
    ("text", "basis"),
    [
        (EPYC_UNNAMED_VM, 'default: "AMD EPYC" is not in the CPU table; set cpu_watts= to'),
        (GRAVITON2_ARM64, "names no CPU model; set cpu_watts= to your CPU's TDP / cores"),
    ],
)
def test_unknown_cpu_gets_the_default_and_says_which_model_was_read(
    tmp_path: Path, text: str, basis: str
) -> None:
    meter = CpuEstimateMeter(cpuinfo_path=write_cpuinfo(tmp_path, text))
    (channel,) = meter.open()
    assert f"x {DEFAULT_WATTS_PER_CORE:g} W per busy core (" in channel.how
    assert basis in channel.how
    meter.close()


def test_unreadable_cpuinfo_gets_the_default_and_says_so(tmp_path: Path) -> None:
    meter = CpuEstimateMeter(cpuinfo_path=tmp_path / "missing")
    (channel,) = meter.open()
    assert (
        f"x 12 W per busy core (default: {tmp_path / 'missing'} could not be read;" in channel.how
    )
    meter.close()


def test_given_watts_win_over_the_table(tmp_path: Path) -> None:
    watts = 7.0  # neither the default nor the EPYC 7763's 4.375
    meter = CpuEstimateMeter(watts, cpuinfo_path=write_cpuinfo(tmp_path, EPYC_7763_VM))
    before_open = time.process_time()
    (channel,) = meter.open()
    after_open = time.process_time()
    assert channel.how.endswith("x 7 W per busy core (set by cpu_watts)")
    burn(BURN_S)
    before_read = time.process_time()
    joules = meter.read().values[CHANNEL_ID]
    after_read = time.process_time()
    assert (before_read - after_open - READ_SLACK_S) * watts <= joules
    assert joules <= (after_read - before_open + READ_SLACK_S) * watts
    meter.close()


def test_on_this_machine_the_estimate_names_the_model_in_proc_cpuinfo() -> None:
    """The real /proc/cpuinfo: the description names what it reads there (AMD EPYC on CI)."""
    models = {
        line.partition(":")[2].strip()
        for line in Path("/proc/cpuinfo").read_text().splitlines()
        if line.partition(":")[0].strip() == "model name"
    }
    meter = CpuEstimateMeter()
    (channel,) = meter.open()
    meter.close()
    if len(models) != 1:
        assert "/proc/cpuinfo names no CPU model" in channel.how or " + " in channel.how
        return
    (model,) = models
    spec = find_cpu(model)
    if spec is None:
        assert f'x 12 W per busy core (default: "{model}" is not in the CPU table;' in channel.how
    else:
        assert f"W per busy core ({spec.model}: {spec.tdp_w:g} W TDP / {spec.cores} cores" in (
            channel.how
        )
