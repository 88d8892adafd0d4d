"""Broadcasts: one notification to many users, created here, fanned out by ``fanout``.

Every notification writes a ``Broadcast`` row, so progress and cancelling work the same for
a short list of users, a long one and user types. A short list gets its rows at once, on
the request path; a long list and user types get one fan-out task on the low queue, and
the request path never loads their recipients.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from ..accounts.categories import category_for
from ..accounts.preferences import skip_reason
from ..accounts.recipients import recipients_with_ids
from ..accounts.users import email_field_name, email_of
from ..conf import app_settings
from ..exceptions import InvalidEmailInput
from ..models import PENDING_STATUSES, Broadcast, Kind, OutboxEmail, Status
from . import kinds, validation
from .attachments import Part, save_attachments
from .publishing import new_message_id, new_task_id, publish_on_commit
from .rows import outbox_db, queue_rows
from .schedule import NOW, Schedule


def clean_notification(subject, message, email_type, template_name, context) -> dict:
    """The validated fields a broadcast stores, or ``InvalidEmailInput`` naming the bad one."""
    return {
        "subject": validation.clean_subject("subject", subject),
        "message": validation.clean_message("message", message),
        "email_type": validation.clean_email_type("email_type", email_type),
        "template_name": validation.clean_template_name("template_name", template_name) or "",
        "context": validation.clean_context("context", context),
    }


def queue_to_users(user_ids, fields: dict, schedule: Schedule = NOW, attachments: list[Part] | None = None) -> str:
    """One broadcast to ``user_ids``: rows at once for a short list, a fan-out for a long one.

    Unknown ids are refused. Known users who may not receive a notification (inactive,
    without an address, unverified when that is required; ``accounts.recipients``) are
    left out, on both paths alike, and are not counted in the broadcast's total.
    """
    ids = validation.clean_user_ids("user_ids", user_ids)
    if len(ids) > app_settings.BULK_CHUNK_SIZE:
        return queue_fan_out(fields, schedule, attachments, user_ids=ids)
    found = {str(pk) for pk in get_user_model()._default_manager.filter(pk__in=ids).values_list("pk", flat=True)}
    unknown = [i for i in ids if str(i) not in found]
    if unknown:
        raise InvalidEmailInput("user_ids", f"Unknown user id(s): {', '.join(map(str, unknown))}.", code="unknown")
    # Who is skipped (suppressed address, category turned off) comes from the same query,
    # as in the fan-out; a skipped user gets a ``suppressed`` row with the reason.
    reason = skip_reason(category_for(fields["email_type"]), email_field_name())
    users = list(recipients_with_ids(ids).annotate(skip=reason).order_by("pk"))
    using = outbox_db()
    with transaction.atomic(using=using):
        broadcast = Broadcast.objects.using(using).create(
            user_ids=[u.pk for u in users], total=len(users), send_at=schedule.send_at,
            expires_at=schedule.expires_at, attachment_count=len(attachments or []), **fields)
        save_attachments(attachments or [], using=using, broadcast=broadcast)
        if not users:
            task_id = new_task_id()
            _finish(broadcast, task_id=task_id)
            return task_id
        rows = [
            OutboxEmail(kind=Kind.NOTIFICATION, email_type=fields["email_type"], recipient=email_of(u), user=u,
                        broadcast=broadcast, message_id=new_message_id())
            for u in users if not u.skip
        ]
        skipped = [
            OutboxEmail(kind=Kind.NOTIFICATION, email_type=fields["email_type"], recipient=email_of(u), user=u,
                        broadcast=broadcast, message_id=new_message_id(), status=Status.SUPPRESSED,
                        suppressed_reason=u.skip)
            for u in users if u.skip
        ]
        if skipped:
            OutboxEmail.objects.using(using).bulk_create(skipped)
        if not rows:
            task_id = new_task_id()
            _finish(broadcast, task_id=task_id)
            return task_id
        task_id = queue_rows(Kind.NOTIFICATION, rows, schedule)
        Broadcast.objects.using(using).filter(pk=broadcast.pk).update(task_id=task_id)
    return task_id


def queue_to_user_types(user_types, fields: dict, schedule: Schedule = NOW,
                        attachments: list[Part] | None = None) -> list[str]:
    """One broadcast and fan-out task per user type; the request path never loads the recipients."""
    types = validation.clean_user_types("user_types", user_types)
    # No savepoints inside: nothing in here raises but the database, which ends the caller's
    # transaction anyway; two fewer round trips per call on the request path.
    with transaction.atomic(using=outbox_db(), savepoint=False):
        return [queue_fan_out(fields, schedule, attachments, user_types=[user_type]) for user_type in types]


def queue_fan_out(fields: dict, schedule: Schedule = NOW, attachments: list[Part] | None = None, *,
                  user_types=None, user_ids=None) -> str:
    """One broadcast row and its fan-out task (queue: low).

    A broadcast scheduled further off than ``SCHEDULE_ETA_MAX`` is written ``held``: its
    fan-out is published by the worker-side sweep when it comes due, and until then a
    cancel is one UPDATE of a row nobody else touches.
    """
    using = outbox_db()
    task_id = new_task_id()
    now = timezone.now()
    held = schedule.held(now)
    with transaction.atomic(using=using, savepoint=False):  # as in queue_to_user_types
        broadcast = Broadcast.objects.using(using).create(
            user_types=user_types or [], user_ids=user_ids, task_id=task_id, send_at=schedule.send_at,
            expires_at=schedule.expires_at, held=held, attachment_count=len(attachments or []), **fields
        )
        save_attachments(attachments or [], using=using, broadcast=broadcast)
        if not held:
            publish_on_commit(kinds.FAN_OUT, broadcast.pk, task_id=task_id, using=using, eta=schedule.eta(now))
    return task_id


def queue_test_email(address, subject=None, message=None, schedule: Schedule = NOW) -> str:
    """A one-recipient broadcast to any address, to check the whole path."""
    address = validation.clean_address("address", address)
    site = app_settings.site_name or "django-async-email"
    fields = {
        "subject": validation.clean_subject("subject", subject or f"Test email from {site}"),
        "message": validation.clean_message(
            "message", message or "This is a test email. If you can read it, delivery works."),
        "email_type": "test",
    }
    using = outbox_db()
    with transaction.atomic(using=using):
        broadcast = Broadcast.objects.using(using).create(
            user_ids=[], total=1, send_at=schedule.send_at, expires_at=schedule.expires_at, **fields)
        row = OutboxEmail(kind=Kind.NOTIFICATION, email_type="test", recipient=address, broadcast=broadcast,
                          message_id=new_message_id())
        return queue_rows(Kind.NOTIFICATION, [row], schedule)


def find_broadcast(task_id_or_pk) -> Broadcast:
    """The broadcast with this task id (what a send function returned) or primary key."""
    broadcast = Broadcast.objects.filter(task_id=str(task_id_or_pk)).first()
    if broadcast is None and str(task_id_or_pk).isdigit():
        broadcast = Broadcast.objects.filter(pk=int(task_id_or_pk)).first()
    if broadcast is None:
        raise InvalidEmailInput("task_id", "No broadcast with this id.", code="unknown")
    return broadcast


def cancel_broadcast(broadcast_id: int) -> int:
    """Stop a broadcast: rows not yet claimed are cancelled; returns how many."""
    with transaction.atomic():
        Broadcast.objects.filter(pk=broadcast_id).update(state=Broadcast.State.CANCELLED, finished_at=timezone.now())
        return OutboxEmail.objects.filter(broadcast_id=broadcast_id, status=Status.QUEUED).update(
            status=Status.CANCELLED, updated_at=timezone.now()
        )


def _finish(broadcast: Broadcast, **fields) -> None:
    Broadcast.objects.using(broadcast._state.db).filter(pk=broadcast.pk).update(
        state=Broadcast.State.DONE, finished_at=timezone.now(), **fields)


def update_broadcast_states(broadcast_ids) -> None:
    """Mark broadcasts done once no row is pending.

    Index probes only (``exists()`` on broadcast + status), never a count over the whole
    broadcast, so the cost per chunk stays flat however many recipients it has.
    """
    for broadcast in Broadcast.objects.filter(pk__in=broadcast_ids).exclude(state=Broadcast.State.CANCELLED):
        rows = OutboxEmail.objects.filter(broadcast_id=broadcast.pk)
        if broadcast.total is not None and not rows.filter(status__in=PENDING_STATUSES).exists():
            failed = rows.filter(status=Status.FAILED).exists()
            state = Broadcast.State.DONE_WITH_FAILURES if failed else Broadcast.State.DONE
            Broadcast.objects.filter(pk=broadcast.pk).update(state=state, finished_at=timezone.now())
        elif broadcast.state == Broadcast.State.QUEUED:
            Broadcast.objects.filter(pk=broadcast.pk).update(state=Broadcast.State.SENDING)
