"""Faults injected into real components: a real worker on the configured broker, a real SMTP
server that misbehaves on purpose, killed workers, lost publishes. Each scenario asserts the
exact outcome in the SMTP server and in the audit trail, and records it for the report."""

import os
import signal
import subprocess
import time
from collections import Counter

import pytest
from django.conf import settings
from django.db import transaction

from django_async_email import email_utils
from django_async_email.models import OutboxEmail

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
BROKER = os.environ.get("ASYNC_EMAIL_TEST_BROKER", "filesystem")
FINAL = ("sent", "failed", "cancelled", "suppressed")


def settled(wait_for, count, timeout=40):
    return wait_for(lambda: OutboxEmail.objects.filter(status__in=FINAL).count() >= count
                    and not OutboxEmail.objects.exclude(status__in=FINAL).exists(),
                    timeout=timeout, message=f"{count} email(s) settled")


def last_delivered_after(smtp, addresses, since):
    """Seconds from ``since`` (a monotonic time: the fault) to the last address's first copy."""
    wanted = {a.lower() for a in addresses}
    first = {}
    for r in smtp.received:
        for rcpt in r.rcpt_tos:
            if rcpt.lower() in wanted:
                first.setdefault(rcpt.lower(), r.at)
    return max(first.values()) - since


# The defaults' proportions (lease 60 s, a sweep every 30 s, STUCK_AFTER 60 s), scaled by a
# tenth so a scenario takes seconds: the in-worker sweep does the recovery, nobody calls it.
SCALED_DEFAULTS = {
    "ASYNC_EMAIL_TEST_SWEEP_IN_WORKER": 1, "ASYNC_EMAIL_TEST_LEASE_SECONDS": 6, "ASYNC_EMAIL_TEST_SWEEP_EVERY": 3,
    "ASYNC_EMAIL_TEST_STUCK_AFTER": 6,
}


def outcome(smtp, addresses):
    counts = Counter(rcpt.lower() for r in smtp.received for rcpt in r.rcpt_tos)
    delivered = sum(1 for a in addresses if counts[a.lower()] >= 1)
    duplicated = sum(counts[a.lower()] - 1 for a in addresses if counts[a.lower()] > 1)
    return delivered, duplicated, len(addresses) - delivered


def test_transient_4xx_is_delivered_once_after_growing_delays(celery_worker, smtp, wait_for, make_user,
                                                             reliability):
    user = make_user(email="busy@example.com")
    smtp.fail_first("busy@example.com", 2, code=421)
    sent_at = time.monotonic()
    email_utils.send_welcome_email(user)
    settled(wait_for, 1)
    row = OutboxEmail.objects.get()
    assert (row.status, row.attempts) == ("sent", 3)
    attempts = smtp.attempts_for("busy@example.com")
    assert len(attempts) == 3 and attempts[2] - attempts[1] > attempts[1] - attempts[0]
    assert outcome(smtp, ["busy@example.com"]) == (1, 0, 0)
    reliability("SMTP 421 for the first 2 attempts", 1, *outcome(smtp, ["busy@example.com"]),
                note="3 attempts, growing delays", recovery_s=last_delivered_after(smtp, ["busy@example.com"], sent_at))


def test_permanent_5xx_and_all_recipients_refused_fail_at_once(celery_worker, smtp, wait_for, make_user,
                                                              reliability):
    users = [make_user(email=f"gone{i}@example.com") for i in range(2)]
    smtp.refuse("gone0@example.com", 550)
    smtp.refuse("gone1@example.com", 553)
    email_utils.send_notification_to_users([u.pk for u in users], "Hello", "Body")
    settled(wait_for, 2)
    assert list(OutboxEmail.objects.values_list("status", "attempts")) == [("failed", 1)] * 2
    assert all(len(smtp.attempts_for(u.email)) == 1 for u in users)
    assert smtp.received == []
    reliability("SMTP 550/553: all recipients refused", 0, 0, 0, 0, note="failed after 1 attempt, no retry")


def test_partial_refusal_in_a_batch(celery_worker, smtp, wait_for, make_user, reliability):
    users = [make_user(email=f"p{i}@example.com") for i in range(4)]
    smtp.refuse("p2@example.com", 550)
    email_utils.send_notification_to_users([u.pk for u in users], "Hello", "Body")
    settled(wait_for, 4)
    statuses = dict(OutboxEmail.objects.values_list("recipient", "status"))
    assert statuses == {"p0@example.com": "sent", "p1@example.com": "sent", "p2@example.com": "failed",
                        "p3@example.com": "sent"}
    assert "550" in OutboxEmail.objects.get(recipient="p2@example.com").last_error
    ok = ["p0@example.com", "p1@example.com", "p3@example.com"]
    assert outcome(smtp, ok) == (3, 0, 0)
    reliability("one recipient of a batch refused (550)", 3, *outcome(smtp, ok), note="refused one failed")


