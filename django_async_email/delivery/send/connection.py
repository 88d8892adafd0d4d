"""Where emails are sent through: a ``MAILERS`` alias (Django 6.1+) or the email backend setting.

Django 6.1 replaces ``EMAIL_BACKEND`` and ``get_connection()`` with named mailers. A host
that defines ``MAILERS`` gets ``mailers[ASYNC_EMAIL['MAILER'] or "default"]``; a host on
the older settings keeps ``get_connection()`` with ``ASYNC_EMAIL['EMAIL_BACKEND']`` or
``EMAIL_BACKEND``. Either way one connection object serves a whole batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core import mail

from ...conf import app_settings

DEFAULT_ALIAS = "default"
SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"


def mailers_configured() -> bool:
    """True on Django 6.1+ when the host opted into ``MAILERS``."""
    return hasattr(mail, "mailers") and hasattr(settings, "MAILERS")


def mailer_alias() -> str:
    return app_settings.MAILER or DEFAULT_ALIAS


def backend_path() -> str:
    """The backend class path emails go through (no secrets: options are not shown)."""
    if mailers_configured():
        # Typed as Django documents the setting, not as the settings module in use happens to spell it.
        mailers: Mapping[str, Mapping[str, Any]] = settings.MAILERS
        return mailers.get(mailer_alias(), {}).get("BACKEND", SMTP_BACKEND)
    return app_settings.EMAIL_BACKEND or settings.EMAIL_BACKEND


def open_connection():
    """A backend instance for one batch; the caller opens and closes it."""
    if mailers_configured():
        # Timeouts and credentials come from the mailer's OPTIONS.
        return mail.mailers[mailer_alias()]
    kwargs = {}
    if app_settings.SEND_TIMEOUT is not None:
        kwargs["timeout"] = app_settings.SEND_TIMEOUT
    return mail.get_connection(app_settings.EMAIL_BACKEND, fail_silently=False, **kwargs)
