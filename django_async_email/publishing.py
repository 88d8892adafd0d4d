"""Publishing tasks after the caller's transaction commits, with the id known beforehand."""

from __future__ import annotations

import logging
import uuid

from django.core.mail.utils import DNS_NAME
from django.db import transaction

from .conf import app_settings
from .routing import publish_options

logger = logging.getLogger(__name__)


def new_task_id() -> str:
    return str(uuid.uuid4())


def message_id_domain() -> str:
    return app_settings.MESSAGE_ID_DOMAIN or str(DNS_NAME)


def new_message_id() -> str:
    """A Message-ID for a row, fixed when the row is written so every attempt reuses it."""
    return f"<{uuid.uuid4().hex}@{message_id_domain()}>"


def publish_on_commit(task, *, args, queue_class: str, task_id: str, using=None) -> str:
    """Publish ``task`` once the current transaction commits (at once outside one).

    A rollback publishes nothing. If the broker refuses the publish, the rows stay queued
    and ``requeue_stuck_emails`` publishes them again: the caller's commit is never undone
    by a broker outage.
    """
    options = publish_options(queue_class)

    def publish():
        try:
            task.apply_async(args=args, task_id=task_id, **options)
        except Exception:
            logger.exception(
                "Could not publish %s (task id %s) to queue %s; its emails stay queued for the sweeper",
                task.name, task_id, options["queue"],
            )

    transaction.on_commit(publish, using=using)
    return task_id


def publish_now(task, *, args, queue_class: str, task_id: str | None = None):
    """Publish from inside a worker, where there is no caller's transaction to wait for."""
    return task.apply_async(args=args, task_id=task_id or new_task_id(), **publish_options(queue_class))
