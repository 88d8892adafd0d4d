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
from django.utils.translation import gettext
from templated_mail.mail import BaseEmailMessage  # type: ignore[import-untyped]  # ships no type hints or stubs

from ...accounts import codes, tokens
from ...accounts.users import greeting_name
from ...conf import app_settings
from ...email_templates import TEMPLATE_DIR
from ...models import Kind, OneTimeCode
from .links import build_link
from .mime import correct_tree
from .rendering import render_parts


def template_candidates(template_name: str, user_type: str = "") -> list[str]:
    """Per-user-type override first (``django_async_email/<user_type>/x.html``), then the shared one."""
    names = []
    if user_type and template_name.startswith(f"{TEMPLATE_DIR}/"):
        names.append(f"{TEMPLATE_DIR}/{user_type}/{template_name[len(TEMPLATE_DIR) + 1:]}")
    names.append(template_name)
    return names


class EmptyEmailError(ValueError):
    """A template rendered no subject or no body; the row fails instead of sending it."""


def greeting_line(name: str) -> str:
    """"Hello Ann," or "Hello," in the active language (the same words the templates'
    ``{% blocktranslate %}`` greeting translates)."""
    return gettext("Hello %(name)s,") % {"name": name} if name else gettext("Hello,")


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

    @staticmethod
    def preview_code() -> str:
        """What the previews show instead of a real one-time code."""
        return "2468013579"[:app_settings.CODE_LENGTH]

    @staticmethod
    def link(setting: str, context: dict, **params) -> str:
        """The link ``ASYNC_EMAIL[setting]`` makes for this email; ``{email}`` is the recipient."""
        return build_link(setting, context["base_url"], email=context.get("recipient", ""), **params)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.setdefault("site_name", app_settings.site_name)
        context.setdefault("base_url", app_settings.BASE_URL.rstrip("/"))
        context.setdefault("greeting_name", greeting_name(context.get("user")))
        # The greeting as one string, so a template that prints it needs no tag around the
        # recipient's name (and a bulk chunk can be rendered once; batch_render.py).
        context.setdefault("greeting", greeting_line(context["greeting_name"]))
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
        # The same headers as the SMTP fast path, and no body line over SMTP's limit.
        correct_tree(msg, self)
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
        self.apply_parts(render_parts(self.get_template(), make_context(self.render_data(), request=self.request)))

    def render_data(self) -> dict:
        """The template's context, in the language the message is rendered in."""
        data = self.get_context_data()
        # The worker has no request, so no i18n context processor: say the language here.
        data.setdefault("LANGUAGE_CODE", translation.get_language() or "en")
        return data

    def apply_parts(self, parts: dict[str, str]) -> None:
        """Take the rendered subject, text and HTML; ``EmptyEmailError`` if one is missing."""
        # A subject is one header line whatever the template produced.
        self.subject = " ".join(parts.get("subject", "").split())
        self.body = parts.get("text_body", "")
        self.html = parts.get("html_body") or None
        if not self.subject or not (self.body or self.html):
            # Never send (and record as sent) an email with no subject or no body: a template
            # that is not an email template (no blocks) renders exactly that.
            missing = "subject" if not self.subject else "body"
            raise EmptyEmailError(f"Template {self.get_template().template.name!r} rendered an empty {missing}.")
        self._attach_body()


class _AccountLinkEmail(AsyncEmailMessage):
    """An email that completes an account flow: a signed link, a one-time code, or both,
    as ``VERIFICATION_METHOD`` / ``PASSWORD_RESET_METHOD`` say. Both are minted here."""

    link_setting = ""
    purpose = ""

    def token_generator(self):
        raise NotImplementedError

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        user = context["user"]
        if codes.sends_link(self.purpose):
            context["uid"] = tokens.encode_uid(user.pk)
            context["token"] = self.mint(self.token_generator(), user)
            context["url"] = self.link(self.link_setting, context, uid=context["uid"], token=context["token"])
        if codes.sends_code(self.purpose):
            context["code"] = self.preview_code() if self.preview else codes.mint_code(user, self.purpose)
            context["code_minutes"] = int(app_settings.seconds(app_settings.CODE_TIMEOUT) // 60)
        return context


class VerificationEmail(_AccountLinkEmail):
    template_name = f"{TEMPLATE_DIR}/verification.html"
    link_setting = "VERIFICATION_URL"
    purpose = OneTimeCode.Purpose.VERIFICATION

    def token_generator(self):
        return tokens.verification_token_generator


class PasswordResetEmail(_AccountLinkEmail):
    template_name = f"{TEMPLATE_DIR}/password_reset.html"
    link_setting = "PASSWORD_RESET_URL"
    purpose = OneTimeCode.Purpose.PASSWORD_RESET

    def token_generator(self):
        return tokens.password_reset_token_generator


class PasswordChangedEmail(AsyncEmailMessage):
    template_name = f"{TEMPLATE_DIR}/password_changed.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["url"] = self.link("LOGIN_URL", context)
        return context


class InvitationEmail(AsyncEmailMessage):
    template_name = f"{TEMPLATE_DIR}/invitation.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        # The token is minted by the delivery layer (which stores its hash) and passed in.
        context["url"] = self.link("INVITATION_URL", context, token=context["token"])
        return context


class WelcomeEmail(AsyncEmailMessage):
    template_name = f"{TEMPLATE_DIR}/welcome.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["url"] = self.link("LOGIN_URL", context)
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
