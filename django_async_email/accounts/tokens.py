"""Link tokens: signed and stateless for verification and password reset, random for invitations.

The signed generators follow ``django.contrib.auth.tokens``: a base-36 timestamp and a
salted HMAC over values that change once the token has been used, so a token works once
without any state. Each flow has its own salt, so a token from one flow is rejected by
every other. The clock is a constructor argument, so tests control expiry without
patching globals.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.encoding import force_bytes, force_str
from django.utils.http import base36_to_int, int_to_base36, urlsafe_base64_decode, urlsafe_base64_encode

from ..conf import app_settings
from .users import email_of
from .verification import is_verified

_EPOCH = datetime(2001, 1, 1)


def encode_uid(pk) -> str:
    return urlsafe_base64_encode(force_bytes(pk))


def decode_uid(uid: str) -> str | None:
    try:
        return force_str(urlsafe_base64_decode(uid))
    except (TypeError, ValueError, OverflowError, UnicodeDecodeError):
        return None


class SignedTokenGenerator:
    """A stateless, expiring token bound to ``hash_value(user)``."""

    key_salt = "django_async_email.tokens.SignedTokenGenerator"
    algorithm = "sha256"

    def __init__(self, now: Callable[[], datetime] | None = None, secret: str | None = None):
        self._now_func = now
        self._secret = secret

    # -- what each flow binds the token to -------------------------------------------------
    def hash_value(self, user) -> str:
        raise NotImplementedError

    @property
    def timeout_seconds(self) -> int:
        raise NotImplementedError

    # -- the mechanism ---------------------------------------------------------------------
    def _now(self) -> datetime:
        # Naive local time like Django's generator, so timestamps are comparable across versions.
        if self._now_func is not None:
            value = self._now_func()
            return timezone.make_naive(value) if timezone.is_aware(value) else value
        return datetime.now()

    def _num_seconds(self, dt: datetime) -> int:
        return int((dt - _EPOCH).total_seconds())

    def _secrets(self) -> list[str]:
        """The key tokens are made with, then the old keys they are still accepted with."""
        if self._secret:
            return [self._secret]
        return [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]

    def _make_token_with_timestamp(self, user, timestamp: int, secret: str | None = None) -> str:
        ts_b36 = int_to_base36(timestamp)
        digest = salted_hmac(
            self.key_salt,
            f"{user.pk}{self.hash_value(user)}{timestamp}",
            secret=secret or self._secrets()[0],
            algorithm=self.algorithm,
        ).hexdigest()[::2]
        return f"{ts_b36}-{digest}"

    def make_token(self, user) -> str:
        return self._make_token_with_timestamp(user, self._num_seconds(self._now()))

    def check_token(self, user, token) -> str | None:
        """``None`` if the token is good, else the reason: ``"malformed"``, ``"invalid"`` or ``"expired"``."""
        if not (user and isinstance(token, str)) or token.count("-") != 1:
            return "malformed"
        ts_b36, _digest = token.split("-")
        try:
            timestamp = base36_to_int(ts_b36)
        except ValueError:
            return "malformed"
        # Links made before a key rotation keep working while the old key is in SECRET_KEY_FALLBACKS.
        if not any(constant_time_compare(self._make_token_with_timestamp(user, timestamp, secret), token)
                   for secret in self._secrets()):
            return "invalid"
        if self._num_seconds(self._now()) - timestamp > self.timeout_seconds:
            return "expired"
        return None


class EmailVerificationTokenGenerator(SignedTokenGenerator):
    """Bound to the address and to whether it is verified: works once, dies when the address changes."""

    key_salt = "django_async_email.tokens.EmailVerificationTokenGenerator"

    def hash_value(self, user) -> str:
        return f"{email_of(user)}|{int(is_verified(user))}"

    @property
    def timeout_seconds(self) -> int:
        return int(app_settings.seconds(app_settings.VERIFICATION_TIMEOUT))


class PasswordResetTokenGenerator(SignedTokenGenerator):
    """Dies after use (password hash), after a login, after an email change, after the timeout."""

    key_salt = "django_async_email.tokens.PasswordResetTokenGenerator"

    def hash_value(self, user) -> str:
        login = "" if user.last_login is None else user.last_login.replace(microsecond=0, tzinfo=None)
        return f"{user.password}|{login}|{email_of(user)}"

    @property
    def timeout_seconds(self) -> int:
        configured = app_settings.PASSWORD_RESET_TIMEOUT
        if configured is None:
            return int(settings.PASSWORD_RESET_TIMEOUT)
        return int(app_settings.seconds(configured))


verification_token_generator = EmailVerificationTokenGenerator()
password_reset_token_generator = PasswordResetTokenGenerator()

INVITATION_TOKEN_BYTES = 32  # 256 bits from the OS CSPRNG; 43 URL-safe characters


def make_invitation_token() -> str:
    return secrets.token_urlsafe(INVITATION_TOKEN_BYTES)


def digest(value) -> str:
    """The SHA-256 of a token, in hex: what is stored or compared instead of the token itself."""
    return hashlib.sha256(str(value).encode("utf-8")).hexdigest()


def hash_invitation_token(token: str) -> str:
    """Only this is stored: a database leak does not hand out working invitation links."""
    return digest(token)


def invitation_expiry(now: datetime | None = None) -> datetime:
    now = now or timezone.now()
    return now + timedelta(seconds=app_settings.seconds(app_settings.INVITATION_TIMEOUT))
