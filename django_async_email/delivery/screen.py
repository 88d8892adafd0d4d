"""Screen step: before a batch is built, drop the rows that must not go out any more.

The request side already skipped suppressed addresses and turned-off categories when it
wrote a notification's rows; this looks again, once per batch, because an address can be
suppressed (a bounce, a complaint, an unsubscribe) while its row waits in the queue. Two
queries per batch at most: the suppression list for the batch's addresses, and the
preferences of the batch's notification recipients. A stored message (``raw``, from
``OutboxBackend``) is screened like an account email: only a hard bounce or a complaint
stops it, recipient by recipient.
"""

from __future__ import annotations

from email.utils import getaddresses

from ..accounts.categories import category_for, unsubscribable
from ..accounts.preferences import opted_out
from ..accounts.suppression import blocks, reasons_for, suppression_key
from ..models import Kind, OutboxEmail, SuppressionReason


def envelope(row: OutboxEmail) -> list[str]:
    """The addresses a row is sent to: its recipient, or every To, Cc and Bcc of a stored message."""
    if row.kind != Kind.RAW:
        return [row.recipient]
    stored = row.stored_message
    return [address for _name, address in getaddresses([*stored.to, *stored.cc, *stored.bcc]) if address]


def screen(rows: list[OutboxEmail]) -> tuple[dict[int, str], dict[int, frozenset[str]]]:
    """``({row id: reason}, {row id: addresses to leave out})``: the rows not to send
    (``SuppressionReason`` values), and for a stored message with several recipients the
    suppressed ones among them (the message goes to the rest)."""
    # Each address normalised once: this runs for every row of every batch.
    keys = {row.pk: {suppression_key(a) for a in envelope(row)} for row in rows}
    listed = reasons_for(key for row_keys in keys.values() for key in row_keys)
    held: dict[int, str] = {}
    withheld: dict[int, frozenset[str]] = {}
    for row in rows:
        notification = row.kind == Kind.NOTIFICATION
        blocked = {key: listed[key] for key in keys[row.pk] if blocks(notification, listed.get(key))}
        if blocked and len(blocked) == len(keys[row.pk]):
            held[row.pk] = next(iter(blocked.values()))
        elif blocked:
            withheld[row.pk] = frozenset(blocked)
    wanted = [(row, category_for(row.email_type)) for row in rows
              if row.pk not in held and unsubscribable(row.kind, row.user_id)]
    if wanted:
        off = opted_out((row.user_id, category) for row, category in wanted)
        for row, category in wanted:
            reason = off.get((str(row.user_id), category.key))
            if reason:
                held[row.pk] = reason
    return held, withheld


def describe(reason: str) -> str:
    """The ``last_error`` text of a screened row."""
    return f"Not sent: {SuppressionReason(reason).label}."
