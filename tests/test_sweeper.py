"""The sweeper: lost publishes are republished, dead workers' rows given back, nothing sent twice."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from django_async_email import email_utils
from django_async_email.delivery.claim import claim_emails
from django_async_email.delivery.pipeline import deliver_emails
from django_async_email.delivery.sweeper import requeue_stuck_emails
from django_async_email.models import Broadcast, OutboxEmail

pytestmark = pytest.mark.django_db


def _later(seconds=3600):
    return timezone.now() + timedelta(seconds=seconds)


def test_fresh_rows_are_left_alone(make_user, published):
    email_utils.send_welcome_email(make_user())
    published.clear()
    assert requeue_stuck_emails()["emails_republished"] == 0
    assert published == []


def test_a_row_whose_publish_was_lost_is_republished_and_sent_once(make_user, published):
    email_utils.send_verification_email(make_user())  # pretend the on-commit publish failed
    row = OutboxEmail.objects.get()
    report = requeue_stuck_emails(now=_later())
    assert report["emails_republished"] == 1 and report["tasks_published"] == 1
    (name, args, options), = published
    assert name.endswith("send_email_verification_task") and args == [row.pk] and options["queue"] == "high"
    row.refresh_from_db()
    assert row.task_id == options["task_id"]
    deliver_emails([row.pk])
    deliver_emails([row.pk])  # the original publish turning up late sends nothing more
    assert len(mail.outbox) == 1


def test_a_dead_workers_rows_are_given_back_after_the_lease(make_user, published, settings):
    email_utils.send_notification_to_users([make_user().pk, make_user().pk], "Hello", "Body")
    ids = list(OutboxEmail.objects.values_list("pk", flat=True))
    claim_emails(ids)  # a worker claims them and is killed
    published.clear()
    assert requeue_stuck_emails()["leases_released"] == 0  # lease still running
    later = _later(settings.ASYNC_EMAIL.get("LEASE_SECONDS", 600) + 1)
    report = requeue_stuck_emails(now=later)
    assert report["leases_released"] == 2 and report["emails_republished"] == 2
    (name, args, _options), = published
    assert name.endswith("send_notification_email_task") and sorted(args[0]) == sorted(ids)
    assert deliver_emails(args[0]).sent == sorted(ids)


def test_rows_waiting_for_a_retry_are_not_republished_early(make_user, published):
    email_utils.send_welcome_email(make_user())
    OutboxEmail.objects.update(available_at=_later(7200), updated_at=timezone.now() - timedelta(hours=2))
    assert requeue_stuck_emails(now=_later(600))["emails_republished"] == 0
    assert requeue_stuck_emails(now=_later(7200 + 600))["emails_republished"] == 1


def test_bulk_rows_are_republished_in_chunks_on_the_low_queue(make_user, published, settings):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "BULK_CHUNK_SIZE": 2}
    users = [make_user() for _ in range(2)]
    email_utils.send_notification_to_users([u.pk for u in users], "Hello", "Body")
    report = requeue_stuck_emails(now=_later())
    assert report["tasks_published"] == 1
    assert published[-1][2]["queue"] == "low"


@pytest.mark.custom_user
def test_a_lost_fan_out_is_restarted(make_user, published):
    email_utils.send_notification_to_user_types(["Artist"], "Hello", "Body")
    published.clear()
    report = requeue_stuck_emails(now=_later())
    assert report["broadcasts_restarted"] == 1
    (name, args, options), = published
    assert name.endswith("send_bulk_notification_email_task") and args == [Broadcast.objects.get().pk]


def test_dry_run_changes_nothing(make_user, published):
    email_utils.send_welcome_email(make_user())
    published.clear()
    report = requeue_stuck_emails(now=_later(), dry_run=True)
    assert report["emails_republished"] == 1 and published == []


def test_the_periodic_task(make_user, published):
    from django_async_email.tasks import requeue_stuck_emails_task

    assert requeue_stuck_emails_task.run() == {"leases_released": 0, "emails_republished": 0,
                                               "tasks_published": 0, "broadcasts_restarted": 0, "held_released": 0,
                                   "expired": 0}


@pytest.mark.django_db
def test_a_row_merely_waiting_in_a_long_queue_is_republished_at_doubling_intervals(make_user, published):
    """A bulk queue's tail that waits longer than STUCK_AFTER is not republished at every
    sweep (each republish is one more task for the same row), but after 1, 2, 4... times
    what it had waited; a lost publish is still retried STUCK_AFTER after it."""
    email_utils.send_welcome_email(make_user())
    row = OutboxEmail.objects.get()
    t0 = row.created_at
    OutboxEmail.objects.filter(pk=row.pk).update(updated_at=t0)
    republished = [s for s in range(0, 1000, 30)  # a sweep every 30 s, STUCK_AFTER 60 s
                   if requeue_stuck_emails(now=t0 + timedelta(seconds=s))["emails_republished"]]
    assert republished == [90, 210, 450, 930]


@pytest.mark.django_db
def test_a_republish_the_broker_refused_is_tried_again_at_the_next_sweep(make_user, published, monkeypatch):
    from celery.app.task import Task

    email_utils.send_welcome_email(make_user())
    row = OutboxEmail.objects.get()
    t0 = row.created_at
    OutboxEmail.objects.filter(pk=row.pk).update(updated_at=t0)

    def refuse(self, *args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(Task, "apply_async", refuse)
    for s in (90, 120, 150):  # the broker is down: every sweep tries, none counts as a publish
        requeue_stuck_emails(now=t0 + timedelta(seconds=s))
        assert OutboxEmail.objects.get().updated_at == t0
    monkeypatch.undo()
    published.clear()
    monkeypatch.setattr(Task, "apply_async", lambda self, args=None, kwargs=None, **o: published.append(args))
    assert requeue_stuck_emails(now=t0 + timedelta(seconds=180))["emails_republished"] == 1
    assert published == [[[row.pk]]]
