"""Every ``CARBON_CALLBACKS_*`` variable is checked like the argument it stands for.

What this proves:

- the variables the package reads are all listed here (found by scanning its source), so a new
  one cannot go untested;
- a bad value (``nan``, ``inf``, ``-1``, ``1e400``, ``ten``, a non-boolean flag, a negative GPU
  index, an unknown place, a token unfit for a header, a ``file://`` URL) fails when the
  ``Tracker`` or a callback's ``TrainingMonitor`` is built, before any training, with a message
  that names the variable and its value and shows a value that works: the test sets that value and
  the construction then succeeds;
- a variable set to nothing (``VAR=`` or blanks) counts as unset, as for flags;
- a token never appears in the message about it.

The case marked ``xfail(strict=True)`` (a region without a cloud) cannot name a working value of
its own variable; see its reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from carbon_callbacks import Tracker
from carbon_callbacks.intensity.cache import CACHE_DIR_ENV, default_cache_dir
from carbon_callbacks.intensity.settings import OPTIONS
from carbon_callbacks.tracking.config import DEFAULT_OUTPUT_DIR
from carbon_callbacks.training import TrainingMonitor
from tests.secret_tokens import TOKEN

PACKAGE = Path(__file__).resolve().parents[2] / "carbon_callbacks"
PREFIX = "CARBON_CALLBACKS_"

NUMBERS = {"INTERVAL_S": 0.1, "PUE": 1.0, "CPU_WATTS": None, "INTENSITY_G_PER_KWH": None}
"""Numeric variables and the value a tracker has without them."""
FLAGS = {"WRITE_LOG", "LIVE"}
LOCATIONS = {"COUNTRY", "ZONE", "CLOUD", "REGION", "UK_POSTCODE"}
URLS: dict[str, dict[str, Any]] = {
    "UK_API_URL": {"country": "GB"},
    "ENERGIDATASERVICE_URL": {"zone": "DK-DK1"},
    "ELECTRICITYMAPS_URL": {"zone": "DE", "electricitymaps_token": TOKEN},
}
"""URL overrides and a location whose live client reads each."""
AS_WRITTEN = {"OUTPUT_DIR", "POWERCAP_ROOT", "CACHE_DIR", "RUN_NAME"}
"""Paths and labels: any text is a valid value."""
CLOUD = {"CLOUD_METADATA", "CLOUD_METADATA_URL", "DMI_ROOT"}
"""The cloud lookup's switch, address and DMI folder (checked in their own section below)."""
COVERED = {
    *NUMBERS,
    *FLAGS,
    *LOCATIONS,
    *URLS,
    *AS_WRITTEN,
    *CLOUD,
    "GPU_IDS",
    "ELECTRICITYMAPS_TOKEN",
}

Build = Callable[..., object]
BUILDERS: dict[str, Build] = {"Tracker": Tracker, "TrainingMonitor": TrainingMonitor}


def variables_in_the_package() -> set[str]:
    """``CARBON_CALLBACKS_*`` names the package reads, from its source (suffixes only).

    The location and intensity options are declared once, in ``intensity.settings.OPTIONS``;
    each one's variable is ``CARBON_CALLBACKS_<KEYWORD>``.
    """
    found: set[str] = {option.keyword.upper() for option in OPTIONS}
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        if "ENV_PREFIX" not in text and PREFIX not in text:
            continue
        found |= set(re.findall(rf'"{PREFIX}([A-Z0-9_]+)"', text))
        found |= set(re.findall(r'ENV_PREFIX \+ "([A-Z0-9_]+)"', text))
        helpers = r"(?:env_flag|env_number|env_text|_number|_text)"
        found |= {n.upper() for n in re.findall(rf'\b{helpers}\(\s*"([a-z0-9_]+)"', text)}
    return found


def example_in(message: str, variable: str) -> str:
    """The value the message says to write for ``variable``."""
    match = re.search(rf"write (?:e\.g\. )?{re.escape(variable)}=(\S+)", message)
    assert match, f"no example for {variable} in: {message}"
    return match.group(1).rstrip(";,)")


