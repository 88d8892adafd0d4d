"""Recover accepted emails whose task never ran (lost publishes, dead workers), publish
scheduled ones as they come due, and expire the ones whose time has passed.

The workers run it themselves every ``SWEEP_EVERY`` seconds (``delivery.sweep_timer``),
one worker of the fleet at a time (``sweep_if_ours`` takes a lease row first); a host can
run it from Celery beat or cron instead (``requeue_stuck_emails_task``, the
``requeue_stuck_emails`` command). It is safe to run at any time and as often as you
like: it only republishes rows, and delivery sends a row at most once.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import DateTimeField, DurationField, ExpressionWrapper, F, Min, Q, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from ..conf import app_settings
from ..models import Broadcast, OutboxEmail, Status, SweeperLease
from ..outbox import kinds
from ..outbox.publishing import new_task_id, publish_now
from .record import expire_overdue

logger = logging.getLogger(__name__)


@dataclass
class SweepReport:
    leases_released: int = 0
    emails_republished: int = 0
    tasks_published: int = 0
    broadcasts_restarted: int = 0
    #: held rows (scheduled, or a long retry) and scheduled broadcasts published as they come due
    held_released: int = 0
    expired: int = 0


def requeue_stuck_emails(*, stuck_after: int | None = None, now=None, dry_run: bool = False) -> dict:
    """Give back expired leases, republish queued rows nobody picked up, restart lost fan-outs.

    A row is stuck when it has been queued for ``stuck_after`` seconds (default
    ``ASYNC_EMAIL['STUCK_AFTER']``) past the time it became available: the publish after
    commit failed (broker down), or the message was lost. A row in ``sending`` whose lease
    ran out belonged to a worker that died.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=app_settings.STUCK_AFTER if stuck_after is None else stuck_after)
    report = SweepReport()
    expired = release_expired_leases(now, report, dry_run=dry_run)
    if not dry_run:
        report.expired = expire_overdue(now)
    for route, ids in stuck_rows(cutoff, expired, now=now, dry_run=dry_run).items():
        republish(route, ids, now, report, dry_run=dry_run)
    restart_lost_fan_outs(now, cutoff, report, dry_run=dry_run)
    release_held(now, report, dry_run=dry_run)
    result = asdict(report)
    if any(v for k, v in result.items() if k != "held_released"):
        logger.warning("Sweeper: %s", result)
    return result


def release_expired_leases(now, report: SweepReport, *, dry_run: bool) -> list[int]:
    """Put rows whose worker died (their lease ran out) back in the queue; their ids."""
    expired = list(
        OutboxEmail.objects.filter(status=Status.SENDING, lease_expires_at__lt=now).values_list("pk", flat=True)
    )
    report.leases_released = len(expired)
    if expired and not dry_run:
        OutboxEmail.objects.filter(pk__in=expired, status=Status.SENDING, lease_expires_at__lt=now).update(
            status=Status.QUEUED, claim_token="", lease_expires_at=None, updated_at=now
        )
    return expired


def stuck_rows(cutoff, expired: list[int], *, now, dry_run: bool) -> dict[kinds.TaskRoute, list[int]]:
    """Queued rows nobody picked up, and the rows just given back, grouped by the task that sends them."""
    # Rows given back are republished at once: their worker is known to be gone. A queued
    # row is republished STUCK_AFTER after it was last published, and then only once it has
    # waited since its last publish as long as it had waited before it: a long bulk queue
    # whose tail is merely waiting is republished at ever longer intervals (1, 2, 4...
    # STUCK_AFTER), not at every sweep. The publish of a lost task is still retried at once.
    waited_before = ExpressionWrapper(
        F("updated_at") - Greatest(F("created_at"), Coalesce(F("available_at"), F("created_at"))),
        output_field=DurationField())
    waited_since = ExpressionWrapper(Value(now, output_field=DateTimeField()) - F("updated_at"),
                                     output_field=DurationField())
    stuck = (
        OutboxEmail.objects.alias(waited_before=waited_before, waited_since=waited_since).filter(
            Q(status=Status.QUEUED, held=False, updated_at__lt=cutoff, waited_before__lt=F("waited_since"))
            & (Q(available_at__isnull=True) | Q(available_at__lt=cutoff))
            | Q(pk__in=expired, status=Status.QUEUED if not dry_run else Status.SENDING)
        )
        .order_by("kind", "broadcast_id", "pk")
    )
    groups: dict[kinds.TaskRoute, list[int]] = {}
    for pk, kind, broadcast_id in stuck.values_list("pk", "kind", "broadcast_id"):
        groups.setdefault(kinds.route_for(kind, in_broadcast=broadcast_id is not None), []).append(pk)
    return groups


