from __future__ import annotations

from pathlib import Path

import pytest

from carbon_callbacks.meters import rapl
from carbon_callbacks.meters.base import Channel
from carbon_callbacks.meters.rapl import ROOT_ENV, RaplMeter
from tests.meters.fake_powercap import DEFAULT_RANGE_UJ, FakePowercap


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake(tmp_path: Path) -> FakePowercap:
    return FakePowercap(tmp_path)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def client_cpu(fake: FakePowercap) -> None:
    """A typical Intel machine: package with core, uncore and dram subzones, plus psys."""
    fake.add_zone("intel-rapl:0", "package-0", energy_uj=5_000_000)
    fake.add_zone("intel-rapl:0:0", "core", energy_uj=1_000_000)
    fake.add_zone("intel-rapl:0:1", "uncore", energy_uj=2_000_000)
    fake.add_zone("intel-rapl:0:2", "dram", energy_uj=3_000_000, max_energy_range_uj=65_712_999_613)
    fake.add_zone("intel-rapl:1", "psys", energy_uj=9_000_000)


def ids(channels: list[Channel]) -> list[str]:
    return [channel.id for channel in channels]


def test_flat_layout_gives_package_and_dram_once(fake: FakePowercap, clock: FakeClock) -> None:
    client_cpu(fake)
    meter = RaplMeter(fake.class_root, environ={}, clock=clock)

    channels = meter.open()

    package, dram = channels
    assert package == Channel(
        id="cpu:package-0",
        kind="cpu",
        device="package-0 (intel-rapl:0)",
        method="measured",
        how=f"RAPL powercap counter {fake.class_root}/intel-rapl:0/energy_uj",
        quantity="energy",
        scope="host",
    )
    assert dram == Channel(
        id="dram:package-0",
        kind="dram",
        device="dram (intel-rapl:0:2)",
        method="measured",
        how=f"RAPL powercap counter {fake.class_root}/intel-rapl:0:2/energy_uj",
        quantity="energy",
        scope="host",
    )
    assert meter.unavailable == []


def test_nested_layout_gives_the_same_channels(fake: FakePowercap, clock: FakeClock) -> None:
    client_cpu(fake)
    meter = RaplMeter(fake.devices_root, environ={}, clock=clock)

    channels = meter.open()

    assert ids(channels) == ["cpu:package-0", "dram:package-0"]
    nested = fake.devices_root / "intel-rapl" / "intel-rapl:0" / "intel-rapl:0:2" / "energy_uj"
    assert channels[1].how == f"RAPL powercap counter {nested}"


def test_read_counts_joules_since_open(fake: FakePowercap, clock: FakeClock) -> None:
    client_cpu(fake)
    meter = RaplMeter(fake.class_root, environ={}, clock=clock)
    meter.open()

    first = meter.read()
    fake.add_energy("intel-rapl:0", 12_345_678)
    fake.add_energy("intel-rapl:0:2", 1_500_000)
    fake.add_energy("intel-rapl:0:0", 99_000_000)  # core: inside the package, never counted
    fake.add_energy("intel-rapl:1", 99_000_000)  # psys: includes the package, never counted
    clock.now += 1
    second = meter.read()

    assert first.values == {"cpu:package-0": 0.0, "dram:package-0": 0.0}
    assert first.faults == {}
    assert second.values == {"cpu:package-0": 12.345678, "dram:package-0": 1.5}
    assert second.faults == {}


def test_wraparound_between_two_reads(fake: FakePowercap, clock: FakeClock) -> None:
    fake.add_zone("intel-rapl:0", "package-0", energy_uj=DEFAULT_RANGE_UJ - 1_000_000)
    meter = RaplMeter(fake.class_root, environ={}, clock=clock)
    meter.open()

    fake.set_energy("intel-rapl:0", 2_000_000)
    clock.now += 1

    # 1_000_000 uJ up to the top of the range, 1 uJ to wrap to 0, then 2_000_000 uJ.
    assert meter.read().values == {"cpu:package-0": 3.000001}