def fails_naming(
    build: Build, variable: str, value: str, monkeypatch: pytest.MonkeyPatch, **kwargs: Any
) -> str:
    """Set the variable, build, expect a ValueError naming it and its value; return the example."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError) as caught:
        build(gpu_ids=[], **kwargs)
    message = str(caught.value)
    assert f"{variable}={value!r}" in message, message
    return example_in(message, variable)


def test_every_variable_the_package_reads_is_covered_here() -> None:
    found = variables_in_the_package()
    assert found == COVERED, f"untested: {found - COVERED}; gone: {COVERED - found}"


# -- numbers --------------------------------------------------------------------------------------

BAD_NUMBERS = ["nan", "inf", "-inf", "-1", "1e400", "ten", "1,5"]


def number_cases() -> list[Any]:
    cases = []
    for name in NUMBERS:
        extra = {"PUE": ["0.5", "1e6"], "CPU_WATTS": ["0"], "INTERVAL_S": ["0"]}.get(name, [])
        for value in [*BAD_NUMBERS, *extra]:
            cases.append(pytest.param(name, value, id=f"{name}={value}"))
    return cases


@pytest.mark.parametrize(("name", "value"), number_cases())
def test_a_bad_number_fails_at_construction_with_a_working_example(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    variable = PREFIX + name
    example = fails_naming(Tracker, variable, value, monkeypatch)
    monkeypatch.setenv(variable, example)
    tracker = Tracker(gpu_ids=[])
    config = tracker.config
    read = {
        "INTERVAL_S": config.interval_s,
        "PUE": config.pue,
        "CPU_WATTS": config.cpu_watts,
        "INTENSITY_G_PER_KWH": config.intensity.g_per_kwh,
    }
    assert read[name] == float(example)


@pytest.mark.parametrize(
    ("name", "blank"), [(name, blank) for name in NUMBERS for blank in ("", "   ")]
)
def test_a_blank_number_is_unset(monkeypatch: pytest.MonkeyPatch, name: str, blank: str) -> None:
    monkeypatch.setenv(PREFIX + name, blank)
    config = Tracker(gpu_ids=[]).config
    read = {
        "INTERVAL_S": config.interval_s,
        "PUE": config.pue,
        "CPU_WATTS": config.cpu_watts,
        "INTENSITY_G_PER_KWH": config.intensity.g_per_kwh,
    }
    assert read[name] == NUMBERS[name]


# -- flags ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FLAGS))
@pytest.mark.parametrize("value", ["maybe", "2", "-1", "nan", "ten", "yes please"])
def test_a_bad_flag_fails_at_construction_with_a_working_example(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    variable = PREFIX + name
    example = fails_naming(Tracker, variable, value, monkeypatch, country="GB")
    monkeypatch.setenv(variable, example)
    Tracker(gpu_ids=[], country="GB")


@pytest.mark.parametrize(
    ("value", "expected"),
    [(" TRUE ", True), ("on", True), ("Yes", True), ("0", False), ("off", False), ("", None)],
)
def test_flags_read_their_words_and_a_blank_is_unset(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: bool | None
) -> None:
    monkeypatch.setenv(PREFIX + "LIVE", value)
    monkeypatch.setenv(PREFIX + "WRITE_LOG", value)
    config = Tracker(gpu_ids=[], country="GB").config
    assert config.intensity.live is (False if expected is None else expected)
    assert (config.output_dir is not None) is (True if expected is None else expected)


# -- GPU ids --------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["-1", "0,-2", " , -1", "GPU-8f,-3", "+1,-0001"])
def test_a_negative_gpu_index_fails_at_construction_with_a_working_example(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    variable = PREFIX + "GPU_IDS"
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError) as caught:
        Tracker()
    message = str(caught.value)
    assert f"{variable}={value!r}" in message and "negative" in message, message
    monkeypatch.setenv(variable, example_in(message, variable))
    assert Tracker().config.gpu_ids == (0, 1)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0,1", (0, 1)),
        (" 2 , GPU-8f3a ", (2, "GPU-8f3a")),
        ("MIG-1b2c,+3", ("MIG-1b2c", 3)),
        ("", ()),  # nothing, as an empty CUDA_VISIBLE_DEVICES: no GPU is measured
        ("  ", ()),
    ],
)
def test_gpu_ids_read_indices_and_uuids(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: tuple[int | str, ...]
) -> None:
    monkeypatch.setenv(PREFIX + "GPU_IDS", value)
    assert Tracker().config.gpu_ids == expected


# -- the same checks through the training callbacks -----------------------------------------------

MONITOR_CASES = [
    ("INTERVAL_S", "ten"),
    ("PUE", "nan"),
    ("CPU_WATTS", "0"),
    ("WRITE_LOG", "maybe"),
    ("LIVE", "2"),
    ("GPU_IDS", "-1"),
]


@pytest.mark.parametrize(("name", "value"), MONITOR_CASES)
def test_a_callbacks_monitor_fails_at_construction_like_the_tracker(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    variable = PREFIX + name
    monkeypatch.setenv(variable, value)
    messages = []
    for build in BUILDERS.values():
        with pytest.raises(ValueError) as caught:
            build()
        messages.append(str(caught.value))
    assert messages[0] == messages[1] and f"{variable}={value!r}" in messages[0]


@pytest.mark.slow
def test_a_lightning_callback_fails_when_built_not_when_fit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from carbon_callbacks.lightning import CarbonCallback

    monkeypatch.setenv(PREFIX + "PUE", "1e400")
    with pytest.raises(ValueError, match=r"CARBON_CALLBACKS_PUE='1e400' is out of range"):
        CarbonCallback(gpu_ids=[])


# -- places, tokens, URLs, paths ------------------------------------------------------------------

LOCATION_CASES = [
    ("COUNTRY", "Narnia", {}),
    ("ZONE", "QQ-1", {}),
    ("CLOUD", "ibm", {"REGION": "eu-north-1"}),
    ("REGION", "eu-north-1", {}),
    ("UK_POSTCODE", "ZZZZZZ", {"LIVE": "1"}),
]


@pytest.mark.parametrize(("name", "value", "others"), LOCATION_CASES)
def test_a_bad_place_fails_at_construction(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, others: dict[str, str]
) -> None:
    for other, text in others.items():
        monkeypatch.setenv(PREFIX + other, text)
    monkeypatch.setenv(PREFIX + name, value)
    with pytest.raises(ValueError, match=re.escape(value)):
        Tracker(gpu_ids=[])


@pytest.mark.parametrize(
    ("name", "value", "others"),
    # a region alone is fixed by adding a cloud, not by another region: test a mistyped one
    [case for case in LOCATION_CASES if case[0] != "REGION"]
    + [("REGION", "eu-nort-1", {"CLOUD": "aws"})],
)
def test_a_bad_place_names_its_variable_and_a_working_example(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, others: dict[str, str]
) -> None:
    for other, text in others.items():
        monkeypatch.setenv(PREFIX + other, text)
    example = fails_naming(Tracker, PREFIX + name, value, monkeypatch)
    monkeypatch.setenv(PREFIX + name, example)
    Tracker(gpu_ids=[])


@pytest.mark.parametrize("token", [f"{TOKEN} {TOKEN}", f"{TOKEN}\u00e9", f"{TOKEN}\t{TOKEN}"])
def test_a_token_unfit_for_a_header_fails_without_being_shown(
    monkeypatch: pytest.MonkeyPatch, token: str
) -> None:
    monkeypatch.setenv(PREFIX + "ELECTRICITYMAPS_TOKEN", token)
    with pytest.raises(ValueError) as caught:
        Tracker(gpu_ids=[], live=True, zone="DE")
    assert "token" in str(caught.value) and TOKEN not in str(caught.value)


def test_a_bad_token_names_the_variable_it_came_from(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PREFIX + "ELECTRICITYMAPS_TOKEN", f"{TOKEN} {TOKEN}")
    with pytest.raises(ValueError, match=PREFIX + "ELECTRICITYMAPS_TOKEN"):
        Tracker(gpu_ids=[], live=True, zone="DE")


@pytest.mark.parametrize("name", sorted(URLS))
@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.org/", "gopher://x", "no scheme", "https://"]
)
def test_a_url_override_that_is_not_http_fails_at_construction(
    monkeypatch: pytest.MonkeyPatch, name: str, url: str
) -> None:
    monkeypatch.setenv(PREFIX + name, url)
    with pytest.raises(ValueError, match=PREFIX + name):
        Tracker(gpu_ids=[], live=True, **URLS[name])


@pytest.mark.parametrize("name", sorted(URLS))
@pytest.mark.parametrize("url", ["https://api.example.org", "http://127.0.0.1:8080/", "", "  "])
def test_http_url_overrides_and_blanks_are_accepted(
    monkeypatch: pytest.MonkeyPatch, name: str, url: str
) -> None:
    monkeypatch.setenv(PREFIX + name, url)
    Tracker(gpu_ids=[], live=True, **URLS[name])


@pytest.mark.parametrize("blank", ["", "   "])
def test_blank_paths_and_labels_are_unset(monkeypatch: pytest.MonkeyPatch, blank: str) -> None:
    for name in AS_WRITTEN:
        monkeypatch.setenv(PREFIX + name, blank)
    config = Tracker(gpu_ids=[]).config
    assert config.output_dir == Path(DEFAULT_OUTPUT_DIR)
    assert config.powercap_root is None and config.run_name is None
    assert default_cache_dir({CACHE_DIR_ENV: blank, "XDG_CACHE_HOME": "/xdg"}) == Path(
        "/xdg/carbon-callbacks"
    )


def test_paths_and_labels_are_taken_as_written(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    odd = str(tmp_path / " spaced  out " / "$HOME" / "..;rm -rf")
    for name in AS_WRITTEN:
        monkeypatch.setenv(PREFIX + name, odd)
    config = Tracker(gpu_ids=[]).config
    assert config.output_dir == Path(odd) and config.powercap_root == odd
    assert config.run_name == odd
    assert default_cache_dir() == Path(odd)


# -- the cloud lookup ------------------------------------------------------------------------------


def aws_dmi(root: Path) -> Path:
    """A DMI folder that says Amazon EC2, so the lookup's address is read (and checked)."""
    root.mkdir()
    (root / "sys_vendor").write_text("Amazon EC2\n")
    (root / "product_name").write_text("m7i.large\n")
    return root