def republish(route: kinds.TaskRoute, ids: list[int], now, report: SweepReport, *, dry_run: bool) -> None:
    """Publish ``ids`` again under new task ids: a chunk per task for batch tasks, else one each."""
    size = app_settings.BULK_CHUNK_SIZE if route.batch else 1
    for start in range(0, len(ids), size):
        chunk = ids[start:start + size]
        report.emails_republished += len(chunk)
        report.tasks_published += 1
        if dry_run:
            continue
        task_id = new_task_id()
        # Refused: the rows keep their time of last publish, so the next sweep tries again at
        # once (the doubling interval counts from publishes that happened).
        if _publish_quietly(route, route.argument(chunk), task_id=task_id, eta=None):
            OutboxEmail.objects.filter(pk__in=chunk, status=Status.QUEUED).update(task_id=task_id, updated_at=now)


def restart_lost_fan_outs(now, cutoff, report: SweepReport, *, dry_run: bool) -> None:
    """Publish the fan-out again for broadcasts that do not have all their rows: the fan-out
    died (its lease ran out) or never started (its publish was lost)."""
    unfinished = Broadcast.objects.filter(total__isnull=True, held=False).exclude(state=Broadcast.State.CANCELLED)
    # A scheduled one is lost once it is STUCK_AFTER past its send_at, not its creation.
    not_started = Q(lease_expires_at__isnull=True) & (
        Q(send_at__isnull=True, created_at__lt=cutoff) | Q(send_at__lt=cutoff))
    lost = unfinished.filter(Q(lease_expires_at__lt=now) | not_started)
    for pk in lost.values_list("pk", flat=True):
        report.broadcasts_restarted += 1
        if not dry_run:
            # Held for one lease, so the next sweep does not publish it again meanwhile.
            Broadcast.objects.filter(pk=pk).update(lease_expires_at=now + timedelta(seconds=app_settings.LEASE_SECONDS))
            publish_now(kinds.FAN_OUT, pk)


