"""Verified-address state, kept by the package and mirrored to the host's own flag if it has one."""

from __future__ import annotations

from django.utils import timezone

from .conf import app_settings
from .users import email_of


def is_verified(user) -> bool:
    """True if the user's current address is the one that was verified."""
    from .models import VerifiedEmail

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


def mark_verified(user, *, now=None) -> None:
    from .models import VerifiedEmail

    VerifiedEmail.objects.update_or_create(
        user=user, defaults={"email": email_of(user), "verified_at": now or timezone.now()}
    )
    field = app_settings.VERIFIED_FIELD
    if field and not getattr(user, field, False):
        setattr(user, field, True)
        user.save(update_fields=[field])
