"""The suppression list: addresses that get no notification, and after a hard bounce or a
complaint no email at all.

Addresses are kept in one key form (``suppression_key``: the package's normal form,
lowercased), so a list entry matches however the address was typed. Bounce parsing and
webhooks add entries through ``suppress``; the delivery step adds a ``hard_bounce`` when a
server refuses a recipient for good (550, 551 or 553 at RCPT).
"""

from __future__ import annotations

from django.db.models import OuterRef, Subquery
from django.db.models.functions import Lower
from django.utils import timezone

from ..exceptions import InvalidEmailInput
from ..models import BLOCKS_ACCOUNT_EMAIL, Suppression, SuppressionReason
from .addresses import normalise_address


def suppression_key(address: str) -> str:
    return normalise_address(address).lower()


def suppress(address: str, reason: str = SuppressionReason.MANUAL, source: str = "") -> Suppression:
    """Add ``address`` to the list (or change its entry's reason); the entry.

    A hard bounce or a complaint is not replaced by a milder reason (an "unsubscribe from
    all" after a bounce would let account emails go to the bouncing address again);
    ``unsuppress`` first to change it.
    """
    if reason not in list_reasons():
        choices = ", ".join(repr(r) for r in list_reasons())
        raise InvalidEmailInput("reason", f"Unknown suppression reason {reason!r}; use one of {choices}.")
    key = suppression_key(address)
    if not key or "@" not in key:
        raise InvalidEmailInput("address", "Enter a valid email address.")
    existing = Suppression.objects.filter(address=key).first()
    if existing is not None and existing.reason in BLOCKS_ACCOUNT_EMAIL and reason not in BLOCKS_ACCOUNT_EMAIL:
        return existing
    entry, _created = Suppression.objects.update_or_create(
        address=key, defaults={"reason": reason, "source": source[:255], "created_at": timezone.now()})
    return entry


def list_reasons() -> list[str]:
    """The reasons an address can be on the list (the others are per-category row reasons)."""
    return [SuppressionReason.HARD_BOUNCE, SuppressionReason.COMPLAINT, SuppressionReason.UNSUBSCRIBED_ALL,
            SuppressionReason.MANUAL]


def unsuppress(address: str) -> bool:
    """Take ``address`` off the list; whether it was on it."""
    deleted, _ = Suppression.objects.filter(address=suppression_key(address)).delete()
    return bool(deleted)


def is_suppressed(address: str) -> bool:
    return Suppression.objects.filter(address=suppression_key(address)).exists()


def reasons_for(keys) -> dict[str, str]:
    """``{suppression key: reason}`` for those of ``keys`` (``suppression_key`` forms) on the list (one query)."""
    return dict(Suppression.objects.filter(address__in=set(keys)).values_list("address", "reason"))


def blocks(kind_is_notification: bool, reason: str | None) -> bool:
    """Whether an entry with ``reason`` stops an email: every reason stops a notification; a
    hard bounce or a complaint stops account emails too."""
    return bool(reason) and (kind_is_notification or reason in BLOCKS_ACCOUNT_EMAIL)


def record_hard_bounces(refusals: dict[str, str]) -> None:
    """``{address: the server's reply}``: add each as a ``hard_bounce`` (one INSERT; an
    address already on the list keeps its entry)."""
    if refusals:
        now = timezone.now()
        Suppression.objects.bulk_create(
            [Suppression(address=suppression_key(a), reason=SuppressionReason.HARD_BOUNCE, source=s[:255],
                         created_at=now) for a, s in refusals.items()],
            ignore_conflicts=True)


def reason_of_address(email_field: str):
    """An expression over a user queryset: the list's reason for the user's address, or NULL.

    Matches ``Lower(address)``: a stored address the host did not normalise still matches
    its list entry unless it differs by more than case (the worker's check, which
    normalises in Python, catches the rest before sending).
    """
    return Subquery(Suppression.objects.filter(address=Lower(OuterRef(email_field))).values("reason")[:1])
