"""Verified-address state, kept by the package and mirrored to the host's own flag if it has one."""

from __future__ import annotations

from django.db.models import Q
from django.db.models.functions import Lower
from django.db.models.lookups import Exact
from django.utils import timezone

from ..conf import app_settings
from ..models import VerifiedEmail
from .users import email_field_name, email_of


def is_verified(user) -> bool:
    """True if the user's current address is the one that was verified."""
    field = app_settings.VERIFIED_FIELD
    if field and getattr(user, field, False):
        return True
    if user.pk is None:
        return False
    try:
        record = VerifiedEmail.objects.get(user=user)
    except VerifiedEmail.DoesNotExist:
        return False
    return bool(email_of(user)) and record.email.lower() == email_of(user).lower()


def verified_q() -> Q:
    """``is_verified`` as a query condition on the user model, for querysets of many users.

    The addresses are compared lowered, not with ``iexact``: against another column,
    ``iexact`` becomes ``LIKE`` on SQLite and MySQL, where ``_`` and ``%`` in an address
    would match any character.
    """
    ours = Q(Exact(Lower("async_email_verification__email"), Lower(email_field_name())))
    field = app_settings.VERIFIED_FIELD
    return Q(**{field: True}) | ours if field else ours


def mark_verified(user, *, now=None) -> None:
    VerifiedEmail.objects.update_or_create(
        user=user, defaults={"email": email_of(user), "verified_at": now or timezone.now()}
    )
    field = app_settings.VERIFIED_FIELD
    if field and not getattr(user, field, False):
        setattr(user, field, True)
        user.save(update_fields=[field])
