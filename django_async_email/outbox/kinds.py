"""The one table of kinds: which task delivers each kind of email, on which queue, with what argument.

Everything that publishes (the request path, the fan-out, the sweeper) and the Celery
router read this table; the tasks themselves (``tasks.py``) take their names from it.
Nothing here imports ``tasks.py``: publishing looks a task up by its name
(``publishing.task_named``), so the request side never depends on the entry points above it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..conf import QUEUE_CLASSES
from ..models import Kind

#: The queue classes, in priority order; ``ASYNC_EMAIL['QUEUES']`` maps each to a queue name.
HIGH, NORMAL, LOW = QUEUE_CLASSES

TASK_PREFIX = "django_async_email.tasks."


@dataclass(frozen=True)
class TaskRoute:
    """A task, the queue class it is published to, and whether it takes a list of row ids."""

    task_name: str
    queue_class: str
    #: True: the argument is a list of row ids (one task, one connection for all of them).
    #: False: one id (a row id, or a broadcast id for the fan-out).
    batch: bool = False

    def argument(self, ids: list):
        """The task's one argument for these ids."""
        return list(ids) if self.batch else ids[0]

    def bulk(self) -> TaskRoute:
        """The same task on the low queue, as a broadcast's chunks are sent."""
        return replace(self, queue_class=LOW)


VERIFICATION = TaskRoute(f"{TASK_PREFIX}send_email_verification_task", HIGH)
PASSWORD_RESET = TaskRoute(f"{TASK_PREFIX}send_password_reset_email_task", HIGH)
INVITATION = TaskRoute(f"{TASK_PREFIX}send_user_invitation_email_task", NORMAL)
NOTIFICATION = TaskRoute(f"{TASK_PREFIX}send_notification_email_task", NORMAL, batch=True)
#: Messages the host built and handed to ``OutboxBackend``.
STORED = TaskRoute(f"{TASK_PREFIX}send_stored_email_task", NORMAL, batch=True)
FAN_OUT = TaskRoute(f"{TASK_PREFIX}send_bulk_notification_email_task", LOW)
SWEEP = TaskRoute(f"{TASK_PREFIX}requeue_stuck_emails_task", LOW)

#: Every task of the package (for routing).
ROUTES = (VERIFICATION, PASSWORD_RESET, INVITATION, NOTIFICATION, STORED, FAN_OUT, SWEEP)

#: kind -> the task that delivers its rows
ROUTE_FOR_KIND = {
    Kind.VERIFICATION: VERIFICATION,
    Kind.PASSWORD_RESET: PASSWORD_RESET,
    Kind.PASSWORD_CHANGED: PASSWORD_RESET,
    Kind.INVITATION: INVITATION,
    Kind.NOTIFICATION: NOTIFICATION,
    Kind.WELCOME: NOTIFICATION,
    Kind.RAW: STORED,
}


def route_for(kind: str, *, in_broadcast: bool = False) -> TaskRoute:
    """The route of a row of ``kind``; rows of a broadcast that are sent in batches go on the low queue."""
    route = ROUTE_FOR_KIND[Kind(kind)]
    return route.bulk() if in_broadcast and route.batch else route
