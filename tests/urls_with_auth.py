"""The test URLconf plus Django's own auth views, for Django's PasswordResetForm email."""

from django.urls import include, path

from tests.urls import urlpatterns as test_urlpatterns

urlpatterns = [*test_urlpatterns, path("accounts/", include("django.contrib.auth.urls"))]