def test_connection_dropped_after_data_is_retried(celery_worker, smtp, wait_for, make_user, reliability):
    user = make_user(email="drop@example.com")
    smtp.drop_after_data("drop@example.com", 1)
    sent_at = time.monotonic()
    email_utils.send_welcome_email(user)
    settled(wait_for, 1)
    row = OutboxEmail.objects.get()
    assert (row.status, row.attempts) == ("sent", 2) and smtp.handler.dropped == 1
    assert outcome(smtp, ["drop@example.com"]) == (1, 0, 0)
    reliability("connection dropped after DATA, no reply", 1, *outcome(smtp, ["drop@example.com"]),
                note="retried; the sink kept nothing of the dropped try",
                recovery_s=last_delivered_after(smtp, ["drop@example.com"], sent_at))


def test_a_server_that_never_answers_times_out_and_the_worker_goes_on(isolated_worker, smtp, wait_for,
                                                                       make_user, reliability):
    from tests.smtp_server import SilentServer

    silent = SilentServer().start()
    try:
        isolated_worker(ASYNC_EMAIL_TEST_SMTP_PORT=silent.port, ASYNC_EMAIL_TEST_SEND_TIMEOUT=1,
                        ASYNC_EMAIL_TEST_RETRY_BACKOFF=30)
        email_utils.send_welcome_email(make_user(email="void@example.com"))
        started = time.monotonic()
        row = wait_for(lambda: OutboxEmail.objects.filter(attempts=1, status="queued").exclude(last_error="")
                       .first(), timeout=20, message="the timeout to be recorded")
        assert time.monotonic() - started < 10
        assert "timed out" in row.last_error.lower() or "Timeout" in row.last_error
    finally:
        silent.stop()
    # The same worker goes on with other work (here pointed at the silent server too, so a
    # second email must also be tried promptly rather than stuck behind the first).
    email_utils.send_welcome_email(make_user(email="next@example.com"))
    wait_for(lambda: OutboxEmail.objects.filter(recipient="next@example.com", attempts=1).exists(), timeout=20,
             message="the worker to take the next email")
    reliability("server accepts the connection and never answers", 0, 0, 0, 0,
                note="gave up after the 1 s timeout, retry scheduled, worker free")


def test_hung_rcpt_for_one_address_does_not_block_the_queue(celery_worker, smtp, wait_for, make_user, reliability):
    slow = make_user(email="slow@example.com")
    ok = make_user(email="ok@example.com")
    smtp.hang("slow@example.com", 20)
    email_utils.send_welcome_email(slow)
    email_utils.send_welcome_email(ok)
    wait_for(lambda: OutboxEmail.objects.filter(recipient="ok@example.com", status="sent").exists(), timeout=30,
             message="the next email to go out")
    slow_row = OutboxEmail.objects.get(recipient="slow@example.com")
    assert slow_row.attempts >= 1 and slow_row.status in ("queued", "sending", "sent")
    reliability("RCPT never answered for one address", 1, *outcome(smtp, ["ok@example.com"]),
                note="timed out after 5 s, the next email went out")


def test_worker_killed_mid_chunk_loses_nothing(isolated_worker, smtp, wait_for, make_user, reliability):
    if not settings.CUSTOM_USER:
        pytest.skip("bulk by user type needs the custom user model")
    users = [make_user(user_type="Publisher") for _ in range(100)]
    addresses = [u.email for u in users]
    smtp.slow_data(0.03)
    smtp.with_pipelining()  # as a production relay: pipelined, over several connections
    worker = isolated_worker(**SCALED_DEFAULTS, ASYNC_EMAIL_TEST_RECORD_EVERY=10)
    email_utils.send_notification_to_user_types(["Publisher"], "Hello", "Body")
    wait_for(lambda: len(smtp.received) >= 25, timeout=30, message="the chunk to be half sent")
    worker.proc.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    worker.proc.wait()
    sent_before_kill = len(smtp.received)
    smtp.slow_data(0)
    isolated_worker(**SCALED_DEFAULTS, ASYNC_EMAIL_TEST_RECORD_EVERY=10)
    settled(wait_for, 100, timeout=60)  # the new worker's own sweep gives the rows back
    assert OutboxEmail.objects.filter(status="sent").count() == 100
    delivered, duplicated, lost = outcome(smtp, addresses)
    assert lost == 0 and delivered == 100
    # Sent rows are written back every RECORD_EVERY (10) messages, so at most that many
    # were sent but unrecorded when the process died, plus one in flight per connection
    # (SMTP_CONNECTIONS, 4).
    assert duplicated <= 10 + 4, duplicated
    recovery = last_delivered_after(smtp, addresses, killed_at)
    assert recovery < 6 + 2 * 3 + 10, recovery  # a lease, two sweeps, the sending
    reliability("worker SIGKILLed mid-chunk, new worker sweeps", 100, delivered, duplicated, lost,
                note=f"killed after {sent_before_kill} sent; RECORD_EVERY=10 bounds resends", recovery_s=recovery)


