"""Settings for the example project, a platform shaped like ZamIO (artists, stations, publishers).

The default needs no server at all: SQLite, Celery's ``filesystem://`` broker and the
file-based email backend, everything under ``var/`` (or ``$EXAMPLE_VAR_DIR``).
Environment variables switch each part to a real service:

==========================  ==================================================================
``EXAMPLE_VAR_DIR``         where the database, broker folders and sent emails go
``EXAMPLE_DB=postgres``     PostgreSQL via ``PGDATABASE``, ``PGUSER``, ``PGPASSWORD``, ``PGHOST``,
                            ``PGPORT`` (needs ``pip install "psycopg[binary]"``)
``CELERY_BROKER_URL``       e.g. ``redis://127.0.0.1:6379/0`` (needs ``pip install redis``) or
                            ``amqp://guest:guest@127.0.0.1:5672//``
``EMAIL_HOST``              send over SMTP instead of writing files; also ``EMAIL_PORT``,
                            ``EMAIL_HOST_USER``, ``EMAIL_HOST_PASSWORD``, ``EMAIL_USE_TLS=1``
``EXAMPLE_BASE_URL``        the public URL used in links (default ``http://127.0.0.1:8000``)
==========================  ==================================================================
"""

import os
from importlib.util import find_spec
from pathlib import Path

import django

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("EXAMPLE_VAR_DIR") or BASE_DIR / "var").resolve()

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-project-not-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "accounts",
    "django_async_email",
]
if find_spec("rest_framework") is not None:  # the package's optional REST API needs it
    INSTALLED_APPS.append("rest_framework")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "core.urls"
WSGI_APPLICATION = "core.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ----------------------------------------------------------------------------

if os.environ.get("EXAMPLE_DB", "sqlite") == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("PGDATABASE", "zamio_example"),
            "USER": os.environ.get("PGUSER", "postgres"),
            "PASSWORD": os.environ.get("PGPASSWORD", ""),
            "HOST": os.environ.get("PGHOST", "127.0.0.1"),
            "PORT": os.environ.get("PGPORT", "5432"),
        }
    }
else:
    # A file, not memory: the web process and the Celery worker share it.
    _sqlite_options = {"timeout": 30}
    if django.VERSION >= (5, 1):
        # Take the write lock when a transaction starts, so a worker and the web process
        # wait for each other instead of failing with "database is locked".
        _sqlite_options["transaction_mode"] = "IMMEDIATE"
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "db.sqlite3",
            "OPTIONS": _sqlite_options,
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("fr", "French")]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"

# --- Email -------------------------------------------------------------------------------

DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "ZamIO <no-reply@zamio.example>")
if os.environ.get("EMAIL_HOST"):
    _backend = "django.core.mail.backends.smtp.EmailBackend"
    _options = {
        "host": os.environ["EMAIL_HOST"],
        "port": int(os.environ.get("EMAIL_PORT", "25")),
        "username": os.environ.get("EMAIL_HOST_USER", ""),
        "password": os.environ.get("EMAIL_HOST_PASSWORD", ""),
        "use_tls": os.environ.get("EMAIL_USE_TLS", "") == "1",
        "timeout": 30,
    }
else:
    # One .log file per connection; each holds the messages sent over it.
    _backend = "django.core.mail.backends.filebased.EmailBackend"
    _options = {"file_path": str(VAR_DIR / "sent_emails")}

# What the demo reports; the same on every Django version.
EXAMPLE_EMAIL = {"BACKEND": _backend, "OPTIONS": _options}
if django.VERSION >= (6, 1):
    # Django 6.1 names its email backends in MAILERS; the package sends through "default".
    MAILERS = {"default": {"BACKEND": _backend, "OPTIONS": _options}}
else:
    EMAIL_BACKEND = _backend
    if "host" in _options:
        EMAIL_HOST, EMAIL_PORT = _options["host"], _options["port"]
        EMAIL_HOST_USER, EMAIL_HOST_PASSWORD = _options["username"], _options["password"]
        EMAIL_USE_TLS, EMAIL_TIMEOUT = _options["use_tls"], _options["timeout"]
    else:
        EMAIL_FILE_PATH = _options["file_path"]

ASYNC_EMAIL = {
    "BASE_URL": os.environ.get("EXAMPLE_BASE_URL", "http://127.0.0.1:8000"),
    "SITE_NAME": "ZamIO",
    "USER_TYPE_FIELD": "user_type",
    "VERIFIED_FIELD": "email_verified",
    "LANGUAGE_FIELD": "language",
    "BULK_CHUNK_SIZE": 50,
    "NUM_PROXIES": 0,  # no proxy in front: the client is REMOTE_ADDR
    "MESSAGE_ID_DOMAIN": "zamio.example",
}

# --- Celery ------------------------------------------------------------------------------

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL == "filesystem://":
    # Kombu's filesystem transport: messages are files in a folder, no server needed. The
    # package's variant writes each file atomically, so a polling worker never reads half.
    CELERY_BROKER_TRANSPORT = "django_async_email.contrib.filesystem_broker:Transport"
    BROKER_DIR = VAR_DIR / "broker"
    for _folder in ("queue", "control"):
        (BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "control_folder": str(BROKER_DIR / "control"),
        "polling_interval": 0.1,
    }
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# The package publishes to its own queues (high, normal, low); the router also covers
# code that calls its tasks directly. Everything else goes to "normal".
CELERY_TASK_ROUTES = ["django_async_email.outbox.routing.route_task"]
CELERY_TASK_DEFAULT_QUEUE = "normal"
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
