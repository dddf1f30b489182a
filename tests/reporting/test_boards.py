from __future__ import annotations

import pytest

from carbon_callbacks.reporting.boards import (
    Accelerator,
    UnknownHardwareError,
    accelerators,
    find_accelerators,
    hardware_energy,
)

VENDOR_PAGES = (
    "https://www.nvidia.com/",
    "https://www.amd.com/",
    "https://www.intel.com/",
    "https://habana.ai/",
)


def one_board(name: str) -> Accelerator:
    boards = find_accelerators(name)
    assert len(boards) == 1, boards
    return boards[0]


def test_every_row_cites_a_vendor_page_and_has_a_power() -> None:
    boards = accelerators()
    names = [board.name for board in boards]
    assert len(names) == len(set(names)) >= 35
    for board in boards:
        assert 50 <= board.board_power_w <= 1400, board
        assert board.source_url.startswith(VENDOR_PAGES), board
        assert board.power_kind, board
    unverified = {board.name for board in boards if not board.verified}
    # GPUS.md says how each of these was sourced and why it is not marked checked
    assert unverified == {"A10", "B300", "GB200", "RTX 3090", "RTX A5000", "MI325X", "Gaudi 2"}


def test_every_name_and_alias_names_its_own_board_alone() -> None:
    for board in accelerators():
        for spelling in (board.name, *board.aliases):
            assert find_accelerators(spelling) == (board,), spelling


def test_boards_measured_per_module_or_superchip_say_what_one_counts() -> None:
    for name in ("MI250", "MI250X"):
        assert "per OAM module (two GCDs" in one_board(name).power_kind
    gb200 = one_board("GB200")
    assert gb200.board_power_w == 2700 / 2
    assert "2 GPUs + 1 Grace CPU" in gb200.power_kind and "share included" in gb200.power_kind


def test_known_figures() -> None:
    expected = {
        "V100 SXM2": 300,
        "A100 SXM 80GB": 400,
        "A100 PCIe 40GB": 250,
        "H100 SXM": 700,
        "H100 PCIe": 350,
        "H200 NVL": 600,
        "L4": 72,
        "L40S": 350,
        "T4": 70,
        "RTX 4090": 450,
        "RTX 3090": 350,
        "RTX 5090": 575,
        "RTX A5000": 230,
        "MI100": 300,
        "MI210": 300,
        "MI250": 560,
        "MI250X": 560,
        "MI300X": 750,
        "MI325X": 1000,
        "Gaudi 2": 600,
        "Gaudi 3 OAM": 900,
        "Gaudi 3 PCIe": 600,
        "B300": 1100,
    }
    assert {name: one_board(name).board_power_w for name in expected} == expected


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("H100 SXM", "H100 SXM"),
        ("h100-sxm", "H100 SXM"),
        ("NVIDIA H100 80GB HBM3", "H100 SXM"),  # what NVML reports for the SXM board
        ("Tesla V100-SXM2-32GB", "V100 SXM2"),
        ("nvidia a100-sxm4-80gb", "A100 SXM 80GB"),
        ("l40", "L40"),  # exact beats the longer L40S
        ("L40s", "L40S"),
        ("a10", "A10"),
        ("rtx 6000 ada", "RTX 6000 Ada"),
        ("a6000", "RTX A6000"),  # in order: not the RTX 6000 Ada's "6000 ... Ada"
        ("GeForce RTX 4090", "RTX 4090"),
        ("AMD Instinct MI300X", "MI300X"),  # what amdsmi's market_name says
        ("mi300", "MI300X"),  # the only board it fits (the MI325X is not a "300")
        ("mi250", "MI250"),  # exact beats the longer MI250X
        ("Intel Gaudi 2", "Gaudi 2"),
        ("HL-325L", "Gaudi 3 OAM"),
        ("NVIDIA GB200", "GB200"),
        ("b200", "B200"),  # not the GB200
    ],
)
def test_names_match_case_and_punctuation_insensitively(query: str, name: str) -> None:
    assert one_board(query).name == name


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("A100 80GB", {"A100 SXM 80GB", "A100 PCIe 80GB"}),  # was the PCIe board alone
        ("a100", {"A100 SXM 40GB", "A100 SXM 80GB", "A100 PCIe 40GB", "A100 PCIe 80GB"}),
        ("A100 40GB", {"A100 SXM 40GB", "A100 PCIe 40GB"}),
        ("h100", {"H100 SXM", "H100 PCIe", "H100 NVL"}),
        ("V100 32GB", {"V100 SXM2", "V100 PCIe"}),
        ("rtx 6000", {"RTX 6000 Ada", "RTX A6000"}),  # both are sold as an "RTX 6000"
        ("gaudi", {"Gaudi 2", "Gaudi 3 OAM", "Gaudi 3 PCIe"}),
        ("Gaudi 3", {"Gaudi 3 OAM", "Gaudi 3 PCIe"}),
    ],
)
def test_a_name_that_fits_several_boards_gives_them_all(query: str, names: set[str]) -> None:
    boards = find_accelerators(query)
    assert {board.name for board in boards} == names
    assert len(boards) == len(names)


