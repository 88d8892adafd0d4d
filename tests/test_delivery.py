"""The delivery layer and the task functions, called directly (no worker)."""

import logging
import smtplib

import pytest
from celery.exceptions import Retry
from django.core import mail

from django_async_email import email_utils, signals
from django_async_email.delivery.claim import claim_emails
from django_async_email.delivery.pipeline import deliver_emails
from django_async_email.delivery.retry import retry_countdown
from django_async_email.delivery.send.classify import PERMANENT, TRANSIENT, classify_send_error
from django_async_email.models import OutboxEmail
from django_async_email.tasks import send_email_verification_task, send_notification_email_task

pytestmark = pytest.mark.django_db


def backoff_over(*rows):
    """As when a retry's countdown has run out: the rows are due again."""
    OutboxEmail.objects.filter(pk__in=[r.pk for r in rows]).update(available_at=None)


@pytest.fixture
def queued(make_user, published):
    """Queue a welcome email per address and return the rows."""

    def queue(*addresses):
        for address in addresses:
            email_utils.send_welcome_email(make_user(email=address))
        return list(OutboxEmail.objects.order_by("pk"))

    return queue


def test_sends_and_records(queued):
    (row,) = queued("ann@example.com")
    report = deliver_emails([row.pk])
    assert report.sent == [row.pk]
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_error) == ("sent", 1, "")
    assert row.sent_at is not None and row.claim_token == ""
    (message,) = mail.outbox
    assert message.to == ["ann@example.com"]
    assert message.extra_headers["Message-ID"] == row.message_id
    assert message.from_email == "ZamIO <no-reply@zamio.test>"


def test_a_sent_row_is_never_sent_again(queued):
    (row,) = queued("ann@example.com")
    deliver_emails([row.pk])
    # A redelivered or retried task for the same row:
    assert deliver_emails([row.pk]).sent == []
    assert send_email_verification_task.run(row.pk) == {"sent": 0, "failed": 0, "retrying": 0}
    assert len(mail.outbox) == 1


def test_a_row_held_by_another_worker_is_not_claimed(queued):
    (row,) = queued("ann@example.com")
    _token, first = claim_emails([row.pk])
    _token, second = claim_emails([row.pk])
    assert [r.pk for r in first] == [row.pk] and second == []


def test_a_lease_that_ran_out_is_taken_back(queued, settings):
    (row,) = queued("ann@example.com")
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "LEASE_SECONDS": 1}
    from datetime import timedelta

    from django.utils import timezone

    claim_emails([row.pk])  # a worker claims it and dies
    later = timezone.now() + timedelta(seconds=5)
    _token, rows = claim_emails([row.pk], now=later)
    assert [r.pk for r in rows] == [row.pk]
    assert rows[0].attempts == 2


def test_one_connection_per_batch(queued, smtp_backend):
    rows = queued("a@example.com", "b@example.com", "c@example.com")
    report = deliver_emails([r.pk for r in rows])
    assert sorted(report.sent) == [r.pk for r in rows]
    assert smtp_backend.connections == 1
    assert len(smtp_backend.received) == 3


def test_permanent_failure_fails_at_once_without_retry(queued, smtp_backend):
    rows = queued("gone@example.com", "ok@example.com")
    smtp_backend.refuse("gone@example.com", 550)
    report = deliver_emails([r.pk for r in rows])
    assert report.failed == [rows[0].pk] and report.sent == [rows[1].pk] and report.retry == []
    gone, ok = OutboxEmail.objects.order_by("pk")
    assert gone.status == "failed" and gone.attempts == 1
    assert "550" in gone.last_error and "gone@example.com" in gone.last_error
    assert ok.status == "sent"
    assert [m["To"] for m in (r.message for r in smtp_backend.received)] == ["ok@example.com"]


