"""Per-IP limits count the client as the host's proxies define it; a made-up
X-Forwarded-For buys nobody a fresh limit."""

import pytest

pytest.importorskip("rest_framework")

from django.core.cache import cache  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from django_async_email import checks as our_checks  # noqa: E402

pytestmark = pytest.mark.django_db
BASE = "/api/accounts/email/"


@pytest.fixture(autouse=True)
def clear_throttles():
    cache.clear()
    yield
    cache.clear()


def _reset_requests(settings, count, forwarded_for):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL,
                            "THROTTLE_RATES": {"password_reset_ip": "20/hour", "password_reset_address": None}}
    client = APIClient()
    return [client.post(BASE + "request-password-reset/", {"email": f"user{i}@example.com"}, format="json",
                        REMOTE_ADDR="198.51.100.7", HTTP_X_FORWARDED_FOR=forwarded_for(i)).status_code
            for i in range(count)]


def test_made_up_forwarded_for_values_do_not_dodge_the_limit_by_default(settings, published):
    settings.ASYNC_EMAIL = {k: v for k, v in settings.ASYNC_EMAIL.items() if k != "NUM_PROXIES"}  # the default
    statuses = _reset_requests(settings, 30, lambda i: f"203.0.113.{i}")
    assert statuses.count(202) == 20 and statuses[20:] == [429] * 10


def test_behind_one_proxy_the_client_is_the_address_it_appended(settings, published):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "NUM_PROXIES": 1}
    # The client makes up the left part; the proxy appends the address it saw.
    statuses = _reset_requests(settings, 30, lambda i: f"203.0.113.{i}, 192.0.2.44")
    assert statuses.count(202) == 20 and statuses[20:] == [429] * 10
    cache.clear()
    # Two real clients behind the proxy have a limit each.
    assert _reset_requests(settings, 20, lambda i: f"192.0.2.{i % 2}").count(202) == 20


def test_rest_frameworks_num_proxies_is_used_when_ours_is_unset(settings, published):
    settings.ASYNC_EMAIL = {k: v for k, v in settings.ASYNC_EMAIL.items() if k != "NUM_PROXIES"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    assert _reset_requests(settings, 21, lambda i: f"203.0.113.{i}, 192.0.2.44")[-1] == 429


@pytest.mark.parametrize("endpoint,body", [
    ("verify-email/", {"uid": "MQ", "token": "bad"}),
    ("confirm-password-reset/", {"uid": "MQ", "token": "bad", "new_password": "a brand new passphrase"}),
    ("accept-invitation/", {"token": "x" * 43, "password": "a brand new passphrase"}),
])
def test_the_flow_endpoints_are_limited_per_ip(endpoint, body, settings):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "THROTTLE_RATES": {"flow_ip": "5/hour"}}
    client = APIClient()
    statuses = [client.post(BASE + endpoint, body, format="json").status_code for _ in range(7)]
    assert statuses == [400] * 5 + [429] * 2


def test_a_check_warns_when_nobody_said_how_many_proxies_there_are(settings):
    settings.ASYNC_EMAIL = {k: v for k, v in settings.ASYNC_EMAIL.items() if k != "NUM_PROXIES"}
    assert [m.id for m in our_checks.check_proxies()] == ["django_async_email.W010"]
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "NUM_PROXIES": 0}
    assert our_checks.check_proxies() == []
