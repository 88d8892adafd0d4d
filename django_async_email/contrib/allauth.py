"""django-allauth's account emails through the outbox: ``AccountAdapter``.

    ACCOUNT_ADAPTER = "django_async_email.contrib.allauth.AccountAdapter"

allauth renders each email in the request as it always does (its templates, its context:
the confirmation key and link, the reset link, the login code); the adapter then stores the
message as one ``raw`` outbox row in the request's transaction instead of sending it, and a
worker sends it through ``ASYNC_EMAIL['EMAIL_BACKEND']`` (or the ``MAILER``). The host's
``EMAIL_BACKEND`` does not matter: it need not be ``OutboxBackend``. Needs the ``allauth``
extra.
"""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core import context as allauth_context
from django.contrib.sites.shortcuts import get_current_site

from ..backends import OutboxBackend


class AccountAdapter(DefaultAccountAdapter):
    """allauth's default adapter, queuing its emails; subclass it as you would allauth's."""

    def send_mail(self, template_prefix: str, email: str, context: dict) -> None:
        # allauth's own send_mail, up to its last line: the same context (the caller's wins)
        # and the same render_mail, so a host's templates and render_mail override still apply.
        request = allauth_context.request
        ctx = {"request": request, "email": email, "current_site": get_current_site(request)}
        ctx.update(context)
        message = self.render_mail(template_prefix, email, ctx)
        # In place of message.send(): the backend's send_messages is the same on every Django
        # version, where a message's own connection gives way to mailers on 6.1.
        OutboxBackend().send_messages([message])
