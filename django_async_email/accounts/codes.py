"""One-time codes: the digits a person types instead of opening a link (SPAs and mobile apps).

A code is minted in the worker when its email is rendered and only a keyed hash of it is
stored: HMAC-SHA256 with ``SECRET_KEY`` over the purpose, the user, the code and the same
account state the link tokens are bound to (the address and whether it is verified; for a
reset also the password hash and the last login). So a code dies when the account changes,
as a link does, and a code from one flow never passes in the other.

Each check counts as an attempt before the code is compared, with a conditional UPDATE
that cannot pass ``CODE_MAX_ATTEMPTS``, so at most that many guesses reach any code,
however many run at once. A newer code for the same user and purpose replaces the older
one (one row per pair). Comparison is constant-time, and ``SECRET_KEY_FALLBACKS`` are
honoured so codes survive a key rotation.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac
from django.views.decorators.debug import sensitive_variables

from ..conf import app_settings
from ..models import OneTimeCode
from .tokens import password_reset_token_generator, verification_token_generator

KEY_SALT = "django_async_email.accounts.codes"
Purpose = OneTimeCode.Purpose

#: Which setting says whether a flow sends codes, links or both.
METHOD_SETTINGS = {Purpose.VERIFICATION: "VERIFICATION_METHOD", Purpose.PASSWORD_RESET: "PASSWORD_RESET_METHOD"}
#: What a code is bound to, per purpose: the link token generator's account state.
STATE_OF = {Purpose.VERIFICATION: verification_token_generator, Purpose.PASSWORD_RESET: password_reset_token_generator}


def sends_code(purpose: str) -> bool:
    return getattr(app_settings, METHOD_SETTINGS[Purpose(purpose)]) in ("code", "both")


def sends_link(purpose: str) -> bool:
    return getattr(app_settings, METHOD_SETTINGS[Purpose(purpose)]) in ("link", "both")


def _secrets() -> list[str]:
    return [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]


@sensitive_variables()
def code_hash(user, purpose: str, code: str, secret: str) -> str:
    state = STATE_OF[Purpose(purpose)].hash_value(user)
    return salted_hmac(KEY_SALT, f"{purpose}|{user.pk}|{state}|{code}", secret=secret, algorithm="sha256").hexdigest()


@sensitive_variables()
def mint_code(user, purpose: str, *, now: datetime | None = None) -> str:
    """A new code for ``user`` and ``purpose``; it replaces any earlier one. Only its hash is stored."""
    now = now or timezone.now()
    code = "".join(secrets.choice("0123456789") for _ in range(app_settings.CODE_LENGTH))
    OneTimeCode.objects.update_or_create(
        user=user, purpose=purpose,
        defaults={
            "code_hash": code_hash(user, purpose, code, _secrets()[0]),
            "attempts": 0, "created_at": now, "used_at": None,
            "expires_at": now + timedelta(seconds=app_settings.seconds(app_settings.CODE_TIMEOUT)),
        },
    )
    return code


@sensitive_variables()
def check_code(user, purpose: str, code, *, now: datetime | None = None) -> OneTimeCode | str:
    """The live code row if ``code`` is right, else why not: ``"invalid"``, ``"expired"``, ``"used"``
    or ``"exhausted"``. Counts one attempt either way; marks nothing used."""
    now = now or timezone.now()
    row = OneTimeCode.objects.filter(user=user, purpose=purpose).first()
    if row is None:
        return "invalid"
    if row.used_at is not None:
        return "used"
    if row.expires_at <= now:
        return "expired"
    # The attempt is spent before the comparison, so racing guesses cannot pass the limit.
    spent = OneTimeCode.objects.filter(
        pk=row.pk, used_at__isnull=True, attempts__lt=app_settings.CODE_MAX_ATTEMPTS
    ).update(attempts=F("attempts") + 1)
    if not spent:
        return "exhausted"
    if not isinstance(code, str) or not any(
        constant_time_compare(code_hash(user, purpose, code, secret), row.code_hash) for secret in _secrets()
    ):
        return "invalid"
    return row


def mark_used(row: OneTimeCode, *, now: datetime | None = None) -> bool:
    """Use up ``row``; ``False`` if another request used it first."""
    return bool(OneTimeCode.objects.filter(pk=row.pk, used_at__isnull=True).update(used_at=now or timezone.now()))
