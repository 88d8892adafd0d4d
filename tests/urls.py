from django.conf import settings
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("django_async_email.web.link_urls")),
    path("emails/previews/", include("django_async_email.web.preview_urls")),
]
if settings.HAVE_DRF:
    urlpatterns.append(path("api/accounts/email/", include("django_async_email.urls")))
    if settings.HAVE_SPECTACULAR:
        from drf_spectacular.views import SpectacularAPIView

        urlpatterns.append(path("api/schema/", SpectacularAPIView.as_view(), name="schema"))
