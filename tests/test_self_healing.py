"""Recovery without beat or cron: the workers sweep by themselves, one at a time, and a
killed worker's emails (and a killed fan-out) go out again with no tuning and no call."""

import signal
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_async_email import email_utils
from django_async_email.delivery import sweep_timer
from django_async_email.delivery.claim import claim_emails
from django_async_email.delivery.sweeper import (
    next_lease_expiry,
    requeue_stuck_emails,
    sweep_if_ours,
    take_sweeper_lease,
)
from django_async_email.models import Broadcast, OutboxEmail

pytestmark = pytest.mark.django_db(transaction=True)


def test_only_one_worker_sweeps_at_a_time():
    now = timezone.now()
    assert take_sweeper_lease("worker-a", seconds=45, now=now)
    assert not take_sweeper_lease("worker-b", seconds=45, now=now + timedelta(seconds=10))
    assert take_sweeper_lease("worker-a", seconds=45, now=now + timedelta(seconds=30))  # the holder renews
    assert sweep_if_ours("worker-b", now=now + timedelta(seconds=40)) is None
    # The holder died: after its lease another worker takes over.
    assert take_sweeper_lease("worker-b", seconds=45, now=now + timedelta(seconds=80))


def test_an_idle_sweep_is_nine_queries():
    # The lease; index reads for expired leases, expired rows, stuck rows, lost fan-outs,
    # held rows and held broadcasts; and the two that find the first lease to run out.
    take_sweeper_lease("me", seconds=45)
    timer = sweep_timer.SweepTimer("me")
    with CaptureQueriesContext(connection) as queries:
        assert timer.sweep_once() == 30
    assert len(queries) == 9, [q["sql"] for q in queries]
    assert sweep_if_ours("me") == {"leases_released": 0, "emails_republished": 0, "tasks_published": 0,
                                   "broadcasts_restarted": 0, "held_released": 0, "expired": 0}


def test_the_sweeping_worker_wakes_when_the_first_lease_runs_out(settings):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "SWEEP_EVERY": 30}
    now = timezone.now()
    assert sweep_timer.seconds_until_next_sweep(None, now) == 30  # nothing held: the interval
    assert sweep_timer.seconds_until_next_sweep(now + timedelta(seconds=100), now) == 30
    assert sweep_timer.seconds_until_next_sweep(now + timedelta(seconds=7), now) == 7.5  # just after it runs out
    assert sweep_timer.seconds_until_next_sweep(now - timedelta(seconds=5), now) == 1.0  # never a busy loop


@pytest.mark.custom_user
def test_the_first_lease_counts_rows_being_sent_and_fan_outs(make_user, published, settings):
    assert next_lease_expiry() is None
    make_user(user_type="Artist")
    email_utils.send_verification_email(make_user())
    _token, rows = claim_emails([OutboxEmail.objects.get().pk])
    assert next_lease_expiry() == rows[0].lease_expires_at
    email_utils.send_notification_to_user_types(["Artist"], "Hello", "Body")
    soon = timezone.now() + timedelta(seconds=5)
    Broadcast.objects.update(lease_expires_at=soon)
    assert next_lease_expiry() == soon
    Broadcast.objects.update(state=Broadcast.State.CANCELLED)
    assert next_lease_expiry() == rows[0].lease_expires_at


@pytest.mark.custom_user
def test_a_surviving_sweeper_gives_back_a_dead_workers_rows_when_their_lease_ends(make_user, published, settings):
    # The fleet case: this process holds the sweeper lease; another worker claimed a row
    # just after a sweep and died. The next sweep (4 s) sees the lease, which ends at 5 s, and
    # the timer wakes then: the row is back at about 5.5 s, where the interval alone would
    # give it back at the sweep after, at 8 s. (The defaults' lease and sweep are 60 and 30.)
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "SWEEP_EVERY": 4, "LEASE_SECONDS": 5}
    email_utils.send_verification_email(make_user())
    row = OutboxEmail.objects.get()
    timer = sweep_timer.SweepTimer("survivor").start()
    try:
        deadline = time.monotonic() + 15
        while not SweeperLease_held_by("survivor") and time.monotonic() < deadline:
            time.sleep(0.05)
        claim_emails([row.pk])  # the worker that is about to die
        started = time.monotonic()
        while OutboxEmail.objects.get(pk=row.pk).status == "sending" and time.monotonic() < deadline:
            time.sleep(0.05)
        given_back_after = time.monotonic() - started
    finally:
        timer.stop()
    assert OutboxEmail.objects.get(pk=row.pk).status == "queued"
    assert given_back_after < 5 + 1.5, given_back_after
    assert [name for name, _a, _o in published][-1] == "django_async_email.tasks.send_email_verification_task"


def SweeperLease_held_by(holder):
    from django_async_email.models import SweeperLease

    return SweeperLease.objects.filter(holder=holder).exists()


