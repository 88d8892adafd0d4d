"""Plain Django pages for the links in the emails, for hosts without a separate front end.

A GET only shows a form: mail scanners and link previewers follow links, so nothing is
consumed until the person presses the button (a POST). Every bad token gets the same page.
Mount with ``path("", include("django_async_email.web.link_urls"))`` so the default link
templates (``{base_url}/verify-email?uid=...&token=...``) land here.
"""

from __future__ import annotations

from django import forms
from django.shortcuts import render
from django.utils.decorators import method_decorator
from django.utils.translation import gettext_lazy as _
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters

from .. import email_utils
from ..accounts.users import has_field
from ..exceptions import InvalidEmailInput, TokenError

#: Fields whose values never appear in an error report (sensitive_post_parameters).
SECRET_FIELDS = ("uid", "token", "new_password1", "new_password2")


class NewPasswordForm(forms.Form):
    new_password1 = forms.CharField(label=_("New password"), widget=forms.PasswordInput, strip=False)
    new_password2 = forms.CharField(label=_("New password again"), widget=forms.PasswordInput, strip=False)

    def clean(self):
        cleaned = super().clean()
        assert cleaned is not None  # Form.clean returns cleaned_data; the stubs allow an override's None
        if cleaned.get("new_password1") != cleaned.get("new_password2"):
            raise forms.ValidationError(_("The two passwords differ."))
        return cleaned


def _render(request, template, context, status=200):
    response = render(request, f"django_async_email/pages/{template}", context, status=status)
    # The token is in the URL: keep it out of Referer headers sent to other sites.
    response["Referrer-Policy"] = "no-referrer"
    return response


def _invalid(request):
    return _render(request, "invalid_link.html", {"message": TokenError.public_message}, status=400)


@method_decorator([never_cache, sensitive_post_parameters(*SECRET_FIELDS)], name="dispatch")
class VerifyEmailView(View):
    def get(self, request):
        uid, token = request.GET.get("uid", ""), request.GET.get("token", "")
        return _render(request, "verify_email.html", {"uid": uid, "token": token})

    def post(self, request):
        try:
            email_utils.verify_email(request.POST.get("uid", ""), request.POST.get("token", ""))
        except TokenError:
            return _invalid(request)
        return _render(request, "done.html", {"message": _("Your email address is confirmed.")})


@method_decorator([never_cache, sensitive_post_parameters(*SECRET_FIELDS)], name="dispatch")
class ResetPasswordView(View):
    def get(self, request):
        uid, token = request.GET.get("uid", ""), request.GET.get("token", "")
        try:
            email_utils.check_password_reset_token(uid, token)
        except TokenError:
            return _invalid(request)
        return _render(request, "reset_password.html", {"uid": uid, "token": token, "form": NewPasswordForm()})

    def post(self, request):
        uid, token = request.POST.get("uid", ""), request.POST.get("token", "")
        form = NewPasswordForm(request.POST)
        if form.is_valid():
            try:
                email_utils.reset_password(uid, token, form.cleaned_data["new_password1"])
            except TokenError:
                return _invalid(request)
            except InvalidEmailInput as exc:
                # InvalidEmailInput's message_dict always has its own field.
                form.add_error("new_password1", exc.message_dict[exc.field])
            else:
                return _render(request, "done.html", {"message": _("Your password is changed. You can sign in.")})
        return _render(request, "reset_password.html", {"uid": uid, "token": token, "form": form}, status=400)


class AcceptInvitationForm(NewPasswordForm):
    first_name = forms.CharField(label=_("First name"), required=False, max_length=150)
    last_name = forms.CharField(label=_("Last name"), required=False, max_length=150)


@method_decorator([never_cache, sensitive_post_parameters(*SECRET_FIELDS)], name="dispatch")
class AcceptInvitationView(View):
    def get(self, request):
        token = request.GET.get("token", "")
        try:
            invitation = email_utils.check_invitation_token(token)
        except TokenError:
            return _invalid(request)
        return _render(request, "accept_invitation.html",
                       {"token": token, "invitation": invitation, "form": AcceptInvitationForm()})

    def post(self, request):
        token = request.POST.get("token", "")
        form = AcceptInvitationForm(request.POST)
        if form.is_valid():
            profile = {k: form.cleaned_data[k] for k in ("first_name", "last_name")
                       if form.cleaned_data[k] and has_field(k)}
            try:
                email_utils.accept_invitation(token, form.cleaned_data["new_password1"], **profile)
            except TokenError:
                return _invalid(request)
            except InvalidEmailInput as exc:
                form.add_error("new_password1" if exc.field == "password" else None, exc.message_dict[exc.field])
            else:
                return _render(request, "done.html", {"message": _("Your account is ready. You can sign in.")})
        return _render(request, "accept_invitation.html", {"token": token, "form": form}, status=400)