def test_one_wrap_per_interval_over_many_reads(fake: FakePowercap, clock: FakeClock) -> None:
    # The counter wraps after 999_999 uJ, i.e. every 1 J; each read sees 0.7 J, so the counter
    # wraps between most reads but never twice between two reads.
    fake.add_zone("intel-rapl:0", "package-0", max_energy_range_uj=999_999)
    meter = RaplMeter(fake.class_root, environ={}, clock=clock)
    meter.open()

    totals = []
    raws = []
    for _ in range(5):
        fake.add_energy("intel-rapl:0", 700_000)
        raws.append(int(fake.energy_path("intel-rapl:0").read_text()))
        clock.now += 1
        totals.append(meter.read().values["cpu:package-0"])

    assert raws == [700_000, 400_000, 100_000, 800_000, 500_000]
    assert totals == [0.7, 1.4, 2.1, 2.8, 3.5]


def test_mmio_duplicate_of_a_package_is_counted_once_from_msr(
    fake: FakePowercap, clock: FakeClock
) -> None:
    # Lower index and listed first, yet the MMIO zone is the duplicate.
    fake.add_zone("intel-rapl-mmio:0", "package-0", energy_uj=7_000_000)
    fake.add_zone("intel-rapl:0", "psys", energy_uj=1_000_000)
    fake.add_zone("intel-rapl:1", "package-0", energy_uj=1_000_000)
    fake.add_zone("intel-rapl:1:0", "dram", energy_uj=1_000_000)
    meter = RaplMeter(fake.class_root, environ={}, clock=clock)

    channels = meter.open()
    fake.add_energy("intel-rapl:1", 2_000_000)
    fake.add_energy("intel-rapl-mmio:0", 50_000_000)
    reading = meter.read()

    assert ids(channels) == ["cpu:package-0", "dram:package-0"]
    assert channels[0].device == "package-0 (intel-rapl:1)"
    assert reading.values == {"cpu:package-0": 2.0, "dram:package-0": 0.0}


def test_amd_dies_with_the_same_name_are_counted_once(fake: FakePowercap, clock: FakeClock) -> None:
    # Older kernels on AMD expose one zone per die, all reading the socket counter; the control
    # type name is treated generically.
    for die in range(4):
        fake.add_zone(f"amd-rapl:{die}", "package-0", energy_uj=4_000_000)
    fake.add_zone("amd-rapl:4", "package-1", energy_uj=4_000_000)
    meter = RaplMeter(fake.class_root, environ={}, clock=clock)

    channels = meter.open()
    for die in range(4):
        fake.add_energy(f"amd-rapl:{die}", 1_000_000)
    fake.add_energy("amd-rapl:4", 3_000_000)
    reading = meter.read()

    assert ids(channels) == ["cpu:package-0", "cpu:package-1"]
    assert channels[0].device == "package-0 (amd-rapl:0)"
    assert reading.values == {"cpu:package-0": 1.0, "cpu:package-1": 3.0}


def test_multi_die_intel_packages_are_separate_channels(
    fake: FakePowercap, clock: FakeClock
) -> None:
    fake.add_zone("intel-rapl:0", "package-0-die-0")
    fake.add_zone("intel-rapl:1", "package-0-die-1")
    fake.add_zone("intel-rapl:1:0", "dram")
    meter = RaplMeter(fake.class_root, environ={}, clock=clock)

    assert ids(meter.open()) == [
        "cpu:package-0-die-0",
        "cpu:package-0-die-1",
        "dram:package-0-die-1",
    ]


def test_psys_alone_is_used_and_says_it_covers_the_platform(
    fake: FakePowercap, clock: FakeClock
) -> None:
    fake.add_zone("intel-rapl:0", "psys", energy_uj=10)
    fake.add_zone("intel-rapl:0:0", "core")
    meter = RaplMeter(fake.class_root, environ={}, clock=clock)

    channels = meter.open()
    fake.add_energy("intel-rapl:0", 4_200_000)

    assert ids(channels) == ["cpu:psys"]
    assert channels[0].kind == "cpu"
    assert "whole platform" in channels[0].how
    assert meter.read().values == {"cpu:psys": 4.2}


