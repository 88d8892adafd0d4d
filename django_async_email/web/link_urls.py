"""URLs for the link pages; paths match the default ``*_URL`` link templates.

The unsubscribe and preferences pages are found by URL name, wherever they are mounted.
"""

from django.urls import path

from . import link_pages, preference_pages

app_name = "django_async_email_pages"

urlpatterns = [
    path("verify-email", link_pages.VerifyEmailView.as_view(), name="verify-email"),
    path("reset-password", link_pages.ResetPasswordView.as_view(), name="reset-password"),
    path("accept-invitation", link_pages.AcceptInvitationView.as_view(), name="accept-invitation"),
    # The links in notifications (the worker reverses these names for List-Unsubscribe).
    path("unsubscribe/<str:token>/", preference_pages.UnsubscribeView.as_view(), name="unsubscribe"),
    path("email-preferences/", preference_pages.PreferencesView.as_view(), name="preferences"),
    path("email-preferences/<str:token>/", preference_pages.TokenPreferencesView.as_view(),
         name="preferences-token"),
]
