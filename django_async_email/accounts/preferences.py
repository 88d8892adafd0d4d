"""Per-user, per-category choices: who receives which notifications.

The fan-out and the short list ask the database (``skip_reason``) in the query that reads
the recipients, so a preference costs no query per user; the worker asks again for each
batch before sending (``opted_out``), so a change made while a broadcast is queued counts.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Case, CharField, Exists, OuterRef, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from ..exceptions import InvalidEmailInput
from ..models import EmailPreference, SuppressionReason
from .categories import Category, categories, category_named
from .suppression import reason_of_address

Source = EmailPreference.Source


def preferences_of(user) -> list[dict]:
    """Every category with its label and whether ``user`` receives it (one query)."""
    chosen = dict(EmailPreference.objects.filter(user=user).values_list("category", "subscribed"))
    return [{"category": c.key, "label": c.label, "subscribed": chosen.get(c.key, c.default)} for c in categories()]


def receives(user, category: Category) -> bool:
    chosen = EmailPreference.objects.filter(user=user, category=category.key).values_list("subscribed", flat=True)
    return next(iter(chosen), category.default)


def set_preferences(user, changes: dict, source: str) -> list[dict]:
    """Apply ``{category key: bool}`` for ``user``; every category's state afterwards.

    Refuses (``InvalidEmailInput`` naming the category) an unknown key or a value that is
    not a boolean, before anything is written.
    """
    if not isinstance(changes, dict):
        raise InvalidEmailInput("categories", "Give an object of category key to true or false.")
    for key, value in changes.items():
        if category_named(str(key)) is None:
            known = ", ".join(c.key for c in categories())
            raise InvalidEmailInput("categories", f"Unknown category {key!r}; the categories are {known}.",
                                    code="unknown")
        if not isinstance(value, bool):
            raise InvalidEmailInput("categories", f"{key!r} must be true or false.")
    now = timezone.now()
    with transaction.atomic():
        for key, value in changes.items():
            EmailPreference.objects.update_or_create(
                user=user, category=key, defaults={"subscribed": value, "source": source, "changed_at": now})
    return preferences_of(user)


def unsubscribe(user, category: Category, source: str) -> None:
    """Turn ``category`` off for ``user`` (idempotent: a second call changes nothing, not even the time)."""
    updated = EmailPreference.objects.filter(user=user, category=category.key, subscribed=True).update(
        subscribed=False, source=source, changed_at=timezone.now())
    if not updated:
        EmailPreference.objects.get_or_create(
            user=user, category=category.key, defaults={"subscribed": False, "source": source})


def skip_reason(category: Category, email_field: str):
    """An expression over a user queryset: why the user gets no notification of ``category``
    ("" if they get it): the suppression list first, then their preference."""
    mine = EmailPreference.objects.filter(user=OuterRef("pk"), category=category.key)
    if category.default:
        choice = Case(When(Exists(mine.filter(subscribed=False)), then=Value(SuppressionReason.UNSUBSCRIBED)),
                      default=Value(""), output_field=CharField())
    else:
        choice = Case(When(Exists(mine.filter(subscribed=True)), then=Value("")),
                      default=Value(SuppressionReason.NOT_OPTED_IN), output_field=CharField())
    return Coalesce(reason_of_address(email_field), choice, output_field=CharField())


def opted_out(pairs) -> dict[tuple[str, str], str]:
    """For ``(user id, category)`` pairs: those that do not receive it, with the reason (one query)."""
    pairs = {(str(u), c.key): c for u, c in pairs}
    if not pairs:
        return {}
    rows = EmailPreference.objects.filter(
        user_id__in={u for u, _ in pairs}, category__in={k for _, k in pairs}
    ).values_list("user_id", "category", "subscribed")
    chosen = {(str(u), k): s for u, k, s in rows}
    reasons: dict[tuple[str, str], str] = {}
    for pair, category in pairs.items():
        subscribed = chosen.get(pair, category.default)
        if not subscribed:
            reasons[pair] = SuppressionReason.UNSUBSCRIBED if pair in chosen else SuppressionReason.NOT_OPTED_IN
    return reasons
