"""What the package needs to know about the host's user model, in one place."""

from __future__ import annotations

import unicodedata
from typing import cast

from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist
from django.db.models import Field, Q

from ..conf import app_settings
from ..exceptions import AsyncEmailConfigurationError
from .addresses import normalise_address, unicode_domain_form


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


def _matching_address(address: str) -> Q:
    """Users whose stored address is ``address`` (normalised), without regard to case, in
    either form of an international domain."""
    field = f"{email_field_name()}__iexact"
    normal = normalise_address(address)
    return Q(**{field: normal}) | Q(**{field: unicode_domain_form(normal)})


def account_exists(address: str) -> bool:
    """Whether any account has ``address`` as its email, or as its username (a user whose
    username is an old address would make a new account with it clash)."""
    user_model = get_user_model()
    condition = _matching_address(address)
    if user_model.USERNAME_FIELD != email_field_name():
        condition |= Q(**{f"{user_model.USERNAME_FIELD}__iexact": normalise_address(address)})
    return user_model._default_manager.filter(condition).exists()


def _fold(value: str) -> str:
    return unicodedata.normalize("NFKC", value).casefold()


def users_with_address(address) -> list:
    """Users whose stored address equals ``address``, compared after NFKC normalisation and
    case folding, as Django does since CVE-2019-19844: ``mıke@`` (dotless i) does not match
    ``mike@``. Mail then goes to the stored address, never to the one typed in."""
    if not isinstance(address, str) or not address.strip():
        return []
    address = normalise_address(address)
    candidates = get_user_model()._default_manager.filter(_matching_address(address))
    return [u for u in candidates if _fold(normalise_address(email_of(u))) == _fold(address)]


def reset_candidates(address) -> list:
    """Active users with a usable password whose stored address equals ``address`` (as above)."""
    return [u for u in users_with_address(address) if u.is_active and u.has_usable_password()]


def greeting_name(user) -> str:
    """The name an email greets ``user`` by: the first name, else ``get_short_name()``; ``""`` (a
    neutral greeting) when neither gives a name, or it would only repeat the address."""
    if user is None:
        return ""
    name = getattr(user, "first_name", "") or ""
    if not name and callable(getattr(user, "get_short_name", None)):
        name = user.get_short_name() or ""
    name = str(name).strip()
    return "" if not name or name.casefold() == email_of(user).casefold() else name
