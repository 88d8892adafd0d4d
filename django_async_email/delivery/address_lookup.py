"""Match emails asked for by address (a password reset, a resent verification) to accounts, in the worker.

The request path writes one row with the address as typed and ``context["lookup"]``, the
same work whatever the account state, so neither its answer nor its timing says whether
an account exists. Here, in the worker, each such row becomes a row for every matching
account (sent to the address stored on the account), or is kept ``suppressed``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from ..accounts.users import email_of, reset_candidates, users_with_address
from ..accounts.verification import is_verified
from ..models import FlowEvent, Kind, OutboxEmail, Status
from ..outbox.publishing import new_message_id

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Lookup:
    """Who an email asked for by address goes to, and how the request is audited."""

    candidates: Callable[[str], list]
    flow: str
    nobody: str


def _unverified_accounts(address: str) -> list:
    return [u for u in users_with_address(address) if u.is_active and not is_verified(u)]


LOOKUPS: dict[str, Lookup] = {
    Kind.PASSWORD_RESET: Lookup(reset_candidates, FlowEvent.Flow.PASSWORD_RESET_REQUEST,
                                "No active account with a usable password has this address."),
    Kind.VERIFICATION: Lookup(_unverified_accounts, FlowEvent.Flow.VERIFICATION_REQUEST,
                              "No active account with this address is waiting for verification."),
}


def resolve_address_requests(email_ids) -> list:
    """Turn by-address rows into rows for the matching accounts; return the ids to deliver.

    No match: the row is ``suppressed`` (kept for the audit trail, nothing sent). Several
    accounts share the address: each gets its own row and email. Resolving is guarded by a
    conditional update, so a redelivered task resolves nothing twice.
    """
    ids = list(email_ids)
    pending = OutboxEmail.objects.filter(
        pk__in=ids, kind__in=list(LOOKUPS), user__isnull=True, status=Status.QUEUED, context__lookup=True
    )
    for row in pending:
        ids.extend(_resolve(row, LOOKUPS[row.kind]))
    return ids


def _resolve(row: OutboxEmail, lookup: Lookup) -> list[int]:
    """Resolve one row; the ids of the extra rows made for further accounts."""
    users = lookup.candidates(row.recipient)
    context = {k: v for k, v in row.context.items() if k != "lookup"}
    still_open = OutboxEmail.objects.filter(pk=row.pk, status=Status.QUEUED, user__isnull=True)
    with transaction.atomic():
        if not users:
            if still_open.update(status=Status.SUPPRESSED, context=context, updated_at=timezone.now(),
                                 last_error=lookup.nobody):
                FlowEvent.objects.create(flow=lookup.flow, outcome=FlowEvent.Outcome.REJECTED,
                                         detail="no matching account")
            return []
        first, *others = users
        if not still_open.update(user=first, recipient=email_of(first), context=context, updated_at=timezone.now()):
            return []
        FlowEvent.objects.create(flow=lookup.flow, outcome=FlowEvent.Outcome.SUCCEEDED, user=first)
        return [
            OutboxEmail.objects.create(
                kind=row.kind, email_type=row.email_type, recipient=email_of(user), user=user,
                context=context, message_id=new_message_id(), task_id=row.task_id,
                available_at=row.available_at, expires_at=row.expires_at,  # the request's schedule
            ).pk
            for user in others
        ]
