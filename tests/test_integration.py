"""End to end: a real ``celery worker`` process on a real broker, delivering to a real SMTP
server (aiosmtpd on loopback). No eager mode anywhere."""

import re
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import transaction

from django_async_email import email_utils
from django_async_email.models import Broadcast, OutboxEmail

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

FINAL = ("sent", "failed", "cancelled", "suppressed")


@pytest.fixture
def delivered(wait_for):
    def wait(count, status="sent", timeout=30):
        return wait_for(
            lambda: OutboxEmail.objects.filter(status=status).count() >= count
            and not OutboxEmail.objects.exclude(status__in=FINAL).exists(),
            timeout=timeout, message=f"{count} email(s) {status}",
        )

    return wait


def _worker_log():
    return (Path(settings.RUN_DIR) / "worker.log").read_text()


def test_every_kind_is_delivered_through_the_worker_on_its_queue(celery_worker, smtp, delivered, make_user):
    ann = make_user(email="ann@example.com", user_type="Artist")
    bob = make_user(email="bob@example.com", user_type="Publisher")
    ids = {
        "verification": email_utils.send_verification_email(ann),
        "password_reset": email_utils.send_password_reset_email(ann),
        "invitation": email_utils.send_invitation_email(ann, "new@example.com", "Artist"),
        "welcome": email_utils.send_welcome_email(bob),
        "notification": email_utils.send_notification_to_users([ann.pk, bob.pk], "Platform Update", "New features"),
    }
    delivered(6)
    assert len(smtp.received) == 6
    subjects = sorted(r.message["Subject"] for r in smtp.received)
    assert subjects == sorted([
        "Confirm your email address for ZamIO", "Reset your password on ZamIO",
        "You are invited to join ZamIO", "Welcome to ZamIO",  # the inviter is in the body, not the subject
        "Platform Update", "Platform Update",
    ])
    # Every row went out exactly once, with the Message-ID written on the row.
    by_message_id = {}
    for received in smtp.received:
        by_message_id.setdefault(received.message["Message-ID"], []).append(received.rcpt_tos)
    for row in OutboxEmail.objects.all():
        assert by_message_id[row.message_id] == [[row.recipient]]
        assert (row.status, row.attempts) == ("sent", 1)
    # The id each function returned is the id of the task that ran, on the expected queue.
    log = _worker_log()
    for kind, task_id in ids.items():
        assert re.search(rf"\[{task_id}\] succeeded", log), kind
    queues = {row.kind: row.task_id for row in OutboxEmail.objects.all()}
    assert queues["verification"] == ids["verification"]


@pytest.mark.custom_user
def test_bulk_notification_to_a_user_type(celery_worker, smtp, delivered, wait_for, make_user):
    artists = [make_user(user_type="Artist") for _ in range(120)]
    make_user(user_type="Station")
    make_user(user_type="Artist", is_active=False)
    (task_id,) = email_utils.send_notification_to_user_types(["Artist"], "New Royalty Features", "Check them out")
    delivered(120, timeout=60)
    assert sorted(r.rcpt_tos[0] for r in smtp.received) == sorted(a.email for a in artists)
    # The worker marks the broadcast done just after it records the last rows as sent.
    broadcast = Broadcast.objects.get(task_id=task_id)
    wait_for(lambda: Broadcast.objects.get(pk=broadcast.pk).state not in ("queued", "sending"), timeout=10,
             message="the broadcast to finish")
    broadcast.refresh_from_db()
    assert broadcast.progress() == {"state": "done", "total": 120, "sent": 120, "failed": 0, "cancelled": 0,
                                    "suppressed": 0, "expired": 0, "pending": 0}
    # Chunks of BULK_CHUNK_SIZE (50) rows (50, 50, 20): each with SMTP_CONNECTIONS (4) at most,
    # one per ten messages, so 4 + 4 + 2.
    assert smtp.connections == 10


def test_transient_failures_are_retried_by_the_worker_with_growing_delays(celery_worker, smtp, delivered, make_user):
    user = make_user(email="busy@example.com")
    smtp.fail_first("busy@example.com", 3, code=451)
    email_utils.send_welcome_email(user)
    delivered(1, timeout=40)
    row = OutboxEmail.objects.get()
    assert (row.status, row.attempts) == ("sent", 4)
    assert len(smtp.received) == 1
    attempts = smtp.attempts_for("busy@example.com")
    gaps = [b - a for a, b in zip(attempts, attempts[1:], strict=False)]
    assert len(gaps) == 3 and gaps[0] < gaps[1] < gaps[2], gaps


def test_permanent_failure_is_not_retried_by_the_worker(celery_worker, smtp, delivered, make_user):
    user = make_user(email="gone@example.com")
    smtp.refuse("gone@example.com", 550)
    email_utils.send_welcome_email(user)
    delivered(1, status="failed")
    row = OutboxEmail.objects.get()
    assert (row.status, row.attempts) == ("failed", 1)
    assert len(smtp.attempts_for("gone@example.com")) == 1


def test_rollback_sends_nothing(celery_worker, smtp, delivered, make_user):
    ghost = make_user(email="ghost@example.com")
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            email_utils.send_verification_email(ghost)
            raise RuntimeError("request failed")
    email_utils.send_welcome_email(make_user(email="real@example.com"))
    delivered(1)
    assert [r.rcpt_tos for r in smtp.received] == [["real@example.com"]]
    assert OutboxEmail.objects.count() == 1


