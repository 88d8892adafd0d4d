"""The preferences endpoint in the platform: its own user model, JWT auth and error envelope.

No worker: reading and changing preferences queues nothing.
"""

import pytest
from rest_framework.test import APIClient

from tests.zamio.accounts.models import Member

pytestmark = pytest.mark.django_db

URL = "/api/accounts/email/preferences/"


@pytest.fixture(autouse=True)
def categories(settings):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "CATEGORIES": {
        "royalties": {"label": "Royalty statements", "email_types": ["royalty_statement"]},
        "news": {"label": "ZamIO news", "email_types": ["newsletter"], "default": False},
    }}


@pytest.fixture
def artist():
    return Member.objects.create_user("kojo@zamio.test", "Kojo", password="kojo's long passphrase")


@pytest.fixture
def signed_in(artist):
    client = APIClient()
    tokens = client.post("/api/accounts/token/", {"email": "kojo@zamio.test", "password": "kojo's long passphrase"},
                         format="json")
    assert tokens.status_code == 200, tokens.content
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens.json()['access']}")
    return client


def test_a_member_reads_and_changes_preferences_with_a_jwt(signed_in):
    read = signed_in.get(URL)
    assert read.status_code == 200, read.content
    assert read.json() == {"categories": [
        {"category": "royalties", "label": "Royalty statements", "subscribed": True},
        {"category": "news", "label": "ZamIO news", "subscribed": False},
        {"category": "notifications", "label": "Other notifications", "subscribed": True},
    ]}
    changed = signed_in.put(URL, {"categories": {"news": True, "royalties": False}}, format="json")
    assert changed.status_code == 200, changed.content
    assert {c["category"]: c["subscribed"] for c in changed.json()["categories"]} == {
        "royalties": False, "news": True, "notifications": True}
    assert signed_in.get(URL).json() == changed.json()


def test_a_bad_put_comes_back_in_the_platforms_envelope(signed_in):
    unknown = signed_in.put(URL, {"categories": {"marketing": False}}, format="json")
    assert unknown.status_code == 400
    body = unknown.json()
    assert (body["success"], body["status"], list(body["errors"])) == (False, 400, ["categories"])
    assert "marketing" in body["errors"]["categories"][0]

    not_a_boolean = signed_in.put(URL, {"categories": {"news": "yes"}}, format="json")
    assert not_a_boolean.json() == {"success": False, "status": 400,
                                    "errors": {"categories": ["'news' must be true or false."]}}


@pytest.mark.parametrize("method", ["get", "put"])
def test_without_a_token_the_answer_is_the_platforms_401(method):
    response = getattr(APIClient(), method)(URL, {"categories": {"news": True}}, format="json")
    assert response.status_code == 401
    assert response.json()["success"] is False and response.json()["status"] == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
