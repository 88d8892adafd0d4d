"""The public Python API: validation before anything is written, rows in the caller's
transaction, publish on commit with the returned id, routing by kind."""

import json

import pytest
from django.db import transaction

from django_async_email import email_utils
from django_async_email.exceptions import InvalidEmailInput
from django_async_email.models import Broadcast, Invitation, OutboxEmail

pytestmark = pytest.mark.django_db


def _only_publish(published):
    assert len(published) == 1, published
    return published[0]


@pytest.mark.parametrize(
    "send,kind,task,queue",
    [
        (email_utils.send_verification_email, "verification", "send_email_verification_task", "high"),
        (email_utils.send_password_reset_email, "password_reset", "send_password_reset_email_task", "high"),
        (email_utils.send_welcome_email, "welcome", "send_notification_email_task", "normal"),
    ],
)
def test_user_emails_write_a_row_and_publish_on_commit(
    send, kind, task, queue, make_user, published, django_capture_on_commit_callbacks
):
    user = make_user(email="ann@example.com")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        task_id = send(user)
        assert published == [], "published before the transaction committed"
    assert len(callbacks) == 2  # the publish, and the email_queued signal
    assert isinstance(task_id, str) and task_id
    row = OutboxEmail.objects.get()
    assert (row.kind, row.recipient, row.user, row.status, row.task_id) == (
        kind, "ann@example.com", user, "queued", task_id)
    assert row.message_id.startswith("<") and row.message_id.endswith(">")
    name, args, options = _only_publish(published)
    assert name == f"django_async_email.tasks.{task}"
    assert options["task_id"] == task_id
    assert options["queue"] == queue
    # Only JSON ids travel through the broker.
    json.dumps(args)
    flat = args[0] if isinstance(args[0], list) else [args[0]]
    assert flat == [row.pk]


def test_rollback_queues_and_sends_nothing(make_user, published, django_capture_on_commit_callbacks):
    user = make_user()
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError):
            with transaction.atomic():
                email_utils.send_verification_email(user)
                raise RuntimeError("the view failed")
    assert OutboxEmail.objects.count() == 0
    assert published == []


def test_rows_are_written_in_the_callers_transaction(make_user, published, django_capture_on_commit_callbacks):
    user = make_user()
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            email_utils.send_welcome_email(user)
            assert OutboxEmail.objects.count() == 1
            assert published == []
    assert len(published) == 1


def test_configured_queue_names_and_priorities_are_used(settings, make_user, published,
                                                        django_capture_on_commit_callbacks):
    settings.ASYNC_EMAIL = {
        **settings.ASYNC_EMAIL,
        "QUEUES": {"high": "mail-urgent", "normal": "mail", "low": "mail-bulk"},
        "QUEUE_PRIORITIES": {"high": 9},
    }
    with django_capture_on_commit_callbacks(execute=True):
        email_utils.send_password_reset_email(make_user())
    _name, _args, options = _only_publish(published)
    assert options["queue"] == "mail-urgent"
    assert options["priority"] == 9


def test_invitation(make_user, published, django_capture_on_commit_callbacks, settings):
    inviter = make_user(first_name="Ama", last_name="Mensah")
    with django_capture_on_commit_callbacks(execute=True):
        user_type = "Artist" if settings.CUSTOM_USER else ""
        task_id = email_utils.send_invitation_email(inviter, "New.Artist@example.com", user_type)
    invitation = Invitation.objects.get()
    assert invitation.email == "New.Artist@example.com"
    assert invitation.token_hash == ""  # minted by the worker, not here
    row = OutboxEmail.objects.get()
    assert row.invitation == invitation and row.context["inviter_name"] == "Ama Mensah"
    name, _args, options = _only_publish(published)
    assert (name, options["queue"], options["task_id"]) == (
        "django_async_email.tasks.send_user_invitation_email_task", "normal", task_id)


def test_reinviting_revokes_the_earlier_invitation(make_user, published):
    inviter = make_user()
    email_utils.send_invitation_email(inviter, "x@example.com", "Artist")
    email_utils.send_invitation_email(inviter, "X@example.com", "Artist")
    first, second = Invitation.objects.order_by("pk")
    assert first.revoked_at is not None and second.revoked_at is None


def test_inviting_an_existing_account_is_an_error(make_user, published):
    make_user(email="taken@example.com")
    with pytest.raises(InvalidEmailInput) as info:
        email_utils.send_invitation_email(None, "TAKEN@example.com", "Artist")
    assert info.value.field == "invitee_email"
    assert OutboxEmail.objects.count() == 0


def test_notification_to_users_one_task_one_row_each(make_user, published, django_capture_on_commit_callbacks):
    users = [make_user() for _ in range(3)]
    with django_capture_on_commit_callbacks(execute=True):
        task_id = email_utils.send_notification_to_users(
            [u.pk for u in users], "Platform Update", "We've released new features!", email_type="update"
        )
    rows = OutboxEmail.objects.order_by("pk")
    assert [r.user for r in rows] == users
    assert {r.email_type for r in rows} == {"update"}
    assert {r.task_id for r in rows} == {task_id}
    assert len({r.message_id for r in rows}) == 3
    broadcast = Broadcast.objects.get()
    assert (broadcast.subject, broadcast.total, broadcast.task_id) == ("Platform Update", 3, task_id)
    name, args, options = _only_publish(published)
    assert name == "django_async_email.tasks.send_notification_email_task"
    assert args == [[r.pk for r in rows]] and options["queue"] == "normal"


