from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AsyncEmailConfig(AppConfig):
    name = "django_async_email"
    verbose_name = _("Async email")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import checks

        checks.register()

    @property
    def task_routes(self) -> dict:
        """Celery ``task_routes`` for this package's tasks, from the current settings.

        For hosts that call the tasks directly: ``app.conf.task_routes = apps.get_app_config(
        "django_async_email").task_routes`` (or use ``django_async_email.routing.route_task``).
        """
        from .routing import task_routes

        return task_routes()

    @property
    def queue_names(self) -> list:
        """The queues a worker must consume (``celery worker -Q ...``)."""
        from .routing import queue_names

        return queue_names()
