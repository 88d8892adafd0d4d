import pytest
from django.conf import settings
from django.core import checks

from django_async_email import checks as our_checks


def run(func):
    return func(app_configs=None)


def test_all_checks_pass_on_the_test_settings():
    messages = checks.run_checks(tags=["django_async_email"])
    assert messages == []


def test_invalid_settings(settings):
    settings.ASYNC_EMAIL = {"MAX_RETRIES": -2}
    assert run(our_checks.check_settings) == [
        checks.Error(
            "ASYNC_EMAIL['MAX_RETRIES'] must be an integer >= 0; got -2.",
            hint="Fix the ASYNC_EMAIL setting.", id="django_async_email.E001",
        )
    ]


def test_missing_from_address(settings):
    settings.DEFAULT_FROM_EMAIL = ""
    assert run(our_checks.check_from_email) == [
        checks.Error(
            "No From address: DEFAULT_FROM_EMAIL is empty and ASYNC_EMAIL['FROM_EMAIL'] is not set.",
            hint="Set DEFAULT_FROM_EMAIL.", id="django_async_email.E002",
        )
    ]


def test_placeholder_from_address(settings):
    settings.DEFAULT_FROM_EMAIL = "webmaster@localhost"
    assert [m.id for m in run(our_checks.check_from_email)] == ["django_async_email.W002"]


def test_unusable_email_backend(email_backend):
    email_backend("myproject.mail.NoSuchBackend")
    (message,) = run(our_checks.check_email_backend)
    assert message.id == "django_async_email.E003"
    assert message.msg.startswith("The email backend 'myproject.mail.NoSuchBackend' cannot be imported")


@pytest.mark.skipif(settings.USE_MAILERS, reason="ASYNC_EMAIL['EMAIL_BACKEND'] belongs to the pre-MAILERS settings")
def test_package_email_backend_setting_is_checked(settings):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "EMAIL_BACKEND": "nope.Backend"}
    assert [m.id for m in run(our_checks.check_email_backend)] == ["django_async_email.E003"]


@pytest.mark.skipif(not settings.USE_MAILERS, reason="MAILERS exists from Django 6.1")
def test_mailer_alias_must_exist_and_replaces_email_backend(settings):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "MAILER": "transactional"}
    (message,) = run(our_checks.check_email_backend)
    assert message.id == "django_async_email.E003" and "'transactional'" in message.msg
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "MAILER": None, "EMAIL_BACKEND": "x.Y"}
    assert [m.id for m in run(our_checks.check_email_backend)] == ["django_async_email.E010"]


def test_missing_base_url(settings):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "BASE_URL": ""}
    assert run(our_checks.check_base_url) == [
        checks.Warning(
            "ASYNC_EMAIL['BASE_URL'] is not set, so links in emails will be relative.",
            hint="Set it to the site's public URL, e.g. 'https://example.com'.", id="django_async_email.W003",
        )
    ]


def test_celery_not_configured(monkeypatch):
    import celery

    default_app = celery.Celery(set_as_current=False)
    monkeypatch.setattr(celery, "current_app", default_app)
    (message,) = run(our_checks.check_celery)
    assert message.id == "django_async_email.W004"


def test_missing_template(settings):
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "APP_DIRS": False, "DIRS": []}]
    messages = run(our_checks.check_templates)
    assert {m.id for m in messages} == {"django_async_email.E005"}
    assert len(messages) == 6
    assert "'django_async_email/verification.html' for verification emails" in messages[0].msg


def test_user_field_that_does_not_exist(settings):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "USER_TYPE_FIELD": "role"}
    (message,) = run(our_checks.check_user_model)
    assert message.id == "django_async_email.E006" and "'role'" in message.msg


def test_adapter_that_cannot_be_imported(settings):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "ADAPTER": "nowhere.Adapter"}
    assert [m.id for m in run(our_checks.check_adapter)] == ["django_async_email.E007"]


@pytest.mark.parametrize("setting,value,expected_id", [
    ("EMAIL_BACKEND", "x.Y", "django_async_email.E003"),
    ("DEFAULT_FROM_EMAIL", "", "django_async_email.E002"),
])
def test_validate_email_configuration_reports_the_same_findings(settings, email_backend, setting, value,
                                                                 expected_id):
    from django_async_email.email_utils import validate_email_configuration

    if setting == "EMAIL_BACKEND":
        email_backend(value)
    else:
        setattr(settings, setting, value)
    report = validate_email_configuration()
    assert expected_id in [e["id"] for e in report["errors"]]
    assert report["ok"] is False


@pytest.fixture
def celery_conf():
    from tests.celery_app import app

    saved = {k: app.conf[k] for k in ("broker_url", "broker_transport_options", "task_time_limit", "task_queues",
                                      "beat_schedule")}
    yield app.conf
    for key, value in saved.items():
        app.conf[key] = value


def test_broker_etas_beyond_the_redis_visibility_timeout(celery_conf, settings):
    celery_conf.broker_url = "redis://127.0.0.1:6379/0"
    celery_conf.broker_transport_options = {"visibility_timeout": 600}
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "SCHEDULE_ETA_MAX": 900}
    (message,) = run(our_checks.check_delivery_safety)
    assert message.id == "django_async_email.W005" and "visibility timeout (600 s)" in message.msg
    assert "(900 s)" in message.msg
    # A long retry backoff no longer reaches the broker: it is held in the outbox.
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "SCHEDULE_ETA_MAX": 300, "RETRY_BACKOFF": 600,
                            "RETRY_BACKOFF_MAX": 3600}
    assert run(our_checks.check_delivery_safety) == []
    celery_conf.task_time_limit = 900
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "LEASE_SECONDS": 1800}
    assert [m.id for m in run(our_checks.check_delivery_safety)] == ["django_async_email.W005"]


