"""Completing the account flows: verify an address, reset a password, accept an invitation.

Each function checks the token first and raises ``TokenError`` with one public message
for every kind of bad token (invalid, expired, already used, revoked), so an anonymous
caller learns nothing; the reason is kept in the audit trail (``FlowEvent``). Token
generators and the clock are arguments, so tests control them without patching.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NoReturn

from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from ..exceptions import CodeError, InvalidEmailInput, TokenError
from ..models import FlowEvent, Invitation, OneTimeCode
from . import codes, tokens
from .users import account_exists, email_field_name, reset_candidates, users_with_address
from .verification import is_verified, mark_verified

#: The refusal when an address already has an account (inviting it, or accepting an invitation to it).
ACCOUNT_EXISTS = "An account with this email address already exists."


def _record(flow, outcome, *, user=None, token=None, detail="") -> None:
    FlowEvent.objects.create(
        flow=flow, outcome=outcome, user=user if getattr(user, "pk", None) else None,
        token_digest=tokens.digest(token) if token and outcome == FlowEvent.Outcome.SUCCEEDED else "",
        detail=detail[:255],
    )


def _fail(flow, reason, *, user=None, token=None) -> NoReturn:
    """Raise the uniform error; ``audited`` records ``reason`` once the transaction is over."""
    if reason == FlowEvent.Outcome.INVALID and token and FlowEvent.objects.filter(
        flow=flow, outcome=FlowEvent.Outcome.SUCCEEDED, token_digest=tokens.digest(token)
    ).exists():
        reason = FlowEvent.Outcome.USED
    error = TokenError(reason)
    error.user = user
    raise error


def audited(flow):
    """Record refusals outside the flow's transaction, so the rollback does not erase them."""

    def decorate(func):
        @functools.wraps(func)
        @sensitive_variables()  # the arguments are tokens, codes and passwords
        def wrapper(*args, **kwargs):
            try:
                return func(*args, **kwargs)
            except TokenError as exc:
                _record(flow, exc.reason, user=getattr(exc, "user", None))
                raise
            except InvalidEmailInput as exc:
                _record(flow, FlowEvent.Outcome.REJECTED, detail=str(exc))
                raise

        return wrapper

    return decorate


#: What a missing password is called, by the field it was asked for in.
PASSWORD_REQUIRED = {"new_password": "A new password is required."}


@sensitive_variables()
def validated_password(field: str, password, user):
    """``password`` if ``AUTH_PASSWORD_VALIDATORS`` accept it for ``user``, else ``InvalidEmailInput``
    on ``field`` with the validators' messages."""
    if not isinstance(password, str) or not password:
        raise InvalidEmailInput(field, PASSWORD_REQUIRED.get(field, "A password is required."), code="required")
    try:
        password_validation.validate_password(password, user)
    except ValidationError as exc:
        raise InvalidEmailInput(field, exc.messages, code="password_invalid") from None
    return password


def _user_for_uid(uid):
    pk = tokens.decode_uid(uid) if isinstance(uid, str) else None
    if pk is None:
        return None
    user_model = get_user_model()
    try:
        return user_model._default_manager.get(pk=user_model._meta.pk.to_python(pk))
    except (user_model.DoesNotExist, ValidationError, ValueError, TypeError, OverflowError):
        return None


@sensitive_variables()
def _check_signed(flow, generator, uid, token):
    user = _user_for_uid(uid)
    if user is None:
        _fail(flow, FlowEvent.Outcome.INVALID, token=token)
    reason = generator.check_token(user, token)
    if reason is not None:
        _fail(flow, FlowEvent.Outcome.EXPIRED if reason == "expired" else FlowEvent.Outcome.INVALID,
              user=user, token=token)
    return user


@sensitive_variables()
def check_verification_token(uid, token, *, token_generator=None):
    """The user a verification link belongs to, or ``TokenError``; consumes nothing."""
    generator = token_generator or tokens.verification_token_generator
    user = _user_for_uid(uid)
    if user is None or generator.check_token(user, token) is not None:
        raise TokenError("invalid")
    return user


