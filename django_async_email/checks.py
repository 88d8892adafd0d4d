"""System checks (``manage.py check``), also reported by ``validate_email_configuration()``."""

from __future__ import annotations

from django.conf import settings
from django.core import checks
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.template import TemplateDoesNotExist
from django.template.loader import get_template
from django.utils.module_loading import import_string

from .conf import app_settings

DJANGO_DEFAULT_FROM = "webmaster@localhost"


def _id(code: str) -> str:
    return f"django_async_email.{code}"


def check_settings(**kwargs):
    try:
        app_settings.as_dict()
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), hint="Fix the ASYNC_EMAIL setting.", id=_id("E001"))]
    return []


def check_from_email(**kwargs):
    if not _settings_ok():
        return []
    address = app_settings.from_email
    if not address:
        return [checks.Error(
            "No From address: DEFAULT_FROM_EMAIL is empty and ASYNC_EMAIL['FROM_EMAIL'] is not set.",
            hint="Set DEFAULT_FROM_EMAIL.", id=_id("E002"),
        )]
    if address == DJANGO_DEFAULT_FROM:
        return [checks.Warning(
            "DEFAULT_FROM_EMAIL is Django's placeholder 'webmaster@localhost'.",
            hint="Set DEFAULT_FROM_EMAIL (or ASYNC_EMAIL['FROM_EMAIL']) to an address you send from.",
            id=_id("W002"),
        )]
    return []


def email_backend_path() -> str:
    return (app_settings.EMAIL_BACKEND if _settings_ok() else None) or settings.EMAIL_BACKEND


def check_email_backend(**kwargs):
    path = email_backend_path()
    try:
        import_string(path)
    except ImportError as exc:
        return [checks.Error(
            f"The email backend {path!r} cannot be imported: {exc}",
            hint="Check EMAIL_BACKEND (or ASYNC_EMAIL['EMAIL_BACKEND']).", id=_id("E003"),
        )]
    return []


def check_base_url(**kwargs):
    if _settings_ok() and not app_settings.BASE_URL:
        return [checks.Warning(
            "ASYNC_EMAIL['BASE_URL'] is not set, so links in emails will be relative.",
            hint="Set it to the site's public URL, e.g. 'https://example.com'.", id=_id("W003"),
        )]
    return []


def check_celery(**kwargs):
    try:
        import celery
    except ImportError:
        return [checks.Error("Celery is not installed.", hint="pip install celery", id=_id("E004"))]
    app = celery.current_app
    app = getattr(app, "_get_current_object", lambda: app)()  # unwrap Celery's proxy
    if app.main in (None, "default") and not app.conf.broker_url:
        return [checks.Warning(
            "No Celery app is configured, so emails would be published to Celery's default broker.",
            hint="Create your Celery app (app.config_from_object('django.conf:settings', namespace='CELERY')) "
                 "and import it in your project's __init__.py.",
            id=_id("W004"),
        )]
    return []


def check_templates(**kwargs):
    from .emails import DEFAULT_TEMPLATES

    errors = []
    for kind, name in DEFAULT_TEMPLATES.items():
        try:
            get_template(name)
        except TemplateDoesNotExist:
            errors.append(checks.Error(
                f"The template {name!r} for {kind} emails cannot be found.",
                hint="Enable APP_DIRS (or the app directories loader) in TEMPLATES, or provide the template.",
                id=_id("E005"),
            ))
    return errors


def check_user_model(**kwargs):
    if not _settings_ok():
        return []
    from django.contrib.auth import get_user_model

    user_model = get_user_model()
    errors = []
    for key in ("USER_TYPE_FIELD", "LANGUAGE_FIELD", "VERIFIED_FIELD"):
        name = getattr(app_settings, key)
        if not name:
            continue
        try:
            user_model._meta.get_field(name)
        except FieldDoesNotExist:
            errors.append(checks.Error(
                f"ASYNC_EMAIL['{key}'] names {name!r}, which {user_model._meta.label} does not have.",
                id=_id("E006"),
            ))
    return errors


def check_adapter(**kwargs):
    if not _settings_ok():
        return []
    try:
        import_string(app_settings.ADAPTER)
    except ImportError as exc:
        return [checks.Error(
            f"ASYNC_EMAIL['ADAPTER'] cannot be imported: {exc}", id=_id("E007"),
        )]
    return []


def _settings_ok() -> bool:
    try:
        app_settings.as_dict()
    except ImproperlyConfigured:
        return False
    return True


ALL_CHECKS = [
    check_settings, check_from_email, check_email_backend, check_base_url, check_celery,
    check_templates, check_user_model, check_adapter,
]


def register() -> None:
    for func in ALL_CHECKS:
        checks.register(func, "django_async_email")


def configuration_report() -> dict:
    """Every finding of the checks above, plus the configuration they looked at (no secrets)."""
    messages = [msg for func in ALL_CHECKS for msg in func()]
    as_dict = [{"id": m.id, "level": "error" if m.is_serious() else "warning", "message": m.msg, "hint": m.hint}
               for m in messages]
    settings_ok = _settings_ok()
    return {
        "ok": not any(m.is_serious() for m in messages),
        "errors": [m for m in as_dict if m["level"] == "error"],
        "warnings": [m for m in as_dict if m["level"] == "warning"],
        "email_backend": email_backend_path(),
        "from_email": app_settings.from_email if settings_ok else None,
        "base_url": app_settings.BASE_URL if settings_ok else None,
        "queues": dict(app_settings.QUEUES) if settings_ok else None,
    }
