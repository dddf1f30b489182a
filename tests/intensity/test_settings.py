"""Each location and intensity option is declared once; every entry point takes it from there."""

from __future__ import annotations

import subprocess
import sys
import typing
from dataclasses import fields

import pytest

from carbon_callbacks.intensity.resolve import intensity_settings
from carbon_callbacks.intensity.settings import (
    FIELD_OF,
    OPTIONS,
    IntensityOptions,
    IntensitySettings,
)
from carbon_callbacks.tracking.tracker import Tracker
from tests.conftest import CHILD_TIMEOUT_S


def test_the_keyword_view_lists_exactly_the_settings_options() -> None:
    keywords = [option.keyword for option in OPTIONS]
    assert list(typing.get_type_hints(IntensityOptions)) == keywords
    assert set(FIELD_OF.values()) == {item.name for item in fields(IntensitySettings)} - {"sources"}


def test_the_run_log_header_keeps_its_names_and_never_the_token() -> None:
    settings = IntensitySettings(country="SE", electricitymaps_token="secret-token")
    assert settings.public_dict() == {
        "intensity_g_per_kwh": None,
        "country": "SE",
        "zone": None,
        "cloud": None,
        "region": None,
        "uk_postcode": None,
        "live": False,
        "electricitymaps_token_set": True,
    }


def test_an_unknown_option_is_refused_with_the_list() -> None:
    with pytest.raises(TypeError, match=r"unknown option 'contry'; the options are .*country"):
        intensity_settings(contry="SE", environ={})  # type: ignore[call-arg]


@pytest.mark.parametrize("subcommand", ["run", "intensity"])
def test_the_command_line_offers_every_option_that_has_a_flag(subcommand: str) -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "carbon_callbacks", subcommand, "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=CHILD_TIMEOUT_S,
    ).stdout
    for option in OPTIONS:
        offered = option.flag is not None and (subcommand == "run" or option.kind != "number")
        assert (f"{option.flag} " in shown or f"{option.flag}\n" in shown) == offered, option


def test_a_tracker_takes_the_settings_as_one_object_or_as_keywords() -> None:
    settings = intensity_settings(country="SE", environ={})
    by_object = Tracker(intensity_settings=settings, write_log=False)
    by_keywords = Tracker(country="SE", write_log=False)
    assert by_object.config.intensity == by_keywords.config.intensity == settings
    with pytest.raises(ValueError, match=r"give country= inside it"):
        Tracker(intensity_settings=settings, country="PL", write_log=False)
    with pytest.raises(TypeError, match=r"must be an IntensitySettings"):
        Tracker(intensity_settings={"country": "SE"}, write_log=False)  # type: ignore[arg-type]
