"""The unsubscribe and preferences pages behind the links in notifications.

``unsubscribe/<token>/`` is the RFC 8058 one-click endpoint: mailbox providers (Gmail,
Yahoo...) POST ``List-Unsubscribe=One-Click`` to it with no cookie, no session and no CSRF
token, so it is CSRF-exempt; the signed token in the URL is the only credential. A GET only
shows a confirmation page (mail scanners and link previewers follow links), so nothing
changes until a POST. ``email-preferences/<token>/`` lists every category with a checkbox,
reached from the email without signing in; ``email-preferences/`` is the same page for the
signed-in user. Every bad token gets the 400 ``invalid_link.html`` page and changes nothing.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext_lazy as _
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from ..accounts.categories import categories
from ..accounts.preferences import Source, preferences_of, receives, set_preferences, unsubscribe
from ..accounts.suppression import is_suppressed, suppress
from ..accounts.unsubscribe_tokens import make_preferences_token, read_preferences_token, read_unsubscribe_token
from ..accounts.users import email_of
from ..exceptions import InvalidEmailInput, TokenError
from ..models import SuppressionReason
from .link_pages import _invalid, _render

#: RFC 8058 section 3.1: the body a mailbox provider POSTs for a one-click unsubscribe.
ONE_CLICK_FIELD, ONE_CLICK_VALUE = "List-Unsubscribe", "One-Click"


def is_one_click(request) -> bool:
    """Whether the POST is a provider's one-click request (form-encoded or multipart)."""
    return request.POST.get(ONE_CLICK_FIELD) == ONE_CLICK_VALUE


# CSRF-exempt: RFC 8058 requires the one-click POST to work without cookies or a form token
# (providers send neither). CSRF protects ambient credentials (a session cookie); this view
# uses none: it acts only for the user and category named by the signed token in the URL,
# which a cross-site attacker cannot produce.
@method_decorator([csrf_exempt, never_cache], name="dispatch")
class UnsubscribeView(View):
    def get(self, request, token):
        try:
            user, category = read_unsubscribe_token(token)
        except TokenError:
            return _invalid(request)
        # Reading only: a scanner following the link changes nothing.
        return _render(request, "unsubscribe.html", {
            "category": category,
            "already_unsubscribed": not receives(user, category),
            "preferences_url": reverse("django_async_email_pages:preferences-token",
                                       args=[make_preferences_token(user)]),
        })

    def post(self, request, token):
        try:
            user, category = read_unsubscribe_token(token)
        except TokenError:
            return _invalid(request)
        # Idempotent: a second POST (a provider retrying, a double click) changes nothing.
        unsubscribe(user, category, Source.ONE_CLICK if is_one_click(request) else Source.LINK)
        return _render(request, "unsubscribed.html", {
            "message": _("You are unsubscribed from %(category)s.") % {"category": category.label},
            "preferences_url": reverse("django_async_email_pages:preferences-token",
                                       args=[make_preferences_token(user)]),
        })


class PreferencesMixin:
    """The page and its two actions (save the checkboxes, unsubscribe from all), for ``user``."""

    def page(self, request, user, *, message="", status=200):
        email = email_of(user)
        return _render(request, "preferences.html", {
            "preferences": preferences_of(user),
            "email": email,
            "suppressed": bool(email) and is_suppressed(email),
            "message": message,
        }, status=status)

    def save(self, request, user):
        if request.POST.get("action") == "unsubscribe_all":
            try:
                suppress(email_of(user), SuppressionReason.UNSUBSCRIBED_ALL, source="preferences page")
            except InvalidEmailInput:  # an account without a usable address: nothing is sent to it anyway
                return self.page(request, user, message=_("This account has no email address."), status=400)
            return _render(request, "unsubscribed.html",
                           {"message": _("You will no longer receive any notifications by email.")})
        chosen = set(request.POST.getlist("categories"))
        current = {p["category"]: p["subscribed"] for p in preferences_of(user)}
        # Only what changed, so an untouched category keeps its default (or its earlier source).
        changes = {c.key: c.key in chosen for c in categories() if current.get(c.key) != (c.key in chosen)}
        if changes:
            set_preferences(user, changes, Source.PAGE)
        return self.page(request, user, message=_("Your email preferences are saved."))


# CSRF-exempt for the same reason as the unsubscribe page: the signed token in the URL is the
# credential, not a cookie, so a forged cross-site form cannot act for anyone without the
# token. Requiring a CSRF cookie would only break people whose mail app opens links in a
# browser that drops cookies. The view never looks at request.user.
@method_decorator([csrf_exempt, never_cache], name="dispatch")
class TokenPreferencesView(PreferencesMixin, View):
    def get(self, request, token):
        try:
            user = read_preferences_token(token)
        except TokenError:
            return _invalid(request)
        return self.page(request, user)

    def post(self, request, token):
        try:
            user = read_preferences_token(token)
        except TokenError:
            return _invalid(request)
        return self.save(request, user)


#: The signed-in user's page: no token, so the session is the credential and CSRF applies.
@method_decorator([login_required, never_cache], name="dispatch")
class PreferencesView(PreferencesMixin, View):
    def get(self, request):
        return self.page(request, request.user)

    def post(self, request):
        return self.save(request, request.user)
