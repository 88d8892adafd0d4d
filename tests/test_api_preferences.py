"""GET and PUT /preferences/: the signed-in user's notification categories over the REST API."""

import base64

import pytest

pytest.importorskip("rest_framework")

from django.utils import timezone  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from django_async_email.models import EmailPreference  # noqa: E402

pytestmark = pytest.mark.django_db
URL = "/api/accounts/email/preferences/"
CATEGORIES = {
    "updates": {"label": "Product updates", "email_types": ["product_update"]},
    "digest": {"label": "Weekly digest", "email_types": ["digest"], "default": False},
}


@pytest.fixture(autouse=True)
def categories(settings):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "CATEGORIES": CATEGORIES}


@pytest.fixture
def user(make_user):
    return make_user()


@pytest.fixture
def signed_in(user):
    """A client with a real session (SessionAuthentication), as a browser front end has."""
    client = APIClient()
    client.force_login(user)
    return client


def _state(response):
    return {c["category"]: c["subscribed"] for c in response.json()["categories"]}


def test_get_lists_every_category_with_its_label_and_state(signed_in):
    response = signed_in.get(URL)
    assert response.status_code == 200
    assert response.json() == {"categories": [
        {"category": "updates", "label": "Product updates", "subscribed": True},
        {"category": "digest", "label": "Weekly digest", "subscribed": False},
        {"category": "notifications", "label": "Other notifications", "subscribed": True},
    ]}


def test_put_changes_only_the_categories_given_and_answers_like_get(signed_in, user):
    before = timezone.now()
    response = signed_in.put(URL, {"categories": {"updates": False, "digest": True}}, format="json")
    assert response.status_code == 200, response.content
    assert _state(response) == {"updates": False, "digest": True, "notifications": True}
    assert response.json() == signed_in.get(URL).json()
    rows = {p.category: p for p in EmailPreference.objects.filter(user=user)}
    assert set(rows) == {"updates", "digest"}  # the category not mentioned keeps its default, no row
    assert {p.source for p in rows.values()} == {EmailPreference.Source.API}
    assert all(p.changed_at >= before for p in rows.values())

    again = signed_in.put(URL, {"categories": {"updates": True}}, format="json")
    assert _state(again) == {"updates": True, "digest": True, "notifications": True}


def test_put_with_no_categories_changes_nothing(signed_in, user):
    response = signed_in.put(URL, {"categories": {}}, format="json")
    assert response.status_code == 200
    assert _state(response) == {"updates": True, "digest": False, "notifications": True}
    assert not EmailPreference.objects.exists()


def test_put_changes_only_the_callers_own_preferences(signed_in, make_user):
    other = make_user()
    signed_in.put(URL, {"categories": {"updates": False}}, format="json")
    assert not EmailPreference.objects.filter(user=other).exists()


def test_an_unknown_category_is_a_400_on_categories_and_nothing_changes(signed_in):
    response = signed_in.put(URL, {"categories": {"updates": False, "marketing": False}}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert list(body) == ["categories"]
    assert "marketing" in body["categories"][0] and "updates, digest, notifications" in body["categories"][0]
    assert not EmailPreference.objects.exists()


@pytest.mark.parametrize("value", ["false", 0, 1, None, [], {"on": True}])
def test_a_value_that_is_not_a_boolean_is_a_400_on_categories(signed_in, value):
    response = signed_in.put(URL, {"categories": {"updates": value}}, format="json")
    assert response.status_code == 400
    assert response.json() == {"categories": ["'updates' must be true or false."]}
    assert not EmailPreference.objects.exists()


@pytest.mark.parametrize("body", [{}, {"categories": ["updates"]}, {"categories": "updates"},
                                  {"categories": None}])
def test_categories_must_be_an_object(signed_in, body):
    response = signed_in.put(URL, body, format="json")
    assert response.status_code == 400
    assert list(response.json()) == ["categories"]


def test_a_form_body_is_refused_like_any_non_boolean(signed_in):
    response = signed_in.put(URL, "categories.updates=false", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert list(response.json()) == ["categories"]
    assert not EmailPreference.objects.exists()


@pytest.mark.parametrize("method", ["get", "put"])
def test_anonymous_callers_are_refused(method):
    response = getattr(APIClient(), method)(URL, {"categories": {"updates": False}}, format="json")
    assert response.status_code == 403  # session auth first: no WWW-Authenticate to answer 401 with
    assert not EmailPreference.objects.exists()


@pytest.mark.parametrize("method", ["get", "put"])
def test_wrong_credentials_are_refused(method, user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Basic " + base64.b64encode(f"{user.username}:wrong".encode()).decode())
    response = getattr(client, method)(URL, {"categories": {"updates": False}}, format="json")
    # 403, not 401: DRF answers 401 only when the first authentication class (here the
    # session) has a WWW-Authenticate challenge; the JWT host (tests/zamio) gets its 401.
    assert response.status_code == 403
    assert not EmailPreference.objects.exists()


def test_a_session_put_needs_the_csrf_token(user):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.get(URL).status_code == 200
    assert client.put(URL, {"categories": {"updates": False}}, format="json").status_code == 403
    assert not EmailPreference.objects.exists()


def test_other_methods_are_405(signed_in):
    assert signed_in.post(URL, {"categories": {}}, format="json").status_code == 405
    assert signed_in.delete(URL).status_code == 405


def test_the_permission_is_overridable_in_settings(signed_in, settings, make_user):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL,
                            "API_PERMISSIONS": {"preferences": ["rest_framework.permissions.IsAdminUser"]}}
    assert signed_in.get(URL).status_code == 403
    staff = APIClient()
    staff.force_login(make_user(is_staff=True))
    assert staff.get(URL).status_code == 200


def test_the_schema_describes_both_methods(signed_in):
    pytest.importorskip("drf_spectacular")
    schema = signed_in.get("/api/schema/?format=json").json()
    operations = schema["paths"]["/api/accounts/email/preferences/"]
    assert set(operations) >= {"get", "put"}
    assert {"200", "403"} <= set(operations["get"]["responses"])
    assert {"200", "400", "403"} <= set(operations["put"]["responses"])
    assert "categories" in schema["components"]["schemas"]["PreferenceChanges"]["properties"]