def test_transient_failure_is_retried_then_sent_once_with_the_same_message_id(queued, smtp_backend):
    (row,) = queued("busy@example.com")
    smtp_backend.fail_first("busy@example.com", 2, code=451)
    report = deliver_emails([row.pk])
    assert report.retry == [row.pk] and report.retry_countdown > 0
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("queued", 1) and "451" in row.last_error
    # Before its backoff ends, a task (a redelivery, a retry run early) claims nothing.
    assert deliver_emails([row.pk]).as_dict() == {"sent": 0, "failed": 0, "retrying": 0}
    backoff_over(row)
    deliver_emails([row.pk])
    backoff_over(row)
    assert deliver_emails([row.pk]).sent == [row.pk]
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("sent", 3)
    (received,) = smtp_backend.received
    assert received.message["Message-ID"] == row.message_id
    assert len(smtp_backend.attempts_for("busy@example.com")) == 3


def test_retries_are_bounded_by_max_retries(queued, smtp_backend, settings):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "MAX_RETRIES": 2}
    (row,) = queued("busy@example.com")
    smtp_backend.fail_first("busy@example.com", 10, code=421)
    for _ in range(3):
        deliver_emails([row.pk])
        backoff_over(row)
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("failed", 3)
    assert row.last_error.startswith("Gave up after 3 attempts")
    assert deliver_emails([row.pk]).sent == []


def test_the_task_retries_only_the_transient_rows(queued, smtp_backend):
    rows = queued("busy@example.com", "ok@example.com")
    smtp_backend.fail_first("busy@example.com", 1)
    calls = []

    def fake_retry(args=None, countdown=None, max_retries=None, **kw):
        calls.append((args, countdown))
        return Retry("retry", None)

    send_notification_email_task.retry = fake_retry
    try:
        with pytest.raises(Retry):
            send_notification_email_task.run([r.pk for r in rows])
    finally:
        del send_notification_email_task.retry
    assert calls and calls[0][0] == [[rows[0].pk]] and calls[0][1] > 0


def test_eager_task_retries_never_run_before_the_backoff(queued, smtp_backend):
    """Through Celery's own retry machinery. Eager apply runs a retry at once, ignoring its
    countdown: the retry finds the row not due yet and sends nothing early; once the
    backoff is over the task sends it."""
    (row,) = queued("busy@example.com")
    smtp_backend.fail_first("busy@example.com", 1)
    result = send_notification_email_task.apply(args=[[row.pk]])
    assert result.successful(), result.traceback
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("queued", 1) and row.available_at is not None
    assert smtp_backend.received == []
    backoff_over(row)
    assert send_notification_email_task.apply(args=[[row.pk]]).successful()
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("sent", 2)
    assert len(smtp_backend.received) == 1


def test_connection_refused_is_transient(queued, email_backend):
    from tests.smtp_server import free_port

    email_backend("django.core.mail.backends.smtp.EmailBackend", host="127.0.0.1", port=free_port())
    rows = queued("a@example.com", "b@example.com")
    report = deliver_emails([r.pk for r in rows])
    assert sorted(report.retry) == [r.pk for r in rows]
    assert {r.status for r in OutboxEmail.objects.all()} == {"queued"}
    assert all("ConnectionRefusedError" in r.last_error or "Not attempted" in r.last_error
               for r in OutboxEmail.objects.all())


def test_backoff_grows_exponentially_with_jitter(settings):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "RETRY_BACKOFF": 10, "RETRY_BACKOFF_MAX": 1000}
    assert [retry_countdown(n, rng=lambda: 0.0) for n in (1, 2, 3, 4)] == [10, 20, 40, 80]
    assert retry_countdown(1, rng=lambda: 0.999) == pytest.approx(14.995)
    # Even with the largest jitter, each delay is longer than the previous with none.
    assert retry_countdown(2, rng=lambda: 0.0) > retry_countdown(1, rng=lambda: 0.999)
    assert retry_countdown(20, rng=lambda: 0.0) == 1000
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "RETRY_JITTER": False}
    assert retry_countdown(3) == 40


