"""Claim outbox rows, render them, send them over one connection, record the outcome.

This is where "never sent twice" lives: a row is sent only by the worker that claimed it
(a conditional UPDATE from ``queued``, or from ``sending`` whose lease ran out), and a
sent row is never claimed again, so a redelivered or retried task sends nothing twice.
"""

from __future__ import annotations

import logging
import random
import smtplib
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from . import signals, tokens
from .adapter import get_adapter
from .classify import TRANSIENT, classify_send_error, describe_error
from .conf import app_settings
from .mailer import open_connection
from .models import Broadcast, Invitation, OutboxEmail, Status
from .sending import ERROR, SKIPPED, Sender, close_quietly
from .users import email_of, language_of, user_type_of
from .wire import WireWriter, fast_path_applies

logger = logging.getLogger(__name__)


@dataclass
class DeliveryReport:
    """What one delivery run did; JSON-friendly via ``as_dict`` for the task result."""

    sent: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    suppressed: list[int] = field(default_factory=list)
    retry: list[int] = field(default_factory=list)
    retry_countdown: float = 0.0

    def as_dict(self) -> dict:
        return {"sent": len(self.sent), "failed": len(self.failed), "retrying": len(self.retry),
                **({"suppressed": len(self.suppressed)} if self.suppressed else {})}


def retry_countdown(attempt: int, *, rng=random.random) -> float:
    """Exponential backoff: ``base * 2**(attempt-1)`` times a jitter factor in [1, 1.5), capped
    at ``RETRY_BACKOFF_MAX``.

    The jitter spreads retries of many rows apart; it is multiplicative and below 2, so
    each delay is still longer than the one before (until the cap).
    """
    delay = app_settings.RETRY_BACKOFF * (2 ** max(attempt - 1, 0))
    if app_settings.RETRY_JITTER:
        delay *= 1 + rng() / 2
    return min(delay, app_settings.RETRY_BACKOFF_MAX)


def longest_retry_delay() -> float:
    """The longest countdown the current settings can produce (for the system checks)."""
    return retry_countdown(app_settings.MAX_RETRIES, rng=lambda: 1.0) if app_settings.MAX_RETRIES else 0.0


def claim_emails(email_ids, *, now=None) -> tuple[str, list[OutboxEmail]]:
    """Take the rows of ``email_ids`` that nobody holds; two queries whatever their number.

    Safe when workers race: the UPDATE's condition lets only one of them win each row, on
    every database.
    """
    now = now or timezone.now()
    token = uuid.uuid4().hex
    claimable = Q(status=Status.QUEUED) | Q(status=Status.SENDING, lease_expires_at__lt=now)
    OutboxEmail.objects.filter(claimable, pk__in=list(email_ids)).update(
        status=Status.SENDING,
        claim_token=token,
        lease_expires_at=now + timedelta(seconds=app_settings.LEASE_SECONDS),
        attempts=F("attempts") + 1,
        updated_at=now,
    )
    rows = list(
        OutboxEmail.objects.filter(claim_token=token, status=Status.SENDING)
        .select_related("user", "broadcast", "invitation")
        .order_by("pk")
    )
    return token, rows


def _invitation_token(email: OutboxEmail) -> str:
    """Mint a fresh invitation token and store only its hash; the raw token goes in the email."""
    token = tokens.make_invitation_token()
    Invitation.objects.filter(pk=email.invitation_id).update(token_hash=tokens.hash_invitation_token(token))
    return token


#: Kinds whose link token is bound to the account's current address.
ADDRESS_BOUND_KINDS = ("verification", "password_reset")


def stale_recipient(email: OutboxEmail) -> str:
    """Why a row must not be sent any more ("" if it may be).

    A verification or reset link is minted for the address the account has now; sending it
    to the address the row was queued for, after the account changed address, would hand
    the old address a link that acts on the new one.
    """
    if email.kind not in ADDRESS_BOUND_KINDS or email.user_id is None and email.context.get("lookup"):
        return ""
    if email.user is None:
        return "The account no longer exists."
    if email_of(email.user).casefold() != email.recipient.casefold():
        return "The account's email address changed after this email was queued."
    return ""


