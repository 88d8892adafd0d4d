"""Settings for the test suite. Environment variables pick the database, broker and user model:

- ``ASYNC_EMAIL_TEST_DB``: ``sqlite`` (default, a file so a worker process can share it) or ``postgres``
- ``ASYNC_EMAIL_TEST_BROKER``: ``filesystem`` (default, needs no server), ``redis`` or ``amqp``
- ``ASYNC_EMAIL_TEST_USER_MODEL``: ``testapp.User`` (default, with user types) or ``auth.User``
- ``ASYNC_EMAIL_TEST_DB_NAME``: set by the test run for the worker, so it opens the test database
"""

import os
import tempfile
from pathlib import Path

import django

BASE_DIR = Path(__file__).resolve().parent
RUN_DIR = Path(os.environ.get("ASYNC_EMAIL_TEST_RUN_DIR") or tempfile.mkdtemp(prefix="async-email-tests-"))
os.environ["ASYNC_EMAIL_TEST_RUN_DIR"] = str(RUN_DIR)  # the worker inherits it
# Attachments of stored messages: the worker reads what the test process wrote.
MEDIA_ROOT = RUN_DIR / "media"

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("fr", "French")]
USE_I18N = True

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "tests.testapp",
    "django_async_email",
]
try:
    import rest_framework  # noqa: F401
except ImportError:
    HAVE_DRF = False
else:
    HAVE_DRF = True
    INSTALLED_APPS.append("rest_framework")
try:
    import drf_spectacular  # noqa: F401
except ImportError:
    HAVE_SPECTACULAR = False
else:
    HAVE_SPECTACULAR = HAVE_DRF
if HAVE_SPECTACULAR:
    INSTALLED_APPS.append("drf_spectacular")
# The allauth and djoser bridges (tests/test_bridge_*.py, URLconf tests/urls_bridges.py).
# djoser needs DRF, so the run without it (tox -e nodrf) has no djoser either.
INSTALLED_APPS += ["allauth", "allauth.account"]
try:
    import djoser  # noqa: F401
except ImportError:
    HAVE_DJOSER = False
else:
    HAVE_DJOSER = HAVE_DRF
if HAVE_DJOSER:
    INSTALLED_APPS.append("djoser")
REST_FRAMEWORK: dict[str, object] = {}
if HAVE_SPECTACULAR:
    REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"] = "drf_spectacular.openapi.AutoSchema"
if HAVE_DRF:
    REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"] = [
        "rest_framework.authentication.SessionAuthentication", "tests.auth.NulSafeBasicAuthentication"]
SPECTACULAR_SETTINGS = {"TITLE": "django-async-email", "VERSION": "0.1.0"}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "allauth.account.middleware.AccountMiddleware",  # allauth refuses to start without it
]
ROOT_URLCONF = "tests.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

AUTH_USER_MODEL = os.environ.get("ASYNC_EMAIL_TEST_USER_MODEL", "testapp.User")
CUSTOM_USER = AUTH_USER_MODEL == "testapp.User"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast; tests only
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

_db = os.environ.get("ASYNC_EMAIL_TEST_DB", "sqlite")
if _db == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("ASYNC_EMAIL_TEST_DB_NAME") or "async_email",
            "USER": os.environ.get("PGUSER", "postgres"),
            "HOST": os.environ.get("PGHOST", "127.0.0.1"),
            "PORT": os.environ.get("PGPORT", "5432"),
            "TEST": {"NAME": "test_async_email"},
        }
    }
elif _db == "sqlite":
    _test_db = str(RUN_DIR / "test.sqlite3")
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("ASYNC_EMAIL_TEST_DB_NAME") or str(RUN_DIR / "db.sqlite3"),
            # A file, not memory, so the worker process sees what the tests write.
            "TEST": {"NAME": _test_db},
            # Writers queue for the lock instead of failing at once when a read turns into a
            # write (the test process and the worker share this file).
            "OPTIONS": {"timeout": 30, **({"transaction_mode": "IMMEDIATE"} if django.VERSION >= (5, 1) else {})},
        }
    }
else:
    raise RuntimeError(f"ASYNC_EMAIL_TEST_DB must be sqlite or postgres, not {_db!r}")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
STATIC_URL = "/static/"

_email_backend = os.environ.get("ASYNC_EMAIL_TEST_EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend")
_smtp_port = int(os.environ.get("ASYNC_EMAIL_TEST_SMTP_PORT", "2525"))
_send_timeout = float(os.environ.get("ASYNC_EMAIL_TEST_SEND_TIMEOUT", "5"))
# Django 6.1 replaced the EMAIL_* settings with MAILERS; test each Django the way it is meant.
USE_MAILERS = django.VERSION >= (6, 1)
if USE_MAILERS:
    _smtp = _email_backend.endswith("smtp.EmailBackend")
    MAILERS = {"default": {
        "BACKEND": _email_backend,
        "OPTIONS": {"host": "127.0.0.1", "port": _smtp_port, "timeout": _send_timeout} if _smtp else {},
    }}
else:
    EMAIL_BACKEND = _email_backend
    EMAIL_HOST = "127.0.0.1"
    EMAIL_PORT = _smtp_port
DEFAULT_FROM_EMAIL = "ZamIO <no-reply@zamio.test>"

