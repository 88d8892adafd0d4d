"""The admin, the package's link pages and, once the package ships it, its REST API."""

from importlib.util import find_spec

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
]

# Both modules are optional parts of the package; include each only if this version has
# it. The REST API also needs the `drf` extra (djangorestframework).
if find_spec("django_async_email.urls") is not None and find_spec("rest_framework") is not None:
    urlpatterns.append(path("api/accounts/email/", include("django_async_email.urls")))
if find_spec("django_async_email.web.link_urls") is not None:
    # The pages behind the links in the emails (default ASYNC_EMAIL *_URL templates).
    urlpatterns.append(path("", include("django_async_email.web.link_urls")))
