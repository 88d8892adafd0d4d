"""The tokens in unsubscribe and preferences links: signed, stateless, no expiry by default.

RFC 8058 links must keep working for as long as the email sits in an inbox, so unlike the
account-flow tokens they do not expire unless ``UNSUBSCRIBE_TOKEN_MAX_AGE`` says so, and
using one changes nothing that would invalidate it (unsubscribing twice is allowed). Each
kind has its own salt, so neither is accepted where the other, or any account-flow token,
is expected. ``django.core.signing`` checks ``SECRET_KEY`` and then ``SECRET_KEY_FALLBACKS``,
so rotating the key does not break links already sent.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import timedelta
from functools import lru_cache

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing

from ..conf import app_settings
from ..exceptions import TokenError
from .categories import Category, category_named

UNSUBSCRIBE_SALT = "django_async_email.unsubscribe"
PREFERENCES_SALT = "django_async_email.preferences"


def make_unsubscribe_token(user, category: Category) -> str:
    """A token naming ``user`` and ``category``."""
    return _dumps([str(user.pk), category.key], UNSUBSCRIBE_SALT)


def make_preferences_token(user) -> str:
    """A token naming ``user``, for the preferences page."""
    return _dumps([str(user.pk)], PREFERENCES_SALT)


def _dumps(payload: list[str], salt: str) -> str:
    """``signing.dumps(payload, salt=salt)``, the same string, without deriving the key again.

    Every notification of a bulk chunk carries two of these, and ``signing.dumps`` builds a
    signer and derives its HMAC key from ``SECRET_KEY`` each time; here the key is derived
    once per salt and key (``tests/test_unsubscribe_tokens.py`` checks the two agree).
    """
    data = signing.b64_encode(json.dumps(payload, separators=(",", ":")).encode("latin-1")).decode()  # JSONSerializer
    value = f"{data}:{signing.b62_encode(int(time.time()))}"
    mac = hmac.new(_signing_key(salt, settings.SECRET_KEY), value.encode(), hashlib.sha256).digest()
    return f"{value}:{signing.b64_encode(mac).decode()}"


@lru_cache(maxsize=8)
def _signing_key(salt: str, secret: str) -> bytes:
    """The key Django's ``Signer(salt=salt)`` signs with: ``salted_hmac``'s SHA-256 of its
    key salt (the signer's salt and "signer") and the secret."""
    return hashlib.sha256(f"{salt}signer{secret}".encode()).digest()


def _payload(token: str, salt: str, size: int) -> list[str]:
    max_age = app_settings.UNSUBSCRIBE_TOKEN_MAX_AGE
    try:
        payload = signing.loads(token, salt=salt,
                                max_age=None if max_age is None else timedelta(seconds=app_settings.seconds(max_age)))
    except signing.SignatureExpired as exc:
        raise TokenError("expired") from exc
    except (signing.BadSignature, ValueError, TypeError) as exc:
        raise TokenError("invalid") from exc
    if not isinstance(payload, list) or len(payload) != size or not all(isinstance(p, str) for p in payload):
        raise TokenError("invalid")
    return payload


def _user(pk: str):
    user_model = get_user_model()
    try:
        return user_model._default_manager.get(pk=pk)
    except (user_model.DoesNotExist, ValueError, TypeError) as exc:
        raise TokenError("invalid") from exc


def read_unsubscribe_token(token: str) -> tuple[object, Category]:
    """``(user, category)``, or ``TokenError`` for a tampered, foreign or unknown token."""
    pk, key = _payload(token, UNSUBSCRIBE_SALT, 2)
    category = category_named(key)
    if category is None:  # a category the host has since removed
        raise TokenError("invalid")
    return _user(pk), category


def read_preferences_token(token: str):
    """The user, or ``TokenError``."""
    (pk,) = _payload(token, PREFERENCES_SALT, 1)
    return _user(pk)
