"""Create an invitation and queue its email."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from ..accounts.flows import ACCOUNT_EXISTS
from ..accounts.tokens import invitation_expiry
from ..accounts.users import account_exists, allowed_user_types, email_of, user_types_in_use
from ..exceptions import InvalidEmailInput
from ..models import Invitation, Kind, OutboxEmail
from . import validation
from .publishing import new_message_id
from .rows import outbox_db, queue_rows


def inviter_name(inviter) -> str:
    """How the invitation names who sent it: full name, else address, else ``str(inviter)``."""
    if inviter is None or not getattr(inviter, "pk", None):
        return ""
    return getattr(inviter, "get_full_name", lambda: "")() or email_of(inviter) or str(inviter)


def queue_invitation(inviter, invitee_email, user_type=None, base_url=None) -> str:
    """Revoke earlier open invitations to the address, create a new one and queue its email.

    ``user_type`` omitted (``None``) means the first of the configured types.
    """
    address = validation.clean_address("invitee_email", invitee_email)
    if user_type is None and user_types_in_use():
        user_type = next(iter(allowed_user_types()), None)
    user_type = validation.clean_user_type("user_type", user_type) if user_types_in_use() else (user_type or "")
    base = validation.clean_base_url("base_url", base_url)
    if account_exists(address):
        raise InvalidEmailInput("invitee_email", ACCOUNT_EXISTS, code="exists")
    using = outbox_db()
    with transaction.atomic(using=using):
        now = timezone.now()
        Invitation.objects.using(using).filter(
            email__iexact=address, accepted_at__isnull=True, revoked_at__isnull=True
        ).update(revoked_at=now)
        invitation = Invitation.objects.using(using).create(
            inviter=inviter if getattr(inviter, "pk", None) else None,
            email=address, user_type=user_type, expires_at=invitation_expiry(now),
        )
        row = OutboxEmail(
            kind=Kind.INVITATION, email_type=str(Kind.INVITATION), recipient=address, invitation=invitation,
            context={"base_url": base, "inviter_name": inviter_name(inviter), "user_type": user_type},
            message_id=new_message_id(),
        )
        return queue_rows(Kind.INVITATION, [row])
