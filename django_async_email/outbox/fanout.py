"""Fan a broadcast out to its recipients in chunks, without ever loading them all.

Runs in a worker (the fan-out task), but it is request-side work: it writes rows and
publishes one send task per chunk, like the Python API does for a short list.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Count, Max
from django.utils import timezone

from ..accounts.categories import category_for
from ..accounts.preferences import skip_reason
from ..accounts.recipients import recipients_of_types, recipients_with_ids
from ..accounts.users import email_field_name
from ..conf import app_settings
from ..models import Broadcast, Kind, OutboxEmail, Status
from . import kinds
from .broadcasts import update_broadcast_states
from .chunk_insert import insert_chunk
from .publishing import message_id_domain, new_message_id, new_task_id, publish_on_commit
from .rows import outbox_db

logger = logging.getLogger(__name__)

#: The send task of a fan-out chunk: a batch of rows on the low queue.
CHUNK_ROUTE = kinds.NOTIFICATION.bulk()


def recipient_batches(broadcast: Broadcast, chunk_size: int, *, after=None):
    """Yield lists of ``(pk, address, skip reason)``, ``chunk_size`` at a time, in primary key order.

    The skip reason ("" to send) comes from the same query: the suppression list and the
    user's preference for the broadcast's category (``accounts.preferences.skip_reason``),
    so preferences add no query per user or per chunk.

    User types are read with keyset pagination (``pk > last``): memory stays flat and no
    cursor is held open across the writes in between. Explicit ids are read a chunk of ids
    at a time, so a long list never becomes one huge ``IN (...)``.
    """
    email_field = email_field_name()
    reason = skip_reason(category_for(broadcast.email_type), email_field)
    if broadcast.user_ids is not None:
        ids = sorted(set(broadcast.user_ids), key=str)
        for start in range(0, len(ids), chunk_size):
            chunk = recipients_with_ids(ids[start:start + chunk_size]).annotate(skip=reason)
            batch = list(chunk.order_by("pk").values_list("pk", email_field, "skip"))
            if batch:
                yield batch
        return
    users = (recipients_of_types(broadcast.user_types).annotate(skip=reason).order_by("pk")
             .values_list("pk", email_field, "skip"))
    last_pk = after
    while True:
        page = users if last_pk is None else users.filter(pk__gt=last_pk)
        batch = list(page[:chunk_size])
        if not batch:
            return
        last_pk = batch[-1][0]
        yield batch


def resume_point(broadcast: Broadcast) -> tuple[int, object]:
    """``(rows written, last user id)``: a fan-out to user types started again (its worker
    died) goes on after the last chunk it wrote; each chunk is one INSERT, so a chunk is
    either all there or not at all. An id list is read again from its start, and the
    uniqueness rule skips what exists."""
    if broadcast.user_ids is not None:
        return 0, None
    written = OutboxEmail.objects.filter(broadcast=broadcast).aggregate(count=Count("id"), last=Max("user_id"))
    return written["count"], written["last"]


def hold_lease(broadcast_id: int) -> bool:
    """Renew the fan-out's lease on the broadcast; ``False`` if it was cancelled (one UPDATE,
    which is also the cancel check between chunks)."""
    expires = timezone.now() + timedelta(seconds=app_settings.LEASE_SECONDS)
    return bool(Broadcast.objects.filter(pk=broadcast_id).exclude(state=Broadcast.State.CANCELLED)
                .update(lease_expires_at=expires))


def fan_out(broadcast_id: int) -> dict:
    """Create one row per recipient, chunk by chunk, and publish one send task per chunk.

    Rows are unique per (broadcast, user), so running the fan-out again adds no row; it
    only re-publishes chunks whose rows are still queued. A cancel stops it between chunks.
    """
    try:
        broadcast = Broadcast.objects.get(pk=broadcast_id)
    except Broadcast.DoesNotExist:
        logger.warning("Broadcast %s no longer exists; nothing to fan out", broadcast_id)
        return {"chunks": 0, "recipients": 0}
    if broadcast.state in (Broadcast.State.CANCELLED, Broadcast.State.EXPIRED):
        return {"chunks": 0, "recipients": 0}
    if broadcast.total is None and broadcast.expires_at is not None and broadcast.expires_at <= timezone.now():
        # Too late to start (the workers were down past its expiry): nobody gets it, and no
        # row per recipient is written only to be expired.
        expire_unstarted(broadcast.pk)
        return {"chunks": 0, "recipients": 0}

    recipients, last_pk = resume_point(broadcast)
    chunks = 0
    for batch in recipient_batches(broadcast, app_settings.BULK_CHUNK_SIZE, after=last_pk):
        if not hold_lease(broadcast.pk):
            logger.info("Broadcast %s was cancelled during fan-out", broadcast.pk)
            return {"chunks": chunks, "recipients": recipients}
        recipients += len(batch)
        if _create_and_publish(broadcast, batch):
            chunks += 1

    Broadcast.objects.filter(pk=broadcast.pk).exclude(state=Broadcast.State.CANCELLED).update(
        total=recipients, state=Broadcast.State.SENDING if recipients else Broadcast.State.DONE,
        finished_at=None if recipients else timezone.now(), lease_expires_at=None,
    )
    # Chunks may all have been sent while the fan-out was still running.
    update_broadcast_states([broadcast.pk])
    logger.info("Broadcast %s fanned out to %d recipient(s) in %d chunk(s)", broadcast.pk, recipients, chunks)
    return {"chunks": chunks, "recipients": recipients}


def expire_unstarted(broadcast_id: int) -> None:
    """Mark a broadcast whose fan-out had not started by its ``expires_at`` as expired."""
    Broadcast.objects.filter(pk=broadcast_id, total__isnull=True).exclude(
        state=Broadcast.State.CANCELLED).update(
        state=Broadcast.State.EXPIRED, total=0, finished_at=timezone.now(), lease_expires_at=None)
    logger.warning("Broadcast %s expired before its fan-out could start; nothing was sent", broadcast_id)


def _create_and_publish(broadcast: Broadcast, batch) -> bool:
    """Write one chunk's rows and publish its send task (on commit); False if nothing is left to send.

    Recipients the query said to skip get a ``suppressed`` row with the reason (one more
    INSERT for the chunk, when it has any), so the broadcast counts them and the audit
    trail says why. The first run of a chunk is one INSERT that carries the task id and returns the new
    ids (``chunk_insert``). Only when rows already exist (a fan-out run again after a crash
    or a redelivery) does the unique constraint stop it; then the chunk is re-done with
    conflicts ignored, and the rows still queued are looked up and re-published under a
    new task id.
    """
    using = outbox_db()
    task_id = new_task_id()
    domain = message_id_domain()
    values = [(pk, address, new_message_id(domain)) for pk, address, skip in batch if not skip]
    skipped = [(pk, address, new_message_id(domain), skip) for pk, address, skip in batch if skip]
    # What every row of the chunk shares; the INSERT's constant columns come from these.
    # A scheduled broadcast's rows carry its window: a chunk task that runs early (a clock
    # ahead) claims nothing, and one that runs after ``expires_at`` sends nothing.
    shared = {"kind": Kind.NOTIFICATION, "email_type": broadcast.email_type, "broadcast": broadcast,
              "task_id": task_id, "available_at": broadcast.send_at, "expires_at": broadcast.expires_at}
    try:
        with transaction.atomic(using=using):
            if skipped:
                _insert_skipped(shared, skipped, using)
            if not values:
                return False
            ids = insert_chunk(OutboxEmail(**shared), ("user", "recipient", "message_id"), values, using=using)
            if ids is None:  # a database that cannot return ids from a multi-row INSERT
                OutboxEmail.objects.using(using).bulk_create(_instances(shared, values))
                ids = list(OutboxEmail.objects.using(using).filter(task_id=task_id).values_list("pk", flat=True))
            publish_on_commit(CHUNK_ROUTE, ids, task_id=task_id, using=using)
            return True
    except IntegrityError:
        pass
    with transaction.atomic(using=using):
        OutboxEmail.objects.using(using).bulk_create(
            _instances(shared, values) + _skipped_instances(shared, skipped), ignore_conflicts=True)
        queued = list(
            OutboxEmail.objects.using(using).filter(
                broadcast=broadcast, user_id__in=[row[0] for row in batch], status=Status.QUEUED
            ).values_list("pk", flat=True)
        )
        if not queued:
            return False
        task_id = new_task_id()
        OutboxEmail.objects.using(using).filter(pk__in=queued).update(task_id=task_id)
        publish_on_commit(CHUNK_ROUTE, queued, task_id=task_id, using=using)
        return True


def _insert_skipped(shared: dict, skipped, using: str) -> None:
    """The skipped recipients' rows, ``suppressed`` with their reason, in one INSERT."""
    template = OutboxEmail(**{**shared, "task_id": ""}, status=Status.SUPPRESSED)
    ids = insert_chunk(template, ("user", "recipient", "message_id", "suppressed_reason"), skipped, using=using)
    if ids is None:
        OutboxEmail.objects.using(using).bulk_create(_skipped_instances(shared, skipped))


def _skipped_instances(shared: dict, skipped) -> list[OutboxEmail]:
    return [OutboxEmail(**{**shared, "task_id": ""}, status=Status.SUPPRESSED, user_id=pk, recipient=address,
                        message_id=message_id, suppressed_reason=reason)
            for pk, address, message_id, reason in skipped]


def _instances(shared: dict, values) -> list[OutboxEmail]:
    return [OutboxEmail(**shared, user_id=pk, recipient=address, message_id=message_id)
            for pk, address, message_id in values]
