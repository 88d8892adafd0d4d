"""The admin of the suppression list and of users' notification preferences."""

from datetime import timedelta

import pytest
from django.utils import timezone

from django_async_email.models import EmailPreference, Suppression

pytestmark = pytest.mark.django_db
SUPPRESSIONS = "/admin/django_async_email/suppression/"
PREFERENCES = "/admin/django_async_email/emailpreference/"


@pytest.fixture(autouse=True)
def categories(settings):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "CATEGORIES": {
        "updates": {"label": "Product updates", "email_types": ["product_update"]}}}


def test_the_suppression_list_renders(admin_client):
    Suppression.objects.create(address="bounced@example.com", reason="hard_bounce", source="550 no such user")
    page = admin_client.get(SUPPRESSIONS)
    assert page.status_code == 200
    text = page.content.decode()
    assert "bounced@example.com" in text and "Hard bounce" in text and "550 no such user" in text
    assert admin_client.get(SUPPRESSIONS + "?reason__exact=hard_bounce").status_code == 200


def test_adding_an_address_stores_its_key_form(admin_client):
    response = admin_client.post(SUPPRESSIONS + "add/", {"address": " Foo\u200b@EXAMPLE.com ", "reason": "manual",
                                                         "source": ""})
    assert response.status_code == 302, response.content.decode()
    entry = Suppression.objects.get()
    assert (entry.address, entry.reason, entry.source) == ("foo@example.com", "manual", "admin")


def test_the_same_address_typed_differently_is_refused_as_a_duplicate(admin_client):
    Suppression.objects.create(address="foo@example.com", reason="manual")
    response = admin_client.post(SUPPRESSIONS + "add/", {"address": "FOO@example.com", "reason": "complaint"})
    assert response.status_code == 200  # the form again, with the error
    assert "already exists" in response.content.decode()
    assert Suppression.objects.values_list("address", "reason").get() == ("foo@example.com", "manual")


@pytest.mark.parametrize("address", ["not-an-address", "@example.com", "foo@"])
def test_adding_something_that_is_not_an_address_is_refused(admin_client, address):
    response = admin_client.post(SUPPRESSIONS + "add/", {"address": address, "reason": "manual"})
    assert response.status_code == 200
    assert "Enter a valid email address." in response.content.decode()
    assert not Suppression.objects.exists()


def test_the_add_form_offers_only_the_reasons_an_address_can_have(admin_client):
    form = admin_client.get(SUPPRESSIONS + "add/").context["adminform"].form
    assert {value for value, _label in form.fields["reason"].choices if value} == {
        "hard_bounce", "complaint", "unsubscribed_all", "manual"}
    refused = admin_client.post(SUPPRESSIONS + "add/", {"address": "foo@example.com", "reason": "unsubscribed"})
    assert refused.status_code == 200 and not Suppression.objects.exists()


def test_search_finds_an_address_however_it_is_typed(admin_client):
    Suppression.objects.create(address="foo@example.com", reason="manual")
    Suppression.objects.create(address="bar@example.com", reason="manual")
    for term in ("FOO@Example.com", "foo", "foo\u200b@example.com"):
        found = admin_client.get(SUPPRESSIONS, {"q": term}).context["cl"].result_list
        assert [s.address for s in found] == ["foo@example.com"], term


def test_an_entry_can_be_removed(admin_client):
    entry = Suppression.objects.create(address="foo@example.com", reason="manual")
    response = admin_client.post(SUPPRESSIONS + f"{entry.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Suppression.objects.exists()


def test_the_preferences_list_renders_filters_and_searches(admin_client, make_user):
    ama, kofi = make_user(email="ama@example.com"), make_user(email="kofi@example.com")
    EmailPreference.objects.create(user=ama, category="updates", subscribed=False, source="api")
    EmailPreference.objects.create(user=kofi, category="notifications", subscribed=True, source="page")
    assert admin_client.get(PREFERENCES).status_code == 200

    def listed(**query):
        return {p.user_id for p in admin_client.get(PREFERENCES, query).context["cl"].result_list}

    assert listed(q="ama@example") == {ama.pk}
    assert listed(category="updates") == {ama.pk}
    assert listed(subscribed__exact="1") == {kofi.pk}
    assert listed(source__exact="page") == {kofi.pk}


def test_a_change_in_the_admin_is_recorded_as_the_admins(admin_client, make_user):
    user = make_user()
    long_ago = timezone.now() - timedelta(days=30)
    row = EmailPreference.objects.create(user=user, category="updates", subscribed=True, source="api",
                                         changed_at=long_ago)
    form = admin_client.get(PREFERENCES + f"{row.pk}/change/").context["adminform"].form
    assert {"updates", "notifications"} <= {value for value, _label in form.fields["category"].choices}
    response = admin_client.post(PREFERENCES + f"{row.pk}/change/",
                                 {"user": user.pk, "category": "updates", "subscribed": ""})
    assert response.status_code == 302, response.content.decode()
    row.refresh_from_db()
    assert (row.subscribed, row.source) == (False, EmailPreference.Source.ADMIN)
    assert row.changed_at > long_ago + timedelta(days=29)


def test_a_preference_added_in_the_admin_is_the_admins(admin_client, make_user):
    user = make_user()
    response = admin_client.post(PREFERENCES + "add/", {"user": user.pk, "category": "updates", "subscribed": ""})
    assert response.status_code == 302, response.content.decode()
    assert EmailPreference.objects.values_list("user", "category", "subscribed", "source").get() == (
        user.pk, "updates", False, "admin")
    refused = admin_client.post(PREFERENCES + "add/", {"user": user.pk, "category": "marketing", "subscribed": "on"})
    assert refused.status_code == 200 and EmailPreference.objects.count() == 1
