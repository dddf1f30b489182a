from __future__ import annotations

import subprocess
import sys
import time

import pytest

from carbon_callbacks.meters.cpu_estimate import CHANNEL_ID, CpuEstimateMeter

BUSY = "import time\nt = time.process_time()\nwhile time.process_time() - t < {seconds}: pass"


def test_channel_is_labelled_estimated_with_its_model() -> None:
    meter = CpuEstimateMeter(watts_per_core=7.5)
    (channel,) = meter.open()
    assert channel.id == CHANNEL_ID
    assert channel.method == "estimated"
    assert channel.host_level
    assert "7.5 W per busy core" in channel.how
    assert meter.unavailable == []
    meter.close()


def test_own_cpu_time_becomes_joules_at_the_given_wattage() -> None:
    meter = CpuEstimateMeter(watts_per_core=10.0)
    meter.open()
    before = time.process_time()
    while time.process_time() - before < 0.3:
        pass
    used = time.process_time() - before
    joules = meter.read().values[CHANNEL_ID]
    assert joules == pytest.approx(used * 10.0, abs=0.25)  # 10 ms tick = 0.1 J at 10 W
    meter.close()


def test_children_count_while_running_and_after_they_exit() -> None:
    meter = CpuEstimateMeter(watts_per_core=1.0)
    meter.open()
    child = subprocess.Popen([sys.executable, "-c", BUSY.format(seconds=0.6) + "\ntime.sleep(5)"])
    deadline = time.monotonic() + 20
    live = 0.0
    while live < 0.5 and time.monotonic() < deadline:
        time.sleep(0.05)
        live = meter.read().values[CHANNEL_ID]
    assert live >= 0.5  # the live child's CPU time is counted
    child.kill()
    child.wait()
    after = meter.read().values[CHANNEL_ID]
    assert after >= live  # monotonic across the hand-over to children_user
    meter.close()


def test_idle_process_tree_estimates_almost_nothing() -> None:
    meter = CpuEstimateMeter(watts_per_core=12.0)
    meter.open()
    time.sleep(0.3)
    assert meter.read().values[CHANNEL_ID] < 12.0 * 0.05
    meter.close()


def test_read_before_open_is_a_fault_not_zero() -> None:
    reading = CpuEstimateMeter().read()
    assert reading.values == {}
    assert CHANNEL_ID in reading.faults
