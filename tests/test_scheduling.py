"""Scheduled sending: ``send_at`` (never before), ``expires_at`` (never after), and the split
between the broker's ETA (due soon) and rows held in the outbox for the sweep (due later)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest
from django.core import mail
from django.core.mail import EmailMessage
from django.utils import timezone

from django_async_email import email_utils
from django_async_email.backends import OutboxBackend
from django_async_email.delivery.pipeline import deliver_emails
from django_async_email.delivery.send import pool
from django_async_email.delivery.sweeper import requeue_stuck_emails
from django_async_email.exceptions import InvalidEmailInput
from django_async_email.models import Broadcast, OutboxEmail
from django_async_email.outbox.fanout import fan_out
from django_async_email.outbox.schedule import clean_schedule

pytestmark = pytest.mark.django_db(transaction=True)


def soon(seconds):
    return timezone.now() + timedelta(seconds=seconds)


# --- Input ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("send_at", "expires_at", "field", "code"), [
    (datetime(2030, 1, 1, 9, 0), None, "send_at", "naive"),
    ("2030-01-01T09:00:00Z", None, "send_at", "invalid"),
    (None, datetime(2030, 1, 1, 9, 0), "expires_at", "naive"),
    (None, timezone.now() - timedelta(seconds=1), "expires_at", "past"),
    (soon(3600), soon(1800), "expires_at", "before_send_at"),
])
def test_a_bad_schedule_is_refused_naming_the_field_before_anything_is_queued(
        make_user, published, send_at, expires_at, field, code):
    user = make_user()
    with pytest.raises(InvalidEmailInput) as caught:
        email_utils.send_welcome_email(user, send_at=send_at, expires_at=expires_at)
    assert caught.value.field == field and caught.value.error_dict[field][0].code == code
    assert OutboxEmail.objects.count() == 0 and published == []


def test_a_send_at_in_the_past_means_now():
    assert clean_schedule(timezone.now() - timedelta(hours=1)).eta(timezone.now()) is None


@pytest.mark.parametrize("send", [
    lambda user, **kw: email_utils.send_verification_email(user, **kw),
    lambda user, **kw: email_utils.send_password_reset_email(user, **kw),
    lambda user, **kw: email_utils.send_password_changed_email(user, **kw),
    lambda user, **kw: email_utils.send_welcome_email(user, **kw),
    lambda user, **kw: email_utils.request_password_reset(user.email, **kw),
    lambda user, **kw: email_utils.request_verification_email(user.email, **kw),
    lambda user, **kw: email_utils.send_invitation_email(None, "new@example.com", **kw),
    lambda user, **kw: email_utils.send_notification_to_users([user.pk], "Hi", "Body", **kw),
    lambda user, **kw: email_utils.send_test_email("ops@example.com", **kw),
])
def test_every_queuing_function_takes_a_schedule(make_user, published, django_capture_on_commit_callbacks, send):
    user = make_user(email="ann@example.com")
    send_at, expires_at = soon(120), soon(3600)
    with django_capture_on_commit_callbacks(execute=True):
        send(user, send_at=send_at, expires_at=expires_at)
    row = OutboxEmail.objects.get()
    assert (row.available_at, row.expires_at, row.held) == (send_at, expires_at, False)
    ((_name, _args, options),) = published
    assert options["eta"] == send_at  # due within SCHEDULE_ETA_MAX: the broker's ETA


# --- Due soon: the broker's ETA; due later: held for the sweep -------------------------------------

def test_a_far_off_email_is_held_unpublished_and_the_sweep_publishes_it_when_due(
        make_user, published, django_capture_on_commit_callbacks):
    user = make_user()
    send_at = soon(3600)
    with django_capture_on_commit_callbacks(execute=True):
        task_id = email_utils.send_welcome_email(user, send_at=send_at)
    row = OutboxEmail.objects.get()
    assert row.held and published == []  # no hour-long ETA in any worker's memory
    # Sweeps before it comes within SCHEDULE_ETA_MAX (300 s) leave it, and never call it stuck.
    for minutes in (0, 30, 54):
        report = requeue_stuck_emails(now=timezone.now() + timedelta(minutes=minutes))
        assert report["held_released"] == report["emails_republished"] == 0
    assert published == []
    report = requeue_stuck_emails(now=send_at - timedelta(seconds=200))
    assert report["held_released"] == 1
    ((name, args, options),) = published
    assert name.endswith("send_notification_email_task") and args == [[row.pk]]
    assert options["eta"] == send_at and options["task_id"] == task_id  # the id the caller was given
    row.refresh_from_db()
    assert not row.held
    # Released once: a second sweep publishes nothing more.
    assert requeue_stuck_emails(now=send_at - timedelta(seconds=190))["held_released"] == 0
    assert len(published) == 1


def test_nothing_is_claimed_before_its_send_at(make_user, smtp_backend):
    user = make_user()
    email_utils.send_welcome_email(user, send_at=soon(60))
    row = OutboxEmail.objects.get()
    # A task that runs early (a clock ahead, a redelivery) claims and sends nothing.
    assert deliver_emails([row.pk]).sent == []
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("queued", 0) and smtp_backend.received == []
    OutboxEmail.objects.filter(pk=row.pk).update(available_at=timezone.now() - timedelta(seconds=1))
    assert deliver_emails([row.pk]).sent == [row.pk]


# --- Expiry ---------------------------------------------------------------------------------------

def test_a_row_past_its_expiry_is_never_sent_and_is_recorded_expired(make_user, smtp_backend):
    user = make_user()
    email_utils.send_welcome_email(user, expires_at=soon(60))
    row = OutboxEmail.objects.get()
    OutboxEmail.objects.filter(pk=row.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    deliver_emails([row.pk])
    row.refresh_from_db()
    assert row.status == "expired" and "expires_at" in row.last_error
    assert smtp_backend.received == []


def test_a_row_whose_turn_comes_after_its_expiry_is_not_sent(make_user, smtp_backend, monkeypatch):
    """Claimed in time, but the send step is reached after the deadline (a long batch)."""
    first, second = make_user(email="first@example.com"), make_user(email="second@example.com")
    deadline = soon(30)
    email_utils.send_notification_to_users([first.pk, second.pk], "Hi", "Body", expires_at=deadline)

    real_now = timezone.now

    class LateClock:
        @staticmethod
        def now():
            return real_now() + timedelta(seconds=60)

    monkeypatch.setattr(pool, "timezone", LateClock)  # only the send step's clock moves
    report = deliver_emails(list(OutboxEmail.objects.values_list("pk", flat=True)))
    assert report.sent == [] and len(report.expired) == 2
    assert set(OutboxEmail.objects.values_list("status", flat=True)) == {"expired"}
    assert smtp_backend.received == []
    broadcast = Broadcast.objects.get()
    assert broadcast.progress()["expired"] == 2 and broadcast.progress()["pending"] == 0
    assert broadcast.state == "done"


def test_the_sweep_expires_waiting_rows_and_finishes_their_broadcast(make_user, published):
    user = make_user()
    email_utils.send_notification_to_users([user.pk], "Hi", "Body", send_at=soon(3600), expires_at=soon(3700))
    report = requeue_stuck_emails(now=soon(3800))
    assert report["expired"] == 1
    assert OutboxEmail.objects.get().status == "expired"
    assert Broadcast.objects.get().state == "done"


# --- Retries with a long backoff ------------------------------------------------------------------

def test_a_retry_longer_than_the_eta_limit_is_held_not_given_to_celery(make_user, smtp_backend, settings, monkeypatch):
    from celery.exceptions import Retry

    from django_async_email.tasks import send_notification_email_task

    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "RETRY_BACKOFF": 1800, "RETRY_BACKOFF_MAX": 3600,
                            "RETRY_JITTER": False}
    user = make_user(email="busy@example.com")
    email_utils.send_welcome_email(user)
    row = OutboxEmail.objects.get()
    smtp_backend.fail_first("busy@example.com", 1)
    retries = []
    monkeypatch.setattr(send_notification_email_task, "retry",
                        lambda **kw: retries.append(kw) or Retry("retry", None))
    send_notification_email_task.run([row.pk])
    assert retries == []  # no 30-minute countdown held by a worker
    row.refresh_from_db()
    assert row.held and row.status == "queued"
    assert abs((row.available_at - timezone.now()).total_seconds() - 1800) < 5


# --- Broadcasts -----------------------------------------------------------------------------------

@pytest.mark.custom_user
def test_a_scheduled_broadcast_can_be_cancelled_before_it_starts(make_user, published,
                                                                 django_capture_on_commit_callbacks):
    for i in range(3):
        make_user(email=f"artist{i}@example.com", user_type="Artist")
    send_at = soon(7200)
    with django_capture_on_commit_callbacks(execute=True):
        (task_id,) = email_utils.send_notification_to_user_types(["Artist"], "Hi", "Body", send_at=send_at)
    broadcast = Broadcast.objects.get()
    assert broadcast.held and broadcast.send_at == send_at and published == []
    email_utils.cancel_broadcast(task_id)
    report = requeue_stuck_emails(now=send_at + timedelta(seconds=120))
    assert report["held_released"] == report["broadcasts_restarted"] == 0
    assert published == [] and OutboxEmail.objects.count() == 0
    assert Broadcast.objects.get().state == "cancelled"


@pytest.mark.custom_user
def test_a_held_broadcast_fans_out_when_due_and_its_rows_keep_the_window(
        make_user, published, django_capture_on_commit_callbacks):
    for i in range(2):
        make_user(email=f"artist{i}@example.com", user_type="Artist")
    send_at, expires_at = soon(7200), soon(9000)
    with django_capture_on_commit_callbacks(execute=True):
        (task_id,) = email_utils.send_notification_to_user_types(["Artist"], "Hi", "Body", send_at=send_at,
                                                                 expires_at=expires_at)
    # Not "lost" while it waits, however long after its creation the sweep looks.
    assert requeue_stuck_emails(now=soon(3600))["broadcasts_restarted"] == 0
    assert requeue_stuck_emails(now=send_at - timedelta(seconds=100))["held_released"] == 1
    ((name, args, options),) = published
    assert name.endswith("send_bulk_notification_email_task") and options["eta"] == send_at
    assert options["task_id"] == task_id
    with django_capture_on_commit_callbacks(execute=True):
        fan_out(args[0])
    rows = list(OutboxEmail.objects.all())
    assert len(rows) == 2 and {(r.available_at, r.expires_at) for r in rows} == {(send_at, expires_at)}


@pytest.mark.custom_user
def test_a_broadcast_whose_fan_out_starts_after_its_expiry_sends_to_nobody(make_user, published):
    make_user(email="artist@example.com", user_type="Artist")
    email_utils.send_notification_to_user_types(["Artist"], "Hi", "Body", expires_at=soon(60))
    broadcast = Broadcast.objects.get()
    Broadcast.objects.filter(pk=broadcast.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert fan_out(broadcast.pk) == {"chunks": 0, "recipients": 0}
    broadcast.refresh_from_db()
    assert broadcast.state == "expired" and OutboxEmail.objects.count() == 0


@pytest.mark.custom_user
def test_a_published_scheduled_fan_out_is_not_restarted_before_its_time(make_user, published, settings):
    make_user(email="artist@example.com", user_type="Artist")
    email_utils.send_notification_to_user_types(["Artist"], "Hi", "Body", send_at=soon(200))
    # Its ETA is 200 s off; STUCK_AFTER (60 s) counts from then, not from its creation.
    assert requeue_stuck_emails(now=soon(120))["broadcasts_restarted"] == 0
    assert requeue_stuck_emails(now=soon(200 + 61))["broadcasts_restarted"] == 1


# --- The email backend ----------------------------------------------------------------------------

def test_the_backend_reads_send_at_and_expires_at_from_the_message(published, django_capture_on_commit_callbacks):
    later, now_message = EmailMessage("Later", "Body", "from@example.com", ["a@example.com"]), \
        EmailMessage("Now", "Body", "from@example.com", ["b@example.com"])
    later.send_at, later.expires_at = soon(3600), soon(7200)  # the attribute anymail reads too
    with django_capture_on_commit_callbacks(execute=True):
        assert OutboxBackend().send_messages([later, now_message]) == 2
    held = OutboxEmail.objects.get(recipient="a@example.com")
    assert held.held and held.available_at == later.send_at and held.expires_at == later.expires_at
    assert not OutboxEmail.objects.get(recipient="b@example.com").held
    assert len(published) == 1  # only the message due now; the other waits for the sweep
    bad = EmailMessage("Bad", "Body", "from@example.com", ["c@example.com"])
    bad.send_at = datetime(2030, 1, 1)
    with pytest.raises(InvalidEmailInput) as caught:
        OutboxBackend().send_messages([bad])
    assert caught.value.field == "send_at"
    assert mail.outbox == []


# --- Through real workers and a real SMTP server --------------------------------------------------

def arrivals(smtp, address):
    return [r.at for r in smtp.received if address in r.rcpt_tos]


@pytest.mark.integration
def test_a_real_worker_sends_a_scheduled_email_no_earlier_than_send_at(celery_worker, smtp, wait_for, make_user):
    """Due within SCHEDULE_ETA_MAX: published at once with the broker's ETA."""
    user = make_user(email="later@example.com")
    start = time.monotonic()
    email_utils.send_welcome_email(user, send_at=timezone.now() + timedelta(seconds=3))
    wait_for(lambda: arrivals(smtp, "later@example.com"), timeout=30, message="the scheduled email")
    (arrived,) = arrivals(smtp, "later@example.com")
    assert arrived - start >= 3


