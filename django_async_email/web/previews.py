"""Staff-only previews of every email, rendered with sample data (like Rails' mailer previews).

Mount with ``path("emails/previews/", include("django_async_email.web.preview_urls"))``. Each
kind is shown per user type where a per-type template exists, and in each configured
language; subject, plain text and HTML side by side. Links carry a placeholder token
(``preview-token``), the notification's unsubscribe and preferences links too.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth import get_user_model
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.template import TemplateDoesNotExist
from django.template.loader import get_template
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.clickjacking import xframe_options_sameorigin

from ..accounts.users import allowed_user_types, email_field_name, user_type_field
from ..adapter import get_adapter
from ..conf import app_settings
from ..delivery.build.compose import unsubscribe_context
from ..delivery.build.messages import DEFAULT_TEMPLATES, template_candidates
from ..models import Kind

SAMPLE_CONTEXT: dict[str, dict[str, str]] = {
    Kind.NOTIFICATION: {"subject": "Platform Update", "message": "We've released new features!\nTake a look.",
                     "email_type": "update"},
    Kind.INVITATION: {"inviter_name": "Ama Mensah", "token": "preview-token"},
}


@dataclass
class Preview:
    kind: str
    user_type: str
    language: str
    subject: str
    text: str
    html: str
    template: str


def sample_user(user_type: str = ""):
    """An unsaved user with plausible fields; never written to the database."""
    user_model = get_user_model()
    user = user_model(pk=1)
    setattr(user, email_field_name(), "ama@example.com")
    if hasattr(user, user_model.USERNAME_FIELD) and user_model.USERNAME_FIELD != email_field_name():
        setattr(user, user_model.USERNAME_FIELD, "ama")
    for name, value in (("first_name", "Ama"), ("last_name", "Mensah")):
        if hasattr(user, name):
            setattr(user, name, value)
    field = user_type_field()
    if field and user_type:
        setattr(user, field, user_type)
    return user


def variants(kind: str) -> list[str]:
    """``""`` (the shared template) plus every user type that has its own template for ``kind``."""
    found = [""]
    for user_type in allowed_user_types():
        name = template_candidates(DEFAULT_TEMPLATES[kind], user_type)[0]
        try:
            get_template(name)
        except TemplateDoesNotExist:
            continue
        found.append(user_type)
    return found


def render_preview(kind: str, user_type: str = "", language: str | None = None) -> Preview:
    if kind not in DEFAULT_TEMPLATES:
        raise Http404("No such email kind.")
    message_class = get_adapter().get_message_class(kind)
    user = sample_user(user_type)
    context = {
        "user": user,
        "recipient": "ama@example.com",
        "site_name": app_settings.site_name,
        "base_url": app_settings.BASE_URL.rstrip("/"),
        "user_type": user_type,
        **SAMPLE_CONTEXT.get(kind, {}),
    }
    if kind == Kind.NOTIFICATION:
        # The unsubscribe footer, with placeholder tokens (the sample user is never saved).
        context.update(unsubscribe_context(user, SAMPLE_CONTEXT[kind]["email_type"], preview=True))
    message = message_class(context=context, user_type=user_type, language=language, preview=True)
    message.render()
    html = message.alternatives[0][0] if message.alternatives else ""
    template = message.get_template().template.name
    return Preview(kind, user_type, language or settings.LANGUAGE_CODE, message.subject, message.body, html, template)


@method_decorator(staff_member_required, name="dispatch")
class PreviewIndexView(View):
    def get(self, request):
        kinds = [(kind, variants(kind)) for kind in DEFAULT_TEMPLATES]
        return render(request, "django_async_email/previews/index.html",
                      {"kinds": kinds, "languages": settings.LANGUAGES})


def _variant(request) -> tuple[str, str | None]:
    """The user type and language asked for, each checked against what is configured."""
    user_type = request.GET.get("user_type", "")
    if user_type and user_type not in allowed_user_types():
        raise Http404("No such user type.")
    language = request.GET.get("lang") or None
    if language and language not in dict(settings.LANGUAGES):
        raise Http404("No such language.")
    return user_type, language


@method_decorator(staff_member_required, name="dispatch")
class PreviewDetailView(View):
    def get(self, request, kind):
        preview = render_preview(kind, *_variant(request))
        return render(request, "django_async_email/previews/detail.html",
                      {"preview": preview, "variants": variants(kind), "languages": settings.LANGUAGES})


@method_decorator([staff_member_required, xframe_options_sameorigin], name="dispatch")
class PreviewHTMLView(View):
    """The HTML part alone, for the detail page's sandboxed iframe."""

    def get(self, request, kind):
        preview = render_preview(kind, *_variant(request))
        response = HttpResponse(preview.html)
        # Email HTML must not run scripts or load anything in the admin's origin.
        response["Content-Security-Policy"] = "default-src 'none'; img-src data: https:; style-src 'unsafe-inline'"
        return response
