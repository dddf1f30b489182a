"""The package layout's import rules, checked from the source so the layout cannot rot.

Each folder is one stage of the data path, and imports point one way along it (see
docs/ARCHITECTURE.md): meters know nothing of runs, tracking knows no framework and no report,
training imports no reporting or CLI module, reporting reads run logs and figures and never a
meter. Every import is checked, also those inside functions (the lazy ones).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "carbon_callbacks"
ADAPTERS = ("keras", "lightning", "pytorch_lightning", "transformers")

# Which parts of the package each part may import (besides itself and the standard library).
ALLOWED: dict[str, set[str]] = {
    "_internal": set(),
    "_version": set(),
    "meters": {"_internal"},
    "intensity": {"_internal", "_version"},
    "runlog": {"_internal", "_version", "meters.base", "intensity.base", "tracking.measurement"},
    "tracking": {"_internal", "_version", "meters", "intensity", "runlog"},
    "training": {"_internal", "_version", "meters.base", "intensity.base", "tracking"},
    # figures and the types that carry them: measurements, channels, a training's outcome
    "reporting": {
        "_internal",
        "_version",
        "meters.base",
        "intensity",
        "runlog",
        "tracking.measurement",
        "training.outcome",
    },
    "adapters": {"_internal", "training", "reporting.text"},
}


def part_of(module: str) -> str:
    """The part a module (dotted, without the package) belongs to."""
    top = module.split(".")[0]
    if top in ADAPTERS:
        return "adapters"
    return top


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, module inside the package without its prefix) for every import in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            names = [node.module]
            if node.module == "carbon_callbacks":  # from carbon_callbacks import sub
                names = [f"carbon_callbacks.{alias.name}" for alias in node.names]
        else:
            continue
        found += [
            (node.lineno, name.removeprefix("carbon_callbacks."))
            for name in names
            if name.startswith("carbon_callbacks.")
        ]
    return found


def allowed(importer: str, imported: str) -> bool:
    part = part_of(importer)
    if part not in ALLOWED:  # cli, __init__, __main__: the top may use anything
        return True
    if part_of(imported) == part:
        return True
    return any(imported == rule or imported.startswith(rule + ".") for rule in ALLOWED[part])


def modules() -> list[tuple[str, Path]]:
    return [
        (".".join(path.relative_to(PACKAGE).with_suffix("").parts), path)
        for path in sorted(PACKAGE.rglob("*.py"))
    ]


@pytest.mark.parametrize(("module", "path"), modules(), ids=[name for name, _ in modules()])
def test_imports_point_one_way_along_the_data_path(module: str, path: Path) -> None:
    wrong = [
        f"line {line}: {module} imports {imported}"
        for line, imported in imports_of(path)
        if not allowed(module, imported)
    ]
    assert wrong == []


def test_the_rules_catch_an_import_against_the_path(tmp_path: Path) -> None:
    source = tmp_path / "bad.py"
    source.write_text(
        "def f():\n    from carbon_callbacks.reporting.text import format_kwh\n"
        "import carbon_callbacks.tracking.sampler\n"
    )
    assert sorted(imports_of(source)) == [(2, "reporting.text"), (3, "tracking.sampler")]
    assert not allowed("training.monitor", "reporting.text")
    assert not allowed("meters.nvml", "tracking.sampler")
    assert not allowed("reporting.report", "meters.nvml")
    assert allowed("reporting.report", "meters.base")


def test_no_module_is_over_the_size_bound() -> None:
    """About 500 lines a module: past that, a module is doing more than one thing."""
    long = {
        name: len(path.read_text().splitlines())
        for name, path in modules()
        if len(path.read_text().splitlines()) > 560
    }
    assert long == {}
