"""What the package needs to know about the host's user model, in one place."""

from __future__ import annotations

import unicodedata
from typing import cast

from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist
from django.db.models import Field

from ..conf import app_settings
from ..exceptions import AsyncEmailConfigurationError


def email_field_name() -> str:
    return get_user_model().get_email_field_name()


def email_of(user) -> str:
    return getattr(user, email_field_name(), "") or ""


def user_type_field() -> str | None:
    return app_settings.USER_TYPE_FIELD


def user_type_of(user) -> str:
    field = user_type_field()
    if not field or user is None:
        return ""
    return getattr(user, field, "") or ""


def has_field(name: str) -> bool:
    """Whether the user model has a concrete field called ``name``."""
    return any(getattr(f, "name", None) == name and getattr(f, "concrete", False)
               for f in get_user_model()._meta.get_fields())


def user_types_in_use() -> bool:
    """Whether the host uses user types at all (a field or a list of them)."""
    return bool(app_settings.USER_TYPE_FIELD or app_settings.USER_TYPES)


def allowed_user_types() -> list[str]:
    """``USER_TYPES`` if set, else the choices of ``USER_TYPE_FIELD``, else none."""
    if app_settings.USER_TYPES is not None:
        return list(app_settings.USER_TYPES)
    field_name = user_type_field()
    if not field_name:
        return []
    try:
        field = get_user_model()._meta.get_field(field_name)
    except FieldDoesNotExist as exc:
        raise AsyncEmailConfigurationError(
            f"ASYNC_EMAIL['USER_TYPE_FIELD'] names {field_name!r}, which "
            f"{get_user_model()._meta.label} does not have."
        ) from exc
    # USER_TYPE_FIELD names a model field; get_field's type also allows a reverse relation.
    return [str(value) for value, _label in (cast(Field, field).flatchoices or [])]


def language_of(user) -> str | None:
    field = app_settings.LANGUAGE_FIELD
    if not field or user is None:
        return None
    return getattr(user, field, None) or None


def users_of_types(user_types):
    """Users whose type is one of ``user_types``, as a queryset."""
    field = user_type_field()
    if not field:
        raise AsyncEmailConfigurationError(
            "ASYNC_EMAIL['USER_TYPE_FIELD'] must name the user type field to send to user types."
        )
    return get_user_model()._default_manager.filter(**{f"{field}__in": list(user_types)})


def account_exists(address: str) -> bool:
    """Whether any account has ``address`` (compared without regard to case)."""
    return get_user_model()._default_manager.filter(**{f"{email_field_name()}__iexact": address}).exists()


def reset_candidates(address: str) -> list:
    """Active users with a usable password whose stored address equals ``address``.

    Compared after NFKC normalisation and case folding, as Django does since
    CVE-2019-19844: ``mıke@`` (dotless i) does not match ``mike@``. Mail then goes to the
    stored address, never to the one typed in.
    """

    def fold(value):
        return unicodedata.normalize("NFKC", value).casefold()

    candidates = get_user_model()._default_manager.filter(
        **{f"{email_field_name()}__iexact": address, "is_active": True}
    )
    return [u for u in candidates if u.has_usable_password() and fold(email_of(u)) == fold(address)]