@audited(FlowEvent.Flow.VERIFICATION)
@sensitive_variables()
def verify_email(uid, token, *, token_generator=None):
    """Mark the address of the user behind ``uid`` verified; the token then stops working."""
    flow = FlowEvent.Flow.VERIFICATION
    generator = token_generator or tokens.verification_token_generator
    with transaction.atomic():
        user = _check_signed(flow, generator, uid, token)
        if not user.is_active:
            _fail(flow, FlowEvent.Outcome.INVALID, user=user, token=token)
        if is_verified(user):  # a token minted before verification still checks if the host flag lags
            _fail(flow, FlowEvent.Outcome.USED, user=user, token=token)
        mark_verified(user)
        _record(flow, FlowEvent.Outcome.SUCCEEDED, user=user, token=token)
    return user


@sensitive_variables()
def check_password_reset_token(uid, token, *, token_generator=None):
    """The user a reset link belongs to, or ``TokenError``; consumes nothing (for a GET page)."""
    generator = token_generator or tokens.password_reset_token_generator
    user = _user_for_uid(uid)
    if user is None or not user.is_active or generator.check_token(user, token) is not None:
        raise TokenError("invalid")
    return user


@audited(FlowEvent.Flow.PASSWORD_RESET)
@sensitive_variables()
def reset_password(uid, token, new_password, *, token_generator=None,
                   on_success: Callable[[object], object] | None = None):
    """Set a new password from a reset link; ``on_success(user)`` runs in the same transaction.

    ``AUTH_PASSWORD_VALIDATORS`` run on the new password; their messages are raised as
    ``InvalidEmailInput`` on ``new_password`` (the token is not consumed then). The public
    ``email_utils.reset_password`` passes an ``on_success`` that queues the "password
    changed" notice, so the notice is written if and only if the password changes.
    """
    flow = FlowEvent.Flow.PASSWORD_RESET
    generator = token_generator or tokens.password_reset_token_generator
    with transaction.atomic():
        user = _check_signed(flow, generator, uid, token)
        if not user.is_active:
            _fail(flow, FlowEvent.Outcome.INVALID, user=user, token=token)
        user.set_password(validated_password("new_password", new_password, user))
        user.save(update_fields=["password"])
        _record(flow, FlowEvent.Outcome.SUCCEEDED, user=user, token=token)
        if on_success is not None:
            on_success(user)
    return user


@sensitive_variables()
def _open_invitation(token, *, now, lock=False):
    flow = FlowEvent.Flow.INVITATION
    if not isinstance(token, str) or len(token) < 32:
        _fail(flow, FlowEvent.Outcome.INVALID, token=token)
    qs = Invitation.objects.select_for_update() if lock else Invitation.objects
    invitation = qs.filter(token_hash=tokens.hash_invitation_token(token)).first()
    if invitation is None:
        _fail(flow, FlowEvent.Outcome.INVALID, token=token)
    if invitation.accepted_at is not None:
        _fail(flow, FlowEvent.Outcome.USED, token=token)
    if invitation.revoked_at is not None:
        _fail(flow, FlowEvent.Outcome.REVOKED, token=token)
    if invitation.expires_at <= now:
        _fail(flow, FlowEvent.Outcome.EXPIRED, token=token)
    return invitation


@sensitive_variables()
def check_invitation_token(token, *, now=None) -> Invitation:
    """The open invitation for ``token``, or ``TokenError``; consumes nothing."""
    return _open_invitation(token, now=now or timezone.now())