@pytest.mark.parametrize(
    "exc,expected",
    [
        (smtplib.SMTPResponseException(451, b"try later"), TRANSIENT),
        (smtplib.SMTPResponseException(421, b"closing"), TRANSIENT),
        (smtplib.SMTPResponseException(550, b"no such user"), PERMANENT),
        (smtplib.SMTPRecipientsRefused({"a@x": (550, b"no")}), PERMANENT),
        (smtplib.SMTPRecipientsRefused({"a@x": (450, b"later"), "b@x": (451, b"later")}), TRANSIENT),
        (smtplib.SMTPRecipientsRefused({"a@x": (450, b"later"), "b@x": (550, b"no")}), PERMANENT),
        (smtplib.SMTPServerDisconnected("gone"), TRANSIENT),
        (ConnectionRefusedError(), TRANSIENT),
        (ConnectionResetError(), TRANSIENT),
        (TimeoutError(), TRANSIENT),
        (smtplib.SMTPAuthenticationError(535, b"bad credentials"), PERMANENT),
        (ValueError("bad template"), PERMANENT),
    ],
)
def test_classify_send_error(exc, expected):
    assert classify_send_error(exc) == expected


def test_partial_refusal_in_one_message_is_recorded(queued, smtp_backend, settings):
    """An adapter that adds a second recipient: a refused one is recorded, not dropped."""
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "ADAPTER": "tests.adapters.CopyToAuditAdapter"}
    (row,) = queued("ann@example.com")
    smtp_backend.refuse("audit@zamio.test", 550)
    report = deliver_emails([row.pk])
    assert report.sent == [row.pk]
    row.refresh_from_db()
    assert row.status == "sent"
    assert "audit@zamio.test" in row.last_error and "550" in row.last_error
    (received,) = smtp_backend.received
    assert received.rcpt_tos == ["ann@example.com"]


def test_signals_and_logging(queued, smtp_backend, caplog):
    rows = queued("gone@example.com", "ok@example.com", "busy@example.com")
    smtp_backend.refuse("gone@example.com")
    smtp_backend.fail_first("busy@example.com", 1)
    seen = {}
    receivers = {
        "sent": lambda sender, emails, **kw: seen.setdefault("sent", [e.recipient for e in emails]),
        "failed": lambda sender, emails, **kw: seen.setdefault("failed", [(e.recipient, e.last_error) for e in emails]),
        "retrying": lambda sender, emails, countdown, **kw: seen.setdefault(
            "retrying", ([e.recipient for e in emails], countdown)),
    }
    signals.email_sent.connect(receivers["sent"])
    signals.email_failed.connect(receivers["failed"])
    signals.email_retrying.connect(receivers["retrying"])
    try:
        with caplog.at_level(logging.INFO, logger="django_async_email"):
            deliver_emails([r.pk for r in rows])
    finally:
        signals.email_sent.disconnect(receivers["sent"])
        signals.email_failed.disconnect(receivers["failed"])
        signals.email_retrying.disconnect(receivers["retrying"])
    assert seen["sent"] == ["ok@example.com"]
    assert seen["failed"][0][0] == "gone@example.com" and "550" in seen["failed"][0][1]
    assert seen["retrying"][0] == ["busy@example.com"] and seen["retrying"][1] > 0
    levels = {(r.levelname, r.getMessage().split(" to ")[0]) for r in caplog.records}
    assert ("ERROR", f"Permanent failure sending email {rows[0].pk}") in levels
    assert ("WARNING", f"Transient failure sending email {rows[2].pk}") in levels


def test_email_queued_signal_is_sent_on_commit_only(make_user, published, django_capture_on_commit_callbacks):
    from django.db import transaction

    seen = []

    def receiver(sender, emails, task_id, **kwargs):
        seen.append((len(emails), task_id))

    signals.email_queued.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            task_id = email_utils.send_welcome_email(make_user())
            assert seen == []
        with django_capture_on_commit_callbacks(execute=True):
            with pytest.raises(RuntimeError), transaction.atomic():
                email_utils.send_welcome_email(make_user())
                raise RuntimeError
    finally:
        signals.email_queued.disconnect(receiver)
    assert seen == [(1, task_id)]


def test_a_template_error_fails_the_row_permanently(queued, settings, tmp_path):
    (row,) = queued("ann@example.com")
    broken = tmp_path / "django_async_email" / "welcome.html"
    broken.parent.mkdir()
    broken.write_text("{% block subject %}{% if %}{% endblock %}")
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path]}]
    report = deliver_emails([row.pk])
    assert report.failed == [row.pk]
    row.refresh_from_db()
    assert row.status == "failed" and row.last_error.startswith("Rendering failed")


