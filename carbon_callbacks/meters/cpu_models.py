"""Which CPU this is (/proc/cpuinfo) and its TDP per core (the Green Algorithms CPU table).

The CPU estimate needs watts per busy core. A CPU's TDP divided by the cores of that chip, from
the table in ``data/TDP_cpu.csv`` (Green Algorithms, CC BY 4.0; see ``data/CPUS.md``), is a
better figure than one default for every machine. The core count is always the table's: inside a
VM, /proc/cpuinfo shows the VM's virtual topology, not the chip's, so TDP / visible cores would
be far too high.

Names are matched exactly after normalising away what the kernel adds and the table leaves out
(``Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz`` -> ``xeon gold 6248``; ``AMD EPYC 7763 64-Core
Processor`` -> ``epyc 7763``); a name that is not in the table after that gets no figure, never
the figure of a near miss (``Xeon Platinum 8260L`` is not an ``8260``).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re

CPUINFO_PATH = "/proc/cpuinfo"
TABLE_NAME = "Green Algorithms table"

_MARKS = re.compile(r"\((?:r|tm)\)|[®™]", re.IGNORECASE)
"""Trademark marks, replaced by a space (``Core(TM)2 Quad`` is the table's ``Core 2 Quad``)."""
_DROPPED_WORDS = frozenset({"intel", "amd", "cpu", "processor"})
"""Vendor and filler words the kernel's names carry and the table's mostly do not."""
_DROPPED_PATTERNS = (
    re.compile(r"\w+-core"),  # "64-Core", "Eight-Core"
    re.compile(r"\d+(?:st|nd|rd|th)"),  # the "12th" of "12th Gen Intel(R) Core(TM) i9-12900K"
    re.compile(r"gen"),
    re.compile(r"0"),  # first-generation Xeon E5s read "E5-2670 0"; the table writes "E5-2670"
)


ROW_NAME_FIXES = {"AMD 7552": "AMD EPYC 7552"}
"""Rows named without their family: the ``AMD 7552`` row's source, AMD's EPYC 7002 datasheet,
gives the EPYC 7552 (48 cores, 200 W), and no kernel writes the name without ``EPYC``. The
figures are the table's; only the name the row is found by is corrected."""


@dataclasses.dataclass(frozen=True)
class CpuInfo:
    """What /proc/cpuinfo says about the processors this system shows.

    Attributes:
        model_name: The ``model name`` of the processors; several different ones joined with
            ``" + "``; None where the file names none (most ARM kernels).
        sockets: Distinct ``physical id`` values; None where the file has none.
        cores: Distinct (``physical id``, ``core id``) pairs; None where the file has none.
        threads: ``processor`` entries (logical CPUs).
    """

    model_name: str | None
    sockets: int | None
    cores: int | None
    threads: int

    @property
    def threads_per_core(self) -> float | None:
        """Logical CPUs per visible core (2 with SMT shown); None when cores are unknown."""
        return self.threads / self.cores if self.cores else None


@dataclasses.dataclass(frozen=True)
class CpuSpec:
    """One row of the CPU table: a model, its TDP and its cores."""

    model: str
    tdp_w: float
    cores: int
    source_url: str

    @property
    def watts_per_core(self) -> float:
        """TDP / cores: the share of the rated power per busy core."""
        return self.tdp_w / self.cores


def parse_cpuinfo(text: str) -> CpuInfo:
    """The model name and counts in the text of /proc/cpuinfo (any architecture's layout)."""
    models: list[str] = []
    sockets: set[str] = set()
    cores: set[tuple[str, str]] = set()
    threads = 0
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            key, colon, value = line.partition(":")
            if colon:
                fields.setdefault(key.strip().lower(), value.strip())
        if "processor" not in fields:
            continue  # e.g. the trailing "Hardware"/"Revision" block of ARM kernels
        threads += 1
        model = fields.get("model name")
        if model and model not in models:
            models.append(model)
        if "physical id" in fields:
            sockets.add(fields["physical id"])
            if "core id" in fields:
                cores.add((fields["physical id"], fields["core id"]))
    return CpuInfo(
        model_name=" + ".join(models) or None,
        sockets=len(sockets) or None,
        cores=len(cores) or None,
        threads=threads,
    )


def read_cpuinfo(path: str | os.PathLike[str] = CPUINFO_PATH) -> CpuInfo | None:
    """The processors described by ``path``; None when it cannot be read."""
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            return parse_cpuinfo(file.read())
    except OSError:
        return None


def normalise_model(name: str) -> tuple[str, ...]:
    """The words of a CPU name that identify the model, lower case.

    ``"Intel(R) Xeon(R) CPU E5-2699 v4 @ 2.20GHz"`` -> ``("xeon", "e5-2699", "v4")``.
    """
    text = _MARKS.sub(" ", name).casefold()
    text = text.split("@")[0]  # the clock: "@ 2.50GHz"
    text = re.sub(r"\s+-", "-", text)  # "FX(tm)-8350" -> "fx -8350" -> "fx-8350"
    words = text.replace(",", " ").split()
    if "with" in words:  # "Ryzen 5 3500U with Radeon Vega Mobile Gfx"
        words = words[: words.index("with")]
    return tuple(
        word
        for word in words
        if word not in _DROPPED_WORDS
        and not any(pattern.fullmatch(word) for pattern in _DROPPED_PATTERNS)
    )


@functools.cache
def cpu_table() -> dict[tuple[str, ...], CpuSpec]:
    """The table's rows with a TDP and a core count, by normalised name (read on first use)."""
    import csv
    import io
    from importlib import resources

    text = (resources.files("carbon_callbacks.meters") / "data" / "TDP_cpu.csv").read_text("utf-8")
    lines = text.splitlines()[1:]  # the first line gives units, the second the column names
    table: dict[tuple[str, ...], CpuSpec] = {}
    for row in csv.DictReader(io.StringIO("\n".join(lines))):
        if not row["TDP"] or not row["n_cores"]:
            continue  # "Any": the calculator's default, no chip
        model = row["model"].strip()
        spec = CpuSpec(
            model=ROW_NAME_FIXES.get(model, model),
            tdp_w=float(row["TDP"]),
            cores=int(row["n_cores"]),
            source_url=row["source"].strip(),
        )
        table.setdefault(normalise_model(spec.model), spec)
    return table


def find_cpu(model_name: str) -> CpuSpec | None:
    """The table's row for ``model_name`` (as /proc/cpuinfo writes it); None if not there."""
    words = normalise_model(model_name)
    return cpu_table().get(words) if words else None