ASYNC_EMAIL = {
    "BASE_URL": "https://app.zamio.test",
    "ALLOWED_BASE_URLS": ["https://partners.zamio.test"],
    "SITE_NAME": "ZamIO",
    "MESSAGE_ID_DOMAIN": "zamio.test",
    "RETRY_BACKOFF": float(os.environ.get("ASYNC_EMAIL_TEST_RETRY_BACKOFF", "0.2")),
    "RETRY_BACKOFF_MAX": 2.0,
    "SEND_TIMEOUT": _send_timeout,
    "BULK_CHUNK_SIZE": 50,
    "NUM_PROXIES": 0,  # no proxy in front: the client is REMOTE_ADDR
    "LEASE_SECONDS": int(os.environ.get("ASYNC_EMAIL_TEST_LEASE_SECONDS", "600")),
    # Off for the shared worker, so tests that run the sweeper themselves see only their own
    # sweeps; the self-healing tests start workers with it on.
    "SWEEP_IN_WORKER": os.environ.get("ASYNC_EMAIL_TEST_SWEEP_IN_WORKER") == "1",
    "SWEEP_EVERY": int(os.environ.get("ASYNC_EMAIL_TEST_SWEEP_EVERY", "30")),
    "SCHEDULE_ETA_MAX": int(os.environ.get("ASYNC_EMAIL_TEST_SCHEDULE_ETA_MAX", "300")),
    "STUCK_AFTER": int(os.environ.get("ASYNC_EMAIL_TEST_STUCK_AFTER", "60")),
    "RECORD_EVERY": int(os.environ.get("ASYNC_EMAIL_TEST_RECORD_EVERY", "50")),
    # "0": every message through Django's backend (the standard path), for a worker of its own.
    "FAST_SMTP_PATH": os.environ.get("ASYNC_EMAIL_TEST_FAST_SMTP_PATH", "1") == "1",
    # The seed platform's notification types, in categories a user can turn off.
    "CATEGORIES": {
        "updates": {"label": "Product updates", "email_types": ["update", "feature_announcement"]},
        "alerts": {"label": "Alerts", "email_types": ["alert"]},
    },
}
if os.environ.get("ASYNC_EMAIL_TEST_FLOW_METHOD"):
    # "link", "code" or "both", for a worker of its own that mints codes.
    _method = os.environ["ASYNC_EMAIL_TEST_FLOW_METHOD"]
    ASYNC_EMAIL["VERIFICATION_METHOD"] = ASYNC_EMAIL["PASSWORD_RESET_METHOD"] = _method
if os.environ.get("ASYNC_EMAIL_TEST_QUEUE_PREFIX"):
    # A worker of its own for one test: its queues are apart from the shared worker's.
    _prefix = os.environ["ASYNC_EMAIL_TEST_QUEUE_PREFIX"]
    ASYNC_EMAIL["QUEUES"] = {c: f"{_prefix}{c}" for c in ("high", "normal", "low")}
if CUSTOM_USER:
    ASYNC_EMAIL.update(USER_TYPE_FIELD="user_type", LANGUAGE_FIELD="language", VERIFIED_FIELD="email_verified")

# The hosts of the bridges, set up as docs/integration.md says ("allauth and djoser").
ACCOUNT_ADAPTER = "django_async_email.contrib.allauth.AccountAdapter"
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_SIGNUP_FIELDS = ["email*", "username*", "password1*", "password2*"]  # mandatory needs "email*"
DJOSER = {
    "SEND_ACTIVATION_EMAIL": True,
    "ACTIVATION_URL": "activate/{uid}/{token}",
    "PASSWORD_RESET_CONFIRM_URL": "password/reset/{uid}/{token}",
    "USERNAME_RESET_CONFIRM_URL": "username/reset/{uid}/{token}",
    "EMAIL": {
        "activation": "django_async_email.contrib.djoser.ActivationEmail",
        "confirmation": "django_async_email.contrib.djoser.ConfirmationEmail",
        "password_reset": "django_async_email.contrib.djoser.PasswordResetEmail",
        "password_changed_confirmation": "django_async_email.contrib.djoser.PasswordChangedConfirmationEmail",
        "username_changed_confirmation": "django_async_email.contrib.djoser.UsernameChangedConfirmationEmail",
        "username_reset": "django_async_email.contrib.djoser.UsernameResetEmail",
    },
}

_broker = os.environ.get("ASYNC_EMAIL_TEST_BROKER", "filesystem")
if _broker == "filesystem":
    _queue_dir = RUN_DIR / "broker"
    for _folder in ("control", "processed"):
        (_queue_dir / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT = "django_async_email.contrib.filesystem_broker:Transport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "control_folder": str(_queue_dir / "control"),
        "polling_interval": 0.05,
        # Keep consumed messages so tests can prove no token ever travelled through the broker.
        "store_processed": True,
        "processed_folder": str(_queue_dir / "processed"),
    }
elif _broker == "redis":
    CELERY_BROKER_URL = os.environ.get("ASYNC_EMAIL_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
elif _broker == "amqp":
    CELERY_BROKER_URL = os.environ.get("ASYNC_EMAIL_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
else:
    raise RuntimeError(f"ASYNC_EMAIL_TEST_BROKER must be filesystem, redis or amqp, not {_broker!r}")
CELERY_TASK_ACKS_LATE = False
# The test project schedules the sweeper itself, as a host with SWEEP_IN_WORKER off would
# (no beat runs in the tests; they call the sweeper when they need it).
CELERY_BEAT_SCHEDULE = {"requeue-stuck-emails": {"task": "django_async_email.tasks.requeue_stuck_emails_task",
                                                 "schedule": 30.0}}
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
