"""Who receives a notification: one rule for a short id list, a long one and user types."""

import pytest
from django.utils import timezone

from django_async_email import email_utils
from django_async_email.accounts.verification import mark_verified
from django_async_email.exceptions import InvalidEmailInput
from django_async_email.models import Broadcast, OutboxEmail, VerifiedEmail
from django_async_email.outbox.fanout import fan_out

pytestmark = pytest.mark.django_db(transaction=True)

CHUNK = 3


@pytest.fixture
def audience(make_user):
    """One user of each kind the rule tells apart, all of the same type."""
    users = {
        "verified": make_user(user_type="Artist"),
        "unverified": make_user(user_type="Artist"),
        "inactive": make_user(user_type="Artist", is_active=False),
        "no_address": make_user(email="", user_type="Artist"),
        "inactive_verified": make_user(user_type="Artist"),
    }
    mark_verified(users["verified"])
    mark_verified(users["inactive_verified"])
    type(users["inactive_verified"]).objects.filter(pk=users["inactive_verified"].pk).update(is_active=False)
    return users


def _recipients(published, send) -> set:
    """The user ids that got a row, after the fan-out ran if the send took the bulk path."""
    before = len(published)
    send()
    for name, args, _options in published[before:]:
        if name.endswith("send_bulk_notification_email_task"):
            fan_out(args[0])
    return set(OutboxEmail.objects.values_list("user_id", flat=True))


def _ids(users, *names):
    return {users[name].pk for name in names}


@pytest.mark.parametrize("path", ["short list", "long list"])
@pytest.mark.parametrize("include_unverified", [True, False])
def test_the_same_users_receive_a_notification_on_both_paths(audience, published, settings, path,
                                                            include_unverified):
    # With BULK_CHUNK_SIZE 3, the five ids go the bulk way (fan-out); with the default they
    # are looked up on the request path.
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "BULK_INCLUDE_UNVERIFIED": include_unverified,
                            **({"BULK_CHUNK_SIZE": CHUNK} if path == "long list" else {})}
    ids = [u.pk for u in audience.values()]
    got = _recipients(published, lambda: email_utils.send_notification_to_users(ids, "Hello", "Body"))
    expected = _ids(audience, "verified", "unverified") if include_unverified else _ids(audience, "verified")
    assert got == expected
    assert Broadcast.objects.get().total == len(expected)


@pytest.mark.custom_user
@pytest.mark.parametrize("include_unverified", [True, False])
def test_user_types_follow_the_same_rule(audience, published, settings, include_unverified):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "BULK_INCLUDE_UNVERIFIED": include_unverified}
    got = _recipients(published, lambda: email_utils.send_notification_to_user_types(["Artist"], "Hello", "Body"))
    assert got == (_ids(audience, "verified", "unverified") if include_unverified else _ids(audience, "verified"))


def test_a_short_list_of_users_who_may_not_receive_it_queues_nothing(audience, published):
    task_id = email_utils.send_notification_to_users(
        [audience["inactive"].pk, audience["no_address"].pk], "Hello", "Body")
    assert OutboxEmail.objects.count() == 0 and published == []
    assert email_utils.broadcast_progress(task_id) == {
        "state": "done", "total": 0, "sent": 0, "failed": 0, "cancelled": 0, "suppressed": 0, "expired": 0,
        "pending": 0}


def test_unknown_ids_are_still_refused_on_the_short_path(audience, published):
    with pytest.raises(InvalidEmailInput, match="Unknown user id"):
        email_utils.send_notification_to_users([audience["verified"].pk, 999999], "Hello", "Body")


def test_a_wildcard_character_in_an_address_does_not_make_it_verified(make_user, published, settings):
    # "_" is LIKE's any-character: compared with iexact against the column, the verified
    # address "axb@" would count for the current address "a_b@".
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "BULK_INCLUDE_UNVERIFIED": False, "VERIFIED_FIELD": None}
    user = make_user(email="a_b@example.com")
    VerifiedEmail.objects.create(user=user, email="axb@example.com", verified_at=timezone.now())
    got = _recipients(published, lambda: email_utils.send_notification_to_users([user.pk], "Hello", "Body"))
    assert got == set()
    VerifiedEmail.objects.filter(user=user).update(email="A_B@example.com")
    OutboxEmail.objects.all().delete()
    got = _recipients(published, lambda: email_utils.send_notification_to_users([user.pk], "Hello", "Body"))
    assert got == {user.pk}
