"""The management commands, with --help text each."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from django_async_email import email_utils
from django_async_email.models import FlowEvent, OutboxEmail

pytestmark = pytest.mark.django_db
COMMANDS = ["email_status", "send_test_email", "send_notification", "requeue_stuck_emails", "purge_email_log"]


def run(*args, **kwargs):
    out = StringIO()
    call_command(*args, stdout=out, **kwargs)
    return out.getvalue()


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help(name):
    from django.core.management import load_command_class

    command = load_command_class("django_async_email", name)
    assert len(command.help) > 30
    parser = command.create_parser("manage.py", name)
    assert "usage:" in parser.format_help()


def test_email_status(published):
    text = run("email_status", timeout=0.2)
    assert "Email backend: django.core.mail.backends.locmem.EmailBackend" in text
    assert "Configuration: OK" in text and "queue high" in text
    data = json.loads(run("email_status", json=True, timeout=0.2))
    assert data["queues"] == ["high", "normal", "low"] and data["broker"]["reachable"] is True


def test_send_test_email_without_a_worker_times_out_clearly(published):
    with pytest.raises(CommandError, match="Is a worker consuming the queues"):
        run("send_test_email", "ops@example.com", timeout=0.3)
    assert OutboxEmail.objects.get().recipient == "ops@example.com"


def test_send_test_email_rejects_a_bad_address():
    with pytest.raises(CommandError, match="address: Enter a valid email address"):
        run("send_test_email", "not-an-address")


def test_send_test_email_no_wait(published):
    assert "Queued test email to ops@example.com" in run("send_test_email", "ops@example.com", no_wait=True)


@pytest.mark.custom_user
def test_send_notification_no_wait(published):
    text = run("send_notification", user_types=["Artist"], subject="Hi", message="Body", no_wait=True)
    assert "Artist: broadcast queued" in text


@pytest.mark.custom_user
def test_send_notification_rejects_an_unknown_type():
    with pytest.raises(CommandError, match="user_types: Unknown user type 'Pilot'"):
        run("send_notification", user_types=["Pilot"], subject="Hi", message="Body")


def test_requeue_stuck_emails(make_user, published):
    email_utils.send_welcome_email(make_user())
    OutboxEmail.objects.update(updated_at=timezone.now() - timedelta(hours=1))
    assert "Would have released 0 expired lease(s), republished 1 email(s)" in run("requeue_stuck_emails",
                                                                                     dry_run=True)
    assert "Done: released 0 expired lease(s), republished 1 email(s) in 1 task(s)" in run("requeue_stuck_emails")


def test_purge_email_log(make_user, published):
    for _ in range(3):
        email_utils.send_welcome_email(make_user())
    old = timezone.now() - timedelta(days=40)
    rows = list(OutboxEmail.objects.order_by("pk"))
    OutboxEmail.objects.filter(pk=rows[0].pk).update(status="sent", created_at=old)
    OutboxEmail.objects.filter(pk=rows[1].pk).update(status="queued", created_at=old)  # never purged
    FlowEvent.objects.create(flow="verification", outcome="invalid")
    FlowEvent.objects.update(created_at=old)
    assert "Would delete 1 emails, 0 broadcasts, 1 flow events, 0 attachment files older than 30 day(s)." in run(
        "purge_email_log", older_than=30, dry_run=True)
    run("purge_email_log", older_than=30)
    assert sorted(OutboxEmail.objects.values_list("pk", flat=True)) == [rows[1].pk, rows[2].pk]
    assert FlowEvent.objects.count() == 0
