"""The Markdown table the framework overhead benchmarks print: whole steps, then the step hook.

Shared by ``bench_lightning.py`` and ``bench_keras.py`` (run as scripts from the repository root,
so this folder is on ``sys.path``).
"""

from __future__ import annotations

Row = tuple[str, str, str, str]


def step_rows(median_us: dict[str, float], hook_ns: dict[str, float], hook: str) -> list[Row]:
    """Rows for the whole-step medians of the three variants and the direct hook-call times."""
    none, empty, ours = median_us["none"], median_us["empty"], median_us["ours"]
    return [
        ("fit step, no callback", f"{none:.1f} us", "1.000", ""),
        ("fit step, empty callback", f"{empty:.1f} us", f"{empty / none:.3f}", ""),
        ("fit step, CarbonCallback", f"{ours:.1f} us", f"{ours / none:.3f}",
         f"{ours - empty:+.1f} us vs empty (noise-limited)"),
        (f"{hook}, direct call, empty", f"{hook_ns['empty']:.0f} ns", "", ""),
        (f"{hook}, direct call, CarbonCallback", f"{hook_ns['ours']:.0f} ns", "",
         f"{(hook_ns['ours'] - hook_ns['empty']) / 1000:+.2f} us vs empty (target <= 2 us)"),
    ]  # fmt: skip


def markdown(rows: list[Row]) -> str:
    """The rows under the benchmarks' common header."""
    lines = ["| what | median | ratio to none | note |", "| --- | --- | --- | --- |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
