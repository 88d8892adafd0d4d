"""``OutboxBackend``: every email of the project through the outbox, by changing one setting.

    EMAIL_BACKEND = "django_async_email.backends.OutboxBackend"
    ASYNC_EMAIL = {"EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend", ...}

``send_mail()``, Django's ``PasswordResetForm``, the admin and third-party apps then write
one outbox row per message in the caller's transaction instead of talking to a server on
the request path; a worker sends it, through ``ASYNC_EMAIL['EMAIL_BACKEND']`` (or the
``MAILER`` alias on Django 6.1+), with the retries, leases, sweeper, audit trail, signals
and suppression list of the package's own emails.
"""

from __future__ import annotations

import logging

from django.core.mail.backends.base import BaseEmailBackend

from .outbox.stored_messages import store_messages

logger = logging.getLogger(__name__)


class OutboxBackend(BaseEmailBackend):
    """An email backend that queues instead of sending; ``send_messages`` returns how many it queued."""

    #: Check E011 refuses a backend with this as the one the worker sends through.
    stores_in_outbox = True

    def __init__(self, fail_silently=False, **kwargs):
        super().__init__(**kwargs)
        # Our own attribute: Django 6.1 deprecates reading the base class's.
        self.fail_silently = fail_silently

    def send_messages(self, email_messages) -> int:
        if not email_messages:
            return 0
        try:
            return store_messages(email_messages)
        except Exception:
            if not self.fail_silently:
                raise
            logger.exception("Could not queue %d email(s) in the outbox", len(email_messages))
            return 0