@pytest.mark.parametrize("value", ["maybe", "2", "nan", "yes please"])
def test_a_bad_cloud_switch_fails_at_construction_with_a_working_example(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    variable = PREFIX + "CLOUD_METADATA"
    example = fails_naming(Tracker, variable, value, monkeypatch)
    monkeypatch.setenv(variable, example)
    Tracker(gpu_ids=[])


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org/", "no scheme"])
def test_a_cloud_address_that_is_not_http_fails_at_construction_on_a_cloud_machine(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, url: str
) -> None:
    monkeypatch.setenv(PREFIX + "DMI_ROOT", str(aws_dmi(tmp_path / "dmi")))
    monkeypatch.setenv(PREFIX + "CLOUD_METADATA_URL", url)
    with pytest.raises(ValueError, match=PREFIX + "CLOUD_METADATA_URL"):
        Tracker(gpu_ids=[])
    monkeypatch.setenv(PREFIX + "CLOUD_METADATA_URL", "http://127.0.0.1:9/")
    Tracker(gpu_ids=[])


@pytest.mark.parametrize("root", ["/no/such/dmi", "..;rm -rf"])  # (a blank: the real DMI)
def test_any_dmi_folder_is_taken_as_written_and_a_missing_one_is_no_cloud(
    monkeypatch: pytest.MonkeyPatch, root: str
) -> None:
    monkeypatch.setenv(PREFIX + "DMI_ROOT", root)
    monkeypatch.setenv(PREFIX + "CLOUD_METADATA_URL", "file:///unchecked-off-the-cloud")
    Tracker(gpu_ids=[])
