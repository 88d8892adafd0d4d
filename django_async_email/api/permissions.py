"""Default permission classes per endpoint, overridable with ``ASYNC_EMAIL['API_PERMISSIONS']``."""

from django.utils.module_loading import import_string
from rest_framework.permissions import AllowAny, IsAdminUser, IsAuthenticated

from ..conf import app_settings
from ..exceptions import AsyncEmailConfigurationError

DEFAULT_PERMISSIONS = {
    "resend_verification": [IsAuthenticated],
    "request_password_reset": [AllowAny],
    "send_invitation": [IsAuthenticated],
    "send_notification_to_users": [IsAdminUser],
    "send_notification_to_user_type": [IsAdminUser],
    "system_status": [IsAdminUser],
    "verify_email": [AllowAny],
    "confirm_password_reset": [AllowAny],
    "accept_invitation": [AllowAny],
}


def permission_classes_for(endpoint: str) -> list:
    paths = app_settings.API_PERMISSIONS.get(endpoint)
    if paths is None:
        return list(DEFAULT_PERMISSIONS[endpoint])
    classes = []
    for path in paths:
        try:
            classes.append(import_string(path))
        except ImportError as exc:
            raise AsyncEmailConfigurationError(
                f"ASYNC_EMAIL['API_PERMISSIONS']['{endpoint}'] names {path!r}, which cannot be imported: {exc}"
            ) from exc
    return classes
