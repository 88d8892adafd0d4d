"""URLs for the link pages; paths match the default ``*_URL`` link templates."""

from django.urls import path

from . import link_pages

app_name = "django_async_email_pages"

urlpatterns = [
    path("verify-email", link_pages.VerifyEmailView.as_view(), name="verify-email"),
    path("reset-password", link_pages.ResetPasswordView.as_view(), name="reset-password"),
    path("accept-invitation", link_pages.AcceptInvitationView.as_view(), name="accept-invitation"),
]