@pytest.mark.custom_user
def test_notification_to_user_types_never_loads_recipients(make_user, published, django_assert_num_queries,
                                                          django_capture_on_commit_callbacks):
    for _ in range(5):
        make_user(user_type="Artist")
    with django_capture_on_commit_callbacks(execute=True):
        # One broadcast INSERT per type, no savepoint, and no SELECT of users.
        with django_assert_num_queries(2) as ctx:
            task_ids = email_utils.send_notification_to_user_types(["Artist", "Station"], "New Royalty Features", "Hi")
    assert not any("testapp_user" in q["sql"] for q in ctx.captured_queries)
    assert len(task_ids) == 2 and all(isinstance(t, str) for t in task_ids)
    assert OutboxEmail.objects.count() == 0
    broadcasts = Broadcast.objects.order_by("pk")
    assert [b.user_types for b in broadcasts] == [["Artist"], ["Station"]]
    assert [b.task_id for b in broadcasts] == task_ids
    assert [(n, o["queue"]) for n, _a, o in published] == [
        ("django_async_email.tasks.send_bulk_notification_email_task", "low")] * 2


# --- bad input: a clear error naming the argument, nothing written or queued ---------------

def _assert_rejected(call, field, published):
    with pytest.raises(InvalidEmailInput) as info:
        call()
    assert info.value.field == field
    assert field in info.value.message_dict
    assert field in str(info.value)
    assert OutboxEmail.objects.count() == 0 and Broadcast.objects.count() == 0
    assert published == []


@pytest.mark.parametrize("address", ["not-an-address", "", "a@b", "x" * 65 + "@example.com",
                                     "a@" + "b" * 250 + ".com", "a@example.com\r\nBcc: x@example.com"])
def test_invalid_invitee_address(address, published):
    _assert_rejected(lambda: email_utils.send_invitation_email(None, address, "Artist"), "invitee_email", published)


def test_user_without_email(make_user, published):
    user = make_user(email="")
    _assert_rejected(lambda: email_utils.send_verification_email(user), "user", published)


def test_unsaved_user(django_user_model, published):
    unsaved = django_user_model(email="a@example.com")
    _assert_rejected(lambda: email_utils.send_welcome_email(unsaved), "user", published)


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"subject": ""}, "subject"),
        ({"subject": "   "}, "subject"),
        ({"subject": "Hi\r\nBcc: victim@example.com"}, "subject"),
        ({"subject": "Hi\nthere"}, "subject"),
        ({"message": ""}, "message"),
        ({"message": None}, "message"),
        ({"user_ids": []}, "user_ids"),
        ({"user_ids": "1,2"}, "user_ids"),
        ({"user_ids": [1.5]}, "user_ids"),
        ({"user_ids": [999999]}, "user_ids"),
        ({"template_name": "django_async_email/nope.html"}, "template_name"),
        ({"email_type": "a\nb"}, "email_type"),
        ({"context": {"when": object()}}, "context"),
    ],
)
def test_invalid_notification_input(kwargs, field, make_user, published):
    user = make_user()
    call_kwargs = {"user_ids": [user.pk], "subject": "Hello", "message": "Body", **kwargs}
    _assert_rejected(lambda: email_utils.send_notification_to_users(**call_kwargs), field, published)


def test_unknown_user_ids_are_listed(make_user, published):
    user = make_user()
    with pytest.raises(InvalidEmailInput, match="999998, 999999"):
        email_utils.send_notification_to_users([user.pk, 999998, 999999], "Hello", "Body")


@pytest.mark.custom_user
@pytest.mark.parametrize("user_types", [["Pilot"], [], "Artist", None])
def test_invalid_user_types(user_types, published):
    _assert_rejected(
        lambda: email_utils.send_notification_to_user_types(user_types, "Hello", "Body"), "user_types", published
    )


@pytest.mark.custom_user
def test_unknown_user_type_for_invitation(published):
    _assert_rejected(lambda: email_utils.send_invitation_email(None, "a@example.com", "Pilot"), "user_type", published)


def test_base_url_must_be_allowed(make_user, published):
    user = make_user()
    _assert_rejected(lambda: email_utils.send_password_reset_email(user, base_url="https://evil.example"),
                     "base_url", published)


def test_allowed_base_url_is_kept_on_the_row(make_user, published):
    email_utils.send_verification_email(make_user(), base_url="https://partners.zamio.test/")
    assert OutboxEmail.objects.get().context["base_url"] == "https://partners.zamio.test"


def test_validate_email_configuration_returns_a_dict(settings):
    report = email_utils.validate_email_configuration()
    assert report["ok"] is True
    assert report["email_backend"] == "django.core.mail.backends.locmem.EmailBackend"
    assert report["queues"] == {"high": "high", "normal": "normal", "low": "low"}
    assert isinstance(report["errors"], list) and isinstance(report["warnings"], list)


def test_validate_email_configuration_reports_problems(email_backend):
    email_backend("no.such.Backend")
    report = email_utils.validate_email_configuration()
    assert report["ok"] is False
    assert [e["id"] for e in report["errors"]] == ["django_async_email.E003"]
