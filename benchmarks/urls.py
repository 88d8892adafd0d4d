"""The benchmark host's URLconf: the link pages, mounted as the README tells a host to, so
notifications carry their unsubscribe links as they do in production."""

from django.urls import include, path

urlpatterns = [path("", include("django_async_email.web.link_urls"))]
