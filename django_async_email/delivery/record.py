"""Record step: write each row's outcome with a constant number of queries, then announce it."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import Case, Value, When
from django.utils import timezone

from .. import signals
from ..accounts.suppression import record_hard_bounces
from ..conf import app_settings
from ..models import OutboxEmail, Status
from ..outbox.broadcasts import update_broadcast_states
from .report import DeliveryReport
from .retry import gives_up, retry_countdown

logger = logging.getLogger(__name__)

#: The longest error text stored on a row.
MAX_ERROR_LENGTH = 2000


def error_case(ids, errors: dict[int, str]):
    """One UPDATE sets each row's own error text (a CASE over the rows that have one)."""
    whens = [When(pk=pk, then=Value(errors[pk][:MAX_ERROR_LENGTH])) for pk in ids if errors.get(pk)]
    return Case(*whens, default=Value("")) if whens else Value("")


def mark_sent(token: str, ids, errors: dict[int, str], now=None) -> None:
    """Record rows as sent (one UPDATE); only rows this run still holds are touched."""
    if ids:
        now = now or timezone.now()
        OutboxEmail.objects.filter(claim_token=token, status=Status.SENDING, pk__in=list(ids)).update(
            status=Status.SENT, sent_at=now, last_error=error_case(ids, errors),
            claim_token="", lease_expires_at=None, updated_at=now,
        )


def renew_lease(token: str, now=None) -> int:
    """Extend the lease of every row this run still holds by ``LEASE_SECONDS`` (one UPDATE)."""
    now = now or timezone.now()
    return OutboxEmail.objects.filter(claim_token=token, status=Status.SENDING).update(
        lease_expires_at=now + timedelta(seconds=app_settings.LEASE_SECONDS))


def record_outcomes(token: str, rows, report: DeliveryReport) -> None:
    """Write the outcome of a run (sent rows were written as they went) and announce it."""
    by_id = {row.pk: row for row in rows}
    give_up_exhausted_retries(report, by_id)
    if report.retry:
        report.retry_countdown = retry_countdown(max(by_id[pk].attempts for pk in report.retry))
        report.retry_held = report.retry_countdown > app_settings.SCHEDULE_ETA_MAX
    write_unsent(token, report)
    record_hard_bounces(report.bounces)
    for pk, row in by_id.items():
        row.last_error = report.errors.get(pk, "")
    announce(report, by_id)
    update_broadcast_states({row.broadcast_id for row in rows if row.broadcast_id})


def give_up_exhausted_retries(report: DeliveryReport, by_id: dict[int, OutboxEmail]) -> None:
    """Move rows that used up their attempts from ``retry`` to ``failed``."""
    give_up = [pk for pk in report.retry if gives_up(by_id[pk].attempts)]
    for pk in give_up:
        report.failed.append(pk)
        report.errors[pk] = f"Gave up after {by_id[pk].attempts} attempts: {report.errors.get(pk, '')}"
    if give_up:
        report.retry = [pk for pk in report.retry if pk not in set(give_up)]


def write_unsent(token: str, report: DeliveryReport) -> None:
    """Failed, suppressed and retried rows, one UPDATE per outcome, released by this run."""
    now = timezone.now()
    mine = OutboxEmail.objects.filter(claim_token=token, status=Status.SENDING)
    released = {"claim_token": "", "lease_expires_at": None, "updated_at": now}
    with transaction.atomic():
        if report.failed:
            mine.filter(pk__in=report.failed).update(
                status=Status.FAILED, last_error=error_case(report.failed, report.errors), **released
            )
        if report.suppressed:
            mine.filter(pk__in=report.suppressed).update(
                status=Status.SUPPRESSED, last_error=error_case(report.suppressed, report.errors),
                suppressed_reason=error_case(report.suppressed, report.reasons), **released
            )
        if report.expired:
            mine.filter(pk__in=report.expired).update(
                status=Status.EXPIRED, last_error=error_case(report.expired, report.errors), **released
            )
        if report.retry:
            mine.filter(pk__in=report.retry).update(
                status=Status.QUEUED, last_error=error_case(report.retry, report.errors),
                available_at=now + timedelta(seconds=report.retry_countdown), held=report.retry_held, **released
            )


def expire_overdue(now=None, *, ids=None) -> int:
    """Rows still waiting when their ``expires_at`` passed become ``expired`` (of ``ids``, or
    all of them, as the sweep asks); their broadcasts are brought up to date. How many."""
    now = now or timezone.now()
    overdue = OutboxEmail.objects.filter(status=Status.QUEUED, expires_at__lte=now)
    if ids is not None:
        overdue = overdue.filter(pk__in=list(ids))
    expired = list(overdue.values_list("pk", "broadcast_id"))
    if not expired:
        return 0
    count = OutboxEmail.objects.filter(pk__in=[pk for pk, _b in expired], status=Status.QUEUED).update(
        status=Status.EXPIRED, last_error="Not sent: its expires_at passed first.", held=False,
        claim_token="", lease_expires_at=None, updated_at=now)
    logger.warning("%d email(s) expired unsent", count)
    update_broadcast_states({b for _pk, b in expired if b})
    return count


def announce(report: DeliveryReport, by_id: dict[int, OutboxEmail]) -> None:
    """The signals for a run: one per outcome, each with all its rows."""
    if report.sent:
        signals.email_sent.send_robust(sender=OutboxEmail, emails=[by_id[pk] for pk in report.sent])
        logger.info("Sent %d email(s)", len(report.sent))
    if report.failed:
        signals.email_failed.send_robust(sender=OutboxEmail, emails=[by_id[pk] for pk in report.failed])
    if report.retry:
        signals.email_retrying.send_robust(
            sender=OutboxEmail, emails=[by_id[pk] for pk in report.retry], countdown=report.retry_countdown
        )
