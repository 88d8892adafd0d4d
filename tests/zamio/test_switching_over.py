"""docs/migration.md, run as an adopter runs it: the platform's own user model, JWT auth,
error envelope and code-typing front ends, against a real worker, broker and SMTP server.

Nothing here reaches into the package: the front ends only call HTTP endpoints and read
the emails the SMTP server received, as the SPA, the mobile app and a person would.
"""

import re

import pytest
from django.core import management
from rest_framework.test import APIClient

from tests.zamio.accounts.models import Member

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

EMAIL = "/api/accounts/email/"
CODE_LINE = re.compile(r"^(\d{4,10})$", re.M)


@pytest.fixture
def front_end(celery_worker, smtp):
    return APIClient()


def _mail_to(smtp, wait_for, address, count=1):
    messages = wait_for(lambda: smtp.messages_to(address) if len(smtp.messages_to(address)) >= count else None,
                        message=f"{count} email(s) to {address}")
    return messages[count - 1]


def _code_in(message) -> str:
    text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    (code,) = CODE_LINE.findall(text)
    assert "verify-email?" not in text and "reset-password?" not in text  # codes only: no links
    return code


def _signed_in(email, password):
    client = APIClient()
    tokens = client.post("/api/accounts/token/", {"email": email, "password": password}, format="json")
    assert tokens.status_code == 200, tokens.content
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens.json()['access']}")
    return client


def test_sign_up_and_verify_by_code(front_end, smtp, wait_for):
    signed_up = front_end.post("/api/accounts/signup/", {"email": "kwame@zamio.test", "password": "a long passphrase",
                                                         "first_name": "Kwame"}, format="json")
    assert signed_up.status_code == 201, signed_up.content
    message = _mail_to(smtp, wait_for, "kwame@zamio.test")
    assert "Hello Kwame," in message.get_body(("plain",)).get_content()
    code = _code_in(message)

    wrong = front_end.post(EMAIL + "verify-email-code/", {"email": "kwame@zamio.test", "code": "0" * len(code)
                                                          if code != "0" * len(code) else "1" * len(code)},
                           format="json")
    assert wrong.status_code == 400
    assert wrong.json() == {"success": False, "status": 400, "errors": {
        "detail": "This code is invalid, has expired, or was already used."}}  # the platform's envelope
    done = front_end.post(EMAIL + "verify-email-code/", {"email": "kwame@zamio.test", "code": code}, format="json")
    assert done.status_code == 200, done.content
    assert Member.objects.get(email="kwame@zamio.test").email_verified is True


def test_the_lost_verification_email_is_sent_again_to_an_anonymous_caller(front_end, smtp, wait_for):
    Member.objects.create_user("ama@zamio.test", "Ama", password="a long passphrase")
    answers = [front_end.post(EMAIL + "resend-verification/", {"email": address}, format="json")
               for address in ("ama@zamio.test", "nobody@zamio.test")]
    assert {a.status_code for a in answers} == {202} and answers[0].content == answers[1].content
    code = _code_in(_mail_to(smtp, wait_for, "ama@zamio.test"))
    assert front_end.post(EMAIL + "verify-email-code/", {"email": "ama@zamio.test", "code": code},
                          format="json").status_code == 200
    assert smtp.messages_to("nobody@zamio.test") == []


def test_the_stations_app_resets_by_code(front_end, smtp, wait_for):
    Member.objects.create_user("station@zamio.test", "Joy FM", password="the old passphrase")
    assert front_end.post(EMAIL + "request-password-reset/", {"email": "station@zamio.test"},
                          format="json").status_code == 202
    code = _code_in(_mail_to(smtp, wait_for, "station@zamio.test"))
    body = {"email": "station@zamio.test", "code": code, "new_password": "a new long passphrase"}
    mismatch = front_end.post(EMAIL + "confirm-password-reset-code/", {**body, "re_new_password": "typo"},
                              format="json")
    assert mismatch.status_code == 400 and list(mismatch.json()["errors"]) == ["re_new_password"]
    done = front_end.post(EMAIL + "confirm-password-reset-code/", {**body, "re_new_password": body["new_password"]},
                          format="json")
    assert done.status_code == 200, done.content
    changed = _mail_to(smtp, wait_for, "station@zamio.test", count=2)
    assert "password" in str(changed["Subject"]).lower() and "changed" in str(changed["Subject"]).lower()
    _signed_in("station@zamio.test", "a new long passphrase")  # the JWT login takes the new password
    spent = front_end.post(EMAIL + "confirm-password-reset-code/", body, format="json")
    assert spent.status_code == 400 and spent.json()["errors"]["detail"].startswith("This code is invalid")


def test_an_admin_invites_and_the_invited_artist_signs_up_without_a_500(front_end, smtp, wait_for):
    Member.objects.create_superuser("admin@zamio.test", password="an admin passphrase")
    admin = _signed_in("admin@zamio.test", "an admin passphrase")
    invited = admin.post(EMAIL + "send-invitation/", {"email": "efua@zamio.test", "user_type": "Artist"},
                         format="json")
    assert invited.status_code == 202, invited.content
    text = _mail_to(smtp, wait_for, "efua@zamio.test").get_body(("plain",)).get_content()
    token = re.search(r"accept-invitation\?token=([\w-]+)", text).group(1)
    accepted = front_end.post(EMAIL + "accept-invitation/", {"token": token, "password": "efua's passphrase",
                                                             "first_name": "Efua"}, format="json")
    assert accepted.status_code == 201, accepted.content
    efua = Member.objects.get(email="efua@zamio.test")
    assert efua.user_type == "Artist" and efua.first_name == "Efua" and efua.check_password("efua's passphrase")
    # Inviting an address that has an account: the Python API's refusal, in the platform's envelope.
    again = admin.post(EMAIL + "send-invitation/", {"email": "efua@zamio.test", "user_type": "Artist"},
                       format="json")
    assert again.status_code == 400 and again.json()["success"] is False and "email" in again.json()["errors"]


def test_the_checks_an_adopter_sees(capsys):
    management.call_command("check", "--tag", "django_async_email")
    out = capsys.readouterr()
    assert "W008" in out.out + out.err  # create_user() takes no user type: set afterwards, documented
    assert "W006" not in out.out + out.err  # the defaults: the lease outlasts a send timeout
