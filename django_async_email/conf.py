"""The ``ASYNC_EMAIL`` settings dict: one table of defaults, read lazily, validated per key.

Values are read from ``django.conf.settings`` on first access and cached until Django
announces a ``setting_changed`` for ``ASYNC_EMAIL`` (which ``override_settings`` and
pytest-django's ``settings`` fixture both do), so tests and hosts see changes at once and
nothing is read at import time.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings as django_settings
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from .exceptions import AsyncEmailConfigurationError

SETTINGS_NAME = "ASYNC_EMAIL"

#: Every setting with its default. ``docs/settings.md`` documents each one.
DEFAULTS: dict[str, Any] = {
    # Links and branding
    "BASE_URL": "",
    "ALLOWED_BASE_URLS": [],
    "SITE_NAME": "",
    "FROM_EMAIL": None,
    "VERIFICATION_URL": "{base_url}/verify-email?uid={uid}&token={token}",
    "PASSWORD_RESET_URL": "{base_url}/reset-password?uid={uid}&token={token}",
    "INVITATION_URL": "{base_url}/accept-invitation?token={token}",
    "LOGIN_URL": "{base_url}/login",
    # The host's user model
    "USER_TYPE_FIELD": None,
    "USER_TYPES": None,
    "LANGUAGE_FIELD": None,
    "VERIFIED_FIELD": None,
    # Routing
    "QUEUES": {"high": "high", "normal": "normal", "low": "low"},
    "QUEUE_PRIORITIES": {"high": None, "normal": None, "low": None},
    # Delivery
    "EMAIL_BACKEND": None,
    "MAILER": None,
    "SEND_TIMEOUT": 30,
    "MAX_RETRIES": 3,
    "RETRY_BACKOFF": 60.0,
    "RETRY_BACKOFF_MAX": 3600.0,
    "RETRY_JITTER": True,
    "LEASE_SECONDS": 60,
    "STUCK_AFTER": 60,
    "SWEEP_IN_WORKER": True,
    "SWEEP_EVERY": 30,
    "SCHEDULE_ETA_MAX": 300,
    "BULK_INCLUDE_UNVERIFIED": True,
    "BULK_CHUNK_SIZE": 500,
    "RECORD_EVERY": 10,
    "FAST_SMTP_PATH": True,
    "SMTP_CONNECTIONS": 4,
    "SMTP_HOST_CONNECTION_LIMITS": {},
    "SMTP_PIPELINING": True,
    "MAX_USER_IDS": 1000,
    "MESSAGE_ID_DOMAIN": None,
    # Tokens
    "VERIFICATION_TIMEOUT": timedelta(days=3),
    "PASSWORD_RESET_TIMEOUT": None,
    "INVITATION_TIMEOUT": timedelta(days=7),
    # One-time codes, for front ends where a person types what the email says
    "VERIFICATION_METHOD": "link",
    "PASSWORD_RESET_METHOD": "link",
    "CODE_LENGTH": 6,
    "CODE_TIMEOUT": 900,
    "CODE_MAX_ATTEMPTS": 5,
    # Notification categories, unsubscribe and preferences (docs/deliverability.md)
    "CATEGORIES": {},
    "DEFAULT_CATEGORY": "notifications",
    "UNSUBSCRIBE_URL": None,
    "PREFERENCES_URL": None,
    "UNSUBSCRIBE_TOKEN_MAX_AGE": None,
    # Messages sent through OutboxBackend (the host's EMAIL_BACKEND)
    "ATTACHMENT_STORAGE": "default",
    "ATTACHMENT_MAX_BYTES": 10 * 1024 * 1024,
    "MESSAGE_MAX_BYTES": 25 * 1024 * 1024,
    # Who may invite whom (None: staff any type, others their own)
    "INVITATION_RULES": None,
    # Extension point
    "ADAPTER": "django_async_email.adapter.DefaultAdapter",
    # REST API (the ``drf`` extra)
    "API_PERMISSIONS": {},
    "THROTTLE_ENABLED": True,
    # Proxies in front of the site that append to X-Forwarded-For; None: REST_FRAMEWORK's
    # NUM_PROXIES if set, else none (the client is REMOTE_ADDR).
    "NUM_PROXIES": None,
    "THROTTLE_CACHE": "default",
    "THROTTLE_RATES": {
        "password_reset_ip": "20/hour",
        "password_reset_address": "5/hour",
        "verification_ip": "20/hour",
        "verification_user": "5/hour",
        "verification_address": "5/hour",
        "code_ip": "30/hour",
        "code_address": "10/hour",
        "invitation_user": "10/day",
        "flow_ip": "60/hour",
        "notification_admin": "30/hour",
    },
}

THROTTLE_SCOPES = tuple(DEFAULTS["THROTTLE_RATES"])
API_ENDPOINTS = (
    "resend_verification", "request_password_reset", "send_invitation", "send_notification_to_users",
    "send_notification_to_user_type", "system_status", "verify_email", "confirm_password_reset",
    "accept_invitation", "verify_email_code", "confirm_password_reset_code", "preferences",
)

#: How an account flow is completed: by the link in the email, a code typed in, or either.
FLOW_METHODS = ("link", "code", "both")

#: Queue classes, in priority order (``outbox.kinds`` names them HIGH, NORMAL, LOW).
QUEUE_CLASSES = ("high", "normal", "low")


def _is_str(value):
    return isinstance(value, str)


def _is_optional_str(value):
    return value is None or isinstance(value, str)


def _is_str_list(value):
    return isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)


def _is_positive_int(value):
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _is_non_negative_int(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_non_negative_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0


def _is_duration(value):
    if isinstance(value, timedelta):
        return value.total_seconds() > 0
    return _is_positive_int(value)


def _is_optional_duration(value):
    return value is None or _is_duration(value)


def _is_queue_map(value):
    return (
        isinstance(value, dict)
        and set(value) == set(QUEUE_CLASSES)
        and all(isinstance(v, str) and v for v in value.values())
    )


def _is_priority_map(value):
    return (
        isinstance(value, dict)
        and set(value) <= set(QUEUE_CLASSES)
        and all(v is None or (isinstance(v, int) and 0 <= v <= 255) for v in value.values())
    )


def _is_rate(value):
    if not isinstance(value, str) or "/" not in value:
        return False
    count, _, period = value.partition("/")
    return count.isdigit() and period in ("second", "minute", "hour", "day")


def _is_link_template(value):
    return isinstance(value, str) and "{base_url}" in value


CATEGORY_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-")


def _is_category_key(value):
    return isinstance(value, str) and 0 < len(value) <= 64 and set(value) <= CATEGORY_KEY_CHARS


def _is_categories(value):
    """``{"key": {"label": str, "email_types": [str, ...], "default": bool}}``; each type in one category."""
    if not isinstance(value, dict):
        return False
    seen: set[str] = set()
    for key, spec in value.items():
        if not _is_category_key(key) or not isinstance(spec, dict):
            return False
        if set(spec) - {"label", "email_types", "default"} or not isinstance(spec.get("label", key), str):
            return False
        types = spec.get("email_types", [])
        if not _is_str_list(types) or seen & set(types) or not isinstance(spec.get("default", True), bool):
            return False
        seen |= set(types)
    return True


#: (check, what a valid value looks like) per key.
VALIDATORS = {
    "BASE_URL": (_is_str, "a string such as 'https://example.com'"),
    "ALLOWED_BASE_URLS": (_is_str_list, "a list of URL strings"),
    "SITE_NAME": (_is_str, "a string"),
    "FROM_EMAIL": (_is_optional_str, "an address string or None"),
    "VERIFICATION_URL": (_is_link_template, "a string containing '{base_url}'"),
    "PASSWORD_RESET_URL": (_is_link_template, "a string containing '{base_url}'"),
    "INVITATION_URL": (_is_link_template, "a string containing '{base_url}'"),
    "LOGIN_URL": (_is_link_template, "a string containing '{base_url}'"),
    "USER_TYPE_FIELD": (_is_optional_str, "a field name or None"),
    "USER_TYPES": (lambda v: v is None or _is_str_list(v), "a list of strings or None"),
    "LANGUAGE_FIELD": (_is_optional_str, "a field name or None"),
    "VERIFIED_FIELD": (_is_optional_str, "a field name or None"),
    "QUEUES": (_is_queue_map, "a dict with exactly the keys 'high', 'normal', 'low' and non-empty names"),
    "QUEUE_PRIORITIES": (_is_priority_map, "a dict of 'high'/'normal'/'low' to None or 0-255"),
    "EMAIL_BACKEND": (_is_optional_str, "a dotted path or None"),
    "MAILER": (_is_optional_str, "a MAILERS alias or None"),
    "SEND_TIMEOUT": (lambda v: v is None or _is_non_negative_number(v) and v > 0, "seconds > 0 or None"),
    "MAX_RETRIES": (_is_non_negative_int, "an integer >= 0"),
    "RETRY_BACKOFF": (_is_non_negative_number, "seconds >= 0"),
    "RETRY_BACKOFF_MAX": (_is_non_negative_number, "seconds >= 0"),
    "RETRY_JITTER": (lambda v: isinstance(v, bool), "True or False"),
    "LEASE_SECONDS": (_is_positive_int, "an integer > 0"),
    "STUCK_AFTER": (_is_positive_int, "seconds > 0"),
    "SWEEP_IN_WORKER": (lambda v: isinstance(v, bool), "True or False"),
    "SWEEP_EVERY": (_is_positive_int, "seconds > 0"),
    "SCHEDULE_ETA_MAX": (_is_positive_int, "seconds > 0"),
    "BULK_INCLUDE_UNVERIFIED": (lambda v: isinstance(v, bool), "True or False"),
    "BULK_CHUNK_SIZE": (_is_positive_int, "an integer > 0"),
    "RECORD_EVERY": (_is_positive_int, "an integer > 0"),
    "FAST_SMTP_PATH": (lambda v: isinstance(v, bool), "True or False"),
    "SMTP_CONNECTIONS": (_is_positive_int, "an integer > 0"),
    "SMTP_HOST_CONNECTION_LIMITS": (
        lambda v: isinstance(v, dict) and all(isinstance(k, str) and _is_positive_int(n) for k, n in v.items()),
        "a dict of SMTP host name to an integer > 0"),
    "SMTP_PIPELINING": (lambda v: isinstance(v, bool), "True or False"),
    "MAX_USER_IDS": (_is_positive_int, "an integer > 0"),
    "MESSAGE_ID_DOMAIN": (_is_optional_str, "a domain name or None"),
    "VERIFICATION_TIMEOUT": (_is_duration, "a timedelta or seconds > 0"),
    "PASSWORD_RESET_TIMEOUT": (_is_optional_duration, "a timedelta, seconds > 0, or None"),
    "INVITATION_TIMEOUT": (_is_duration, "a timedelta or seconds > 0"),
    "VERIFICATION_METHOD": (lambda v: v in FLOW_METHODS, "'link', 'code' or 'both'"),
    "PASSWORD_RESET_METHOD": (lambda v: v in FLOW_METHODS, "'link', 'code' or 'both'"),
    "CODE_LENGTH": (lambda v: _is_positive_int(v) and 4 <= v <= 10, "an integer from 4 to 10 (digits)"),
    "CODE_TIMEOUT": (_is_duration, "a timedelta or seconds > 0"),
    "CODE_MAX_ATTEMPTS": (_is_positive_int, "an integer > 0"),
    "ADAPTER": (_is_str, "a dotted path to an adapter class"),
    "ATTACHMENT_STORAGE": (_is_str, "a STORAGES alias such as 'default'"),
    "ATTACHMENT_MAX_BYTES": (_is_positive_int, "a number of bytes > 0"),
    "MESSAGE_MAX_BYTES": (_is_positive_int, "a number of bytes > 0"),
    "CATEGORIES": (
        _is_categories,
        "a dict of category key (lowercase letters, digits, '_' or '-') to {'label': str, 'email_types': "
        "[str, ...], 'default': bool}, with each email type in one category at most",
    ),
    "DEFAULT_CATEGORY": (_is_category_key, "a category key (lowercase letters, digits, '_' or '-')"),
    "UNSUBSCRIBE_URL": (lambda v: v is None or _is_link_template(v) and "{token}" in v,
                        "None or a string containing '{base_url}' and '{token}'"),
    "PREFERENCES_URL": (lambda v: v is None or _is_link_template(v) and "{token}" in v,
                        "None or a string containing '{base_url}' and '{token}'"),
    "UNSUBSCRIBE_TOKEN_MAX_AGE": (_is_optional_duration, "None (never expires) or a timedelta or seconds > 0"),
    "INVITATION_RULES": (
        lambda v: v is None or isinstance(v, dict) and all(
            isinstance(k, str) and (t == "__all__" or _is_str_list(t)) for k, t in v.items()),
        "None or a dict of 'staff', a user type or 'perm:app.codename' to a list of user types or '__all__'",
    ),
    "API_PERMISSIONS": (
        lambda v: isinstance(v, dict) and set(v) <= set(API_ENDPOINTS) and all(_is_str_list(x) for x in v.values()),
        "a dict of endpoint name (e.g. 'send_invitation') to a list of dotted permission class paths",
    ),
    "THROTTLE_ENABLED": (lambda v: isinstance(v, bool), "True or False"),
    "NUM_PROXIES": (lambda v: v is None or _is_non_negative_int(v), "an integer >= 0 or None"),
    "THROTTLE_CACHE": (_is_str, "a cache alias"),
    "THROTTLE_RATES": (
        lambda v: isinstance(v, dict) and set(v) <= set(THROTTLE_SCOPES)
        and all(r is None or _is_rate(r) for r in v.values()),
        "a dict of scope to a rate like '5/hour' (or None for no limit)",
    ),
}


def _config_error(message: str):
    return AsyncEmailConfigurationError(message)


def setting_label(*keys: str) -> str:
    """How a person finds a setting: ``setting_label("API_PERMISSIONS", "send_invitation")`` is
    ``ASYNC_EMAIL['API_PERMISSIONS']['send_invitation']``."""
    return SETTINGS_NAME + "".join(f"[{key!r}]" for key in keys)


def import_from_setting(path: str, *keys: str) -> Any:
    """Import the object ``path`` names, which the setting ``keys`` gave.

    Every dotted-path setting is imported here, so each fails with the same message (an
    ``ImproperlyConfigured``) naming the setting.
    """
    try:
        return import_string(path)
    except ImportError as exc:
        raise _config_error(f"{setting_label(*keys)} names {path!r}, which cannot be imported: {exc}") from exc


def validate_settings(user_settings: Any) -> dict[str, Any]:
    """Merge ``user_settings`` over the defaults; raise ``ImproperlyConfigured`` naming a bad key."""
    if not isinstance(user_settings, dict):
        raise _config_error(f"{SETTINGS_NAME} must be a dict, not {type(user_settings).__name__}.")
    unknown = sorted(set(user_settings) - set(DEFAULTS))
    if unknown:
        raise _config_error(
            f"{SETTINGS_NAME} has unknown key(s): {', '.join(unknown)}. "
            f"Known keys: {', '.join(sorted(DEFAULTS))}."
        )
    merged = {**DEFAULTS, **user_settings}
    # Rates are merged per scope, so a host can change one limit and keep the others.
    merged["THROTTLE_RATES"] = {**DEFAULTS["THROTTLE_RATES"], **user_settings.get("THROTTLE_RATES", {})}
    for key, value in user_settings.items():
        check, expected = VALIDATORS[key]
        if not check(value):
            raise _config_error(f"{SETTINGS_NAME}['{key}'] must be {expected}; got {value!r}.")
    return merged


class AppSettings:
    """Attribute access to the validated ``ASYNC_EMAIL`` settings, e.g. ``app_settings.MAX_RETRIES``."""

    def __init__(self):
        self._cache: dict[str, Any] | None = None

    def _load(self) -> dict[str, Any]:
        if self._cache is None:
            self._cache = validate_settings(getattr(django_settings, SETTINGS_NAME, {}))
        return self._cache

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        values = self._load()
        if name not in values:
            raise AttributeError(f"{SETTINGS_NAME} has no setting {name!r}")
        return values[name]

    def as_dict(self) -> dict[str, Any]:
        return dict(self._load())

    def reload(self) -> None:
        self._cache = None

    # Derived values, kept here so every module computes them the same way.

    @property
    def from_email(self) -> str:
        return self.FROM_EMAIL or django_settings.DEFAULT_FROM_EMAIL

    @property
    def site_name(self) -> str:
        return self.SITE_NAME or getattr(django_settings, "SITE_NAME", "")

    # Dotted-path settings, imported here and nowhere else.

    @property
    def adapter_class(self) -> type:
        """The class ``ADAPTER`` names."""
        return import_from_setting(self.ADAPTER, "ADAPTER")

    def api_permission_classes(self, endpoint: str) -> list[type] | None:
        """The classes ``API_PERMISSIONS[endpoint]`` names, or ``None`` when it is not set."""
        paths = self.API_PERMISSIONS.get(endpoint)
        if paths is None:
            return None
        return [import_from_setting(path, "API_PERMISSIONS", endpoint) for path in paths]

    @staticmethod
    def seconds(value) -> float:
        return value.total_seconds() if isinstance(value, timedelta) else float(value)


app_settings = AppSettings()


def _reload_on_change(*, setting, **kwargs):
    # DEFAULT_FROM_EMAIL and friends are read live; only our own dict is cached.
    if setting == SETTINGS_NAME:
        app_settings.reload()


setting_changed.connect(_reload_on_change)
