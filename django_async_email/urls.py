"""``include("django_async_email.urls")``: the REST API (``api/urls.py``). Needs the ``drf`` extra."""

from .api.urls import app_name, urlpatterns

__all__ = ["app_name", "urlpatterns"]