def release_held(now, report: SweepReport, *, dry_run: bool) -> None:
    """Publish held rows and scheduled broadcasts due within ``SCHEDULE_ETA_MAX``, with the
    broker's ETA, under the task id the caller was given.

    Each sweep looks that far ahead, and the sweeps come every ``SWEEP_EVERY`` (less, check
    W014), so a held email is published before its time and goes out at it. The UPDATE from
    ``held`` is the guard: two sweeps cannot both publish the same rows.
    """
    horizon = now + timedelta(seconds=app_settings.SCHEDULE_ETA_MAX)
    due = (OutboxEmail.objects.filter(held=True, status=Status.QUEUED, available_at__lte=horizon)
           .order_by("task_id", "pk").values_list("pk", "kind", "broadcast_id", "task_id", "available_at"))
    groups: dict[tuple, list] = {}
    for pk, kind, broadcast_id, task_id, available_at in due:
        groups.setdefault((task_id, kind, broadcast_id is not None), []).append((pk, available_at))
    for (task_id, kind, in_broadcast), rows in groups.items():
        route = kinds.route_for(kind, in_broadcast=in_broadcast)
        size = app_settings.BULK_CHUNK_SIZE if route.batch else 1
        report.held_released += len(rows)
        if dry_run:
            continue
        for start in range(0, len(rows), size):
            chunk = rows[start:start + size]
            ids = [pk for pk, _at in chunk]
            # The first chunk keeps the id the caller was given; a split gets new ones.
            chunk_task_id = task_id if start == 0 and task_id else new_task_id()
            if OutboxEmail.objects.filter(pk__in=ids, held=True).update(held=False, task_id=chunk_task_id,
                                                                         updated_at=now):
                eta = max(at for _pk, at in chunk)
                _publish_quietly(route, route.argument(ids), task_id=chunk_task_id, eta=eta if eta > now else None)
                report.tasks_published += 1
    scheduled = Broadcast.objects.filter(held=True, total__isnull=True, send_at__lte=horizon).exclude(
        state__in=Broadcast.FINISHED_STATES)
    for pk, task_id, send_at in scheduled.values_list("pk", "task_id", "send_at"):
        report.held_released += 1
        if not dry_run and Broadcast.objects.filter(pk=pk, held=True).update(held=False):
            eta = send_at if send_at > now else None
            _publish_quietly(kinds.FAN_OUT, pk, task_id=task_id or new_task_id(), eta=eta)
            report.tasks_published += 1


def _publish_quietly(route: kinds.TaskRoute, argument, *, task_id: str, eta) -> bool:
    """Publish; whether the broker took it. A refusal is logged and leaves the rows queued
    for a later sweep."""
    try:
        publish_now(route, argument, task_id=task_id, eta=eta)
    except Exception:
        logger.exception("Sweeper could not publish %s; will try again on a later run", route.task_name)
        return False
    return True


SWEEPER = "sweeper"


def take_sweeper_lease(holder: str, *, seconds: float, now=None) -> bool:
    """Whether ``holder`` may sweep now: it holds the fleet's one sweeper lease for ``seconds``.

    A conditional UPDATE (the lease ran out, or is ``holder``'s own), or the first INSERT:
    two workers cannot both win, on any database.
    """
    now = now or timezone.now()
    until = now + timedelta(seconds=seconds)
    taken = SweeperLease.objects.filter(Q(expires_at__lt=now) | Q(holder=holder), name=SWEEPER).update(
        holder=holder, expires_at=until)
    if taken:
        return True
    try:
        with transaction.atomic():
            SweeperLease.objects.create(name=SWEEPER, holder=holder, expires_at=until)
    except IntegrityError:  # another worker holds it
        return False
    return True


def next_lease_expiry():
    """When the first lease now held runs out (a row being sent, or a fan-out); ``None`` if none.

    The sweeping worker wakes then rather than at its next ``SWEEP_EVERY``, so the rows of a
    worker that died come back one lease after its last renewal, not up to a sweep later.
    Two index reads (``status, lease_expires_at`` on the rows; the broadcasts are few).
    """
    rows = OutboxEmail.objects.filter(status=Status.SENDING).aggregate(first=Min("lease_expires_at"))["first"]
    fan_outs = (Broadcast.objects.filter(total__isnull=True, lease_expires_at__isnull=False)
                .exclude(state=Broadcast.State.CANCELLED).aggregate(first=Min("lease_expires_at"))["first"])
    return min((t for t in (rows, fan_outs) if t is not None), default=None)


def sweep_if_ours(holder: str, *, now=None) -> dict | None:
    """One sweep, if ``holder`` wins the lease; ``None`` when another worker sweeps."""
    # A little longer than the interval: the holder renews it every sweep; if it dies,
    # another worker takes over half an interval later.
    if not take_sweeper_lease(holder, seconds=app_settings.SWEEP_EVERY * 1.5, now=now):
        return None
    return requeue_stuck_emails(now=now)
