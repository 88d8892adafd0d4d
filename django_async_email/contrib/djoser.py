"""djoser's account emails through the outbox: djoser's own email classes, queued.

    DJOSER = {
        "EMAIL": {
            "activation": "django_async_email.contrib.djoser.ActivationEmail",
            "confirmation": "django_async_email.contrib.djoser.ConfirmationEmail",
            "password_reset": "django_async_email.contrib.djoser.PasswordResetEmail",
            "password_changed_confirmation": "django_async_email.contrib.djoser.PasswordChangedConfirmationEmail",
            "username_changed_confirmation": "django_async_email.contrib.djoser.UsernameChangedConfirmationEmail",
            "username_reset": "django_async_email.contrib.djoser.UsernameResetEmail",
        },
    }

Each class is djoser's with its template and context (the uid, the token and the frontend
URL djoser builds from them), rendered in the request as djoser renders it. Only the
connection differs: the message is stored as one ``raw`` outbox row in the request's
transaction, and a worker sends it through ``ASYNC_EMAIL['EMAIL_BACKEND']`` (or the
``MAILER``), whatever the host's ``EMAIL_BACKEND`` is. Needs the ``djoser`` extra, which
brings Django REST framework.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from djoser import email as djoser_email

from ..backends import OutboxBackend


class OutboxConnection:
    """djoser's ``send(to)``, ending in the outbox: the rendered message is queued, not sent."""

    if TYPE_CHECKING:  # djoser's email classes, which this is mixed into, define these
        to: list[str]
        cc: list[str]
        bcc: list[str]
        reply_to: list[str]
        from_email: str
        request: object

        def render(self) -> None: ...
        def recipients(self) -> list[str]: ...

    def send(self, to, *args, **kwargs) -> int:
        # djoser's own send() (2.2's templated-mail base and 2.3's alike): render, then the
        # addresses; only its last step, Django's EmailMessage.send(), is replaced. That step
        # cannot be redirected from here on every Django version: 6.1 refuses a message with
        # a get_connection() method and routes through mailers instead.
        fail_silently = kwargs.pop("fail_silently", args[0] if args else False)
        self.render()
        self.to = to
        self.cc = kwargs.pop("cc", [])
        self.bcc = kwargs.pop("bcc", [])
        self.reply_to = kwargs.pop("reply_to", [])
        self.from_email = kwargs.pop("from_email", settings.DEFAULT_FROM_EMAIL)
        self.request = None  # as djoser 2.3 does once rendered
        if not self.recipients():
            return 0
        return OutboxBackend(fail_silently=fail_silently).send_messages([self])


class ActivationEmail(OutboxConnection, djoser_email.ActivationEmail):
    """``SEND_ACTIVATION_EMAIL``: the uid and token that activate the account."""


class ConfirmationEmail(OutboxConnection, djoser_email.ConfirmationEmail):
    """``SEND_CONFIRMATION_EMAIL``: the account is active."""


class PasswordResetEmail(OutboxConnection, djoser_email.PasswordResetEmail):
    """``users/reset_password/``: the uid and token that set a new password."""


class PasswordChangedConfirmationEmail(OutboxConnection, djoser_email.PasswordChangedConfirmationEmail):
    """``PASSWORD_CHANGED_EMAIL_CONFIRMATION``: the password was changed."""


class UsernameChangedConfirmationEmail(OutboxConnection, djoser_email.UsernameChangedConfirmationEmail):
    """``USERNAME_CHANGED_EMAIL_CONFIRMATION``: the username was changed."""


class UsernameResetEmail(OutboxConnection, djoser_email.UsernameResetEmail):
    """``users/reset_username/``: the uid and token that set a new username."""