@pytest.mark.custom_user
def test_a_fan_out_whose_lease_ran_out_is_restarted(make_user, published):
    make_user(user_type="Artist")
    email_utils.send_notification_to_user_types(["Artist"], "Hello", "Body")
    broadcast = Broadcast.objects.get()
    # The fan-out started (it holds a lease) and died: nothing restarts it while the lease holds.
    Broadcast.objects.filter(pk=broadcast.pk).update(lease_expires_at=timezone.now() + timedelta(seconds=30))
    assert requeue_stuck_emails()["broadcasts_restarted"] == 0
    Broadcast.objects.filter(pk=broadcast.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    before = len(published)
    assert requeue_stuck_emails()["broadcasts_restarted"] == 1
    assert [name for name, _a, _o in published[before:]] == [
        "django_async_email.tasks.send_bulk_notification_email_task"]
    assert requeue_stuck_emails()["broadcasts_restarted"] == 0  # held for a lease after the restart


def _settled(wait_for, addresses, smtp, timeout):
    return wait_for(lambda: OutboxEmail.objects.filter(status="sent").count() == len(addresses)
                    and set(addresses) <= {r.rcpt_tos[0] for r in smtp.received}, timeout=timeout,
                    message=f"{len(addresses)} emails sent")


RECOVERY_ENV = {
    # The defaults' proportions, scaled down so the test takes seconds, not minutes: a
    # lease of 6 s (default 60) and a sweep every 2 s (30); nothing calls the sweeper.
    "ASYNC_EMAIL_TEST_SWEEP_IN_WORKER": 1, "ASYNC_EMAIL_TEST_LEASE_SECONDS": 6,
    "ASYNC_EMAIL_TEST_SWEEP_EVERY": 2, "ASYNC_EMAIL_TEST_STUCK_AFTER": 6, "ASYNC_EMAIL_TEST_RECORD_EVERY": 10,
}


@pytest.mark.integration
@pytest.mark.custom_user
def test_a_killed_workers_bulk_goes_out_with_no_sweeper_call(isolated_worker, smtp, wait_for, make_user):
    users = [make_user(user_type="Station") for _ in range(150)]
    addresses = [u.email for u in users]
    smtp.slow_data(0.02)
    worker = isolated_worker(**RECOVERY_ENV)
    email_utils.send_notification_to_user_types(["Station"], "Hello", "Body")
    wait_for(lambda: len(smtp.received) >= 30, timeout=30, message="the bulk to be under way")
    worker.proc.send_signal(signal.SIGKILL)
    worker.proc.wait()
    smtp.slow_data(0)
    started = time.monotonic()
    isolated_worker(**RECOVERY_ENV)
    _settled(wait_for, addresses, smtp, timeout=60)
    recovery = time.monotonic() - started
    # Within a lease and a couple of sweeps of the new worker starting.
    assert recovery < 6 + 3 * 2 + 10, recovery
    sends = [r.rcpt_tos[0] for r in smtp.received]
    duplicates = len(sends) - len(set(sends))
    assert duplicates <= 10 + 1, duplicates  # RECORD_EVERY, plus the one in flight
    # The run that recorded the last rows marks the broadcast done just after writing them.
    wait_for(lambda: Broadcast.objects.get().state == "done", timeout=10, message="the broadcast done")


@pytest.mark.integration
@pytest.mark.custom_user
def test_a_fan_out_that_died_half_way_resumes_and_every_recipient_gets_one_email(
        isolated_worker, smtp, wait_for, make_user, settings, monkeypatch):
    from django_async_email.outbox import fanout

    users = [make_user(user_type="Publisher") for _ in range(200)]
    addresses = [u.email for u in users]
    isolated_worker(**RECOVERY_ENV)
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "LEASE_SECONDS": 6, "SWEEP_IN_WORKER": True}
    # A fan-out that dies after its second chunk, as a killed process would: its chunks so
    # far are committed and published, its lease on the broadcast is left to run out.
    written = []
    create = fanout._create_and_publish

    def dies_after_two_chunks(broadcast, batch):
        if len(written) == 2:
            raise SystemExit("killed")
        written.append(len(batch))
        return create(broadcast, batch)

    monkeypatch.setattr(email_utils.broadcasts, "publish_on_commit", lambda *a, **k: None)  # we run it here
    email_utils.send_notification_to_user_types(["Publisher"], "Hello again", "Body")
    monkeypatch.undo()
    broadcast = Broadcast.objects.get()
    monkeypatch.setattr(fanout, "_create_and_publish", dies_after_two_chunks)
    with pytest.raises(SystemExit):
        fanout.fan_out(broadcast.pk)
    monkeypatch.undo()
    assert OutboxEmail.objects.filter(broadcast=broadcast).count() == 100
    # Nobody calls the sweeper: the worker's own sweep restarts the fan-out after its lease.
    wait_for(lambda: OutboxEmail.objects.filter(broadcast=broadcast, status="sent").count() == 200, timeout=60,
             message="every recipient sent")
    sends = [r.rcpt_tos[0] for r in smtp.received if str(r.message["Subject"]) == "Hello again"]
    assert sorted(sends) == sorted(addresses)  # each once
    broadcast.refresh_from_db()
    assert broadcast.total == 200
