from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AsyncEmailConfig(AppConfig):
    name = "django_async_email"
    verbose_name = _("Async email")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Django's app-loading rule: these import the models, which exist only from ready() on.
        # The tasks are imported so that they are registered in every Celery app, where the
        # request side looks them up by name (outbox.publishing.task_named).
        from . import checks, tasks  # noqa: F401

        checks.register()

    @property
    def task_routes(self) -> dict:
        """Celery ``task_routes`` for this package's tasks, from the current settings.

        For hosts that call the tasks directly: ``app.conf.task_routes = apps.get_app_config(
        "django_async_email").task_routes`` (or use ``django_async_email.outbox.routing.route_task``).
        """
        # Imported here: the routing table names the model's kinds, and apps.py is imported
        # before the models are (Django's app-loading rule).
        from .outbox.routing import task_routes

        return task_routes()

    @property
    def queue_names(self) -> list:
        """The queues a worker must consume (``celery worker -Q ...``)."""
        from .outbox.routing import queue_names  # after app loading, as above

        return queue_names()
