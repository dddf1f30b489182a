from __future__ import annotations

import math

import pytest

from carbon_callbacks.intensity import static
from carbon_callbacks.intensity.base import MAX_G_PER_KWH, ConstantIntensity
from carbon_callbacks.intensity.live import LiveIntensity
from carbon_callbacks.intensity.resolve import (
    TOKEN_ENV,
    IntensitySettings,
    intensity_settings,
    provider_for,
    resolve,
)
from tests.secret_tokens import OTHER_TOKEN, TOKEN

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
        "ELECTRICITYMAPS_API_TOKEN": TOKEN,
    }
    settings = intensity_settings(environ=env)
    assert (settings.cloud, settings.region, settings.live) == ("aws", "eu-north-1", False)
    assert settings.electricitymaps_token == TOKEN
    assert TOKEN not in repr(settings) and TOKEN not in str(settings.public_dict())
    from_argument = intensity_settings(electricitymaps_token=OTHER_TOKEN, environ=env)
    assert from_argument.electricitymaps_token == OTHER_TOKEN


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
    token = {"ELECTRICITYMAPS_API_TOKEN": TOKEN}
    em = resolve(intensity_settings(zone="DE", live=True, environ=token), environ=token)
    assert em.live is not None and em.live.name == "Electricity Maps" and em.live.zone == "DE"
    assert TOKEN not in repr(em)


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


