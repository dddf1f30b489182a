from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHECK = """
import sys, threading
import carbon_callbacks
heavy = {"requests", "psutil", "pynvml", "numpy", "torch", "lightning", "keras", "transformers"}
loaded = sorted(heavy & set(sys.modules))
assert not loaded, loaded
assert threading.active_count() == 1, threading.enumerate()
assert carbon_callbacks.__version__
carbon_callbacks.Tracker  # resolving a public name stays light too
loaded = sorted(heavy & set(sys.modules))
assert not loaded, loaded
print("ok")
"""


def test_import_is_cheap_and_silent() -> None:
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", CHECK],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ok\n"
    assert result.stderr == ""


def test_public_names_resolve() -> None:
    import carbon_callbacks

    for name in carbon_callbacks.__all__:
        assert getattr(carbon_callbacks, name) is not None
    assert "Tracker" in dir(carbon_callbacks)