def test_psys_is_skipped_when_a_package_exists(fake: FakePowercap, clock: FakeClock) -> None:
    fake.add_zone("intel-rapl:0", "psys")
    fake.add_zone("intel-rapl:1", "package-0")
    meter = RaplMeter(fake.class_root, environ={}, clock=clock)

    assert ids(meter.open()) == ["cpu:package-0"]


def test_environment_variable_overrides_the_default_root(
    fake: FakePowercap, clock: FakeClock
) -> None:
    fake.add_zone("intel-rapl:0", "package-0")
    meter = RaplMeter(environ={ROOT_ENV: str(fake.devices_root)}, clock=clock)

    assert ids(meter.open()) == ["cpu:package-0"]


def test_root_argument_beats_the_environment(
    fake: FakePowercap, clock: FakeClock, tmp_path: Path
) -> None:
    fake.add_zone("intel-rapl:0", "package-0")
    meter = RaplMeter(fake.class_root, environ={ROOT_ENV: str(tmp_path / "nowhere")}, clock=clock)

    assert ids(meter.open()) == ["cpu:package-0"]


@pytest.mark.parametrize("environ", [{}, {ROOT_ENV: ""}, {ROOT_ENV: "  "}])
@pytest.mark.parametrize(("class_exists", "expected"), [(True, "class"), (False, "devices")])
def test_default_root_prefers_sys_class_powercap_and_a_blank_variable_is_unset(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    class_exists: bool,
    expected: str,
    environ: dict[str, str],
) -> None:
    roots = {"class": tmp_path / "class", "devices": tmp_path / "devices"}
    if class_exists:
        roots["class"].mkdir()
    monkeypatch.setattr(rapl, "_CLASS_ROOT", roots["class"])
    monkeypatch.setattr(rapl, "_DEVICES_ROOT", roots["devices"])
    meter = RaplMeter(environ=environ)

    assert meter.open() == []
    (problem,) = meter.unavailable
    assert str(roots[expected]) in problem.reason


def test_constructor_reads_nothing(tmp_path: Path) -> None:
    calls: list[Path] = []

    def read_file(path: Path) -> str:
        calls.append(path)
        return ""

    meter = RaplMeter(tmp_path, read_file=read_file)

    assert calls == []
    assert meter.unavailable == []
    assert meter.max_interval_s is None


def test_stalled_counter_is_a_fault_after_five_seconds(
    fake: FakePowercap, clock: FakeClock
) -> None:
    fake.add_zone("intel-rapl:0", "package-0", energy_uj=1_000_000)
    fake.add_zone("intel-rapl:1", "package-1", energy_uj=1_000_000)
    meter = RaplMeter(fake.class_root, environ={}, clock=clock)
    meter.open()
    fake.add_energy("intel-rapl:0", 500_000)  # package-0 moves once, then stalls

    clock.now = 1001.0  # opened at 1000.0
    assert meter.read().faults == {}
    clock.now = 1004.9
    early = meter.read()
    clock.now = 1005.0
    late = meter.read()

    assert early.faults == {}
    assert early.values == {"cpu:package-0": 0.5, "cpu:package-1": 0.0}
    assert late.values == {"cpu:package-0": 0.5, "cpu:package-1": 0.0}
    assert set(late.faults) == {"cpu:package-1"}
    assert late.faults["cpu:package-1"].startswith("RAPL counter has stopped changing (5 s")

    clock.now = 1006.0
    assert set(meter.read().faults) == {"cpu:package-0", "cpu:package-1"}
    fake.add_energy("intel-rapl:1", 1)
    assert set(meter.read().faults) == {"cpu:package-0"}


