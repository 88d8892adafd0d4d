"""One django-templated-mail message class per kind of email.

Each class knows its template and the context it needs; the verification, reset and
invitation classes mint their token here, in the worker, when the email is rendered, so
no token passes through the broker, the result backend or the outbox.
"""

from __future__ import annotations

import uuid

from django.template.context import make_context
from django.template.loader import select_template
from django.utils import translation
from templated_mail.mail import BaseEmailMessage  # type: ignore[import-untyped]  # ships no type hints or stubs

from ...accounts import tokens
from ...conf import app_settings
from ...models import Kind
from .links import build_link
from .rendering import render_parts

TEMPLATE_DIR = "django_async_email"


def template_candidates(template_name: str, user_type: str = "") -> list[str]:
    """Per-user-type override first (``django_async_email/<user_type>/x.html``), then the shared one."""
    names = []
    if user_type and template_name.startswith(f"{TEMPLATE_DIR}/"):
        names.append(f"{TEMPLATE_DIR}/{user_type}/{template_name[len(TEMPLATE_DIR) + 1:]}")
    names.append(template_name)
    return names


class AsyncEmailMessage(BaseEmailMessage):
    """templated-mail message that renders inherited templates and picks per-user-type ones."""

    template_name = f"{TEMPLATE_DIR}/notification.html"

    #: Set by the preview pages: links get a placeholder instead of a real token.
    PREVIEW_TOKEN = "preview-token"

    def __init__(self, *args, user_type: str = "", language: str | None = None, preview: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.user_type = user_type
        self.language = language
        self.preview = preview

    def mint(self, generator, user) -> str:
        return self.PREVIEW_TOKEN if self.preview else generator.make_token(user)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.setdefault("site_name", app_settings.site_name)
        context.setdefault("base_url", app_settings.BASE_URL.rstrip("/"))
        context["user_type"] = self.user_type
        return context

    def message(self, *args, **kwargs):  # Django 6 passes a policy
        msg = super().message(*args, **kwargs)
        # The standard library's generator picks a boundary by compiling a fresh regular
        # expression for every message (about a tenth of a bulk message's CPU); a random
        # boundary set here skips that, and 128 random bits cannot occur in the content.
        for part in msg.walk():
            if part.is_multipart() and not part.get_boundary():
                part.set_boundary(f"===============async-email-{uuid.uuid4().hex}==")
        return msg

    def get_template(self):
        return select_template(template_candidates(self.template_name, self.user_type))

    def render(self):
        if self.language:
            with translation.override(self.language):
                self._render()
        else:
            self._render()

    def _render(self):
        data = self.get_context_data()
        # The worker has no request, so no i18n context processor: say the language here.
        data.setdefault("LANGUAGE_CODE", translation.get_language() or "en")
        context = make_context(data, request=self.request)
        parts = render_parts(self.get_template(), context)
        # A subject is one header line whatever the template produced.
        self.subject = " ".join(parts.get("subject", "").split())
        self.body = parts.get("text_body", "")
        self.html = parts.get("html_body") or None
        self._attach_body()


class VerificationEmail(AsyncEmailMessage):
    template_name = f"{TEMPLATE_DIR}/verification.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        user = context["user"]
        context["uid"] = tokens.encode_uid(user.pk)
        context["token"] = self.mint(tokens.verification_token_generator, user)
        context["url"] = build_link("VERIFICATION_URL", context["base_url"], uid=context["uid"], token=context["token"])
        return context


class PasswordResetEmail(AsyncEmailMessage):
    template_name = f"{TEMPLATE_DIR}/password_reset.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        user = context["user"]
        context["uid"] = tokens.encode_uid(user.pk)
        context["token"] = self.mint(tokens.password_reset_token_generator, user)
        context["url"] = build_link(
            "PASSWORD_RESET_URL", context["base_url"], uid=context["uid"], token=context["token"]
        )
        return context


class PasswordChangedEmail(AsyncEmailMessage):
    template_name = f"{TEMPLATE_DIR}/password_changed.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["url"] = build_link("LOGIN_URL", context["base_url"])
        return context


class InvitationEmail(AsyncEmailMessage):
    template_name = f"{TEMPLATE_DIR}/invitation.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        # The token is minted by the delivery layer (which stores its hash) and passed in.
        context["url"] = build_link("INVITATION_URL", context["base_url"], token=context["token"])
        return context


class WelcomeEmail(AsyncEmailMessage):
    template_name = f"{TEMPLATE_DIR}/welcome.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["url"] = build_link("LOGIN_URL", context["base_url"])
        return context


class NotificationEmail(AsyncEmailMessage):
    template_name = f"{TEMPLATE_DIR}/notification.html"


#: The message class of each kind (the adapter's ``get_message_class`` looks it up here).
MESSAGE_CLASSES: dict[str, type[AsyncEmailMessage]] = {
    Kind.VERIFICATION: VerificationEmail,
    Kind.PASSWORD_RESET: PasswordResetEmail,
    Kind.PASSWORD_CHANGED: PasswordChangedEmail,
    Kind.INVITATION: InvitationEmail,
    Kind.WELCOME: WelcomeEmail,
    Kind.NOTIFICATION: NotificationEmail,
}

#: The template each kind renders by default (for checks and previews).
DEFAULT_TEMPLATES: dict[str, str] = {kind: cls.template_name for kind, cls in MESSAGE_CLASSES.items()}
