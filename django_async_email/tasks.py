"""The Celery tasks, as ``shared_task``s that bind to the host's own Celery app.

Thin on purpose: arguments are outbox row ids (JSON, never model instances, never
tokens), and the work is in ``delivery`` and ``outbox``, which tests call directly. Each
task takes its name from the table of kinds (``outbox.kinds``), which is how the request
side finds it without importing this module.

``acks_late`` is safe here because delivery is idempotent per row: a redelivered message
finds its rows already sent (or still leased) and sends nothing again.
"""

from __future__ import annotations

from typing import TypedDict

from celery import shared_task

from .delivery import sweep_timer  # noqa: F401  (connects the in-worker recovery sweep to worker_ready)
from .delivery.address_lookup import resolve_address_requests
from .delivery.pipeline import deliver_emails
from .delivery.sweeper import requeue_stuck_emails
from .outbox import kinds
from .outbox.fanout import fan_out


class _TaskOptions(TypedDict):
    """The options every sending task shares; typed so each key is checked against ``shared_task``."""

    acks_late: bool
    reject_on_worker_lost: bool
    ignore_result: bool


TASK_OPTIONS: _TaskOptions = {"acks_late": True, "reject_on_worker_lost": True, "ignore_result": False}


def _deliver_and_retry(task, email_ids) -> dict:
    report = deliver_emails(email_ids)
    if report.retry and not report.retry_held:
        # Only the rows that failed transiently are retried; the attempt count lives on the
        # rows, so Celery's own max_retries is not the limit. A backoff longer than
        # SCHEDULE_ETA_MAX is not an ETA in a worker's memory: the rows were written held,
        # and the sweep publishes them when they come due.
        raise task.retry(args=[report.retry], countdown=report.retry_countdown, max_retries=None)
    return report.as_dict()


def _as_ids(email_id) -> list:
    """Single-email tasks take one row id; their retries carry a list."""
    return email_id if isinstance(email_id, list) else [email_id]


@shared_task(bind=True, name=kinds.VERIFICATION.task_name, **TASK_OPTIONS)
def send_email_verification_task(self, email_id):
    """Send a verification email (queue: high).

    A resend asked for by address is first matched to its account here, in the worker.
    """
    return _deliver_and_retry(self, resolve_address_requests(_as_ids(email_id)))


@shared_task(bind=True, name=kinds.PASSWORD_RESET.task_name, **TASK_OPTIONS)
def send_password_reset_email_task(self, email_id):
    """Send a password reset or password-changed email (queue: high).

    A reset requested by address is first matched to its account here, in the worker, so
    the request path cannot reveal whether the account exists.
    """
    return _deliver_and_retry(self, resolve_address_requests(_as_ids(email_id)))


@shared_task(bind=True, name=kinds.INVITATION.task_name, **TASK_OPTIONS)
def send_user_invitation_email_task(self, email_id):
    """Send an invitation email (queue: normal)."""
    return _deliver_and_retry(self, _as_ids(email_id))


@shared_task(bind=True, name=kinds.NOTIFICATION.task_name, **TASK_OPTIONS)
def send_notification_email_task(self, email_ids):
    """Send notification (or welcome) emails in one task (queue: normal; low for bulk chunks)."""
    return _deliver_and_retry(self, email_ids)


@shared_task(bind=True, name=kinds.STORED.task_name, **TASK_OPTIONS)
def send_stored_email_task(self, email_ids):
    """Send messages the host handed to ``OutboxBackend``, as they were built (queue: normal)."""
    return _deliver_and_retry(self, email_ids)


@shared_task(bind=True, name=kinds.FAN_OUT.task_name, **TASK_OPTIONS)
def send_bulk_notification_email_task(self, broadcast_id):
    """Fan a broadcast out into per-chunk send tasks (queue: low)."""
    return fan_out(broadcast_id)


@shared_task(name=kinds.SWEEP.task_name, ignore_result=False)
def requeue_stuck_emails_task():
    """Republish accepted emails whose task was lost (run it from Celery beat; queue: low)."""
    return requeue_stuck_emails()
