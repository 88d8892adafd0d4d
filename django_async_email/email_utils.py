"""The public Python API, with the names and signatures of the system it generalises.

Every sending function validates its input first (raising ``InvalidEmailInput`` naming
the bad argument, before anything is written), writes outbox rows in the caller's
transaction, publishes the task when that transaction commits, and returns the Celery
task id. Every one of them takes ``send_at=`` (not before this aware datetime) and
``expires_at=`` (never after it: an email still unsent then is recorded ``expired``).
The flow functions complete what the emails' links start (verify an address, reset a
password, accept an invitation), raising one uniform ``TokenError`` for any bad token.
The work is in the layers below: ``outbox`` (the request side) and ``accounts``.
"""

from __future__ import annotations

from django.db import transaction
from django.views.decorators.debug import sensitive_variables

from .accounts import flows
from .accounts import preferences as _preferences
from .accounts import suppression as _suppression
from .accounts.flows import (
    check_invitation_token,
    check_password_reset_token,
    check_verification_token,
    verify_email,
    verify_email_with_code,
)
from .adapter import get_adapter
from .checks import configuration_report
from .models import Kind, Suppression
from .outbox import broadcasts
from .outbox.attachments import attachment_parts
from .outbox.invitations import queue_invitation
from .outbox.rows import queue_by_address, queue_to_user
from .outbox.schedule import clean_schedule

__all__ = [
    "send_verification_email",
    "send_password_reset_email",
    "send_invitation_email",
    "send_notification_to_users",
    "send_notification_to_user_types",
    "send_welcome_email",
    "request_password_reset",
    "request_verification_email",
    "send_password_changed_email",
    "broadcast_progress",
    "cancel_broadcast",
    "validate_email_configuration",
    "send_test_email",
    "verify_email",
    "reset_password",
    "accept_invitation",
    "check_verification_token",
    "check_password_reset_token",
    "check_invitation_token",
    "verify_email_with_code",
    "reset_password_with_code",
    "suppress",
    "unsuppress",
    "is_suppressed",
    "email_preferences",
    "set_email_preferences",
]


def send_verification_email(user, base_url=None, *, send_at=None, expires_at=None) -> str:
    """Queue an email-verification email to ``user`` (queue: high)."""
    return queue_to_user(Kind.VERIFICATION, user, base_url, clean_schedule(send_at, expires_at))


def send_password_reset_email(user, base_url=None, *, send_at=None, expires_at=None) -> str:
    """Queue a password reset email to ``user`` (queue: high). The token is minted by the worker."""
    return queue_to_user(Kind.PASSWORD_RESET, user, base_url, clean_schedule(send_at, expires_at))


def request_verification_email(email, base_url=None, *, send_at=None, expires_at=None) -> str:
    """Queue a new verification email for the unverified account that owns ``email``, if any.

    For a person who lost the first email and is not signed in. Like
    ``request_password_reset``, the request path does the same work for every address;
    the worker sends to an active account with that address that is not verified yet, or
    records the row as ``suppressed``.
    """
    return queue_by_address(Kind.VERIFICATION, email, base_url, clean_schedule(send_at, expires_at))


def send_password_changed_email(user, base_url=None, *, send_at=None, expires_at=None) -> str:
    """Queue the "your password was changed" notice to ``user`` (queue: high)."""
    return queue_to_user(Kind.PASSWORD_CHANGED, user, base_url, clean_schedule(send_at, expires_at))


def send_welcome_email(user, base_url=None, *, send_at=None, expires_at=None) -> str:
    """Queue a welcome email to ``user`` (queue: normal)."""
    return queue_to_user(Kind.WELCOME, user, base_url, clean_schedule(send_at, expires_at))


def request_password_reset(email, base_url=None, *, send_at=None, expires_at=None) -> str:
    """Queue a password reset for whoever owns ``email``, without saying whether anyone does.

    The request path does the same work for every address (validate, one INSERT, one
    publish): the account lookup happens in the worker, which sends to the address stored
    on the account, or records the row as ``suppressed`` when there is none.
    """
    return queue_by_address(Kind.PASSWORD_RESET, email, base_url, clean_schedule(send_at, expires_at))


def send_invitation_email(inviter, invitee_email, user_type=None, base_url=None, *, send_at=None,
                          expires_at=None) -> str:
    """Invite ``invitee_email`` to join as ``user_type`` (queue: normal).

    Without ``user_type``, the first of ``USER_TYPES`` (or of the type field's choices).
    Any earlier open invitation to the same address is revoked, so only the newest link works.
    """
    return queue_invitation(inviter, invitee_email, user_type, base_url, clean_schedule(send_at, expires_at))


def send_notification_to_users(user_ids, subject, message, email_type="notification", template_name=None,
                               context=None, *, send_at=None, expires_at=None, attachments=None) -> str:
    """Queue one notification to each of ``user_ids`` (queue: normal); one task.

    Unknown ids are refused. Users who may not receive notifications (inactive, without an
    address, or unverified when ``BULK_INCLUDE_UNVERIFIED`` is off) are left out, whatever
    the length of the list. A list longer than ``BULK_CHUNK_SIZE`` goes the bulk way: one
    broadcast row, one fan-out task on the low queue, and the ids are not looked up on the
    request path.

    ``attachments``: files every recipient's email carries, as ``(filename, content,
    mimetype)`` tuples or MIME parts (what ``EmailMessage.attach()`` takes); stored once
    for the broadcast in ``ATTACHMENT_STORAGE``, within the size limits.
    """
    fields = broadcasts.clean_notification(subject, message, email_type, template_name, context)
    schedule, parts = clean_schedule(send_at, expires_at), attachment_parts(attachments)
    return broadcasts.queue_to_users(user_ids, fields, schedule, parts)


