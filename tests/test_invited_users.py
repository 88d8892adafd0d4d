"""Accepting an invitation with a host's own user manager: no 500, the type set afterwards,
a missing field refused by name, a system check that says so; the default user type."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core import checks
from django.utils import timezone

from django_async_email import checks as our_checks
from django_async_email import email_utils
from django_async_email.accounts import tokens
from django_async_email.models import FlowEvent, Invitation

pytestmark = [pytest.mark.django_db, pytest.mark.custom_user]


def _open_invitation(user_type="Artist"):
    token = tokens.make_invitation_token()
    Invitation.objects.create(email="new@example.com", user_type=user_type,
                              token_hash=tokens.hash_invitation_token(token),
                              expires_at=timezone.now() + timedelta(days=1))
    return token


@pytest.fixture
def manager_without_user_type(monkeypatch):
    """A manager like the seed platform's: create_user(username, email, password=None, **names), no user_type."""
    manager_class = type(get_user_model()._default_manager)
    original = manager_class.create_user

    def create_user(self, username, email, password=None, first_name="", last_name=""):
        return original(self, username=username, email=email, password=password,
                        first_name=first_name, last_name=last_name)

    monkeypatch.setattr(manager_class, "create_user", create_user)


def test_the_user_type_is_set_after_a_manager_that_does_not_take_it(manager_without_user_type, client):
    token = _open_invitation("Publisher")
    response = client.post("/accept-invitation", {"token": token, "new_password1": "a brand new passphrase",
                                                  "new_password2": "a brand new passphrase", "first_name": "Kofi"})
    assert response.status_code == 200, response.content
    user = get_user_model().objects.get(email="new@example.com")
    assert user.user_type == "Publisher" and user.first_name == "Kofi"
    assert Invitation.objects.get().accepted_user == user
    assert FlowEvent.objects.get(flow="invitation").outcome == "succeeded"


def test_a_field_the_manager_requires_is_refused_by_name_not_a_500(monkeypatch, client):
    manager_class = type(get_user_model()._default_manager)
    original = manager_class.create_user

    def create_user(self, email, phone, password=None):
        return original(self, username=email, email=email, password=password)

    monkeypatch.setattr(manager_class, "create_user", create_user)
    token = _open_invitation()
    response = client.post("/accept-invitation", {"token": token, "new_password1": "a brand new passphrase",
                                                  "new_password2": "a brand new passphrase"})
    assert response.status_code == 400 and "needs phone" in response.content.decode()
    assert Invitation.objects.get().accepted_at is None
    assert FlowEvent.objects.get(flow="invitation").outcome == "rejected"


def test_a_system_check_warns_when_create_user_cannot_take_the_user_type(manager_without_user_type, settings):
    assert [m.id for m in our_checks.check_invited_user_creation()] == ["django_async_email.W008"]
    assert isinstance(our_checks.check_invited_user_creation()[0], checks.Warning)
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "ADAPTER": "tests.adapters.InvitedUsersAreStaffAdapter"}
    assert our_checks.check_invited_user_creation() == []  # the host creates users itself


def test_no_warning_when_the_manager_takes_the_type():
    assert our_checks.check_invited_user_creation() == []


def test_an_omitted_user_type_is_the_first_configured_one(make_user, published, settings):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "USER_TYPES": ["Station", "Artist"]}
    email_utils.send_invitation_email(make_user(is_staff=True), "new@example.com")
    assert Invitation.objects.get().user_type == "Station"
