"""The recovery sweep inside the workers, so a host needs no beat and no cron.

When a Celery worker that consumes one of the package's queues is ready, a thread in its
main process sweeps once at once and then every ``SWEEP_EVERY`` seconds; the lease row in
``delivery.sweeper`` lets only one worker of the fleet sweep at a time. A host that runs
the sweeper from beat or cron sets ``SWEEP_IN_WORKER = False``.
"""

from __future__ import annotations

import logging
import threading
import uuid

from celery.signals import worker_ready, worker_shutdown
from django.db import close_old_connections

from ..conf import app_settings
from ..outbox.routing import queue_names
from .sweeper import sweep_if_ours

logger = logging.getLogger(__name__)


class SweepTimer:
    """Sweeps every ``SWEEP_EVERY`` seconds in a daemon thread until stopped."""

    def __init__(self, holder: str):
        self.holder = holder
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run, name="django-async-email-sweeper", daemon=True)

    def start(self) -> SweepTimer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()

    def run(self) -> None:
        while not self.stopped.is_set():
            self.sweep_once()
            self.stopped.wait(app_settings.SWEEP_EVERY)

    def sweep_once(self) -> None:
        try:
            report = sweep_if_ours(self.holder)
            if report and any(report.values()):
                logger.info("Recovery sweep by %s: %s", self.holder, report)
        except Exception:  # a database hiccup must not stop the timer; the next sweep retries
            logger.exception("Recovery sweep by %s failed; trying again in %s s", self.holder, app_settings.SWEEP_EVERY)
        finally:
            close_old_connections()  # this thread's connection, between sweeps


_timer: SweepTimer | None = None


def consumes_our_queues(consumer) -> bool:
    """Whether the worker behind ``consumer`` (Celery's) consumes one of the package's queues."""
    queues = getattr(getattr(consumer, "task_consumer", None), "queues", None)
    if queues is None:  # no consumer to ask: assume it does
        return True
    return bool({q.name for q in queues} & set(queue_names()))


@worker_ready.connect(dispatch_uid="django_async_email.sweep_timer.start")
def start_sweep_timer(sender=None, **kwargs) -> None:
    global _timer
    if not app_settings.SWEEP_IN_WORKER or _timer is not None or not consumes_our_queues(sender):
        return
    hostname = getattr(sender, "hostname", None) or "worker"
    _timer = SweepTimer(f"{hostname}:{uuid.uuid4().hex[:8]}").start()
    logger.info("Recovery sweep every %s s in this worker (%s)", app_settings.SWEEP_EVERY, _timer.holder)


@worker_shutdown.connect(dispatch_uid="django_async_email.sweep_timer.stop")
def stop_sweep_timer(sender=None, **kwargs) -> None:
    global _timer
    if _timer is not None:
        _timer.stop()
        _timer = None