@pytest.mark.skipif(settings.CELERY_BROKER_URL != "filesystem://", reason="reads the filesystem broker's files")
def test_no_token_travels_through_the_broker_or_the_logs(celery_worker, smtp, delivered, make_user):
    user = make_user(email="ann@example.com")
    email_utils.send_password_reset_email(user)
    email_utils.send_verification_email(user)
    email_utils.send_invitation_email(user, "new@example.com", "Artist")
    delivered(3)
    bodies = [r.message.get_body(("plain",)).get_content() for r in smtp.received]
    found = [t for body in bodies for t in re.findall(r"token=([\w-]+)", body)]
    assert len(found) == 3
    processed = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["processed_folder"])
    broker_text = "".join(p.read_text(errors="replace") for p in processed.glob("*"))
    assert "send_password_reset_email_task" in broker_text  # the messages are really there
    log = _worker_log()
    for token in found:
        assert token not in broker_text
        assert token not in log
        assert not OutboxEmail.objects.filter(context__icontains=token).exists()


def _follow(client, message, form):
    """Open the link in a delivered email (GET) and press its button (POST)."""
    from urllib.parse import parse_qsl, urlsplit

    body = message.get_body(("plain",)).get_content()
    (link,) = re.findall(r"https://app\.zamio\.test/\S+", body)
    parts = urlsplit(link)
    params = dict(parse_qsl(parts.query))
    page = client.get(parts.path, params)
    assert page.status_code == 200
    return client.post(parts.path, {**params, **form})


def test_each_flow_completes_from_the_delivered_email(celery_worker, smtp, delivered, make_user, client):
    from django_async_email.accounts.verification import is_verified

    ann = make_user(email="ann@example.com")
    email_utils.send_verification_email(ann)
    email_utils.request_password_reset("ANN@example.com")
    email_utils.send_invitation_email(ann, "kofi@example.com", "Artist")
    delivered(3)
    by_subject = {str(r.message["Subject"]): r.message for r in smtp.received}

    done = _follow(client, by_subject["Confirm your email address for ZamIO"], {})
    assert done.status_code == 200 and is_verified(ann)

    password = {"new_password1": "a brand new passphrase", "new_password2": "a brand new passphrase"}
    assert _follow(client, by_subject["Reset your password on ZamIO"], password).status_code == 200
    ann.refresh_from_db()
    assert ann.check_password("a brand new passphrase")

    assert _follow(client, by_subject["You are invited to join ZamIO"], password).status_code == 200
    from django.contrib.auth import get_user_model

    kofi = get_user_model().objects.get(email="kofi@example.com")
    assert kofi.check_password("a brand new passphrase") and is_verified(kofi)

    # The reset queued a "password changed" notice, which the worker delivers too.
    delivered(4)
    assert [m.message["Subject"] for m in smtp.received][-1] == "Your password on ZamIO was changed"


def test_commands_wait_for_a_real_worker(celery_worker, smtp, make_user):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("send_test_email", "ops@example.com", timeout=30, stdout=out)
    assert "Sent to ops@example.com in 1 attempt(s)" in out.getvalue()
    assert [r.rcpt_tos for r in smtp.received] == [["ops@example.com"]]
    if settings.CUSTOM_USER:
        for _ in range(3):
            make_user(user_type="Station")
        out = StringIO()
        call_command("send_notification", user_types=["Station"], subject="Maintenance", message="Tonight",
                     timeout=30, stdout=out)
        assert "Station: 3 sent, 0 failed." in out.getvalue() and "[####" in out.getvalue()


def test_system_status_sees_the_worker_and_its_queues(celery_worker, make_user):
    from django_async_email.status import system_status

    status = system_status(inspect_timeout=3)
    assert status["broker"]["reachable"] is True
    ours = [queues for name, queues in status["workers"].items() if name.startswith("tests-")]
    assert ours and all(set(q) >= {"high", "normal", "low"} for q in ours), status["workers"]
    assert status["queues_without_consumer"] == []
    assert set(status["broker"]["queue_depths"]) == {"high", "normal", "low"}
    # Read, not unknown: on Redis an empty queue is a missing key, and used to show as None.
    assert all(isinstance(depth, int) for depth in status["broker"]["queue_depths"].values()), status["broker"]


@pytest.mark.integration
def test_an_empty_queue_reports_zero_and_an_unreadable_one_none(settings):
    from django_async_email.outbox.publishing import current_celery_app
    from django_async_email.status import broker_status, queue_depth

    names = {c: f"depth-probe-{c}-{time.monotonic_ns()}" for c in ("high", "normal", "low")}
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "QUEUES": names}
    app = current_celery_app()
    with app.connection_for_write() as connection, connection.channel() as channel:
        for name in names.values():  # as a worker that consumes them would
            channel.queue_declare(queue=name, durable=True, auto_delete=False)
        try:
            assert broker_status()["queue_depths"] == {name: 0 for name in names.values()}
        finally:
            for name in names.values():
                channel.queue_delete(queue=name)

    class Unreadable:
        def queue_declare(self, **kwargs):
            raise ConnectionError("the broker went away")

    assert queue_depth(Unreadable(), "high") is None
