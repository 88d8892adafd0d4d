"""Write outbox rows in the caller's transaction and publish their task when it commits."""

from __future__ import annotations

from django.db import router, transaction
from django.utils import timezone

from .. import signals
from ..accounts.users import email_of
from ..exceptions import InvalidEmailInput
from ..models import OutboxEmail
from . import validation
from .kinds import route_for
from .publishing import new_message_id, new_task_id, publish_on_commit
from .schedule import NOW, Schedule


def outbox_db() -> str:
    """The database outbox rows are written to."""
    return router.db_for_write(OutboxEmail)


def queue_rows(kind: str, rows: list[OutboxEmail], schedule: Schedule = NOW, *, bulk: bool = False) -> str:
    """Write ``rows`` and publish the task for ``kind`` after commit; returns its id.

    A scheduled send due within ``SCHEDULE_ETA_MAX`` is published with the broker's ETA; one
    due later is written ``held``, and the worker-side sweep publishes it under this same
    task id when it comes due (``outbox.schedule``). ``bulk`` sends a batch task to the low
    queue.
    """
    route = route_for(kind, in_broadcast=bulk)
    task_id = new_task_id()
    now = timezone.now()
    held = schedule.held(now)
    for row in rows:
        row.task_id = task_id
        row.held = held
        if schedule is not NOW:
            row.available_at, row.expires_at = schedule.send_at, schedule.expires_at
    using = outbox_db()
    # No savepoint: nothing here raises but the database, which ends the transaction anyway.
    with transaction.atomic(using=using, savepoint=False):
        ids = _save(rows, using)
        if not held:
            publish_on_commit(route, route.argument(ids), task_id=task_id, using=using, eta=schedule.eta(now))
        # Announced once the rows are really there: a rollback announces nothing.
        transaction.on_commit(
            lambda: signals.email_queued.send_robust(sender=OutboxEmail, emails=rows, task_id=task_id), using=using
        )
    return task_id


def _save(rows: list[OutboxEmail], using: str) -> list[int]:
    """Insert ``rows``; their ids, in order."""
    if len(rows) == 1:
        rows[0].save(using=using)
        return [rows[0].pk]
    OutboxEmail.objects.using(using).bulk_create(rows)
    if rows and rows[0].pk is None:
        # Databases without RETURNING (old SQLite) leave pks unset; read them back.
        ids = dict(
            OutboxEmail.objects.using(using)
            .filter(message_id__in=[r.message_id for r in rows])
            .values_list("message_id", "pk")
        )
        for row in rows:
            row.pk = row.id = ids[row.message_id]
    return [row.pk for row in rows]


def user_row(kind: str, user, *, base_url, extra_context=None) -> OutboxEmail:
    """An unsaved row of ``kind`` to ``user``'s address, with the base URL its links use."""
    if user is None or getattr(user, "pk", None) is None:
        raise InvalidEmailInput("user", "A saved user is required.", code="required")
    address = validation.clean_address("user", email_of(user))
    context = {"base_url": validation.clean_base_url("base_url", base_url), **(extra_context or {})}
    return OutboxEmail(
        kind=kind, email_type=str(kind), recipient=address, user=user, context=context,
        message_id=new_message_id(),
    )


def queue_to_user(kind: str, user, base_url=None, schedule: Schedule = NOW) -> str:
    """Queue one email of ``kind`` to ``user``; returns the task id."""
    return queue_rows(kind, [user_row(kind, user, base_url=base_url)], schedule)


def queue_by_address(kind: str, email, base_url=None, schedule: Schedule = NOW) -> str:
    """Queue an email of ``kind`` to whoever owns ``email``; the worker finds the accounts
    (``delivery.address_lookup``). The request path does the same work whether or not an
    account has the address."""
    address = validation.clean_address("email", email)
    row = OutboxEmail(
        kind=kind, email_type=str(kind), recipient=address,
        context={"base_url": validation.clean_base_url("base_url", base_url), "lookup": True},
        message_id=new_message_id(),
    )
    return queue_rows(kind, [row], schedule)