def send_notification_to_user_types(user_types, subject, message, email_type="notification", template_name=None,
                                    context=None, *, send_at=None, expires_at=None, attachments=None) -> list[str]:
    """Queue a notification to every active user of each type (queue: low); one task id per type.

    The request path writes one broadcast row per type and publishes its fan-out task; it
    never loads the recipients. ``attachments`` as for ``send_notification_to_users``.
    """
    fields = broadcasts.clean_notification(subject, message, email_type, template_name, context)
    schedule, parts = clean_schedule(send_at, expires_at), attachment_parts(attachments)
    return broadcasts.queue_to_user_types(user_types, fields, schedule, parts)


def send_test_email(address, subject=None, message=None, *, send_at=None, expires_at=None) -> str:
    """Queue a test notification to any address (queue: normal), to check the whole path."""
    return broadcasts.queue_test_email(address, subject, message, clean_schedule(send_at, expires_at))


def broadcast_progress(task_id_or_pk) -> dict:
    """Progress of a broadcast (by the task id its send function returned, or its pk):
    ``{"state", "total", "sent", "failed", "cancelled", "pending"}``."""
    return broadcasts.find_broadcast(task_id_or_pk).progress()


def cancel_broadcast(task_id_or_pk) -> int:
    """Stop a broadcast: rows not yet sent are cancelled (rows being sent finish). Returns how many."""
    return broadcasts.cancel_broadcast(broadcasts.find_broadcast(task_id_or_pk).pk)


@sensitive_variables()  # tokens, codes and passwords
def reset_password(uid, token, new_password, *, base_url=None, token_generator=None):
    """Set a new password from a reset link and queue the "password changed" notice.

    ``AUTH_PASSWORD_VALIDATORS`` run on the new password (``InvalidEmailInput`` on
    ``new_password``; the token is not used up then). The notice is written in the same
    transaction as the new password.
    """
    return flows.reset_password(
        uid, token, new_password, token_generator=token_generator,
        on_success=lambda user: send_password_changed_email(user, base_url=base_url),
    )


@sensitive_variables()  # tokens, codes and passwords
def reset_password_with_code(email, code, new_password, *, base_url=None):
    """Set a new password with the code from a reset email and queue the "password changed" notice.

    ``CodeError`` (a ``TokenError``, one message) for a wrong, expired, used or exhausted
    code and for an address no account has; ``InvalidEmailInput`` on ``new_password`` if
    the password validators refuse it (the code then still works).
    """
    return flows.reset_password_with_code(
        email, code, new_password,
        on_success=lambda user: send_password_changed_email(user, base_url=base_url),
    )


@sensitive_variables()  # tokens, codes and passwords
def accept_invitation(token, password, *, now=None, **profile_fields):
    """Create the invited account through the adapter's ``create_invited_user()`` and return it.

    The password is validated first; the invitation is then accepted (the link works once)
    and the address counts as verified.
    """
    return flows.accept_invitation(
        token, password, create_user=get_adapter().create_invited_user, now=now, **profile_fields
    )


def suppress(address, reason="manual", source="") -> Suppression:
    """Put ``address`` on the suppression list (or change the reason of its entry); the entry.

    A suppressed address gets no notification; after ``"hard_bounce"`` or ``"complaint"``
    it gets no account email either. ``reason`` is one of ``"hard_bounce"``,
    ``"complaint"``, ``"unsubscribed_all"`` and ``"manual"`` (``InvalidEmailInput`` on
    ``reason`` otherwise, and on ``address`` for something that is not an address);
    ``source`` says where it came from (a bounce's SMTP reply, a webhook...). The address
    is stored normalised and lowercased, so ``"Foo@EXAMPLE.com "`` and ``"foo@example.com"``
    are one entry.
    """
    return _suppression.suppress(address, reason=reason, source=source)


def unsuppress(address) -> bool:
    """Take ``address`` off the suppression list (however it is typed); whether it was on it."""
    return _suppression.unsuppress(address)


def is_suppressed(address) -> bool:
    """Whether ``address`` (however it is typed) is on the suppression list."""
    return _suppression.is_suppressed(address)


def email_preferences(user) -> list[dict]:
    """Every notification category with whether ``user`` receives it:
    ``[{"category": "updates", "label": "Product updates", "subscribed": True}, ...]``."""
    return _preferences.preferences_of(user)


def set_email_preferences(user, changes) -> list[dict]:
    """Turn categories on or off for ``user`` with ``{category key: bool}``; only the keys
    given change (recorded as changed by the Python API). Returns every category's state
    afterwards, as ``email_preferences``.

    An unknown key or a value that is not a ``bool`` raises ``InvalidEmailInput`` on
    ``categories`` before anything is written.
    """
    with transaction.atomic():
        return _preferences.set_preferences(user, changes, _preferences.Source.PYTHON)


def validate_email_configuration() -> dict:
    """The system checks' findings as a dict: ``{"ok": bool, "errors": [...], "warnings": [...], ...}``."""
    return configuration_report()
