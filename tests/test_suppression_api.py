"""The Python API of the suppression list and of users' notification preferences."""

import pytest

from django_async_email import email_utils
from django_async_email.exceptions import InvalidEmailInput
from django_async_email.models import EmailPreference, Suppression

pytestmark = pytest.mark.django_db


def test_the_functions_are_public():
    assert {"suppress", "unsuppress", "is_suppressed", "email_preferences", "set_email_preferences"} <= set(
        email_utils.__all__)


def test_an_address_is_one_entry_however_it_is_typed():
    entry = email_utils.suppress("Foo@EXAMPLE.com ")
    assert (entry.address, entry.reason, entry.source) == ("foo@example.com", "manual", "")
    for typed in ("foo@example.com", "Foo@EXAMPLE.com ", "FOO@example.COM", "foo\u200b@example.com"):
        assert email_utils.is_suppressed(typed), typed
    assert not email_utils.is_suppressed("bar@example.com")

    email_utils.suppress("foo@example.com", reason="hard_bounce", source="550 5.1.1 no such user")
    assert Suppression.objects.count() == 1
    assert Suppression.objects.values_list("reason", "source").get() == ("hard_bounce", "550 5.1.1 no such user")


def test_unsuppress_takes_the_entry_off_and_says_whether_it_was_on():
    email_utils.suppress("foo@example.com", reason="complaint")
    assert email_utils.unsuppress("Foo@EXAMPLE.com ") is True
    assert not email_utils.is_suppressed("foo@example.com")
    assert email_utils.unsuppress("foo@example.com") is False
    assert not Suppression.objects.exists()


@pytest.mark.parametrize("reason", ["hard_bounce", "complaint", "unsubscribed_all", "manual"])
def test_every_list_reason_is_accepted(reason):
    assert email_utils.suppress("foo@example.com", reason=reason).reason == reason


@pytest.mark.parametrize("reason", ["bounced", "", "unsubscribed", "not_opted_in", "MANUAL"])
def test_a_bad_reason_names_reason_and_writes_nothing(reason):
    with pytest.raises(InvalidEmailInput) as caught:
        email_utils.suppress("foo@example.com", reason=reason)
    assert list(caught.value.message_dict) == ["reason"]
    assert not Suppression.objects.exists()


@pytest.mark.parametrize("address", ["", "   ", "not-an-address"])
def test_something_that_is_not_an_address_names_address(address):
    with pytest.raises(InvalidEmailInput) as caught:
        email_utils.suppress(address)
    assert list(caught.value.message_dict) == ["address"]
    assert not Suppression.objects.exists()


@pytest.fixture
def categories(settings):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "CATEGORIES": {
        "updates": {"label": "Product updates", "email_types": ["product_update"]},
        "digest": {"label": "Weekly digest", "email_types": ["digest"], "default": False},
    }}


def test_email_preferences_lists_every_category(categories, make_user):
    assert email_utils.email_preferences(make_user()) == [
        {"category": "updates", "label": "Product updates", "subscribed": True},
        {"category": "digest", "label": "Weekly digest", "subscribed": False},
        {"category": "notifications", "label": "Other notifications", "subscribed": True},
    ]


def test_set_email_preferences_changes_the_keys_given_from_python(categories, make_user):
    user = make_user()
    after = email_utils.set_email_preferences(user, {"digest": True, "notifications": False})
    assert after == email_utils.email_preferences(user)
    assert {c["category"]: c["subscribed"] for c in after} == {"updates": True, "digest": True,
                                                                 "notifications": False}
    assert set(EmailPreference.objects.filter(user=user).values_list("category", "source")) == {
        ("digest", "python"), ("notifications", "python")}


@pytest.mark.parametrize("changes", [{"marketing": False}, {"updates": "no"}, {"updates": 0}, ["updates"]])
def test_set_email_preferences_refuses_bad_changes_naming_categories(categories, make_user, changes):
    user = make_user()
    with pytest.raises(InvalidEmailInput) as caught:
        email_utils.set_email_preferences(user, changes)
    assert list(caught.value.message_dict) == ["categories"]
    assert not EmailPreference.objects.exists()
