"""System checks (``manage.py check``), also reported by ``validate_email_configuration()``."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import checks
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.template import TemplateDoesNotExist
from django.template.loader import get_template
from django.utils.module_loading import import_string

from .adapter import DefaultAdapter, accepts_keyword
from .conf import app_settings, import_from_setting
from .delivery.build.links import page_link
from .delivery.build.messages import DEFAULT_TEMPLATES
from .delivery.send.connection import backend_path, mailer_alias, mailers_configured
from .exceptions import AsyncEmailConfigurationError
from .outbox.kinds import SWEEP
from .outbox.publishing import current_celery_app, message_id_domain
from .outbox.routing import queue_names

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
    try:
        return backend_path()
    except ImproperlyConfigured:  # E001 reports the settings themselves
        return ""


def check_email_backend(**kwargs):
    if _settings_ok() and mailers_configured():
        if mailer_alias() not in settings.MAILERS:
            return [checks.Error(
                f"MAILERS has no mailer {mailer_alias()!r} for this package to send through.",
                hint="Add it to MAILERS, or set ASYNC_EMAIL['MAILER'] to one that exists.", id=_id("E003"),
            )]
        if app_settings.EMAIL_BACKEND:
            return [checks.Error(
                "ASYNC_EMAIL['EMAIL_BACKEND'] is not used when MAILERS is defined.",
                hint="Name a mailer with ASYNC_EMAIL['MAILER'] instead.", id=_id("E010"),
            )]
    path = email_backend_path()
    try:
        # Django imports the backend itself (and the path may be Django's own EMAIL_BACKEND).
        backend = import_string(path)
    except ImportError as exc:
        return [checks.Error(
            f"The email backend {path!r} cannot be imported: {exc}",
            hint="Check EMAIL_BACKEND (or ASYNC_EMAIL['EMAIL_BACKEND']).", id=_id("E003"),
        )]
    # OutboxBackend (or a subclass) says so; checks sit below the backend's layer, so they ask.
    if getattr(backend, "stores_in_outbox", False):
        where = "the MAILER it names" if mailers_configured() else "ASYNC_EMAIL['EMAIL_BACKEND'] (or EMAIL_BACKEND)"
        return [checks.Error(
            f"The worker would send through {path}, which only queues: every email would be stored again "
            f"instead of sent.",
            hint=f"With EMAIL_BACKEND = OutboxBackend, set {where} to the backend that really sends, e.g. "
                 "'django.core.mail.backends.smtp.EmailBackend'.",
            id=_id("E011"),
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
    app = current_celery_app()
    if app.main in (None, "default") and not app.conf.broker_url:
        return [checks.Warning(
            "No Celery app is configured, so emails would be published to Celery's default broker.",
            hint="Create your Celery app (app.config_from_object('django.conf:settings', namespace='CELERY')) "
                 "and import it in your project's __init__.py.",
            id=_id("W004"),
        )]
    return []


def check_delivery_safety(**kwargs):
    """Settings that would let a task be redelivered while it still runs, or never consumed."""
    if not _settings_ok():
        return []
    conf = current_celery_app().conf
    messages = []
    broker = (conf.broker_url or "").split("://", 1)[0]
    time_limit = conf.task_time_limit
    if broker in ("redis", "rediss", "sentinel", "sqs"):
        visibility = (conf.broker_transport_options or {}).get("visibility_timeout", 3600)
        # No ETA the package gives the broker is further off than SCHEDULE_ETA_MAX: a later
        # scheduled email, or a longer retry, is held in the outbox instead.
        longest = max(app_settings.SCHEDULE_ETA_MAX, time_limit or 0)
        if longest >= visibility:
            messages.append(checks.Warning(
                f"SCHEDULE_ETA_MAX or the task time limit ({longest:g} s) reaches the broker's visibility "
                f"timeout ({visibility:g} s): the broker would hand a task to a second worker meanwhile.",
                hint="Raise CELERY_BROKER_TRANSPORT_OPTIONS['visibility_timeout'] or lower "
                     "ASYNC_EMAIL['SCHEDULE_ETA_MAX'] / CELERY_TASK_TIME_LIMIT.",
                id=_id("W005"),
            ))
    send_timeout = app_settings.SEND_TIMEOUT or 0
    if app_settings.LEASE_SECONDS <= 1.5 * send_timeout:
        messages.append(checks.Warning(
            f"ASYNC_EMAIL['LEASE_SECONDS'] ({app_settings.LEASE_SECONDS}) is not more than 1.5 times SEND_TIMEOUT "
            f"({send_timeout:g}): a worker renews its rows' lease every third of it, and one send that waits for "
            f"the whole timeout could let the lease run out while the rows are still being sent.",
            hint="Raise LEASE_SECONDS (60 by default) or lower SEND_TIMEOUT (30 by default).",
            id=_id("W006"),
        ))
    declared = conf.task_queues
    if declared:
        names = {getattr(q, "name", q) for q in declared}
        missing = [q for q in queue_names() if q not in names]
        if missing:
            messages.append(checks.Warning(
                f"Queue(s) {', '.join(missing)} get this package's emails, but CELERY_TASK_QUEUES does not "
                f"declare them, so no worker started from this configuration consumes them.",
                hint="Add them to CELERY_TASK_QUEUES, or change ASYNC_EMAIL['QUEUES'] to queues you declare.",
                id=_id("W007"),
            ))
    return messages


def check_templates(**kwargs):
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


def check_user_types(**kwargs):
    if not _settings_ok():
        return []
    if app_settings.USER_TYPES is not None and not app_settings.USER_TYPE_FIELD:
        return [checks.Error(
            "ASYNC_EMAIL['USER_TYPES'] is set but ASYNC_EMAIL['USER_TYPE_FIELD'] is not, so notifications "
            "to user types would be accepted and then fail in the worker.",
            hint="Set USER_TYPE_FIELD to the user model field that holds the type.", id=_id("E008"),
        )]
    return []


def check_invited_user_creation(**kwargs):
    """A user type the manager's ``create_user`` cannot take is set after it; say so."""
    type_field = app_settings.USER_TYPE_FIELD if _settings_ok() else None
    if not type_field:
        return []
    try:
        adapter_class = app_settings.adapter_class
    except AsyncEmailConfigurationError:  # E007
        return []
    if getattr(adapter_class, "create_invited_user", None) is not DefaultAdapter.create_invited_user:
        return []
    create_user = getattr(get_user_model()._default_manager, "create_user", None)
    if create_user is None or accepts_keyword(create_user, type_field):
        return []
    return [checks.Warning(
        f"{get_user_model()._meta.label}'s manager create_user() does not take {type_field!r}, so an accepted "
        f"invitation's user type is set on the new user right after create_user() returns.",
        hint="If create_user() must see the type (to create a profile, say), override "
             "create_invited_user() in your ASYNC_EMAIL['ADAPTER'].",
        id=_id("W008"),
    )]


