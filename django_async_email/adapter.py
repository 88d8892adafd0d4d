"""The one class a host subclasses to customise how emails are built and users are created.

Point ``ASYNC_EMAIL['ADAPTER']`` at a subclass of ``DefaultAdapter``.

The adapter is consulted when a message is built (From, headers, BCC, context, message
class) and when an invitation is accepted (``create_invited_user``). It sits beside the
worker side: the build step calls it, and it hands out the build step's message classes.
Account flows get its ``create_invited_user`` passed in by ``email_utils``.
"""

from __future__ import annotations

import inspect

from django.contrib.auth import get_user_model
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_variables

from .accounts.users import email_field_name, user_type_field
from .conf import app_settings
from .delivery.build.messages import MESSAGE_CLASSES
from .exceptions import InvalidEmailInput


class DefaultAdapter:
    def get_from_email(self, email) -> str:
        """The From address of an outbox row."""
        return app_settings.from_email

    def get_message_class(self, kind: str):
        """The templated-mail message class for a kind of email."""
        return MESSAGE_CLASSES[kind]

    def get_extra_context(self, email, user) -> dict:
        """Extra template context for one recipient; runs in the worker."""
        return {}

    def get_extra_headers(self, email) -> dict:
        """Extra headers for a row's message (Message-ID is always the row's own)."""
        return {}

    def get_bcc(self, email) -> list:
        """Blind copies of a row's message, for example an audit mailbox."""
        return []

    @method_decorator(sensitive_variables("password"))
    def create_invited_user(self, invitation, password: str, **profile_fields):
        """Create the account for an accepted invitation; override for custom user creation.

        The manager's ``create_user`` gets the fields its signature takes; the others (often
        the user type, which custom managers rarely take) are set on the new user and saved
        right after, in the same transaction.
        """
        user_model = get_user_model()
        fields = dict(profile_fields)
        fields[email_field_name()] = invitation.email
        type_field = user_type_field()
        if type_field and invitation.user_type:
            fields[type_field] = invitation.user_type
        # Keyword arguments only: stock and custom managers name their first argument differently.
        fields.setdefault(user_model.USERNAME_FIELD, invitation.email)
        create_user = user_model._default_manager.create_user
        taken, later = split_by_signature(create_user, fields)
        missing = required_parameters(create_user) - set(taken) - {"password"}
        if missing:
            # Refused like any bad input (a 400 with the field named), never a TypeError (a 500).
            name = sorted(missing)[0]
            raise InvalidEmailInput(name, f"{user_model._meta.label}'s create_user() needs {name}.", code="required")
        user = create_user(password=password, **taken)
        if later:
            for name, value in later.items():
                setattr(user, name, value)
            user.save(update_fields=list(later))
        return user


def required_parameters(function) -> set[str]:
    """The parameters ``function`` cannot be called without."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return set()
    return {p.name for p in parameters if p.default is inspect.Parameter.empty
            and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}


def accepts_keyword(function, name: str) -> bool:
    """Whether ``function`` can be given ``name=...``."""
    return name in split_by_signature(function, {name: None})[0]


def split_by_signature(function, fields: dict) -> tuple[dict, dict]:
    """``fields`` split into those ``function`` accepts as keyword arguments and the rest."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):  # no signature to read: pass everything, as before
        return dict(fields), {}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return dict(fields), {}
    names = {p.name for p in parameters if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                                      inspect.Parameter.KEYWORD_ONLY)}
    return ({k: v for k, v in fields.items() if k in names}, {k: v for k, v in fields.items() if k not in names})


def get_adapter() -> DefaultAdapter:
    """An instance of the class ``ASYNC_EMAIL['ADAPTER']`` names."""
    return app_settings.adapter_class()