def build_message(email: OutboxEmail, adapter=None, connection=None):
    """Render one row into a ready-to-send ``EmailMultiAlternatives``."""
    adapter = adapter or get_adapter()
    user = email.user
    broadcast = email.broadcast
    # The caller's extra context first, so it can add variables but not replace ours.
    context = dict(broadcast.context) if broadcast is not None else {}
    context.update(
        user=user, recipient=email.recipient, email_type=email.email_type, site_name=app_settings.site_name,
        **email.context,
    )
    template_name = None
    if broadcast is not None:
        context.update(subject=broadcast.subject, message=broadcast.message, email_type=broadcast.email_type)
        template_name = broadcast.template_name or None
    if email.kind == "invitation":
        context["token"] = _invitation_token(email)
    context.update(adapter.get_extra_context(email, user))

    message_class = adapter.get_message_class(email.kind)
    message = message_class(
        context=context,
        template_name=template_name or email.context.get("template_name"),
        user_type=user_type_of(user) or email.context.get("user_type", ""),
        language=language_of(user),
        connection=connection,
    )
    message.render()
    message.to = [email.recipient]
    message.bcc = list(adapter.get_bcc(email))
    message.from_email = adapter.get_from_email(email)
    message.extra_headers = {**adapter.get_extra_headers(email), "Message-ID": email.message_id}
    return message


def mark_sent(token: str, ids, errors: dict[int, str], now=None) -> None:
    """Record rows as sent (one UPDATE); only rows this run still holds are touched."""
    if ids:
        OutboxEmail.objects.filter(claim_token=token, status=Status.SENDING, pk__in=list(ids)).update(
            status=Status.SENT, sent_at=now or timezone.now(), last_error=_error_case(ids, errors),
            claim_token="", lease_expires_at=None, updated_at=now or timezone.now(),
        )


#: Messages rendered before any of them is sent. Rendering a run of messages and then
#: sending the run keeps each step's code and data warm and costs less CPU per message than
#: alternating (docs/benchmarks.md); the cap bounds the memory a large chunk can take.
RENDER_BATCH = 500


def send_rows(rows, report: DeliveryReport, errors: dict[int, str], token: str, connection=None) -> None:
    """Render and send each row over one connection, filling ``report`` and ``errors``.

    Rows are rendered ``RENDER_BATCH`` at a time, then that batch is sent. Sent rows are
    written back every ``RECORD_EVERY`` messages rather than only at the end, so a worker
    killed mid-batch leaves at most that many sent-but-unrecorded rows (which the sweeper
    would send again once their lease runs out).
    """
    adapter = get_adapter()
    unrecorded: list[int] = []

    def take(row, kind, error, refused):
        pk = row.pk
        if kind == SKIPPED:
            # The connection failed; the rest of the batch waits for the retry instead of
            # each paying the timeout again.
            report.retry.append(pk)
            errors[pk] = f"Not attempted after connection failure: {error}"
        elif kind == ERROR:
            errors[pk] = describe_error(error)
            if classify_send_error(error) == TRANSIENT:
                report.retry.append(pk)
                logger.warning("Transient failure sending email %s to %s: %s", pk, row.recipient, errors[pk])
            else:
                report.failed.append(pk)
                logger.error("Permanent failure sending email %s to %s: %s", pk, row.recipient, errors[pk])
        else:
            report.sent.append(pk)
            if refused:
                # Some recipients of this message were refused; the rest have it.
                errors[pk] = describe_error(smtplib.SMTPRecipientsRefused(refused))
                logger.warning("Email %s sent, but some recipients were refused: %s", pk, errors[pk])
            unrecorded.append(pk)
            if len(unrecorded) >= app_settings.RECORD_EVERY:
                mark_sent(token, unrecorded, errors)
                unrecorded.clear()

    if connection is None:
        connection = open_connection()
    writer = WireWriter() if fast_path_applies(connection) else None
    sender = Sender(connection)
    try:
        for start in range(0, len(rows), RENDER_BATCH):
            ready = []
            for row in rows[start:start + RENDER_BATCH]:
                if sender.broken is not None:
                    take(row, SKIPPED, sender.broken, None)
                    continue
                message = _render(row, adapter, connection, report, errors)
                if message is not None:
                    ready.append((row, _wire_or(message, writer)))
            for row, message in ready:
                take(row, *sender.send(message))
    finally:
        # Also when the task is interrupted: what was already sent gets recorded, before the
        # goodbye to the server (QUIT is one more round trip a kill could interrupt).
        try:
            if unrecorded:
                mark_sent(token, unrecorded, errors)
        finally:
            close_quietly(connection)


def _render(row, adapter, connection, report: DeliveryReport, errors: dict[int, str]):
    """The row's message, or ``None`` (recorded in ``report``) if it must not or cannot be sent."""
    stale = stale_recipient(row)
    if stale:
        report.suppressed.append(row.pk)
        errors[row.pk] = stale
        logger.warning("Not sending email %s (%s): %s", row.pk, row.kind, stale)
        return None
    try:
        return build_message(row, adapter=adapter, connection=connection)
    except Exception as exc:
        logger.exception("Could not render email %s (%s) to %s", row.pk, row.kind, row.recipient)
        report.failed.append(row.pk)
        errors[row.pk] = f"Rendering failed: {describe_error(exc)}"
        return None