def test_vanished_file_is_a_fault_for_that_channel_only(
    fake: FakePowercap, clock: FakeClock
) -> None:
    fake.add_zone("intel-rapl:0", "package-0", energy_uj=0)
    fake.add_zone("intel-rapl:1", "package-1", energy_uj=0)
    meter = RaplMeter(fake.class_root, environ={}, clock=clock)
    meter.open()
    fake.add_energy("intel-rapl:0", 1_000_000)
    fake.add_energy("intel-rapl:1", 2_000_000)
    clock.now += 1
    assert meter.read().values == {"cpu:package-0": 1.0, "cpu:package-1": 2.0}

    fake.remove("intel-rapl:1")
    fake.add_energy("intel-rapl:0", 1_000_000)
    clock.now += 1
    gone = meter.read()

    assert gone.values == {"cpu:package-0": 2.0}
    assert list(gone.faults) == ["cpu:package-1"]
    assert gone.faults["cpu:package-1"] == (
        f"cannot read {fake.class_root}/intel-rapl:1/energy_uj: No such file or directory"
    )

    # It comes back reset: the jump is not energy, the total so far is kept and counting goes on.
    fake.set_energy("intel-rapl:1", 123)
    clock.now += 1
    back = meter.read()
    fake.add_energy("intel-rapl:1", 250_000)
    clock.now += 1
    later = meter.read()

    assert back.values == {"cpu:package-0": 2.0, "cpu:package-1": 2.0}
    assert back.faults == {}
    assert later.values == {"cpu:package-0": 2.0, "cpu:package-1": 2.25}


def test_permission_denied_gives_one_unavailable_with_a_fix(
    fake: FakePowercap, clock: FakeClock
) -> None:
    client_cpu(fake)
    fake.add_zone("intel-rapl:2", "package-1")

    def read_file(path: Path) -> str:
        if path.name == "energy_uj":
            raise PermissionError(13, "Permission denied", str(path))
        return rapl._read_text(path)

    meter = RaplMeter(fake.class_root, environ={}, clock=clock, read_file=read_file)

    assert meter.open() == []
    (problem,) = meter.unavailable
    assert problem.source == "rapl"
    assert problem.reason == (
        f"permission denied reading {fake.class_root}/intel-rapl:0/energy_uj "
        "(root-only since Linux 5.10, CVE-2020-8694)"
    )
    assert problem.fix is not None
    assert "sudo chmod o+r /sys/class/powercap/*/energy_uj" in problem.fix
    assert "/etc/udev/rules.d/99-powercap.rules" in problem.fix
    assert (
        'SUBSYSTEM=="powercap", ACTION=="add", TEST=="energy_uj", '
        'RUN+="/bin/chmod o+r /sys%p/energy_uj"'
    ) in problem.fix
    assert meter.read().values == {}
    assert meter.max_interval_s is None


def test_other_zones_still_open_when_one_cannot_be_read(
    fake: FakePowercap, clock: FakeClock
) -> None:
    fake.add_zone("intel-rapl:0", "package-0")
    fake.add_zone("intel-rapl:1", "package-1")
    fake.remove("intel-rapl:1", "max_energy_range_uj")
    meter = RaplMeter(fake.class_root, environ={}, clock=clock)

    assert ids(meter.open()) == ["cpu:package-0"]
    (problem,) = meter.unavailable
    assert problem.reason == (
        f"cannot read RAPL zone {fake.class_root}/intel-rapl:1: No such file or directory"
    )
    assert problem.fix is None


def test_missing_root_is_unavailable(tmp_path: Path, clock: FakeClock) -> None:
    root = tmp_path / "powercap"
    meter = RaplMeter(root, environ={}, clock=clock)

    assert meter.open() == []
    assert meter.read().values == {}
    (problem,) = meter.unavailable
    assert problem.source == "rapl"
    assert problem.reason == (
        f"no RAPL powercap interface at {root} "
        "(not Linux, no intel_rapl driver, or a VM without RAPL)"
    )


def test_root_without_rapl_zones_is_unavailable(fake: FakePowercap, clock: FakeClock) -> None:
    fake.add_zone("dtpm:0", "soc")
    meter = RaplMeter(fake.class_root, environ={}, clock=clock)

    assert meter.open() == []
    (problem,) = meter.unavailable
    assert problem.reason.startswith(f"no RAPL package or psys zone under {fake.class_root}")


def test_max_interval_is_half_the_wrap_time_at_1000_watts(
    fake: FakePowercap, clock: FakeClock
) -> None:
    fake.add_zone("intel-rapl:0", "package-0", max_energy_range_uj=262_143_328_850)
    meter = RaplMeter(fake.class_root, environ={}, clock=clock)
    meter.open()

    assert meter.max_interval_s == pytest.approx(131.0716644425)