@pytest.mark.integration
def test_a_held_email_is_published_by_the_workers_sweep_and_arrives_on_time(
        isolated_worker, smtp, wait_for, make_user, settings):
    """Due beyond SCHEDULE_ETA_MAX (2 s here): held in the outbox, no task anywhere, until
    the in-worker sweep (every second) publishes it with its ETA."""
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "SCHEDULE_ETA_MAX": 2}
    isolated_worker(ASYNC_EMAIL_TEST_SWEEP_IN_WORKER=1, ASYNC_EMAIL_TEST_SWEEP_EVERY=1,
                    ASYNC_EMAIL_TEST_SCHEDULE_ETA_MAX=2)
    user = make_user(email="held@example.com")
    start = time.monotonic()
    email_utils.send_welcome_email(user, send_at=timezone.now() + timedelta(seconds=5))
    assert OutboxEmail.objects.get(recipient="held@example.com").held
    wait_for(lambda: arrivals(smtp, "held@example.com"), timeout=30, message="the held email")
    (arrived,) = arrivals(smtp, "held@example.com")
    assert arrived - start >= 5
    # The worker records the row just after the server's reply: wait for that too.
    row = wait_for(lambda: OutboxEmail.objects.filter(recipient="held@example.com", status="sent").first(),
                   timeout=30, message="the row recorded sent")
    assert (row.held, row.attempts) == (False, 1)


