from __future__ import annotations

import csv
import hashlib
import io
from importlib import resources
from pathlib import Path

import pytest

from carbon_callbacks.meters.cpu_models import (
    ROW_NAME_FIXES,
    CpuInfo,
    cpu_table,
    find_cpu,
    normalise_model,
    parse_cpuinfo,
    read_cpuinfo,
)
from tests.meters.cpuinfo_samples import (
    EPYC_7763_VM,
    EPYC_UNNAMED_VM,
    GRAVITON2_ARM64,
    RASPBERRY_PI_ARMV7,
    XEON_GOLD_6248_TWO_SOCKETS,
)

TABLE_SHA256 = "9daea675bc84eaea3635f9d76bc0ed25d9f2fb3ce2e1025c9bacb0c1e9cc8e17"


def test_two_socket_intel_server_with_hyper_threading() -> None:
    info = parse_cpuinfo(XEON_GOLD_6248_TWO_SOCKETS)
    assert info == CpuInfo("Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz", 2, 40, 80)
    assert info.threads_per_core == 2


def test_amd_vm_shows_its_own_topology() -> None:
    info = parse_cpuinfo(EPYC_7763_VM)
    assert info == CpuInfo("AMD EPYC 7763 64-Core Processor", 1, 2, 4)


def test_arm64_names_no_model_and_no_topology() -> None:
    assert parse_cpuinfo(GRAVITON2_ARM64) == CpuInfo(None, None, None, 2)


def test_armv7_model_name_is_read_and_the_board_block_is_no_processor() -> None:
    assert parse_cpuinfo(RASPBERRY_PI_ARMV7) == CpuInfo(
        "ARMv7 Processor rev 3 (v7l)", None, None, 2
    )


def test_different_models_are_all_named_so_none_of_them_is_looked_up() -> None:
    info = parse_cpuinfo(EPYC_7763_VM + EPYC_UNNAMED_VM)
    assert info.model_name == "AMD EPYC 7763 64-Core Processor + AMD EPYC"
    assert find_cpu(info.model_name) is None


def test_unreadable_file_is_none(tmp_path: Path) -> None:
    assert read_cpuinfo(tmp_path / "missing") is None
    (tmp_path / "cpuinfo").write_text(XEON_GOLD_6248_TWO_SOCKETS)
    assert read_cpuinfo(tmp_path / "cpuinfo") == parse_cpuinfo(XEON_GOLD_6248_TWO_SOCKETS)


@pytest.mark.parametrize(
    ("kernel_name", "table_model"),
    [
        ("Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz", "Xeon Gold 6248"),
        ("Intel(R) Xeon(R) Platinum 8260 CPU @ 2.40GHz", "Xeon Platinum 8260"),
        ("Intel(R) Xeon(R) CPU E5-2699 v4 @ 2.20GHz", "Xeon E5-2699 v4"),
        ("Intel(R) Xeon(R) CPU E5-2670 0 @ 2.60GHz", "Xeon E5-2670"),
        ("Intel(R) Xeon(R) CPU E5-2670 v2 @ 2.50GHz", "Xeon E5-2670 v2"),
        ("Intel(R) Xeon(R) CPU           L5640  @ 2.27GHz", "Xeon L5640"),
        ("Intel(R) Core(TM)2 Quad CPU    Q6600  @ 2.40GHz", "Core 2 Quad Q6600"),
        ("Intel(R) Core(TM) i7-8700K CPU @ 3.70GHz", "Core i7-8700K"),
        ("12th Gen Intel(R) Core(TM) i9-12900K", "Core i9-12900K"),
        ("11th Gen Intel(R) Core(TM) i5-1145G7 @ 2.60GHz", "Core i5-1145G7"),
        ("AMD EPYC 7763 64-Core Processor", "AMD EPYC 7763"),
        ("AMD EPYC 7H12 64-Core Processor", "AMD EPYC 7H12"),
        ("AMD EPYC 7552 48-Core Processor", "AMD EPYC 7552"),  # the table writes "AMD 7552"
        ("AMD Ryzen 9 3900X 12-Core Processor", "Ryzen 9 3900X"),
        ("AMD Ryzen Threadripper 3990X 64-Core Processor", "Ryzen Threadripper 3990X"),
        ("AMD Ryzen 5 3500U with Radeon Vega Mobile Gfx", "Ryzen 5 3500U"),
        ("AMD FX(tm)-8350 Eight-Core Processor", "FX-8350"),
    ],
)
def test_kernel_names_find_their_table_row(kernel_name: str, table_model: str) -> None:
    spec = find_cpu(kernel_name)
    assert spec is not None and spec.model == table_model


