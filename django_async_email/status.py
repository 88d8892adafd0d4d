"""What an operator needs to know: configuration, broker, workers, queues and recent outcomes.

Used by the ``system-status`` endpoint and the ``email_status`` command. Nothing here
returns a secret: the email backend is named by its class path, the broker by its
transport only.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.db.models import Count, Q
from django.utils import timezone

from .checks import configuration_report
from .models import Broadcast, OutboxEmail, Status
from .outbox.publishing import current_celery_app
from .outbox.routing import queue_names

logger = logging.getLogger(__name__)


def email_counts(now=None) -> dict:
    """Rows queued, sent and failed (and suppressed) in the last hour and the last day."""
    now = now or timezone.now()
    result = {}
    for label, since in (("last_hour", now - timedelta(hours=1)), ("last_day", now - timedelta(days=1))):
        result[label] = OutboxEmail.objects.filter(created_at__gte=since).aggregate(
            queued=Count("id", filter=Q(status__in=[Status.QUEUED, Status.SENDING])),
            sent=Count("id", filter=Q(status=Status.SENT)),
            failed=Count("id", filter=Q(status=Status.FAILED)),
            suppressed=Count("id", filter=Q(status=Status.SUPPRESSED)),
        )
    return result


def queue_depth(channel, name: str) -> int | None:
    """Messages waiting in queue ``name``: 0 when it is empty, ``None`` only when it cannot be read.

    kombu's virtual transports (Redis, SQS, the filesystem) keep no queue object: an empty
    Redis queue is a missing key, which a passive declare reports as "no such queue". Their
    channels count the messages themselves. On AMQP a passive declare gives the count, and
    fails only for a queue nobody declared (no worker consumes it yet).
    """
    count_messages = getattr(channel, "_size", None)
    try:
        if callable(count_messages):
            return int(count_messages(name))
        return channel.queue_declare(queue=name, passive=True).message_count
    except Exception:  # the transport cannot say
        return None


def broker_status(app=None, timeout: float = 2.0) -> dict:
    """Whether the broker answers, and how many messages wait in each of our queues."""
    app = app or current_celery_app()
    transport = app.conf.broker_url.split("://", 1)[0] if app.conf.broker_url else None
    result: dict[str, Any] = {"transport": transport, "reachable": False, "queue_depths": {}}
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=timeout)
            result["reachable"] = True
            with connection.channel() as channel:
                for name in queue_names():
                    result["queue_depths"][name] = queue_depth(channel, name)
    except Exception as exc:
        result["error"] = type(exc).__name__
        logger.warning("Broker status check failed: %s", type(exc).__name__)
    return result


def worker_status(app=None, timeout: float = 1.0) -> dict:
    """Workers that answered, the queues each consumes, and our queues nobody consumes."""
    app = app or current_celery_app()
    workers = {}
    try:
        replies = app.control.inspect(timeout=timeout).active_queues() or {}
    except Exception as exc:
        replies = {}
        logger.warning("Worker inspection failed: %s", type(exc).__name__)
    for worker, queues in replies.items():
        workers[worker] = sorted(q["name"] for q in queues)
    consumed = {q for queues in workers.values() for q in queues}
    return {
        "workers": workers,
        "queues_without_consumer": [q for q in queue_names() if q not in consumed],
    }


def broadcasts_in_progress(limit: int = 20) -> list[dict]:
    states = [Broadcast.State.QUEUED, Broadcast.State.SENDING]
    return [
        {"id": b.pk, "subject": b.subject, "task_id": b.task_id, **b.progress()}
        for b in Broadcast.objects.filter(state__in=states)[:limit]
    ]


def system_status(*, inspect_timeout: float = 1.0) -> dict:
    report = configuration_report()
    return {
        "email_backend": report["email_backend"],
        "configuration": {"ok": report["ok"], "errors": report["errors"], "warnings": report["warnings"]},
        "queues": queue_names(),
        "broker": broker_status(timeout=inspect_timeout * 2),
        **worker_status(timeout=inspect_timeout),
        "emails": email_counts(),
        "broadcasts": broadcasts_in_progress(),
    }
