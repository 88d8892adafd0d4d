"""Match password reset requests made by address to accounts, in the worker."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from ..accounts.users import email_of, reset_candidates
from ..models import FlowEvent, Kind, OutboxEmail, Status
from ..outbox.publishing import new_message_id

logger = logging.getLogger(__name__)


def resolve_reset_requests(email_ids) -> list:
    """Turn by-address reset rows into rows for the matching accounts; return the ids to deliver.

    No match: the row is ``suppressed`` (kept for the audit trail, nothing sent). Several
    accounts share the address: each gets its own row and email. Resolving is guarded by a
    conditional update, so a redelivered task resolves nothing twice.
    """
    ids = list(email_ids)
    pending = OutboxEmail.objects.filter(
        pk__in=ids, kind=Kind.PASSWORD_RESET, user__isnull=True, status=Status.QUEUED, context__lookup=True
    )
    for row in pending:
        users = reset_candidates(row.recipient)
        with transaction.atomic():
            context = {k: v for k, v in row.context.items() if k != "lookup"}
            if not users:
                updated = OutboxEmail.objects.filter(pk=row.pk, status=Status.QUEUED, user__isnull=True).update(
                    status=Status.SUPPRESSED, context=context, updated_at=timezone.now(),
                    last_error="No active account with a usable password has this address.",
                )
                if updated:
                    FlowEvent.objects.create(flow=FlowEvent.Flow.PASSWORD_RESET_REQUEST,
                                             outcome=FlowEvent.Outcome.REJECTED, detail="no matching account")
                continue
            first, *others = users
            updated = OutboxEmail.objects.filter(pk=row.pk, status=Status.QUEUED, user__isnull=True).update(
                user=first, recipient=email_of(first), context=context, updated_at=timezone.now()
            )
            if not updated:
                continue
            FlowEvent.objects.create(flow=FlowEvent.Flow.PASSWORD_RESET_REQUEST,
                                     outcome=FlowEvent.Outcome.SUCCEEDED, user=first)
            for user in others:
                extra = OutboxEmail.objects.create(
                    kind=Kind.PASSWORD_RESET, email_type=row.email_type, recipient=email_of(user), user=user,
                    context=context, message_id=new_message_id(), task_id=row.task_id,
                )
                ids.append(extra.pk)
    return ids
