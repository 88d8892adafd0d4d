"""No password, token or code in the error report an admin gets when a view fails."""

from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from django_async_email.accounts import tokens
from django_async_email.adapter import DefaultAdapter
from django_async_email.models import Invitation

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple 42"


@pytest.fixture
def broken_account_creation(monkeypatch, settings):
    settings.ADMINS = [("Ops", "ops@zamio.test")]
    settings.DEBUG = False

    def fail(self, invitation, password, **profile_fields):
        raise RuntimeError("the host's user table is down")

    monkeypatch.setattr(DefaultAdapter, "create_invited_user", fail)
    token = tokens.make_invitation_token()
    Invitation.objects.create(email="new@example.com", user_type="Artist",
                              token_hash=tokens.hash_invitation_token(token),
                              expires_at=timezone.now() + timedelta(days=1))
    return token


def _report():
    (report,) = [m for m in mail.outbox if m.to == ["ops@zamio.test"]]
    return report.body + "".join(content for content, _type in getattr(report, "alternatives", []))


def test_the_link_page_error_report_hides_the_password_and_token(broken_account_creation):
    client = Client(raise_request_exception=False)
    response = client.post("/accept-invitation", {"token": broken_account_creation, "new_password1": PASSWORD,
                                                  "new_password2": PASSWORD})
    assert response.status_code == 500
    report = _report()
    assert "RuntimeError" in report  # it is the report of this failure
    assert PASSWORD not in report and broken_account_creation not in report


def test_the_rest_error_report_hides_the_password_and_token(broken_account_creation):
    pytest.importorskip("rest_framework")
    client = Client(raise_request_exception=False)
    response = client.post("/api/accounts/email/accept-invitation/",
                           {"token": broken_account_creation, "password": PASSWORD}, content_type="application/json")
    assert response.status_code == 500
    report = _report()
    assert "RuntimeError" in report
    assert PASSWORD not in report and broken_account_creation not in report