def test_a_name_that_fits_several_boards_gives_the_range_over_them() -> None:
    a100 = hardware_energy("A100", 8, 10.0)
    assert a100.board_power_w == (250.0, 400.0)
    assert a100.energy_kwh_range == pytest.approx((20.0, 32.0))
    assert a100.energy_kwh == pytest.approx(26.0)  # the middle of the range
    assert a100.subject() == "8 x A100 (250-400 W depending on the variant), 10 h"
    assumptions = a100.assumptions()
    assert assumptions[0].startswith("8 x A100: the name fits 4 boards, 250-400 W each")
    assert (
        "variant A100 PCIe 40GB: 250 W (max thermal design power, https://www.nvidia"
        in (assumptions[3])
    )
    data = a100.to_dict()
    assert data["gpu"] is None and data["name_given"] == "A100"
    assert [variant["name"] for variant in data["variants"]] == [  # type: ignore[attr-defined]
        "A100 SXM 40GB",
        "A100 SXM 80GB",
        "A100 PCIe 40GB",
        "A100 PCIe 80GB",
    ]
    assert (data["board_power_w_low"], data["board_power_w"], data["board_power_w_high"]) == (
        250.0,
        325.0,
        400.0,
    )
    assert (data["energy_kwh_low"], data["energy_kwh_high"]) == pytest.approx((20.0, 32.0))


def test_a100_80gb_is_not_the_pcie_board_alone() -> None:
    """It picked the PCIe 80GB board (300 W) though an SXM 80GB board (400 W) exists."""
    energy = hardware_energy("A100 80GB", 1, 1.0)
    assert energy.energy_kwh_range == pytest.approx((0.3, 0.4))
    assert energy.energy_kwh == pytest.approx(0.35)


def test_variants_of_one_power_give_one_figure_and_still_list_them() -> None:
    sxm = hardware_energy("A100 SXM", 2, 1.0)
    assert sxm.energy_kwh_range == (0.8, 0.8) and sxm.energy_kwh == 0.8
    assert sxm.subject() == "2 x A100 SXM (400 W for each of its 2 variants), 1 h"
    assert len(sxm.to_dict()["variants"]) == 2  # type: ignore[arg-type]


def test_an_exact_name_is_one_board_and_its_range_is_its_figure() -> None:
    exact = hardware_energy("H100 SXM", 8, 24.0, cpu_watts=400.0)
    assert exact.energy_kwh_range == (exact.energy_kwh, exact.energy_kwh)
    assert exact.subject() == "8 x H100 SXM (700 W) and 400 W for the rest, 24 h"
    data = exact.to_dict()
    assert data["gpu"] == data["variants"][0]  # type: ignore[index]
    assert data["board_power_w_low"] == data["board_power_w_high"] == 700.0


def test_an_unknown_name_suggests_close_ones() -> None:
    with pytest.raises(UnknownHardwareError, match="did you mean 'H100 SXM'"):
        find_accelerators("H1000 SXM")
    with pytest.raises(UnknownHardwareError, match="did you mean 'MI300X'"):
        find_accelerators("MI3000X")
    with pytest.raises(UnknownHardwareError, match="unknown GPU 'TPU v5e'; known: V100 SXM2"):
        find_accelerators("TPU v5e")


def test_energy_is_count_times_board_power_times_utilization_times_hours() -> None:
    full = hardware_energy("V100 SXM2", 8, 10.0)
    assert full.energy_kwh == pytest.approx(8 * 300 * 10 / 1000)
    assumptions = full.assumptions()
    assert "8 x V100 SXM2 at 300 W each" in assumptions[0]
    assert "nvidia.com" in assumptions[0]
    assert "the default: an upper bound" in assumptions[1]
    assert "not counted" in assumptions[-1]

    part = hardware_energy("V100 SXM2", 8, 10.0, utilization=0.5, cpu_watts=200.0)
    assert part.energy_kwh == pytest.approx(8 * 300 * 0.5 * 10 / 1000 + 200 * 10 / 1000)
    assert "upper bound" not in part.assumptions()[1]
    assert "200 W" in part.assumptions()[-1]
    assert part.to_dict()["gpu"] == {
        "name": "V100 SXM2",
        "board_power_w": 300.0,
        "power_kind": "max power consumption",
        "source_url": "https://www.nvidia.com/en-us/data-center/v100/",
        "verified": True,
    }


def test_an_unverified_figure_says_so_in_the_assumptions() -> None:
    assert "not re-checked" in hardware_energy("A10", 1, 1.0).assumptions()[0]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"count": 0}, "--count 8"),
        ({"hours": -1.0}, "--hours 24"),
        ({"hours": float("nan")}, "--hours 24"),
        ({"utilization": 1.5}, "--utilization 0.7"),
        ({"utilization": 0.0}, "--utilization 0.7"),
        ({"cpu_watts": -5.0}, "cpu_watts=200"),
    ],
)
def test_out_of_range_inputs_say_what_to_write(kwargs: dict[str, float], match: str) -> None:
    arguments: dict[str, float] = {"count": 1, "hours": 1.0} | kwargs
    with pytest.raises(ValueError, match=match):
        hardware_energy("T4", **arguments)  # type: ignore[arg-type]
