"""The Celery tasks, as ``shared_task``s that bind to the host's own Celery app.

Thin on purpose: arguments are outbox row ids (JSON, never model instances, never
tokens), and the work is in ``delivery`` and ``broadcasts``, which tests call directly.

``acks_late`` is safe here because delivery is idempotent per row: a redelivered message
finds its rows already sent (or still leased) and sends nothing again.
"""

from __future__ import annotations

from celery import shared_task

from .broadcasts import fan_out
from .delivery import deliver_emails
from .reset_requests import resolve_reset_requests

TASK_OPTIONS = {"acks_late": True, "reject_on_worker_lost": True, "ignore_result": False}


def _deliver_and_retry(task, email_ids) -> dict:
    report = deliver_emails(email_ids)
    if report.retry:
        # Only the rows that failed transiently are retried; the attempt count lives on the
        # rows, so Celery's own max_retries is not the limit.
        raise task.retry(args=[report.retry], countdown=report.retry_countdown, max_retries=None)
    return report.as_dict()


def _as_ids(email_id) -> list:
    """Single-email tasks take one row id; their retries carry a list."""
    return email_id if isinstance(email_id, list) else [email_id]


def _single(task, email_id) -> dict:
    return _deliver_and_retry(task, _as_ids(email_id))


@shared_task(bind=True, name="django_async_email.tasks.send_email_verification_task", **TASK_OPTIONS)
def send_email_verification_task(self, email_id):
    """Send a verification email (queue: high)."""
    return _single(self, email_id)


@shared_task(bind=True, name="django_async_email.tasks.send_password_reset_email_task", **TASK_OPTIONS)
def send_password_reset_email_task(self, email_id):
    """Send a password reset or password-changed email (queue: high).

    A reset requested by address is first matched to its account here, in the worker, so
    the request path cannot reveal whether the account exists.
    """
    return _deliver_and_retry(self, resolve_reset_requests(_as_ids(email_id)))


@shared_task(bind=True, name="django_async_email.tasks.send_user_invitation_email_task", **TASK_OPTIONS)
def send_user_invitation_email_task(self, email_id):
    """Send an invitation email (queue: normal)."""
    return _single(self, email_id)


@shared_task(bind=True, name="django_async_email.tasks.send_notification_email_task", **TASK_OPTIONS)
def send_notification_email_task(self, email_ids):
    """Send notification (or welcome) emails over one connection (queue: normal; low for bulk chunks)."""
    return _deliver_and_retry(self, email_ids)


@shared_task(bind=True, name="django_async_email.tasks.send_bulk_notification_email_task", **TASK_OPTIONS)
def send_bulk_notification_email_task(self, broadcast_id):
    """Fan a broadcast out into per-chunk send tasks (queue: low)."""
    return fan_out(broadcast_id)


@shared_task(name="django_async_email.tasks.requeue_stuck_emails_task", ignore_result=False)
def requeue_stuck_emails_task():
    """Republish accepted emails whose task was lost (run it from Celery beat; queue: low)."""
    from .sweeper import requeue_stuck_emails

    return requeue_stuck_emails()


#: kind -> the task that delivers it and its queue class
TASK_FOR_KIND = {
    "verification": (send_email_verification_task, "high"),
    "password_reset": (send_password_reset_email_task, "high"),
    "password_changed": (send_password_reset_email_task, "high"),
    "invitation": (send_user_invitation_email_task, "normal"),
    "notification": (send_notification_email_task, "normal"),
    "welcome": (send_notification_email_task, "normal"),
}

#: Tasks whose argument is a list of row ids rather than one id.
BATCH_TASK_NAMES = frozenset({send_notification_email_task.name})