def test_max_interval_follows_the_smallest_range(fake: FakePowercap, clock: FakeClock) -> None:
    client_cpu(fake)  # dram range 65_712_999_613 uJ
    meter = RaplMeter(fake.class_root, environ={}, clock=clock)
    meter.open()

    assert meter.max_interval_s == pytest.approx(32.8564998065)


def test_close_is_idempotent_and_stops_reading(fake: FakePowercap, clock: FakeClock) -> None:
    fake.add_zone("intel-rapl:0", "package-0")
    meter = RaplMeter(fake.class_root, environ={}, clock=clock)
    meter.open()

    meter.close()
    meter.close()

    reading = meter.read()
    assert reading.values == {}
    assert reading.faults == {}
    assert meter.max_interval_s is None


def test_reopening_starts_from_zero_again(fake: FakePowercap, clock: FakeClock) -> None:
    fake.add_zone("intel-rapl:0", "package-0")
    meter = RaplMeter(fake.class_root, environ={}, clock=clock)
    meter.open()
    fake.add_energy("intel-rapl:0", 3_000_000)
    assert meter.read().values == {"cpu:package-0": 3.0}

    assert ids(meter.open()) == ["cpu:package-0"]
    assert meter.read().values == {"cpu:package-0": 0.0}


def test_counter_going_backwards_without_wrapping_is_a_reset_not_a_wrap(
    fake: FakePowercap, clock: FakeClock
) -> None:
    fake.add_zone("intel-rapl:0", "package-0", energy_uj=50_000_000)
    meter = RaplMeter(fake.class_root, environ={}, clock=clock)
    meter.open()
    fake.add_energy("intel-rapl:0", 2_000_000)
    clock.now += 1
    assert meter.read().values == {"cpu:package-0": 2.0}

    # Down by 40 J in a second: as a wrap it would be ~262 kJ in 1 s (262 kW), so a reset.
    fake.set_energy("intel-rapl:0", 12_000_000)
    clock.now += 1
    reset = meter.read()
    fake.add_energy("intel-rapl:0", 500_000)
    clock.now += 1
    later = meter.read()

    assert reset.values == {"cpu:package-0": 2.0}
    assert reset.faults["cpu:package-0"].startswith("RAPL counter went backwards without wrapping")
    assert later.values == {"cpu:package-0": 2.5}
    assert later.faults == {}


def test_a_wrap_is_believed_when_the_time_since_the_last_read_allows_it(
    fake: FakePowercap, clock: FakeClock
) -> None:
    fake.add_zone("intel-rapl:0", "package-0", energy_uj=50_000_000)
    meter = RaplMeter(fake.class_root, environ={}, clock=clock)
    meter.open()

    # The same drop after 200 s (a sampler thread starved that long): ~262 kJ at ~1.3 kW, a wrap.
    fake.set_energy("intel-rapl:0", 12_000_000)
    clock.now += 200
    reading = meter.read()

    assert reading.faults == {}
    assert reading.values == {"cpu:package-0": (DEFAULT_RANGE_UJ + 1 - 38_000_000) / 1e6}


def test_a_package_without_its_counter_at_open_is_reported_and_its_dram_still_read(
    fake: FakePowercap, clock: FakeClock
) -> None:
    fake.add_zone("intel-rapl:0", "package-0", energy_uj=1_000_000)
    fake.add_zone("intel-rapl:0:0", "dram", energy_uj=1_000_000)
    fake.remove("intel-rapl:0")  # the package's energy_uj is gone before the run starts
    meter = RaplMeter(fake.class_root, environ={}, clock=clock)

    assert [c.id for c in meter.open()] == ["dram:package-0"]
    (missing,) = meter.unavailable
    assert missing.degrades and "(package-0) has no energy_uj counter" in missing.reason
    fake.add_energy("intel-rapl:0:0", 250_000)
    clock.now += 1
    assert meter.read().values == {"dram:package-0": 0.25}
