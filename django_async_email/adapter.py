"""The one class a host subclasses to customise how emails are built and users are created.

Point ``ASYNC_EMAIL['ADAPTER']`` at a subclass of ``DefaultAdapter``.

The adapter is consulted when a message is built (From, headers, BCC, context, message
class) and when an invitation is accepted (``create_invited_user``). It sits beside the
worker side: the build step calls it, and it hands out the build step's message classes.
Account flows get its ``create_invited_user`` passed in by ``email_utils``.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model

from .accounts.users import email_field_name, user_type_field
from .conf import app_settings
from .delivery.build.messages import MESSAGE_CLASSES


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

    def create_invited_user(self, invitation, password: str, **profile_fields):
        """Create the account for an accepted invitation; override for custom user creation."""
        user_model = get_user_model()
        fields = dict(profile_fields)
        fields[email_field_name()] = invitation.email
        type_field = user_type_field()
        if type_field and invitation.user_type:
            fields[type_field] = invitation.user_type
        # Keyword arguments only: stock and custom managers name their first argument differently.
        fields.setdefault(user_model.USERNAME_FIELD, invitation.email)
        return user_model._default_manager.create_user(password=password, **fields)


def get_adapter() -> DefaultAdapter:
    """An instance of the class ``ASYNC_EMAIL['ADAPTER']`` names."""
    return app_settings.adapter_class()