def check_sweeper_scheduled(**kwargs):
    """With the in-worker sweep off, something else must run the sweeper; with it on, the
    sweeps must come often enough to see every lease before it runs out."""
    if not _settings_ok():
        return []
    if app_settings.SWEEP_IN_WORKER:
        if app_settings.SWEEP_EVERY < app_settings.LEASE_SECONDS:
            return []
        return [checks.Warning(
            f"ASYNC_EMAIL['SWEEP_EVERY'] ({app_settings.SWEEP_EVERY}) is not less than LEASE_SECONDS "
            f"({app_settings.LEASE_SECONDS}): a lease can begin and end between two sweeps, so a dead worker's "
            f"emails can wait up to a lease plus a sweep instead of one lease.",
            hint="Keep SWEEP_EVERY below LEASE_SECONDS (30 and 60 by default).",
            id=_id("W012"),
        )]
    schedule = current_celery_app().conf.beat_schedule or {}
    if any(entry.get("task") == SWEEP.task_name for entry in schedule.values()):
        return []
    return [checks.Warning(
        "ASYNC_EMAIL['SWEEP_IN_WORKER'] is off and CELERY_BEAT_SCHEDULE has no entry for "
        f"{SWEEP.task_name}: emails of a dead worker or a lost publish would never be sent.",
        hint="Schedule the task in beat (every 30-60 s), run `manage.py requeue_stuck_emails` from cron, "
             "or turn SWEEP_IN_WORKER back on.",
        id=_id("W011"),
    )]


def check_schedule_horizon(**kwargs):
    """Held emails are published by a sweep that looks SCHEDULE_ETA_MAX ahead; sweeps must come
    more often than that, allowing for a hand-over of the sweeper lease (1.5 sweeps), or a
    held email could be published after its time."""
    if not _settings_ok() or not app_settings.SWEEP_IN_WORKER:
        return []
    if app_settings.SCHEDULE_ETA_MAX > 1.5 * app_settings.SWEEP_EVERY:
        return []
    return [checks.Warning(
        f"ASYNC_EMAIL['SCHEDULE_ETA_MAX'] ({app_settings.SCHEDULE_ETA_MAX}) is not more than 1.5 times "
        f"SWEEP_EVERY ({app_settings.SWEEP_EVERY}): an email scheduled further ahead than SCHEDULE_ETA_MAX "
        f"could be published by the sweep after its send_at, and go out late.",
        hint="Keep SCHEDULE_ETA_MAX well above SWEEP_EVERY (300 and 30 by default).",
        id=_id("W014"),
    )]


