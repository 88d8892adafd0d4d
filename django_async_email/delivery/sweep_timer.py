"""The recovery sweep inside the workers, so a host needs no beat and no cron.

When a Celery worker that consumes one of the package's queues is ready, a thread in its
main process sweeps once at once and then every ``SWEEP_EVERY`` seconds; the lease row in
``delivery.sweeper`` lets only one worker of the fleet sweep at a time. The worker that
sweeps also wakes just after the first lease it sees would run out, so a dead worker's rows
come back one lease after its last renewal, whatever the phase of the sweeps. A host that
runs the sweeper from beat or cron sets ``SWEEP_IN_WORKER = False``.
"""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import datetime

from celery.signals import worker_ready, worker_shutdown
from django.db import close_old_connections
from django.utils import timezone

from ..conf import app_settings
from ..outbox.routing import queue_names
from .sweeper import next_lease_expiry, sweep_if_ours

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
            self.stopped.wait(self.sweep_once())

    def sweep_once(self) -> float:
        """Sweep if this worker holds the sweeper lease; the seconds until the next sweep."""
        try:
            report = sweep_if_ours(self.holder)
            if report is None:  # another worker sweeps; try for the lease again later
                return app_settings.SWEEP_EVERY
            if any(report.values()):
                logger.info("Recovery sweep by %s: %s", self.holder, report)
            return seconds_until_next_sweep(next_lease_expiry(), timezone.now())
        except Exception:  # a database hiccup must not stop the timer; the next sweep retries
            logger.exception("Recovery sweep by %s failed; trying again in %s s", self.holder, app_settings.SWEEP_EVERY)
            return app_settings.SWEEP_EVERY
        finally:
            close_old_connections()  # this thread's connection, between sweeps


# Not sooner than this after a sweep, so a lease that keeps running out (a clock set wrong,
# a row given back by another process) costs a sweep a second at most; and this long after
# the lease ends, so the sweep finds it over (its test is a strict "earlier than now").
MIN_WAIT = 1.0
AFTER_EXPIRY = 0.5


def seconds_until_next_sweep(first_expiry: datetime | None, now: datetime) -> float:
    """``SWEEP_EVERY``, or less when a lease runs out before then."""
    if first_expiry is None:
        return app_settings.SWEEP_EVERY
    until = (first_expiry - now).total_seconds() + AFTER_EXPIRY
    return max(MIN_WAIT, min(app_settings.SWEEP_EVERY, until))


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
