"""Invitations only the right people can shape: who may invite which type, no replacing
someone else's open invitation, no account oracle, no inviter name in the subject."""

import pytest

pytest.importorskip("rest_framework")

from django.core import mail  # noqa: E402
from django.core.cache import cache  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from django_async_email import email_utils  # noqa: E402
from django_async_email.conf import DEFAULTS  # noqa: E402
from django_async_email.delivery.pipeline import deliver_emails  # noqa: E402
from django_async_email.exceptions import InvalidEmailInput  # noqa: E402
from django_async_email.models import FlowEvent, Invitation, OutboxEmail  # noqa: E402

pytestmark = [pytest.mark.django_db, pytest.mark.custom_user]
URL = "/api/accounts/email/send-invitation/"


@pytest.fixture(autouse=True)
def clear_throttles():
    cache.clear()
    yield
    cache.clear()


def _client(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_a_user_invites_only_their_own_type_by_default_and_staff_any(make_user, published):
    artist = make_user(user_type="Artist")
    refused = _client(artist).post(URL, {"email": "eve@example.com", "user_type": "Admin"}, format="json")
    assert refused.status_code == 400 and list(refused.json()) == ["user_type"]
    with pytest.raises(InvalidEmailInput) as raised:
        email_utils.send_invitation_email(artist, "eve@example.com", "Admin")
    assert raised.value.error_dict["user_type"][0].code == "not_allowed"
    assert _client(artist).post(URL, {"email": "bandmate@example.com", "user_type": "Artist"},
                                format="json").status_code == 202
    staff = make_user(is_staff=True, user_type="Station")
    assert _client(staff).post(URL, {"email": "boss@example.com", "user_type": "Admin"},
                               format="json").status_code == 202
    assert not Invitation.objects.filter(email="eve@example.com").exists()


def test_the_rules_are_a_setting(make_user, published, settings):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "INVITATION_RULES": {
        "Publisher": ["Artist"], "perm:testapp.add_user": "__all__"}}
    publisher = make_user(user_type="Publisher")
    assert email_utils.send_invitation_email(publisher, "a@example.com", "Artist")
    with pytest.raises(InvalidEmailInput):
        email_utils.send_invitation_email(publisher, "p@example.com", "Publisher")
    from django.contrib.auth.models import Permission

    manager = make_user(user_type="Station")
    manager.user_permissions.add(Permission.objects.get(codename="add_user"))
    manager = type(manager).objects.get(pk=manager.pk)  # permissions are cached per instance
    assert email_utils.send_invitation_email(manager, "admin@example.com", "Admin")
    with pytest.raises(InvalidEmailInput):
        email_utils.send_invitation_email(make_user(is_staff=True, user_type="Artist"), "x@example.com", "Admin")


def test_someone_elses_open_invitation_is_not_replaced_by_a_less_trusted_inviter(make_user, published):
    staff = make_user(is_staff=True, first_name="Ama")
    email_utils.send_invitation_email(staff, "new@example.com", "Artist")
    first = Invitation.objects.get()
    rows = OutboxEmail.objects.count()
    task_id = email_utils.send_invitation_email(make_user(user_type="Artist", first_name="Mallory"),
                                                "new@example.com", "Artist")
    assert task_id and OutboxEmail.objects.count() == rows  # the usual answer, nothing queued
    first.refresh_from_db()
    assert first.revoked_at is None and first.inviter == staff and Invitation.objects.count() == 1
    assert FlowEvent.objects.get(flow="invitation_request").detail == "an invitation from another inviter is open"
    # The inviter themselves and staff still replace it.
    email_utils.send_invitation_email(staff, "new@example.com", "Artist")
    assert Invitation.objects.filter(revoked_at__isnull=True).count() == 1 and Invitation.objects.count() == 2


def test_inviting_an_address_with_an_account_answers_like_any_other_unless_staff(make_user, published):
    make_user(email="taken@example.com")
    artist = _client(make_user(user_type="Artist"))
    taken = artist.post(URL, {"email": "taken@example.com", "user_type": "Artist"}, format="json")
    free = artist.post(URL, {"email": "free@example.com", "user_type": "Artist"}, format="json")
    assert (taken.status_code, list(taken.json())) == (free.status_code, list(free.json())) == (202, ["task_id"])
    assert not Invitation.objects.filter(email="taken@example.com").exists()
    assert FlowEvent.objects.get(flow="invitation_request").detail == "the address has an account"
    staff = _client(make_user(is_staff=True))
    told = staff.post(URL, {"email": "taken@example.com", "user_type": "Artist"}, format="json")
    assert told.status_code == 400 and list(told.json()) == ["email"]


def test_the_inviters_name_stays_out_of_the_subject_and_is_escaped_in_the_body(make_user, published):
    inviter = make_user(user_type="Artist", first_name="<b>Eve</b>", last_name="Free prizes")
    email_utils.send_invitation_email(inviter, "new@example.com", "Artist")
    deliver_emails(list(OutboxEmail.objects.values_list("pk", flat=True)))
    message = mail.outbox[-1]
    assert "Eve" not in message.subject and "prizes" not in message.subject
    assert "<b>Eve</b> Free prizes sent you this invitation." in message.body
    assert "&lt;b&gt;Eve&lt;/b&gt; Free prizes sent you this invitation." in message.alternatives[0][0]


def test_the_default_invitation_rate_is_low():
    count, _, period = DEFAULTS["THROTTLE_RATES"]["invitation_user"].partition("/")
    per_hour = int(count) / {"hour": 1, "day": 24}[period]
    assert per_hour <= 1
