"""A host URLconf that mounts the REST API but not the link pages (for check W013)."""

from django.urls import include, path

urlpatterns = [path("api/email/", include("django_async_email.urls"))]