def test_publish_lost_at_commit_is_recovered_by_the_sweeper(isolated_worker, smtp, wait_for, make_user, reliability,
                                                            caplog):
    from tests.celery_app import app

    isolated_worker(**SCALED_DEFAULTS)
    user = make_user(email="lost@example.com")
    original = app.conf.broker_url, app.conf.broker_transport, app.conf.task_publish_retry
    # Nothing listens on port 9: the publish after commit fails for real.
    app.conf.broker_url, app.conf.broker_transport, app.conf.task_publish_retry = "redis://127.0.0.1:9/0", None, False
    app._pool, app.amqp._producer_pool = None, None
    try:
        sent_at = time.monotonic()
        email_utils.send_welcome_email(user)  # commits; the publish fails
    finally:
        app.conf.broker_url, app.conf.broker_transport, app.conf.task_publish_retry = original
        app._pool, app.amqp._producer_pool = None, None
    assert "stay queued for the sweeper" in caplog.text
    time.sleep(1.5)
    assert OutboxEmail.objects.get().status == "queued" and smtp.received == []
    settled(wait_for, 1, timeout=30)  # the worker's own sweep, once the row is STUCK_AFTER old
    assert outcome(smtp, ["lost@example.com"]) == (1, 0, 0)
    recovery = last_delivered_after(smtp, ["lost@example.com"], sent_at)
    assert 6 <= recovery < 6 + 3 + 5, recovery  # not before STUCK_AFTER; by the sweep after it
    reliability("broker down at commit (publish lost)", 1, *outcome(smtp, ["lost@example.com"]),
                note="row stayed queued; the worker's sweep republished it", recovery_s=recovery)


def test_rolled_back_transaction_sends_nothing(celery_worker, smtp, wait_for, make_user, reliability):
    user = make_user(email="rollback@example.com")
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            email_utils.send_welcome_email(user)
            raise RuntimeError
    email_utils.send_welcome_email(make_user(email="marker@example.com"))
    settled(wait_for, 1)
    assert OutboxEmail.objects.count() == 1 and outcome(smtp, ["rollback@example.com"]) == (0, 0, 1)
    reliability("transaction rolled back", 0, 0, 0, 0, note="nothing queued, nothing sent")


def test_the_same_task_delivered_twice_sends_one_message(celery_worker, smtp, wait_for, make_user, reliability):
    from django_async_email.tasks import send_email_verification_task

    email_utils.send_verification_email(make_user(email="twice@example.com"))
    settled(wait_for, 1)
    row = OutboxEmail.objects.get()
    # The broker hands the same message over again (redelivery after a lost ack).
    send_email_verification_task.apply_async(args=[row.pk], task_id=row.task_id, queue="high")
    wait_for(lambda: f"[{row.task_id}] succeeded" in (settings.RUN_DIR / "worker.log").read_text()
             .split(f"[{row.task_id}] succeeded", 1)[-1] or False, timeout=20, message="the redelivery to run")
    time.sleep(0.5)
    messages = smtp.messages_to("twice@example.com")
    assert len(messages) == 1 and messages[0]["Message-ID"] == row.message_id
    reliability("the same task delivered twice", 1, *outcome(smtp, ["twice@example.com"]),
                note="one message, same Message-ID")


@pytest.mark.skipif(BROKER not in ("redis", "amqp"), reason="restarts a broker server; the embedded one has none")
def test_broker_restarted_mid_bulk_loses_nothing(isolated_worker, smtp, wait_for, make_user, reliability):
    isolated_worker(**SCALED_DEFAULTS)
    users = [make_user(user_type="Station") if settings.CUSTOM_USER else make_user() for _ in range(60)]
    smtp.slow_data(0.02)
    if settings.CUSTOM_USER:
        email_utils.send_notification_to_user_types(["Station"], "Hello", "Body")
    else:
        email_utils.send_notification_to_users([u.pk for u in users], "Hello", "Body")
    wait_for(lambda: len(smtp.received) >= 10, timeout=30, message="the bulk to start")
    restarted_at = time.monotonic()
    restart_broker()
    smtp.slow_data(0)
    settled(wait_for, 60, timeout=90)  # nobody calls the sweeper
    delivered, duplicated, lost = outcome(smtp, [u.email for u in users])
    assert lost == 0 and duplicated == 0
    reliability(f"{BROKER} broker restarted mid-bulk", 60, delivered, duplicated, lost,
                note="the worker reconnected; its sweep republished what the broker lost",
                recovery_s=last_delivered_after(smtp, [u.email for u in users], restarted_at))


def restart_broker():
    if BROKER == "redis":
        subprocess.run(["redis-cli", "-p", "6379", "shutdown", "nosave"], check=False)
        subprocess.run(["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379",
                        "--save", "", "--appendonly", "no", "--dir", "/var/lib/redis",
                        "--logfile", "/var/log/redis/ci.log"], check=True)
    else:
        subprocess.run(["rabbitmqctl", "stop_app"], check=True, capture_output=True)
        subprocess.run(["rabbitmqctl", "start_app"], check=True, capture_output=True)
