"""The REST API's URLs; a host mounts them with ``include("django_async_email.urls")``."""

from django.urls import path

from . import views

app_name = "django_async_email"

urlpatterns = [
    path("resend-verification/", views.ResendVerificationView.as_view(), name="resend-verification"),
    path("request-password-reset/", views.RequestPasswordResetView.as_view(), name="request-password-reset"),
    path("send-invitation/", views.SendInvitationView.as_view(), name="send-invitation"),
    path("send-notification-to-users/", views.SendNotificationToUsersView.as_view(),
         name="send-notification-to-users"),
    path("send-notification-to-user-type/", views.SendNotificationToUserTypeView.as_view(),
         name="send-notification-to-user-type"),
    path("system-status/", views.SystemStatusView.as_view(), name="system-status"),
    path("verify-email/", views.VerifyEmailView.as_view(), name="verify-email"),
    path("confirm-password-reset/", views.ConfirmPasswordResetView.as_view(), name="confirm-password-reset"),
    path("accept-invitation/", views.AcceptInvitationView.as_view(), name="accept-invitation"),
    path("verify-email-code/", views.VerifyEmailCodeView.as_view(), name="verify-email-code"),
    path("confirm-password-reset-code/", views.ConfirmPasswordResetCodeView.as_view(),
         name="confirm-password-reset-code"),
    path("preferences/", views.PreferencesView.as_view(), name="preferences"),
]
