"""Django settings for ``benchmarks/recovery.py``; the script sets the environment.

The package's recovery settings are left at their documented defaults (``LEASE_SECONDS``,
``SWEEP_EVERY``, ``STUCK_AFTER``, ``SWEEP_IN_WORKER``); no beat schedule. Only these are read:

- ``RECOVERY_RUN_DIR``: a folder for the SQLite file, the filesystem broker, the ready file
- ``RECOVERY_DB``: ``postgres`` (database ``RECOVERY_DB_NAME`` on 127.0.0.1:5432, user postgres)
  or ``sqlite`` (a file in the run folder)
- ``RECOVERY_BROKER``: ``embedded`` (the package's filesystem transport), ``redis`` or ``amqp``,
  at ``RECOVERY_BROKER_URL``
- ``RECOVERY_SMTP_PORT``: the sink's port on 127.0.0.1
- ``RECOVERY_RECORD_EVERY``: ``ASYNC_EMAIL["RECORD_EVERY"]``, only when set (``--record-every``)
- ``RECOVERY_BULK_CHUNK_SIZE``: ``ASYNC_EMAIL["BULK_CHUNK_SIZE"]``, only when set (the fan-out kill)
"""

import os
from pathlib import Path

import django

RUN_DIR = Path(os.environ["RECOVERY_RUN_DIR"])
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
]
AUTH_USER_MODEL = "benchapp.User"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "DIRS": [], "APP_DIRS": True}]
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

if os.environ.get("RECOVERY_DB", "postgres") == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ["RECOVERY_DB_NAME"],
            "USER": os.environ.get("PGUSER", "postgres"),
            "HOST": os.environ.get("PGHOST", "127.0.0.1"),
            "PORT": os.environ.get("PGPORT", "5432"),
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(RUN_DIR / "recovery.sqlite3"),
            # As tests/settings.py: writers queue for the lock (driver, worker, sweep thread).
            "OPTIONS": {"timeout": 30, **({"transaction_mode": "IMMEDIATE"} if django.VERSION >= (5, 1) else {})},
        }
    }

EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
EMAIL_HOST = "127.0.0.1"
EMAIL_PORT = int(os.environ.get("RECOVERY_SMTP_PORT", "2525"))
DEFAULT_FROM_EMAIL = "ZamIO <no-reply@zamio.test>"

ASYNC_EMAIL = {
    "BASE_URL": "https://app.zamio.test",
    "SITE_NAME": "ZamIO",
    "USER_TYPE_FIELD": "user_type",
}
if os.environ.get("RECOVERY_RECORD_EVERY"):
    ASYNC_EMAIL["RECORD_EVERY"] = int(os.environ["RECOVERY_RECORD_EVERY"])
if os.environ.get("RECOVERY_BULK_CHUNK_SIZE"):
    ASYNC_EMAIL["BULK_CHUNK_SIZE"] = int(os.environ["RECOVERY_BULK_CHUNK_SIZE"])

_broker = os.environ.get("RECOVERY_BROKER", "redis")
if _broker == "embedded":
    _queue_dir = RUN_DIR / "broker"
    (_queue_dir / "control").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT = "django_async_email.contrib.filesystem_broker:Transport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "control_folder": str(_queue_dir / "control"),
        "polling_interval": 0.05,
    }
else:
    CELERY_BROKER_URL = os.environ["RECOVERY_BROKER_URL"]
# Late acknowledgement for every task, as the package declares it for its send tasks
# (docs/delivery.md, "acks_late and reject_on_worker_lost"); Celery's default prefetch.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = "celery"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    # The sweep's own lines ("Recovery sweep every ...", what each sweep did), for the timeline.
    "loggers": {"django_async_email.delivery": {"level": "INFO"}},
}
