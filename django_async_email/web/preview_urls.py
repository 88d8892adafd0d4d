"""URLs for the staff-only email previews."""

from django.urls import path

from . import previews

app_name = "django_async_email_previews"

urlpatterns = [
    path("", previews.PreviewIndexView.as_view(), name="index"),
    path("<slug:kind>/", previews.PreviewDetailView.as_view(), name="detail"),
    path("<slug:kind>/html/", previews.PreviewHTMLView.as_view(), name="html"),
]
