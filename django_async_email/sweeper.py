"""Recover accepted emails whose task never ran: lost publishes and dead workers.

Run it periodically (the ``requeue_stuck_emails_task`` in Celery beat, or the
``requeue_stuck_emails`` command from cron). It is safe to run at any time and as often
as you like: it only republishes rows, and delivery sends a row at most once.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from .conf import app_settings
from .models import Broadcast, OutboxEmail, Status
from .publishing import new_task_id, publish_now

logger = logging.getLogger(__name__)


def _task_for(row_kind: str, is_broadcast: bool):
    from .tasks import BATCH_TASK_NAMES, TASK_FOR_KIND

    task, queue_class = TASK_FOR_KIND[row_kind]
    if is_broadcast:
        queue_class = "low" if task.name in BATCH_TASK_NAMES else queue_class
    return task, queue_class, task.name in BATCH_TASK_NAMES


def requeue_stuck_emails(*, stuck_after: int | None = None, now=None, dry_run: bool = False) -> dict:
    """Give back expired leases, republish queued rows nobody picked up, restart lost fan-outs.

    A row is stuck when it has been queued for ``stuck_after`` seconds (default
    ``ASYNC_EMAIL['STUCK_AFTER']``) past the time it became available: the publish after
    commit failed (broker down), or the message was lost. A row in ``sending`` whose lease
    ran out belonged to a worker that died.
    """
    from .tasks import send_bulk_notification_email_task

    now = now or timezone.now()
    cutoff = now - timedelta(seconds=app_settings.STUCK_AFTER if stuck_after is None else stuck_after)
    report = {"leases_released": 0, "emails_republished": 0, "tasks_published": 0, "broadcasts_restarted": 0}

    expired = list(
        OutboxEmail.objects.filter(status=Status.SENDING, lease_expires_at__lt=now).values_list("pk", flat=True)
    )
    report["leases_released"] = len(expired)
    if expired and not dry_run:
        OutboxEmail.objects.filter(pk__in=expired, status=Status.SENDING, lease_expires_at__lt=now).update(
            status=Status.QUEUED, claim_token="", lease_expires_at=None, updated_at=now
        )

    # Rows given back above are republished at once: their worker is known to be gone.
    stuck = (
        OutboxEmail.objects.filter(
            Q(status=Status.QUEUED, updated_at__lt=cutoff)
            & (Q(available_at__isnull=True) | Q(available_at__lt=cutoff))
            | Q(pk__in=expired, status=Status.QUEUED if not dry_run else Status.SENDING)
        )
        .order_by("kind", "broadcast_id", "pk")
    )
    groups: dict[tuple, list[int]] = {}
    for pk, kind, broadcast_id in stuck.values_list("pk", "kind", "broadcast_id"):
        groups.setdefault((kind, broadcast_id is not None), []).append(pk)

    for (kind, is_broadcast), ids in groups.items():
        task, queue_class, batch = _task_for(kind, is_broadcast)
        size = app_settings.BULK_CHUNK_SIZE if batch else 1
        for start in range(0, len(ids), size):
            chunk = ids[start:start + size]
            report["emails_republished"] += len(chunk)
            report["tasks_published"] += 1
            if dry_run:
                continue
            task_id = new_task_id()
            OutboxEmail.objects.filter(pk__in=chunk, status=Status.QUEUED).update(task_id=task_id, updated_at=now)
            try:
                publish_now(task, args=[chunk if batch else chunk[0]], queue_class=queue_class, task_id=task_id)
            except Exception:
                logger.exception("Sweeper could not publish %s; will try again on the next run", task.name)

    lost_fanouts = Broadcast.objects.filter(state=Broadcast.State.QUEUED, total__isnull=True, created_at__lt=cutoff)
    for broadcast in lost_fanouts:
        report["broadcasts_restarted"] += 1
        if not dry_run:
            publish_now(send_bulk_notification_email_task, args=[broadcast.pk], queue_class="low")

    if any(report.values()):
        logger.warning("Sweeper: %s", report)
    return report
