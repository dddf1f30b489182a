from __future__ import annotations

from pathlib import Path

from carbon_callbacks.meters.cpu_estimate import CpuEstimateMeter
from carbon_callbacks.meters.host import HostMeter
from carbon_callbacks.meters.rapl import RaplMeter
from tests.meters.fake_powercap import DEFAULT_RANGE_UJ, FakePowercap


def test_readable_rapl_is_used_and_the_estimate_is_not(tmp_path: Path) -> None:
    tree = FakePowercap(tmp_path)
    tree.add_zone("intel-rapl:0", "package-0")
    host = HostMeter(RaplMeter(root=tree.class_root), CpuEstimateMeter())
    assert [c.id for c in host.open()] == ["cpu:package-0"]
    assert host.max_interval_s == DEFAULT_RANGE_UJ / 1e6 / 1000 / 2
    tree.add_energy("intel-rapl:0", 5_000_000)
    assert host.read().values == {"cpu:package-0": 5.0}
    host.close()


def test_no_rapl_falls_back_to_the_estimate(tmp_path: Path) -> None:
    host = HostMeter(RaplMeter(root=tmp_path / "missing"), CpuEstimateMeter())
    channels = host.open()
    assert [(c.id, c.method) for c in channels] == [("cpu:estimate", "estimated")]
    assert host.max_interval_s is None
    assert [u.source for u in host.unavailable] == ["rapl"]
    assert "cpu:estimate" in host.read().values
    host.close()


def test_dram_only_rapl_keeps_dram_and_adds_the_cpu_estimate(tmp_path: Path) -> None:
    def deny_packages(path: Path) -> str:
        if path.name == "energy_uj" and path.parent.name == "intel-rapl:0":
            raise PermissionError(13, "Permission denied", str(path))
        return path.read_text().strip()

    tree = FakePowercap(tmp_path)
    tree.add_zone("intel-rapl:0", "package-0")
    tree.add_zone("intel-rapl:0:0", "dram")
    host = HostMeter(RaplMeter(root=tree.class_root, read_file=deny_packages), CpuEstimateMeter())
    assert [c.id for c in host.open()] == ["dram:package-0", "cpu:estimate"]
    assert any(u.degrades and u.fix and "udev" in u.fix for u in host.unavailable)
    host.close()


def test_without_host_level_channels_rapl_is_left_to_another_process(tmp_path: Path) -> None:
    """A rank beside the one measuring the node: RAPL (the whole socket) is not its to count."""
    tree = FakePowercap(tmp_path)
    tree.add_zone("intel-rapl:0", "package-0")
    tree.add_zone("intel-rapl:0:0", "dram")
    host = HostMeter(RaplMeter(root=tree.class_root), CpuEstimateMeter(), host_level=False)
    assert host.open() == []
    assert host.read().values == {}
    host.close()


def test_without_host_level_channels_the_estimate_of_this_process_stays(tmp_path: Path) -> None:
    """No RAPL: the rank measuring the node estimates its own process tree, so this one must too."""
    host = HostMeter(RaplMeter(root=tmp_path / "missing"), CpuEstimateMeter(), host_level=False)
    assert [(c.id, c.scope) for c in host.open()] == [("cpu:estimate", "process")]
    assert "cpu:estimate" in host.read().values
    host.close()