def test_a_schedule_horizon_shorter_than_the_sweeps(settings):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "SWEEP_IN_WORKER": True, "SWEEP_EVERY": 30,
                            "SCHEDULE_ETA_MAX": 40}
    (message,) = run(our_checks.check_schedule_horizon)
    assert message.id == "django_async_email.W014" and "SCHEDULE_ETA_MAX" in message.msg
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "SCHEDULE_ETA_MAX": 46}
    assert run(our_checks.check_schedule_horizon) == []


def test_a_lease_too_short_for_one_send_timeout(celery_conf, settings):
    # Renewed every third of the lease, a lease must outlast a third of itself plus one
    # send that waits for the whole SEND_TIMEOUT; the task time limit no longer matters.
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "LEASE_SECONDS": 40, "SEND_TIMEOUT": 30}
    assert [m.id for m in run(our_checks.check_delivery_safety)] == ["django_async_email.W006"]
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "LEASE_SECONDS": 60}
    celery_conf.task_time_limit = 1200
    assert run(our_checks.check_delivery_safety) == []


def test_a_check_warns_when_nothing_sweeps(celery_conf, settings):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "SWEEP_IN_WORKER": False}
    celery_conf.beat_schedule = {}
    assert [m.id for m in our_checks.check_sweeper_scheduled()] == ["django_async_email.W011"]
    celery_conf.beat_schedule = {"sweep": {"task": "django_async_email.tasks.requeue_stuck_emails_task",
                                           "schedule": 30}}
    assert our_checks.check_sweeper_scheduled() == []


def test_a_check_warns_when_the_sweeps_are_further_apart_than_a_lease(settings):
    # The sweeping worker wakes when the first lease it saw runs out; a lease that begins and
    # ends between two sweeps is seen only by the sweep after.
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "SWEEP_IN_WORKER": True, "SWEEP_EVERY": 60, "LEASE_SECONDS": 60}
    assert [m.id for m in our_checks.check_sweeper_scheduled()] == ["django_async_email.W012"]
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "SWEEP_EVERY": 30}
    assert our_checks.check_sweeper_scheduled() == []


def test_queue_without_a_consumer_in_the_declared_queues(celery_conf):
    from kombu import Queue

    celery_conf.task_queues = [Queue("high"), Queue("normal"), Queue("default")]
    (message,) = run(our_checks.check_delivery_safety)
    assert message.id == "django_async_email.W007" and message.msg.startswith("Queue(s) low get")
    celery_conf.task_queues = [Queue("high"), Queue("normal"), Queue("low")]
    assert run(our_checks.check_delivery_safety) == []


def test_user_types_without_a_field(settings):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "USER_TYPE_FIELD": None, "USER_TYPES": ["Artist"]}
    assert [m.id for m in run(our_checks.check_user_types)] == ["django_async_email.E008"]


def test_default_retry_policy_fits_the_default_redis_visibility_timeout(celery_conf, settings):
    celery_conf.broker_url = "redis://127.0.0.1:6379/0"
    celery_conf.broker_transport_options = {}
    del settings.ASYNC_EMAIL
    assert run(our_checks.check_delivery_safety) == []


def test_api_permission_paths_are_checked(settings):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "API_PERMISSIONS": {"system_status": ["nowhere.IsOps"]}}
    (message,) = run(our_checks.check_api_permissions)
    assert message.id == "django_async_email.E009" and "'nowhere.IsOps'" in message.msg


@pytest.mark.parametrize("domain", ["localhost", "mail.local", "box.localdomain", "vm", "LOCALHOST."])
def test_message_id_domain_that_names_no_public_host(settings, domain):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "MESSAGE_ID_DOMAIN": domain}
    assert run(our_checks.check_message_id_domain) == [
        checks.Warning(
            f"Message-IDs would end in '@{domain}', from ASYNC_EMAIL['MESSAGE_ID_DOMAIN']: not a public domain, "
            f"which does not identify the sender, and some spam filters count it against an email.",
            hint="Set ASYNC_EMAIL['MESSAGE_ID_DOMAIN'] to the domain you send from, e.g. 'mail.example.com'.",
            id="django_async_email.W009",
        )
    ]


def test_message_id_domain_falls_back_to_the_host_name(settings, monkeypatch):
    settings.ASYNC_EMAIL = {k: v for k, v in settings.ASYNC_EMAIL.items() if k != "MESSAGE_ID_DOMAIN"}
    monkeypatch.setattr("django_async_email.outbox.publishing.DNS_NAME", "localhost")
    (message,) = run(our_checks.check_message_id_domain)
    assert message.id == "django_async_email.W009" and "the machine's host name" in message.msg
    monkeypatch.setattr("django_async_email.outbox.publishing.DNS_NAME", "worker-1.example.com")
    assert run(our_checks.check_message_id_domain) == []
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "MESSAGE_ID_DOMAIN": "mail.example.com"}
    assert run(our_checks.check_message_id_domain) == []


def test_a_check_warns_when_notifications_would_have_no_unsubscribe_link(settings):
    assert our_checks.check_unsubscribe_links() == []  # the test URLconf mounts the link pages
    settings.ROOT_URLCONF = "tests.urls_without_pages"
    assert [m.id for m in our_checks.check_unsubscribe_links()] == ["django_async_email.W013"]
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "UNSUBSCRIBE_URL": "{base_url}/u/{token}",
                            "PREFERENCES_URL": "{base_url}/p/{token}"}
    assert our_checks.check_unsubscribe_links() == []
