from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from django_async_email.conf import DEFAULTS, VALIDATORS, app_settings, validate_settings


def test_every_default_has_a_validator_and_passes_it():
    assert set(DEFAULTS) == set(VALIDATORS)
    for key, value in DEFAULTS.items():
        check, _expected = VALIDATORS[key]
        assert check(value), key


def test_defaults_apply_when_the_host_sets_nothing(settings):
    del settings.ASYNC_EMAIL
    assert app_settings.MAX_RETRIES == 3
    assert app_settings.QUEUES == {"high": "high", "normal": "normal", "low": "low"}
    assert app_settings.VERIFICATION_TIMEOUT == timedelta(days=3)


def test_settings_fixture_takes_effect_at_once(settings):
    settings.ASYNC_EMAIL = {"MAX_RETRIES": 7}
    assert app_settings.MAX_RETRIES == 7
    settings.ASYNC_EMAIL = {"MAX_RETRIES": 1}
    assert app_settings.MAX_RETRIES == 1


def test_override_settings_takes_effect_and_is_undone():
    before = app_settings.SITE_NAME
    with override_settings(ASYNC_EMAIL={"SITE_NAME": "Other"}):
        assert app_settings.SITE_NAME == "Other"
    assert app_settings.SITE_NAME == before


@pytest.mark.parametrize(
    "key,value",
    [
        ("MAX_RETRIES", -1),
        ("MAX_RETRIES", "3"),
        ("QUEUES", {"high": "h"}),
        ("QUEUE_PRIORITIES", {"high": 300}),
        ("BULK_CHUNK_SIZE", 0),
        ("VERIFICATION_URL", "https://example.com/verify"),
        ("RETRY_JITTER", "yes"),
        ("ALLOWED_BASE_URLS", "https://example.com"),
        ("VERIFICATION_TIMEOUT", timedelta(0)),
    ],
)
def test_invalid_value_raises_naming_the_key(settings, key, value):
    settings.ASYNC_EMAIL = {key: value}
    with pytest.raises(ImproperlyConfigured, match=rf"ASYNC_EMAIL\['{key}'\]"):
        getattr(app_settings, key)


def test_unknown_key_is_named():
    with pytest.raises(ImproperlyConfigured, match="MAX_RETRY"):
        validate_settings({"MAX_RETRY": 3})


def test_not_a_dict():
    with pytest.raises(ImproperlyConfigured, match="must be a dict"):
        validate_settings(["BASE_URL"])


def test_from_email_falls_back_to_default_from_email(settings):
    settings.DEFAULT_FROM_EMAIL = "hello@example.com"
    settings.ASYNC_EMAIL = {}
    assert app_settings.from_email == "hello@example.com"
    settings.ASYNC_EMAIL = {"FROM_EMAIL": "accounts@example.com"}
    assert app_settings.from_email == "accounts@example.com"
