"""Screen step: before a batch is built, drop the rows that must not go out any more.

The request side already skipped suppressed addresses and turned-off categories when it
wrote a notification's rows; this looks again, once per batch, because an address can be
suppressed (a bounce, a complaint, an unsubscribe) while its row waits in the queue. Two
queries per batch at most: the suppression list for the batch's addresses, and the
preferences of the batch's notification recipients.
"""

from __future__ import annotations

from ..accounts.categories import category_for, unsubscribable
from ..accounts.preferences import opted_out
from ..accounts.suppression import blocks, reasons_for, suppression_key
from ..models import Kind, OutboxEmail, SuppressionReason


def screen(rows: list[OutboxEmail]) -> dict[int, str]:
    """``{row id: reason}`` for the rows not to send (``SuppressionReason`` values)."""
    listed = reasons_for(row.recipient for row in rows)
    held: dict[int, str] = {}
    for row in rows:
        reason = listed.get(suppression_key(row.recipient))
        if reason and blocks(row.kind == Kind.NOTIFICATION, reason):
            held[row.pk] = reason
    wanted = [(row, category_for(row.email_type)) for row in rows
              if row.pk not in held and unsubscribable(row.kind, row.user_id)]
    if wanted:
        off = opted_out((row.user_id, category) for row, category in wanted)
        for row, category in wanted:
            reason = off.get((str(row.user_id), category.key))
            if reason:
                held[row.pk] = reason
    return held


def describe(reason: str) -> str:
    """The ``last_error`` text of a screened row."""
    return f"Not sent: {SuppressionReason(reason).label}."