@audited(FlowEvent.Flow.INVITATION)
@sensitive_variables()
def accept_invitation(token, password, *, create_user: Callable[..., object], now=None, **profile_fields):
    """Create the invited account with ``create_user(invitation, password, **profile_fields)``.

    ``email_utils.accept_invitation`` passes the adapter's ``create_invited_user``.

    The invitation is then accepted (the link works once) and the address counts as verified.
    """
    flow = FlowEvent.Flow.INVITATION
    now = now or timezone.now()
    with transaction.atomic():
        invitation = _open_invitation(token, now=now, lock=True)
        if account_exists(invitation.email):
            raise InvalidEmailInput("token", ACCOUNT_EXISTS, code="exists")
        candidate = get_user_model()(**{email_field_name(): invitation.email})
        for name, value in profile_fields.items():
            if hasattr(candidate, name):
                setattr(candidate, name, value)
        validated_password("password", password, candidate)
        user = create_user(invitation, password, **profile_fields)
        Invitation.objects.filter(pk=invitation.pk).update(accepted_at=now, accepted_user=user)
        mark_verified(user)
        _record(flow, FlowEvent.Outcome.SUCCEEDED, user=user, token=token)
    return user


# -- One-time codes ------------------------------------------------------------------------
#
# A code is checked outside the flow's transaction: the attempt it spends must stay spent
# when the flow then refuses (a rollback would give the guess back). Callers should not
# wrap these in a transaction of their own for the same reason; the REST views are exempt
# from ATOMIC_REQUESTS.

#: The more telling refusal wins when several accounts share an address.
_CODE_REASONS = ("exhausted", "expired", "used", "invalid")


@sensitive_variables()
def _code_owner(purpose: str, code, candidates, now):
    """The account whose live code ``code`` is, with the code's row; else ``CodeError``."""
    results = [(user, codes.check_code(user, purpose, code, now=now)) for user in candidates]
    for user, result in results:
        if isinstance(result, OneTimeCode):
            return user, result
    reasons = [result for _user, result in results]
    reason = next((r for r in _CODE_REASONS if r in reasons), "invalid")
    error = CodeError(reason)
    error.user = next((user for user, result in results if result == reason), None)
    raise error


def _fail_code(reason: str, user) -> NoReturn:
    error = CodeError(reason)
    error.user = user
    raise error


@audited(FlowEvent.Flow.VERIFICATION)
@sensitive_variables()
def verify_email_with_code(email, code, *, now=None):
    """Mark the address verified for the account whose verification code ``code`` is.

    ``CodeError`` (one message) for a wrong, expired, used or exhausted code and for an
    address no active account has.
    """
    flow = FlowEvent.Flow.VERIFICATION
    now = now or timezone.now()
    candidates = [u for u in users_with_address(email) if u.is_active]
    user, row = _code_owner(OneTimeCode.Purpose.VERIFICATION, code, candidates, now)
    with transaction.atomic():
        if is_verified(user) or not codes.mark_used(row, now=now):
            _fail_code("used", user)
        mark_verified(user)
        _record(flow, FlowEvent.Outcome.SUCCEEDED, user=user)
    return user


@audited(FlowEvent.Flow.PASSWORD_RESET)
@sensitive_variables()
def reset_password_with_code(email, code, new_password, *, now=None,
                             on_success: Callable[[object], object] | None = None):
    """Set a new password for the account whose reset code ``code`` is.

    The password validators run after the code is found right; if they refuse, the code
    stays usable (its attempt is spent). ``on_success(user)`` runs in the same transaction
    (``email_utils`` queues the "password changed" notice with it).
    """
    flow = FlowEvent.Flow.PASSWORD_RESET
    now = now or timezone.now()
    user, row = _code_owner(OneTimeCode.Purpose.PASSWORD_RESET, code, reset_candidates(email), now)
    with transaction.atomic():
        user.set_password(validated_password("new_password", new_password, user))
        if not codes.mark_used(row, now=now):
            _fail_code("used", user)
        user.save(update_fields=["password"])
        _record(flow, FlowEvent.Outcome.SUCCEEDED, user=user)
        if on_success is not None:
            on_success(user)
    return user
