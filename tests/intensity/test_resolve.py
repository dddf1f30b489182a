from __future__ import annotations

import pytest

from carbon_callbacks.intensity import static
from carbon_callbacks.intensity.base import ConstantIntensity
from carbon_callbacks.intensity.live import LiveIntensity
from carbon_callbacks.intensity.resolve import (
    IntensitySettings,
    intensity_settings,
    provider_for,
    resolve,
)

NO_TZ = {"TZ": "Etc/UTC"}


def test_override_wins_over_location() -> None:
    result = resolve(intensity_settings(intensity_g_per_kwh=123.0, country="PL", environ={}))
    assert result.static.g_per_kwh == 123.0
    assert result.static.source == "user-supplied constant"
    assert result.live is None


def test_cloud_region_then_country_then_world() -> None:
    gcp = resolve(intensity_settings(cloud="gcp", region="europe-north1", environ={}))
    assert gcp.static.source.startswith(static.GOOGLE_SOURCE)
    assert gcp.static.basis == "direct" and gcp.static.year == 2025
    sweden = resolve(intensity_settings(country="SE", environ={}))
    assert sweden.static == static.country("SE").value()
    unknown = resolve(intensity_settings(environ=NO_TZ), environ=NO_TZ)
    assert unknown.static.zone == "WORLD"
    assert unknown.static.g_per_kwh == static.world().g_per_kwh
    assert unknown.static.fallback is not None and "location unknown" in unknown.static.fallback


def test_location_is_guessed_from_the_time_zone_and_says_so() -> None:
    env = {"TZ": "Europe/Warsaw"}
    value = resolve(intensity_settings(environ=env), environ=env).static
    assert value.zone == "PL" and value.guessed_location
    assert value.g_per_kwh == static.country("PL").g_per_kwh


def test_zone_uses_its_country_and_notes_it() -> None:
    value = resolve(intensity_settings(zone="dk-dk1", environ={})).static
    assert value.zone == "DK"
    assert value.fallback == "no yearly data for zone DK-DK1: country DK used"


def test_settings_come_from_the_environment() -> None:
    env = {
        "CARBON_CALLBACKS_CLOUD": "aws",
        "CARBON_CALLBACKS_REGION": "eu-north-1",
        "CARBON_CALLBACKS_LIVE": "0",
        "ELECTRICITYMAPS_API_TOKEN": "tok-123",
    }
    settings = intensity_settings(environ=env)
    assert (settings.cloud, settings.region, settings.live) == ("aws", "eu-north-1", False)
    assert settings.electricitymaps_token == "tok-123"
    assert "tok-123" not in repr(settings) and "tok-123" not in str(settings.public_dict())
    assert intensity_settings(electricitymaps_token="arg", environ=env).electricitymaps_token == (
        "arg"
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"country": "Swedn"}, r"did you mean 'SE'"),
        ({"zone": "QQ-1"}, r"unknown zone 'QQ-1'.*unknown country 'QQ'"),
        ({"country": "SE", "cloud": "aws", "region": "x"}, r"give one location"),
        ({"region": "eu-north-1"}, r"cloud and region go together"),
        ({"cloud": "azure", "region": "westeurop"}, r"westeurope"),
        ({"uk_postcode": "RG10", "country": "FR"}, r"uk_postcode is for runs in Great Britain"),
        ({"intensity_g_per_kwh": 100.0, "live": True}, r"drop one of them"),
        ({"intensity_g_per_kwh": "100"}, r"must be a number"),
    ],
)
def test_mistakes_fail_with_what_to_write(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        intensity_settings(environ={}, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("CARBON_CALLBACKS_INTENSITY_G_PER_KWH", "lots", r"is not a number"),
        ("CARBON_CALLBACKS_LIVE", "maybe", r"is not a boolean"),
        ("CARBON_CALLBACKS_COUNTRY", "Narnia", r"unknown country 'Narnia'"),
    ],
)
def test_bad_variables_fail_like_arguments(variable: str, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        intensity_settings(environ={variable: value})


def test_live_picks_the_provider_for_the_zone() -> None:
    uk = resolve(intensity_settings(country="GB", live=True, environ={}), environ={})
    assert uk.live is not None and uk.live.name == "UK Carbon Intensity API"
    regional = resolve(intensity_settings(uk_postcode="rg10 9xx", live=True, environ={}))
    assert regional.live is not None and "RG10" in regional.live.zone
    dk = resolve(intensity_settings(zone="DK-DK2", live=True, environ={}))
    assert dk.live is not None and dk.live.name == "Energi Data Service"
    assert dk.live.zone == "DK-DK2"
    token = {"ELECTRICITYMAPS_API_TOKEN": "secret-token-1"}
    em = resolve(intensity_settings(zone="DE", live=True, environ=token), environ=token)
    assert em.live is not None and em.live.name == "Electricity Maps" and em.live.zone == "DE"
    assert "secret-token-1" not in repr(em)


def test_live_without_a_provider_for_the_zone_fails_at_construction() -> None:
    with pytest.raises(ValueError, match=r"needs an Electricity Maps token"):
        resolve(intensity_settings(country="PL", live=True, environ={}))
    with pytest.raises(ValueError, match=r"needs a location"):
        resolve(intensity_settings(live=True, environ=NO_TZ), environ=NO_TZ)


def test_provider_is_constant_offline_and_live_with_the_static_fallback() -> None:
    offline = provider_for(resolve(IntensitySettings(country="SE")))
    assert isinstance(offline, ConstantIntensity)
    assert offline.value == static.country("SE").value()
    live = provider_for(resolve(IntensitySettings(country="GB", live=True)))
    assert isinstance(live, LiveIntensity)
    assert live.fallback == static.country("GB").value()
