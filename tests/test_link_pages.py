"""The pages behind the links: GET never consumes a token; POST does."""

import pytest

from django_async_email.accounts import tokens
from django_async_email.accounts.verification import is_verified
from django_async_email.exceptions import TokenError
from django_async_email.models import Invitation

pytestmark = pytest.mark.django_db


def test_get_on_the_verification_link_consumes_nothing(client, make_user):
    user = make_user()
    uid, token = tokens.encode_uid(user.pk), tokens.verification_token_generator.make_token(user)
    for _ in range(3):  # a mail scanner, a preview, the person
        page = client.get("/verify-email", {"uid": uid, "token": token})
        assert page.status_code == 200
        assert page["Referrer-Policy"] == "no-referrer"
        assert "no-store" in page["Cache-Control"]
    assert not is_verified(user)
    done = client.post("/verify-email", {"uid": uid, "token": token})
    assert done.status_code == 200 and "Your email address is confirmed." in done.content.decode()
    assert is_verified(user)
    again = client.post("/verify-email", {"uid": uid, "token": token})
    assert again.status_code == 400 and TokenError.public_message in again.content.decode()


def test_reset_page(client, make_user):
    user = make_user()
    uid, token = tokens.encode_uid(user.pk), tokens.password_reset_token_generator.make_token(user)
    assert client.get("/reset-password", {"uid": uid, "token": "1-bad"}).status_code == 400
    page = client.get("/reset-password", {"uid": uid, "token": token})
    assert page.status_code == 200 and 'name="new_password1"' in page.content.decode()
    user.refresh_from_db()
    assert user.check_password("correct horse battery")
    weak = client.post("/reset-password", {"uid": uid, "token": token, "new_password1": "abc", "new_password2": "abc"})
    assert weak.status_code == 400 and "too short" in weak.content.decode()
    mismatch = client.post("/reset-password", {"uid": uid, "token": token, "new_password1": "a brand new passphrase",
                                               "new_password2": "another passphrase"})
    assert mismatch.status_code == 400
    ok = client.post("/reset-password", {"uid": uid, "token": token, "new_password1": "a brand new passphrase",
                                         "new_password2": "a brand new passphrase"})
    assert ok.status_code == 200
    user.refresh_from_db()
    assert user.check_password("a brand new passphrase")


def test_invitation_page(client, make_user, published):
    from datetime import timedelta

    from django.utils import timezone

    token = tokens.make_invitation_token()
    Invitation.objects.create(email="new@example.com", user_type="Artist",
                              token_hash=tokens.hash_invitation_token(token),
                              expires_at=timezone.now() + timedelta(days=1))
    page = client.get("/accept-invitation", {"token": token})
    assert page.status_code == 200 and "new@example.com" in page.content.decode()
    assert Invitation.objects.get().accepted_at is None
    ok = client.post("/accept-invitation", {"token": token, "new_password1": "a brand new passphrase",
                                            "new_password2": "a brand new passphrase", "first_name": "Kofi"})
    assert ok.status_code == 200
    assert Invitation.objects.get().accepted_user.first_name == "Kofi"
    assert client.get("/accept-invitation", {"token": token}).status_code == 400


def test_the_link_pages_enforce_csrf(make_user, settings):
    from django.test import Client

    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "django.middleware.csrf.CsrfViewMiddleware"]
    user = make_user()
    uid, token = tokens.encode_uid(user.pk), tokens.verification_token_generator.make_token(user)
    forged = Client(enforce_csrf_checks=True).post("/verify-email", {"uid": uid, "token": token})
    assert forged.status_code == 403 and not is_verified(user)