def _wire_or(message, writer):
    """The message as SMTP bytes when the fast path takes it, else the message itself."""
    if writer is not None:
        try:
            return writer.write(message) or message
        except Exception:
            # A bug here must not cost an email: the backend can still build this one.
            logger.exception("Could not write email %s directly; sending it through the backend",
                             message.extra_headers.get("Message-ID"))
    return message


def _error_case(ids, errors):
    """One UPDATE sets each row's own error text (a CASE over the rows that have one)."""
    whens = [When(pk=pk, then=Value(errors[pk][:2000])) for pk in ids if errors.get(pk)]
    return Case(*whens, default=Value("")) if whens else Value("")


def record_outcomes(token: str, rows, report: DeliveryReport, errors: dict[int, str]) -> None:
    """Write the outcome of a run with a constant number of queries, then announce it."""
    now = timezone.now()
    by_id = {row.pk: row for row in rows}
    mine = OutboxEmail.objects.filter(claim_token=token, status=Status.SENDING)
    released = {"claim_token": "", "lease_expires_at": None, "updated_at": now}

    give_up = [pk for pk in report.retry if by_id[pk].attempts > app_settings.MAX_RETRIES]
    if give_up:
        for pk in give_up:
            errors[pk] = f"Gave up after {by_id[pk].attempts} attempts: {errors.get(pk, '')}"
        report.retry = [pk for pk in report.retry if pk not in set(give_up)]
        report.failed.extend(give_up)

    if report.retry:
        report.retry_countdown = retry_countdown(max(by_id[pk].attempts for pk in report.retry))
    with transaction.atomic():
        # Sent rows were already written by send_rows as it went.
        if report.failed:
            mine.filter(pk__in=report.failed).update(
                status=Status.FAILED, last_error=_error_case(report.failed, errors), **released
            )
        if report.suppressed:
            mine.filter(pk__in=report.suppressed).update(
                status=Status.SUPPRESSED, last_error=_error_case(report.suppressed, errors), **released
            )
        if report.retry:
            mine.filter(pk__in=report.retry).update(
                status=Status.QUEUED, last_error=_error_case(report.retry, errors),
                available_at=now + timedelta(seconds=report.retry_countdown), **released
            )
    for pk, row in by_id.items():
        row.last_error = errors.get(pk, "")
    if report.sent:
        signals.email_sent.send_robust(sender=OutboxEmail, emails=[by_id[pk] for pk in report.sent])
        logger.info("Sent %d email(s)", len(report.sent))
    if report.failed:
        signals.email_failed.send_robust(sender=OutboxEmail, emails=[by_id[pk] for pk in report.failed])
    if report.retry:
        signals.email_retrying.send_robust(
            sender=OutboxEmail, emails=[by_id[pk] for pk in report.retry], countdown=report.retry_countdown
        )
    update_broadcast_states({row.broadcast_id for row in rows if row.broadcast_id})


def update_broadcast_states(broadcast_ids) -> None:
    """Mark broadcasts done once no row is pending.

    Index probes only (``exists()`` on broadcast + status), never a count over the whole
    broadcast, so the cost per chunk stays flat however many recipients it has.
    """
    for broadcast in Broadcast.objects.filter(pk__in=broadcast_ids).exclude(state=Broadcast.State.CANCELLED):
        rows = OutboxEmail.objects.filter(broadcast_id=broadcast.pk)
        if broadcast.total is not None and not rows.filter(status__in=[Status.QUEUED, Status.SENDING]).exists():
            failed = rows.filter(status=Status.FAILED).exists()
            state = Broadcast.State.DONE_WITH_FAILURES if failed else Broadcast.State.DONE
            Broadcast.objects.filter(pk=broadcast.pk).update(state=state, finished_at=timezone.now())
        elif broadcast.state == Broadcast.State.QUEUED:
            Broadcast.objects.filter(pk=broadcast.pk).update(state=Broadcast.State.SENDING)


def deliver_emails(email_ids, *, connection=None) -> DeliveryReport:
    """Claim, render, send and record the rows of ``email_ids``; the body of every send task."""
    report = DeliveryReport()
    token, rows = claim_emails(email_ids)
    if not rows:
        return report
    errors: dict[int, str] = {}
    send_rows(rows, report, errors, token, connection=connection)
    record_outcomes(token, rows, report, errors)
    return report
