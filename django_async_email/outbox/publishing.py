"""Publishing tasks after the caller's transaction commits, with the task id known beforehand.

Tasks are found by name in the Celery app (``task_named``), never imported: ``tasks.py``
sits above this layer, and the AppConfig imports it when Django starts, so every task of
the package is registered before anything is published.
"""

from __future__ import annotations

import logging
import uuid

import celery
from django.core.mail.utils import DNS_NAME
from django.db import transaction

from ..conf import app_settings
from .kinds import TaskRoute
from .routing import publish_options

logger = logging.getLogger(__name__)


def current_celery_app() -> celery.Celery:
    """The host's Celery app (the current one), unwrapped from Celery's proxy."""
    app = celery.current_app
    return getattr(app, "_get_current_object", lambda: app)()


def task_named(name: str):
    """The registered task called ``name``."""
    return current_celery_app().tasks[name]


def new_task_id() -> str:
    return str(uuid.uuid4())


def message_id_domain() -> str:
    return app_settings.MESSAGE_ID_DOMAIN or str(DNS_NAME)


def new_message_id(domain: str | None = None) -> str:
    """A Message-ID for a row, fixed when the row is written so every attempt reuses it.

    ``domain`` saves looking the domain up again when many ids are made at once.
    """
    return f"<{uuid.uuid4().hex}@{domain or message_id_domain()}>"


def publish_on_commit(route: TaskRoute, argument, *, task_id: str, using=None, eta=None) -> str:
    """Publish ``route``'s task with ``argument`` once the current transaction commits.

    Outside a transaction it is published at once. A rollback publishes nothing. If the
    broker refuses the publish, the rows stay queued and ``requeue_stuck_emails``
    publishes them again: the caller's commit is never undone by a broker outage. ``eta``
    (a scheduled email due soon; ``outbox.schedule``) is the broker's ETA.
    """
    options = _options(route, eta)

    def publish():
        try:
            task_named(route.task_name).apply_async(args=[argument], task_id=task_id, **options)
        except Exception:
            logger.exception(
                "Could not publish %s (task id %s) to queue %s; its emails stay queued for the sweeper",
                route.task_name, task_id, options["queue"],
            )

    transaction.on_commit(publish, using=using)
    return task_id


def publish_now(route: TaskRoute, argument, *, task_id: str | None = None, eta=None):
    """Publish from inside a worker, where there is no caller's transaction to wait for."""
    return task_named(route.task_name).apply_async(args=[argument], task_id=task_id or new_task_id(),
                                                   **_options(route, eta))


def _options(route: TaskRoute, eta) -> dict:
    """The queue (and priority) of ``route``'s class, and the ETA when there is one."""
    options = publish_options(route.queue_class)
    if eta is not None:
        options["eta"] = eta
    return options
