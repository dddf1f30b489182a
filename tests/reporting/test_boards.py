from __future__ import annotations

import pytest

from carbon_callbacks.reporting.boards import (
    UnknownHardwareError,
    accelerators,
    find_accelerator,
    hardware_energy,
)


def test_every_row_cites_a_vendor_page_and_has_a_power() -> None:
    boards = accelerators()
    names = [board.name for board in boards]
    assert len(names) == len(set(names)) >= 20
    for board in boards:
        assert 50 <= board.board_power_w <= 1200, board
        assert board.source_url.startswith("https://www.nvidia.com/"), board
        assert board.power_kind, board
    unverified = {board.name for board in boards if not board.verified}
    assert unverified == {"A10"}


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
    }
    assert {name: find_accelerator(name).board_power_w for name in expected} == expected


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
        ("rtx 6000", "RTX 6000 Ada"),  # a unique prefix
        ("GeForce RTX 4090", "RTX 4090"),
    ],
)
def test_names_match_case_and_punctuation_insensitively(query: str, name: str) -> None:
    assert find_accelerator(query).name == name


def test_an_ambiguous_name_lists_the_boards_it_fits() -> None:
    with pytest.raises(UnknownHardwareError) as caught:
        find_accelerator("h100")
    message = str(caught.value)
    assert "'H100 SXM' (700 W)" in message and "'H100 PCIe' (350 W)" in message
    assert "'H100 NVL'" in message and "--gpu 'H100 SXM'" in message


def test_an_unknown_name_suggests_close_ones() -> None:
    with pytest.raises(UnknownHardwareError, match="did you mean 'H100 SXM'"):
        find_accelerator("H1000 SXM")
    with pytest.raises(UnknownHardwareError, match="unknown GPU 'MI300X'; known: V100 SXM2"):
        find_accelerator("MI300X")


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
