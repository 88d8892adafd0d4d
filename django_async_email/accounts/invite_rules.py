"""Who may invite whom: the user types an inviter may give the accounts they invite.

``ASYNC_EMAIL['INVITATION_RULES']`` maps an inviter to the types they may invite: a key is
``"staff"``, a user type, or ``"perm:<app_label>.<codename>"``; a value is a list of user
types or ``"__all__"``. An inviter gets the union of every key that applies to them. The
default (``None``) lets staff invite any type and every other user only their own type
(a user without a type: none). Without user types there is nothing to shape.
"""

from __future__ import annotations

from ..conf import app_settings
from .users import user_type_of

ANY = "__all__"


def _rule_applies(key: str, inviter) -> bool:
    if key == "staff":
        return bool(getattr(inviter, "is_staff", False))
    if key.startswith("perm:"):
        return inviter.has_perm(key[len("perm:"):])
    return bool(key) and key == user_type_of(inviter)


def invitable_types(inviter) -> set[str] | str:
    """The types ``inviter`` may invite: a set, or ``ANY``."""
    rules = app_settings.INVITATION_RULES
    if rules is None:
        if getattr(inviter, "is_staff", False):
            return ANY
        own = user_type_of(inviter)
        return {own} if own else set()
    allowed: set[str] = set()
    for key, types in rules.items():
        if _rule_applies(key, inviter):
            if types == ANY:
                return ANY
            allowed.update(types)
    return allowed


def may_invite(inviter, user_type: str) -> bool:
    """Whether ``inviter`` (``None``: the host's own code) may invite someone as ``user_type``."""
    if inviter is None:
        return True
    allowed = invitable_types(inviter)
    return allowed == ANY or user_type in allowed


def is_trusted_inviter(inviter) -> bool:
    """The host's own code (no inviter) or staff: told when an address has an account, and
    allowed to replace someone else's open invitation."""
    return inviter is None or bool(getattr(inviter, "is_staff", False))
