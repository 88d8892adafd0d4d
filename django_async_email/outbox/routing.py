"""Which queue each task goes to: high for account security, normal, low for bulk.

The package passes the queue itself when it publishes, so a host that configures no
routes still gets the split. ``route_task`` (or ``task_routes()``) serves hosts that call
the tasks directly: ``CELERY_TASK_ROUTES = ["django_async_email.outbox.routing.route_task"]``.
"""

from __future__ import annotations

from ..conf import app_settings
from .kinds import QUEUE_CLASSES, ROUTES

#: task name -> queue class, from the table of kinds
TASK_QUEUE_CLASSES = {route.task_name: route.queue_class for route in ROUTES}


def publish_options(queue_class: str) -> dict:
    """``apply_async`` options for a queue class: the configured name and priority, if any."""
    options = {"queue": app_settings.QUEUES[queue_class]}
    priority = app_settings.QUEUE_PRIORITIES.get(queue_class)
    if priority is not None:
        options["priority"] = priority
    return options


def queue_names() -> list[str]:
    """The queue names in use, in priority order (for ``celery worker -Q``)."""
    return list(dict.fromkeys(app_settings.QUEUES[c] for c in QUEUE_CLASSES))


def task_routes() -> dict[str, dict]:
    """A Celery ``task_routes`` mapping for this package's tasks, from the current settings."""
    return {name: publish_options(queue_class) for name, queue_class in TASK_QUEUE_CLASSES.items()}


def route_task(name, args, kwargs, options, task=None, **kw):
    """A Celery router function; returns ``None`` for tasks that are not ours."""
    queue_class = TASK_QUEUE_CLASSES.get(name)
    return publish_options(queue_class) if queue_class else None