@pytest.mark.parametrize(
    "kernel_name",
    [
        "AMD EPYC",  # this project's VM: no model number
        "AMD EPYC 7R13 48-Core Processor",  # a cloud variant the table does not have
        "Intel(R) Xeon(R) Platinum 8260L CPU @ 2.40GHz",  # not the 8260
        "Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz",
        "Intel(R) Core(TM) i9-10900 CPU @ 2.80GHz",  # not the 10900K
        "Intel(R) Xeon(R) CPU E5-2699 @ 2.30GHz",  # neither v3 nor v4
        "ARMv7 Processor rev 3 (v7l)",
        "Intel(R) CPU",
        "",
    ],
)
def test_names_not_in_the_table_find_nothing(kernel_name: str) -> None:
    assert find_cpu(kernel_name) is None


def test_table_figures_are_tdp_over_the_chips_cores() -> None:
    epyc = find_cpu("AMD EPYC 7763 64-Core Processor")
    assert epyc is not None and (epyc.tdp_w, epyc.cores) == (280.0, 64)
    assert epyc.watts_per_core == 280 / 64
    xeon = find_cpu("Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz")
    assert xeon is not None and xeon.watts_per_core == 150 / 20


def test_every_chip_in_the_table_is_found_by_its_own_name_and_none_is_shadowed() -> None:
    text = (resources.files("carbon_callbacks.meters") / "data" / "TDP_cpu.csv").read_text("utf-8")
    rows = list(csv.DictReader(io.StringIO("\n".join(text.splitlines()[1:]))))
    chips = [row for row in rows if row["TDP"] and row["n_cores"]]
    assert len(chips) == len(cpu_table()) == 94  # no two rows normalise to the same words
    for row in chips:
        name = ROW_NAME_FIXES.get(row["model"].strip(), row["model"].strip())
        spec = find_cpu(name)
        assert spec is not None and spec.model == name
        assert spec.tdp_w == float(row["TDP"]) and spec.cores == int(row["n_cores"])
        # the file's own ratio, rounded to 0.1 W, agrees with ours
        assert spec.watts_per_core == pytest.approx(float(row["TDP_per_core"]), abs=0.0501)


def test_the_packaged_table_is_the_cited_file_unmodified() -> None:
    data = (resources.files("carbon_callbacks.meters") / "data" / "TDP_cpu.csv").read_bytes()
    assert hashlib.sha256(data).hexdigest() == TABLE_SHA256
    sources = (resources.files("carbon_callbacks.meters") / "data" / "CPUS.md").read_text("utf-8")
    assert TABLE_SHA256 in sources and "CC BY 4.0" in sources


def test_normalised_words() -> None:
    assert normalise_model("Intel(R) Xeon(R) CPU E5-2699 v4 @ 2.20GHz") == ("xeon", "e5-2699", "v4")
    assert normalise_model("AMD EPYC 7763 64-Core Processor") == ("epyc", "7763")


def test_the_table_is_read_on_first_lookup_not_at_import() -> None:
    import subprocess
    import sys

    code = (
        "import importlib.resources as resources\n"
        "calls = []\n"
        "real = resources.files\n"
        "resources.files = lambda *a: calls.append(a) or real(*a)\n"
        "import carbon_callbacks.meters.cpu_estimate\n"
        "assert calls == [], calls\n"
        "from carbon_callbacks.meters.cpu_models import find_cpu\n"
        "assert find_cpu('AMD EPYC 7763 64-Core Processor') is not None\n"
        "assert calls, 'the table was not read through importlib.resources'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
