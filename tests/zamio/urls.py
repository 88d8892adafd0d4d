from django.urls import include, path
from rest_framework_simplejwt.views import TokenObtainPairView

from .api import SignUpView

urlpatterns = [
    path("api/accounts/signup/", SignUpView.as_view()),
    path("api/accounts/token/", TokenObtainPairView.as_view()),
    # docs/migration.md, step 6: the package's endpoints where the hand-written ones were
    path("api/accounts/email/", include("django_async_email.urls")),
    # docs/migration.md, step 5: pages for the invitation link
    path("", include("django_async_email.web.link_urls")),
]
