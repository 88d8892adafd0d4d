"""Throwaway Django settings for the benchmark; ``benchmarks/run.py`` sets the environment.

- ``BENCH_DB``: ``postgres`` (default; database ``BENCH_DB_NAME`` on 127.0.0.1:5432, user postgres)
  or ``sqlite`` (a file under ``BENCH_RUN_DIR``)
- ``BENCH_BROKER``: ``redis`` (default; ``BENCH_REDIS_URL``) or ``filesystem``
- ``BENCH_SMTP_PORT``: the SMTP sink's port on 127.0.0.1
- ``BENCH_CELERY_EMAIL_CHUNK_SIZE``: django-celery-email's ``CELERY_EMAIL_CHUNK_SIZE``
- ``BENCH_RECORD_EVERY``: this package's ``RECORD_EVERY``, only when set (``run.py --record-every``)
- ``BENCH_SMTP_CONNECTIONS``: this package's ``SMTP_CONNECTIONS`` (SMTP connections per worker
  process), only when set (``run.py --smtp-connections``): package versions without the setting
  refuse unknown ``ASYNC_EMAIL`` keys, so it is left out otherwise
- ``BENCH_EMAIL_BACKEND``: the host's ``EMAIL_BACKEND``, only when set (the ``outbox-backend``
  scenarios set ``OutboxBackend``); this package's worker then sends through ``ASYNC_EMAIL['EMAIL_BACKEND']``,
  the SMTP backend every other scenario uses
"""

import os
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
RUN_DIR = Path(os.environ.get("BENCH_RUN_DIR") or BENCH_DIR / "results" / "run")
RUN_DIR.mkdir(parents=True, exist_ok=True)

SECRET_KEY = "benchmark-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en"
USE_I18N = True

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "benchmarks.benchapp",
    "django_async_email",
    "post_office",
    "djcelery_email",
]
AUTH_USER_MODEL = "benchapp.User"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BENCH_DIR / "templates"],
        "APP_DIRS": True,
    }
]
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

if os.environ.get("BENCH_DB", "postgres") == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("BENCH_DB_NAME", "async_email_bench"),
            "USER": os.environ.get("PGUSER", "postgres"),
            "HOST": os.environ.get("PGHOST", "127.0.0.1"),
            "PORT": os.environ.get("PGPORT", "5432"),
            # Persistent connections in every scenario, as most production hosts run.
            "CONN_MAX_AGE": 600,
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(RUN_DIR / "bench.sqlite3"),
            "OPTIONS": {"timeout": 60},
            "CONN_MAX_AGE": 600,
        }
    }

EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
EMAIL_HOST = "127.0.0.1"
EMAIL_PORT = int(os.environ.get("BENCH_SMTP_PORT", "2525"))
EMAIL_TIMEOUT = 30
DEFAULT_FROM_EMAIL = "ZamIO <no-reply@zamio.test>"

ASYNC_EMAIL = {
    "BASE_URL": "https://app.zamio.test",
    "SITE_NAME": "ZamIO",
    "USER_TYPE_FIELD": "user_type",
}
if os.environ.get("BENCH_RECORD_EVERY"):
    ASYNC_EMAIL["RECORD_EVERY"] = int(os.environ["BENCH_RECORD_EVERY"])
if os.environ.get("BENCH_SMTP_CONNECTIONS"):
    ASYNC_EMAIL["SMTP_CONNECTIONS"] = int(os.environ["BENCH_SMTP_CONNECTIONS"])
if os.environ.get("BENCH_EMAIL_BACKEND"):
    # The host's code hands its messages to EMAIL_BACKEND (get_connection(), send_mass_mail());
    # OutboxBackend queues them and the worker sends them through the SMTP backend.
    ASYNC_EMAIL["EMAIL_BACKEND"] = EMAIL_BACKEND
    EMAIL_BACKEND = os.environ["BENCH_EMAIL_BACKEND"]
    # The host task that calls it (``benchmarks.scenarios.backend_fan_out``).
    CELERY_IMPORTS = ["benchmarks.scenarios"]

# django-celery-email: its task sends each chunk through Django's SMTP backend.
CELERY_EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
CELERY_EMAIL_CHUNK_SIZE = int(os.environ.get("BENCH_CELERY_EMAIL_CHUNK_SIZE", "10"))

# django-post-office: its documented Celery integration (queue, then send_queued_mail).
POST_OFFICE = {
    "CELERY_ENABLED": True,
    "BACKENDS": {"default": "django.core.mail.backends.smtp.EmailBackend"},
    "LOCK_FILE_NAME": str(RUN_DIR / "post_office"),
}

if os.environ.get("BENCH_BROKER", "redis") == "redis":
    CELERY_BROKER_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
else:
    _queue_dir = RUN_DIR / "broker"
    (_queue_dir / "control").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "control_folder": str(_queue_dir / "control"),
        "polling_interval": 0.05,
    }
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = "celery"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}

# The link pages, as a host mounts them (notifications link to the unsubscribe page).
ROOT_URLCONF = "benchmarks.urls"