PREFIX = "CARBON_CALLBACKS_"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {PREFIX + "COUNTRY": "Swedn"},
            r"^CARBON_CALLBACKS_COUNTRY='Swedn': unknown country 'Swedn'; did you mean 'SE' "
            r"\(Sweden\).* write CARBON_CALLBACKS_COUNTRY=SE \(",
        ),
        (
            {PREFIX + "ZONE": " qq-1"},
            r"^CARBON_CALLBACKS_ZONE=' qq-1' is not a known zone: .*\(unknown country 'QQ'\); "
            r"write e\.g\. CARBON_CALLBACKS_ZONE=DK-DK1,",
        ),
        (
            {PREFIX + "CLOUD": "ibm", PREFIX + "REGION": "eu-north-1"},
            r"^CARBON_CALLBACKS_CLOUD='ibm' has no region 'eu-north-1', which is a region of aws: "
            r"write e\.g\. CARBON_CALLBACKS_CLOUD=aws$",
        ),
        (
            {PREFIX + "CLOUD": "azure", PREFIX + "REGION": "westeurop"},
            r"^CARBON_CALLBACKS_CLOUD='azure', CARBON_CALLBACKS_REGION='westeurop': unknown azure "
            r"region 'westeurop'; did you mean .* write CARBON_CALLBACKS_REGION=westeurope \(",
        ),
        (
            {PREFIX + "REGION": "europe-north1"},
            r"^CARBON_CALLBACKS_REGION='europe-north1' needs a cloud: cloud and region go "
            r"together; write e\.g\. CARBON_CALLBACKS_CLOUD=gcp with it$",
        ),
        (
            {PREFIX + "CLOUD": "amazon"},
            r"^CARBON_CALLBACKS_CLOUD='amazon' needs a region: .*"
            r"write e\.g\. CARBON_CALLBACKS_REGION=eu-north-1 with it$",
        ),
        (
            {PREFIX + "UK_POSTCODE": "ZZZZZZ"},
            r"^CARBON_CALLBACKS_UK_POSTCODE='ZZZZZZ' is not a UK postcode; "
            r"write e\.g\. CARBON_CALLBACKS_UK_POSTCODE=RG10 ",
        ),
        (
            {PREFIX + "COUNTRY": "SE", PREFIX + "ZONE": "SE-SE3"},
            r"^give one location, not CARBON_CALLBACKS_COUNTRY='SE' and "
            r"CARBON_CALLBACKS_ZONE='SE-SE3': keep one",
        ),
        (
            {PREFIX + "INTENSITY_G_PER_KWH": "100", PREFIX + "LIVE": "yes"},
            r"^CARBON_CALLBACKS_INTENSITY_G_PER_KWH overrides every other source, so "
            r"CARBON_CALLBACKS_LIVE='yes' would do nothing",
        ),
        (
            {PREFIX + "INTENSITY_G_PER_KWH": "2e6"},
            r"^CARBON_CALLBACKS_INTENSITY_G_PER_KWH='2e6' is out of range: it must be >= 0 and "
            r"<= 1e\+06 .*; write e\.g\. CARBON_CALLBACKS_INTENSITY_G_PER_KWH=250$",
        ),
    ],
)
def test_a_bad_variable_is_named_with_its_value_and_what_to_write_there(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        intensity_settings(environ=environ)


def test_the_same_mistakes_as_arguments_name_the_arguments() -> None:
    with pytest.raises(ValueError, match=r"^unknown zone 'QQ-1': .* write e\.g\. zone='DK-DK1',"):
        intensity_settings(zone="qq-1", environ={})
    with pytest.raises(
        ValueError, match=r"^cloud='ibm' has no region .* write e\.g\. cloud='aws'$"
    ):
        intensity_settings(cloud="ibm", region="eu-north-1", environ={})
    with pytest.raises(ValueError, match=r"^region='eu-north-1' needs a cloud: .* cloud='aws' "):
        intensity_settings(region="eu-north-1", environ={})
    with pytest.raises(ValueError, match=r"^'ZZZZZZ' is not a UK postcode"):
        intensity_settings(uk_postcode="ZZZZZZ", environ={})


def test_an_argument_beats_a_bad_variable_and_blank_variables_are_unset() -> None:
    env = {PREFIX + name: "  " for name in ("COUNTRY", "ZONE", "CLOUD", "REGION", "UK_POSTCODE")}
    env |= {PREFIX + "INTENSITY_G_PER_KWH": " ", PREFIX + "ELECTRICITYMAPS_TOKEN": " "}
    settings = intensity_settings(environ=env)
    assert settings == IntensitySettings() and settings.sources == {}
    bad = {PREFIX + "COUNTRY": "Narnia", PREFIX + "INTENSITY_G_PER_KWH": "nan"}
    given = intensity_settings(country="SE", intensity_g_per_kwh=0.0, environ=bad)
    assert (given.country, given.g_per_kwh, given.sources) == ("SE", 0.0, {})


@pytest.mark.parametrize("value", [-1.0, math.nan, math.inf, MAX_G_PER_KWH * 1.01, 10**400])
def test_an_intensity_argument_out_of_range_fails_with_what_to_write(value: float) -> None:
    with pytest.raises(ValueError, match=r"^intensity_g_per_kwh must be .* >= 0 and <= 1e\+06 "):
        intensity_settings(intensity_g_per_kwh=value, environ={})
    assert intensity_settings(intensity_g_per_kwh=MAX_G_PER_KWH, environ={}).g_per_kwh == 1e6


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({PREFIX + "ELECTRICITYMAPS_TOKEN": f"{TOKEN} x", TOKEN_ENV: OTHER_TOKEN}, PREFIX),
        ({TOKEN_ENV: f"{TOKEN}\u00e9", PREFIX + "ELECTRICITYMAPS_TOKEN": ""}, "(ELECTRICITYMAPS"),
    ],
)
def test_a_bad_token_names_where_it_came_from_and_never_shows_it(
    environ: dict[str, str], named: str
) -> None:
    settings = intensity_settings(zone="DE", live=True, environ=environ)
    with pytest.raises(ValueError) as caught:
        resolve(settings, environ=environ)
    assert f"token {named}" in str(caught.value) or f"token ({named}" in str(caught.value)
    assert TOKEN not in str(caught.value) and OTHER_TOKEN not in str(caught.value)
    with pytest.raises(ValueError, match=r"token \(electricitymaps_token\)") as caught:
        resolve(intensity_settings(zone="DE", live=True, electricitymaps_token=f"{TOKEN} x"))
    assert TOKEN not in str(caught.value)


def test_live_messages_use_the_form_the_location_came_in() -> None:
    env = {PREFIX + "COUNTRY": "DK", PREFIX + "LIVE": "1"}
    with pytest.raises(ValueError, match=r"write CARBON_CALLBACKS_ZONE=DK-DK1 \(west\)"):
        resolve(intensity_settings(environ=env), environ=env)
    with pytest.raises(ValueError, match=r"write zone='DK-DK1' \(west\)"):
        resolve(intensity_settings(country="DK", live=True, environ={}))
    env = {PREFIX + "LIVE": "on", "TZ": "Etc/UTC"}
    with pytest.raises(ValueError, match=r"^CARBON_CALLBACKS_LIVE needs a location: write e\.g\. "):
        resolve(intensity_settings(environ=env), environ=env)
