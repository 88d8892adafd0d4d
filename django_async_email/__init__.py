"""django-async-email: account and notification emails delivered through the host's Celery app."""

__version__ = "0.1.0"
