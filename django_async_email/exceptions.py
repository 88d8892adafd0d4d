"""Exceptions, each mixed with the standard type a caller would already catch."""

from typing import TYPE_CHECKING

from django.core.exceptions import ImproperlyConfigured, ValidationError

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser


class AsyncEmailError(Exception):
    """Base class of every error this package raises on purpose."""


class InvalidEmailInput(AsyncEmailError, ValidationError, ValueError):
    """Bad input to the Python API, raised before anything is written or queued.

    A ``django.core.exceptions.ValidationError`` whose ``message_dict`` is keyed by the
    argument's name, so forms and DRF serializers can show it against the right field.
    """

    def __init__(self, field: str, message, code: str = "invalid"):
        self.field = field
        messages = message if isinstance(message, (list, tuple)) else [message]
        ValidationError.__init__(self, {field: [ValidationError(m, code=code) for m in messages]})

    def __str__(self):
        return "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in self.message_dict.items())


class AsyncEmailConfigurationError(AsyncEmailError, ImproperlyConfigured):
    """A setting or the host's wiring is wrong."""


class TokenError(AsyncEmailError, ValueError):
    """A link token is invalid, expired or already used.

    ``reason`` says which, for the audit trail; ``str()`` is the same for all of them so
    that anonymous callers learn nothing from it.
    """

    public_message = "This link is invalid, has expired, or was already used."
    #: The account the refused token was for, when known; set where it is raised, for the audit trail.
    user: "AbstractBaseUser | None"

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(self.public_message)


class CodeError(TokenError):
    """A one-time code is wrong, expired, used up, out of attempts, or for an unknown address.

    The same message for every one of them, as for links; ``reason`` says which.
    """

    public_message = "This code is invalid, has expired, or was already used."


class UnstorableMessage(AsyncEmailError, ValueError):
    """``OutboxBackend`` was handed a message it cannot store and send the same way later."""