def test_constant_queries_per_batch(make_user, published, django_assert_max_num_queries):
    """Claim, render and record 10 or 40 rows with the same number of queries."""

    def queries_for(n):
        users = [make_user() for _ in range(n)]
        email_utils.send_notification_to_users([u.pk for u in users], "Hello", "Body")
        ids = list(OutboxEmail.objects.filter(status="queued").values_list("pk", flat=True))
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as ctx:
            assert len(deliver_emails(ids).sent) == n
        return len(ctx.captured_queries)

    small, large = queries_for(10), queries_for(40)
    assert small == large
    # Two of them the screen step's (the suppression list, the preferences), one the
    # broadcast's, loaded once for the chunk rather than joined to every row.
    assert small <= 12


class DiesAfterThreeBackend:
    """An email backend whose process 'dies' (a BaseException, like SIGKILL) on the fourth message."""

    sent = 0

    def __init__(self, *args, **kwargs):
        pass

    def open(self):
        pass

    def close(self):
        pass

    def send_messages(self, messages):
        if DiesAfterThreeBackend.sent == 3:
            raise KeyboardInterrupt("worker killed")
        DiesAfterThreeBackend.sent += 1
        return 1


def test_sent_rows_are_recorded_as_the_batch_goes(queued, settings, email_backend):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "RECORD_EVERY": 2}
    email_backend("tests.test_delivery.DiesAfterThreeBackend")
    DiesAfterThreeBackend.sent = 0
    rows = queued(*[f"u{i}@example.com" for i in range(5)])
    with pytest.raises(KeyboardInterrupt):
        deliver_emails([r.pk for r in rows])
    statuses = list(OutboxEmail.objects.order_by("pk").values_list("status", flat=True))
    # Rows 1-2 were flushed when the second was sent; the third was flushed on the way out.
    assert statuses == ["sent", "sent", "sent", "sending", "sending"]


def test_errors_without_a_reply_code_are_permanent():
    import ssl

    assert classify_send_error(smtplib.SMTPNotSupportedError("STARTTLS extension not supported")) == PERMANENT
    assert classify_send_error(ssl.SSLCertVerificationError("certificate verify failed")) == PERMANENT


def test_backoff_cap_applies_after_the_jitter(settings):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "RETRY_BACKOFF": 100, "RETRY_BACKOFF_MAX": 120}
    assert retry_countdown(2, rng=lambda: 0.999) == 120


def test_caller_context_cannot_replace_built_in_variables(make_user, published):
    user = make_user(username="real", first_name="Real")
    email_utils.send_notification_to_users([user.pk], "Hello", "Body", context={
        "user": None, "site_name": "Evil", "greeting_name": "Evil", "extra": 1})
    deliver_emails(list(OutboxEmail.objects.values_list("pk", flat=True)))
    assert "Hello Real," in mail.outbox[0].body and "Evil" not in mail.outbox[0].body


@pytest.mark.parametrize("send", [email_utils.send_verification_email, email_utils.send_password_reset_email])
def test_a_link_for_a_changed_address_is_not_sent_to_the_old_one(send, make_user, published):
    user = make_user(email="old@example.com")
    send(user)
    user.email = "new@example.com"
    user.save()
    report = deliver_emails(list(OutboxEmail.objects.values_list("pk", flat=True)))
    assert report.suppressed and mail.outbox == []
    row = OutboxEmail.objects.get()
    assert row.status == "suppressed" and "address changed" in row.last_error


def test_rows_are_rendered_a_batch_at_a_time_then_sent(queued, monkeypatch):
    from django_async_email.delivery import pipeline
    from django_async_email.delivery.send import sender as sending

    rows = queued(*(f"u{i}@example.com" for i in range(5)))
    events = []
    build, send = pipeline.build_message, sending.Sender.send
    monkeypatch.setattr(pipeline, "RENDER_BATCH", 2)
    monkeypatch.setattr(pipeline, "build_message", lambda *a, **k: events.append("render") or build(*a, **k))
    monkeypatch.setattr(sending.Sender, "send", lambda self, m: events.append("send") or send(self, m))
    report = deliver_emails([r.pk for r in rows])
    assert sorted(report.sent) == [r.pk for r in rows] and len(mail.outbox) == 5
    assert events == ["render", "render", "send", "send"] * 2 + ["render", "send"]
