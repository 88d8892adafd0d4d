"""Default permission classes per endpoint, overridable with ``ASYNC_EMAIL['API_PERMISSIONS']``."""

from rest_framework.permissions import AllowAny, BasePermission, IsAdminUser, IsAuthenticated

from ..conf import app_settings

DEFAULT_PERMISSIONS: dict[str, list[type[BasePermission]]] = {
    # Signed in: your own address; anonymous: by address, with the same answer for any.
    "resend_verification": [AllowAny],
    "request_password_reset": [AllowAny],
    "send_invitation": [IsAuthenticated],
    "send_notification_to_users": [IsAdminUser],
    "send_notification_to_user_type": [IsAdminUser],
    "system_status": [IsAdminUser],
    "verify_email": [AllowAny],
    "confirm_password_reset": [AllowAny],
    "accept_invitation": [AllowAny],
    "verify_email_code": [AllowAny],
    "confirm_password_reset_code": [AllowAny],
    "preferences": [IsAuthenticated],
}


def permission_classes_for(endpoint: str) -> list:
    configured = app_settings.api_permission_classes(endpoint)
    return list(DEFAULT_PERMISSIONS[endpoint]) if configured is None else configured
