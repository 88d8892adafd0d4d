"""Create an invitation and queue its email."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from ..accounts.flows import ACCOUNT_EXISTS
from ..accounts.invite_rules import is_trusted_inviter, may_invite
from ..accounts.tokens import invitation_expiry
from ..accounts.users import account_exists, allowed_user_types, email_of, user_types_in_use
from ..exceptions import InvalidEmailInput
from ..models import FlowEvent, Invitation, Kind, OutboxEmail
from . import validation
from .publishing import new_message_id, new_task_id
from .rows import outbox_db, queue_rows
from .schedule import NOW, Schedule


def inviter_name(inviter) -> str:
    """How the invitation names who sent it: full name, else address, else ``str(inviter)``."""
    if inviter is None or not getattr(inviter, "pk", None):
        return ""
    return getattr(inviter, "get_full_name", lambda: "")() or email_of(inviter) or str(inviter)


def queue_invitation(inviter, invitee_email, user_type=None, base_url=None, schedule: Schedule = NOW) -> str:
    """Revoke earlier open invitations to the address, create a new one and queue its email.

    ``user_type`` omitted (``None``) means the first of the configured types. The inviter
    must be allowed to give that type (``accounts.invite_rules``). An address that has an
    account, or someone else's open invitation, gets the usual answer and nothing is
    queued unless the inviter is trusted (staff, or the host's own code with no inviter),
    who is told (``InvalidEmailInput``) or replaces the invitation.
    """
    address = validation.clean_address("invitee_email", invitee_email)
    user_type = _clean_user_type(inviter, user_type)
    base = validation.clean_base_url("base_url", base_url)
    trusted = is_trusted_inviter(inviter)
    if account_exists(address):
        if trusted:
            raise InvalidEmailInput("invitee_email", ACCOUNT_EXISTS, code="exists")
        return _not_sent(inviter, "the address has an account")
    using = outbox_db()
    with transaction.atomic(using=using):
        now = timezone.now()
        open_ones = Invitation.objects.using(using).filter(
            email__iexact=address, accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=now)
        if not trusted and open_ones.exclude(inviter_id=getattr(inviter, "pk", None)).exists():
            return _not_sent(inviter, "an invitation from another inviter is open")
        open_ones.update(revoked_at=now)
        invitation = Invitation.objects.using(using).create(
            inviter=inviter if getattr(inviter, "pk", None) else None,
            email=address, user_type=user_type, expires_at=invitation_expiry(now),
        )
        row = OutboxEmail(
            kind=Kind.INVITATION, email_type=str(Kind.INVITATION), recipient=address, invitation=invitation,
            context={"base_url": base, "inviter_name": inviter_name(inviter), "user_type": user_type},
            message_id=new_message_id(),
        )
        return queue_rows(Kind.INVITATION, [row], schedule)


def _clean_user_type(inviter, user_type) -> str:
    if not user_types_in_use():
        return user_type or ""
    if user_type is None:
        user_type = next(iter(allowed_user_types()), None)
    user_type = validation.clean_user_type("user_type", user_type)
    if not may_invite(inviter, user_type):
        raise InvalidEmailInput("user_type", f"You may not invite users of type {user_type!r}.", code="not_allowed")
    return user_type


def _not_sent(inviter, why: str) -> str:
    """The answer an invitation gets when it is not sent: a task id, as for one that is."""
    FlowEvent.objects.create(flow=FlowEvent.Flow.INVITATION_REQUEST, outcome=FlowEvent.Outcome.REJECTED,
                             user=inviter if getattr(inviter, "pk", None) else None, detail=why)
    return new_task_id()
