from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from carbon_callbacks.intensity.base import IntensitySlot
from carbon_callbacks.intensity.cache import IntensityCache, default_cache_dir

SLOTS = (
    IntensitySlot(1_700_000_000.0, 1_700_001_800.0, 120.5, False),
    IntensitySlot(1_700_001_800.0, 1_700_003_600.0, 99.0, True),
)


def test_saved_series_loads_back_exactly(tmp_path: Path) -> None:
    cache = IntensityCache(tmp_path / "c", "UK Carbon Intensity API", "GB RG10")
    assert cache.load() is None
    cache.save(1_700_000_500.0, SLOTS)
    assert cache.path.name == "intensity-uk-carbon-intensity-api-gb-rg10.json"
    loaded = cache.load()
    assert loaded is not None
    assert loaded.fetched_unix == 1_700_000_500.0
    assert loaded.slots == SLOTS
    assert [p.name for p in cache.path.parent.iterdir()] == [cache.path.name]  # no temp left


@pytest.mark.parametrize(
    "content",
    ["", "{not json", '{"version": 99, "fetched_unix": 1, "slots": []}', '{"version": 1}', "[]"],
)
def test_unreadable_cache_is_ignored(tmp_path: Path, content: str) -> None:
    cache = IntensityCache(tmp_path, "p", "z")
    cache.path.write_text(content)
    assert cache.load() is None


def test_unwritable_folder_raises_oserror_for_the_caller_to_report(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OSError):
        IntensityCache(blocker / "sub", "p", "z").save(0.0, SLOTS)


def test_cache_folder_follows_variables(tmp_path: Path) -> None:
    assert default_cache_dir({"CARBON_CALLBACKS_CACHE_DIR": str(tmp_path)}) == tmp_path
    assert default_cache_dir({"XDG_CACHE_HOME": "/x"}) == Path("/x/carbon-callbacks")
    home = Path(os.path.expanduser("~"))
    assert default_cache_dir({}) == home / ".cache" / "carbon-callbacks"


def test_file_holds_only_slots(tmp_path: Path) -> None:
    cache = IntensityCache(tmp_path, "Electricity Maps", "DE")
    cache.save(5.0, SLOTS)
    document = json.loads(cache.path.read_text())
    assert set(document) == {"version", "fetched_unix", "slots"}


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400", "9" * 30])
def test_a_number_no_figure_can_be_refuses_the_file(tmp_path: Path, number: str) -> None:
    cache = IntensityCache(tmp_path, "p", "z")
    cache.path.write_text(
        f'{{"version": 1, "fetched_unix": 1, "slots": [[0, 1800, {number}, false]]}}'
    )
    assert cache.load() is None
