from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from carbon_callbacks.meters import cpu_estimate
from carbon_callbacks.meters.cpu_estimate import CHANNEL_ID, CpuEstimateMeter

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
