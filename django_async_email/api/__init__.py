"""The REST API (Django REST Framework, the optional ``drf`` extra)."""

from django.core.exceptions import ImproperlyConfigured

try:
    import rest_framework  # noqa: F401
except ImportError as exc:
    raise ImproperlyConfigured(
        "django_async_email's REST API needs Django REST Framework: pip install 'django-email-outbox[drf]' "
        "(and add 'rest_framework' to INSTALLED_APPS)."
    ) from exc