def check_proxies(**kwargs):
    """The REST API's per-IP limits need to know the proxies; the default trusts none."""
    if not _settings_ok() or "rest_framework" not in settings.INSTALLED_APPS:
        return []
    if app_settings.NUM_PROXIES is not None or getattr(settings, "REST_FRAMEWORK", {}).get("NUM_PROXIES") is not None:
        return []
    return [checks.Warning(
        "Neither ASYNC_EMAIL['NUM_PROXIES'] nor REST_FRAMEWORK['NUM_PROXIES'] is set, so the REST API's per-IP "
        "rate limits count REMOTE_ADDR and ignore X-Forwarded-For. Behind a proxy every client would share "
        "the proxy's address.",
        hint="Set ASYNC_EMAIL['NUM_PROXIES'] to the number of proxies in front of the site (0 for none).",
        id=_id("W010"),
    )]


def local_domain(domain: str) -> bool:
    """Whether ``domain`` names no public host: ``localhost``, ``*.local``, ``*.localdomain``
    or a name without a dot (a container's or laptop's host name)."""
    name = domain.strip().rstrip(".").lower()
    return name == "localhost" or name.endswith((".local", ".localdomain")) or "." not in name


def check_message_id_domain(**kwargs):
    if not _settings_ok():
        return []
    domain = message_id_domain()
    if not local_domain(domain):
        return []
    source = ("ASYNC_EMAIL['MESSAGE_ID_DOMAIN']" if app_settings.MESSAGE_ID_DOMAIN
              else "the machine's host name (ASYNC_EMAIL['MESSAGE_ID_DOMAIN'] is not set)")
    return [checks.Warning(
        f"Message-IDs would end in '@{domain}', from {source}: not a public domain, which does not "
        f"identify the sender, and some spam filters count it against an email.",
        hint="Set ASYNC_EMAIL['MESSAGE_ID_DOMAIN'] to the domain you send from, e.g. 'mail.example.com'.",
        id=_id("W009"),
    )]


def check_adapter(**kwargs):
    if not _settings_ok():
        return []
    try:
        app_settings.adapter_class  # noqa: B018 (importing it is the check)
    except AsyncEmailConfigurationError as exc:
        return [checks.Error(str(exc), id=_id("E007"))]
    return []


def check_api_permissions(**kwargs):
    if not _settings_ok():
        return []
    errors = []
    for endpoint, paths in app_settings.API_PERMISSIONS.items():
        for path in paths:  # one error per path that does not import
            try:
                import_from_setting(path, "API_PERMISSIONS", endpoint)
            except AsyncEmailConfigurationError as exc:
                errors.append(checks.Error(str(exc), id=_id("E009")))
    return errors


def check_unsubscribe_links(**kwargs):
    """Notifications need a one-click unsubscribe link: the package's page, or the host's."""
    if not _settings_ok():
        return []
    missing = [name for name in ("UNSUBSCRIBE_URL", "PREFERENCES_URL") if page_link(name, "", "t") is None]
    if not missing:
        return []
    return [checks.Warning(
        f"No URL for {' and '.join(missing)}: the URLconf mounts no django_async_email.web.link_urls and "
        f"ASYNC_EMAIL sets no template, so notifications go out without "
        f"{'List-Unsubscribe headers and ' if 'UNSUBSCRIBE_URL' in missing else ''}the links the templates show. "
        f"Gmail and Yahoo throttle or refuse bulk mail without one-click unsubscribe.",
        hint='Add path("", include("django_async_email.web.link_urls")) to your urls.py, or set '
             "ASYNC_EMAIL['UNSUBSCRIBE_URL'] / ['PREFERENCES_URL'] to pages of your own that accept the token.",
        id=_id("W013"),
    )]


def _settings_ok() -> bool:
    try:
        app_settings.as_dict()
    except ImproperlyConfigured:
        return False
    return True


ALL_CHECKS = [
    check_settings, check_from_email, check_email_backend, check_base_url, check_celery,
    check_templates, check_user_model, check_user_types, check_adapter, check_invited_user_creation,
    check_delivery_safety, check_proxies, check_sweeper_scheduled, check_schedule_horizon,
    check_message_id_domain, check_api_permissions, check_unsubscribe_links,
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
