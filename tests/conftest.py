from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.meters.fake_powercap import FakePowercap

if TYPE_CHECKING:
    from tests.browser import HeadlessChromium

CHILD_TIMEOUT_S = 600
"""A hang guard, never a speed check, for child interpreters (a training that imports torch and
Keras, a simulated week): seconds on an idle machine, up to about a minute seen on two cores
beside three busy loops."""


def sampler_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "carbon-callbacks-sampler"]


@pytest.fixture(autouse=True)
def _no_thread_left_behind() -> Iterator[None]:
    """Every test must leave no sampler thread running."""
    yield
    assert sampler_threads() == []


@pytest.fixture
def powercap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakePowercap:
    """A fake one-socket powercap tree (package + dram), made the tracker's powercap root."""
    tree = FakePowercap(tmp_path / "fs")
    tree.add_zone("intel-rapl:0", "package-0", energy_uj=1_000_000)
    tree.add_zone("intel-rapl:0:0", "dram", energy_uj=500_000)
    monkeypatch.setenv("CARBON_CALLBACKS_POWERCAP_ROOT", str(tree.class_root))
    return tree


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No run logs or caches outside tmp; no user setting or token leaks into a test."""
    import os

    for name in list(os.environ):
        if name.startswith("CARBON_CALLBACKS_") or name == "ELECTRICITYMAPS_API_TOKEN":
            monkeypatch.delenv(name)
    monkeypatch.setenv("CARBON_CALLBACKS_OUTPUT_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("CARBON_CALLBACKS_CACHE_DIR", str(tmp_path / "cache"))
    # The test machine may be a cloud VM: no test asks its metadata service unless it says so.
    monkeypatch.setenv("CARBON_CALLBACKS_DMI_ROOT", str(tmp_path / "no-dmi"))


SESSION_SECRETS_CHECK = ("test_secrets.py", "test_nothing_the_session_wrote_holds_a_test_token")
"""The test that greps everything the session wrote for test tokens: (module file, name)."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the session-wide secrets check last, once every other test has written its files."""
    last = [item for item in items if (item.path.name, item.name) == SESSION_SECRETS_CHECK]
    items[:] = [item for item in items if item not in last] + last


@pytest.fixture(scope="module")
def browser() -> Iterator[HeadlessChromium]:
    """Headless system Chromium, one session per test module; skips where it is not installed."""
    from tests.browser import MISSING_MESSAGE, HeadlessChromium, find_chromium

    paths = find_chromium()
    if paths is None:
        pytest.skip(MISSING_MESSAGE)
    chromium = HeadlessChromium(*paths)
    yield chromium
    chromium.quit()
