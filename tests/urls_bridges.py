"""The test URLconf plus allauth's account views and djoser's REST endpoints, for the bridges."""

from django.conf import settings
from django.urls import include, path

from tests.urls import urlpatterns as test_urlpatterns

urlpatterns = [*test_urlpatterns, path("accounts/", include("allauth.urls"))]
if settings.HAVE_DJOSER:  # djoser needs DRF: not in the nodrf run
    urlpatterns.append(path("auth/", include("djoser.urls")))
