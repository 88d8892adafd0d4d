import pytest
from django.apps import apps

from django_async_email import tasks
from django_async_email.outbox import routing
from tests.celery_app import app as host_app


def test_tasks_have_the_seed_names_and_bind_to_the_host_app():
    names = {
        "send_email_verification_task", "send_password_reset_email_task", "send_user_invitation_email_task",
        "send_notification_email_task", "send_bulk_notification_email_task",
    }
    for name in names:
        task = getattr(tasks, name)
        assert task.name == f"django_async_email.tasks.{name}"
        assert task.app is host_app
        assert f"django_async_email.tasks.{name}" in host_app.tasks


def test_tasks_ack_late_because_delivery_is_idempotent():
    assert tasks.send_notification_email_task.acks_late is True
    assert tasks.send_notification_email_task.reject_on_worker_lost is True


def test_routing_table_from_the_app_config(settings):
    routes = apps.get_app_config("django_async_email").task_routes
    assert routes["django_async_email.tasks.send_email_verification_task"] == {"queue": "high"}
    assert routes["django_async_email.tasks.send_password_reset_email_task"] == {"queue": "high"}
    assert routes["django_async_email.tasks.send_user_invitation_email_task"] == {"queue": "normal"}
    assert routes["django_async_email.tasks.send_notification_email_task"] == {"queue": "normal"}
    assert routes["django_async_email.tasks.send_bulk_notification_email_task"] == {"queue": "low"}
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "QUEUES": {"high": "a", "normal": "b", "low": "c"},
                            "QUEUE_PRIORITIES": {"low": 1}}
    routes = apps.get_app_config("django_async_email").task_routes
    assert routes["django_async_email.tasks.send_bulk_notification_email_task"] == {"queue": "c", "priority": 1}
    assert apps.get_app_config("django_async_email").queue_names == ["a", "b", "c"]


def test_router_function_for_hosts_that_call_tasks_directly():
    assert routing.route_task("django_async_email.tasks.send_email_verification_task", [], {}, {}) == {"queue": "high"}
    assert routing.route_task("someone.else.task", [], {}, {}) is None


def test_celery_uses_the_router_when_configured():
    """A host that sets task_routes to our router gets the split for direct .delay() calls."""
    from celery import Celery

    app = Celery("router-check", set_as_current=False)
    app.conf.task_routes = ["django_async_email.outbox.routing.route_task"]
    route = app.amqp.router.route({}, "django_async_email.tasks.send_bulk_notification_email_task")
    assert route["queue"].name == "low"


@pytest.mark.django_db
def test_admin_is_read_only_with_filters(admin_client, make_user, published):
    from django_async_email import email_utils
    from django_async_email.models import OutboxEmail

    email_utils.send_welcome_email(make_user(email="ann@example.com"))
    row = OutboxEmail.objects.get()
    changelist = admin_client.get("/admin/django_async_email/outboxemail/")
    assert changelist.status_code == 200
    content = changelist.content.decode()
    assert "ann@example.com" in content
    for filter_title in ("By status", "By kind", "By created"):
        assert filter_title in content
    filtered = admin_client.get("/admin/django_async_email/outboxemail/?status__exact=sent")
    assert "ann@example.com" not in filtered.content.decode().split("results")[-1]
    assert admin_client.get("/admin/django_async_email/outboxemail/add/").status_code == 403
    detail = admin_client.get(f"/admin/django_async_email/outboxemail/{row.pk}/change/")
    assert detail.status_code == 200 and "ann@example.com" in detail.content.decode()
    assert b'name="_save"' not in detail.content
    assert admin_client.post(f"/admin/django_async_email/outboxemail/{row.pk}/delete/").status_code == 403