@pytest.mark.integration
def test_an_email_that_expires_while_the_workers_are_down_never_arrives(
        isolated_worker, smtp, wait_for, make_user, settings):
    user = make_user(email="stale@example.com")
    email_utils.send_welcome_email(user, expires_at=timezone.now() + timedelta(seconds=1))
    time.sleep(1.5)  # no worker consumes the queue until after the deadline
    isolated_worker()
    wait_for(lambda: OutboxEmail.objects.filter(recipient="stale@example.com", status="expired").exists(),
             timeout=30, message="the row recorded expired")
    assert arrivals(smtp, "stale@example.com") == []


@pytest.mark.integration
@pytest.mark.custom_user
def test_a_cancelled_scheduled_broadcast_sends_nothing(isolated_worker, smtp, wait_for, make_user, settings):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "SCHEDULE_ETA_MAX": 2}
    isolated_worker(ASYNC_EMAIL_TEST_SWEEP_IN_WORKER=1, ASYNC_EMAIL_TEST_SWEEP_EVERY=1,
                    ASYNC_EMAIL_TEST_SCHEDULE_ETA_MAX=2)
    for i in range(3):
        make_user(email=f"fan{i}@example.com", user_type="Artist")
    now = timezone.now()
    # One whose fan-out task is already in the broker with an ETA, one held in the outbox.
    (with_eta,) = email_utils.send_notification_to_user_types(["Artist"], "Soon", "Body",
                                                              send_at=now + timedelta(seconds=1.5))
    (held,) = email_utils.send_notification_to_user_types(["Artist"], "Later", "Body",
                                                          send_at=now + timedelta(seconds=4))
    email_utils.cancel_broadcast(with_eta)
    email_utils.cancel_broadcast(held)
    # A control broadcast, not cancelled, shows the workers were there to send.
    (control,) = email_utils.send_notification_to_user_types(["Artist"], "Control", "Body",
                                                             send_at=now + timedelta(seconds=4))
    wait_for(lambda: Broadcast.objects.get(task_id=control).state == "done", timeout=30,
             message="the control broadcast")
    time.sleep(1)
    subjects = {str(r.message["Subject"]) for r in smtp.received if r.rcpt_tos[0].startswith("fan")}
    assert subjects == {"Control"}
    assert {b.state for b in Broadcast.objects.filter(task_id__in=[with_eta, held])} == {"cancelled"}
    assert not OutboxEmail.objects.filter(broadcast__task_id__in=[with_eta, held]).exists()


def test_a_request_by_address_keeps_its_schedule_for_every_account_found(make_user, published):
    from django_async_email.delivery.address_lookup import resolve_address_requests

    first, second = make_user(email="shared@example.com"), make_user(email="Shared@example.com")
    send_at, expires_at = soon(60), soon(600)
    email_utils.request_password_reset("shared@example.com", send_at=send_at, expires_at=expires_at)
    resolve_address_requests(list(OutboxEmail.objects.values_list("pk", flat=True)))
    rows = list(OutboxEmail.objects.order_by("pk"))
    assert {r.user_id for r in rows} == {first.pk, second.pk}
    assert {(r.available_at, r.expires_at) for r in rows} == {(send_at, expires_at)}
