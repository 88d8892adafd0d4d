"""The platform's settings: the test suite's base (database, broker, SMTP server), with the
platform's own apps, user model, auth and error handling, and the package configured as
docs/migration.md says."""

from tests.settings import *  # noqa: F403
from tests.settings import ASYNC_EMAIL, INSTALLED_APPS

INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "tests.testapp"] + ["tests.zamio.accounts"]
AUTH_USER_MODEL = "accounts.Member"
CUSTOM_USER = False
ROOT_URLCONF = "tests.zamio.urls"
SECRET_KEY = "tests-only-the-platform-signs-its-jwts-with-this-long-key"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework_simplejwt.authentication.JWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "EXCEPTION_HANDLER": "tests.zamio.api.envelope_exception_handler",
}

# --- docs/migration.md, step 1 ----------------------------------------------------------------
_BASE = {k: v for k, v in ASYNC_EMAIL.items() if not k.endswith("_FIELD")}  # the base's own user model's
ASYNC_EMAIL = {
    **_BASE,  # the test run's base URL, retry timing and SMTP timeout
    "USER_TYPE_FIELD": "user_type",
    "VERIFIED_FIELD": "email_verified",
    "VERIFICATION_METHOD": "code",  # the SPA and the mobile apps type the code in
    "PASSWORD_RESET_METHOD": "code",  # the stations app resets by code
}
# Any task time limit suits the package: its workers renew their rows' lease while they
# send (W006 only asks that LEASE_SECONDS be more than 1.5 x SEND_TIMEOUT).
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
