"""REST for one-time codes and the anonymous resend: same answers whatever the account,
errors through the host's exception handler, attempts that stay spent, throttles."""

import re

import pytest

pytest.importorskip("rest_framework")

from django.core import mail  # noqa: E402
from django.core.cache import cache  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from django_async_email import email_utils  # noqa: E402
from django_async_email.api.views import VERIFICATION_REQUESTED  # noqa: E402
from django_async_email.delivery.address_lookup import resolve_address_requests  # noqa: E402
from django_async_email.delivery.pipeline import deliver_emails  # noqa: E402
from django_async_email.exceptions import CodeError  # noqa: E402
from django_async_email.models import OneTimeCode, OutboxEmail  # noqa: E402

BASE = "/api/accounts/email/"
CODE_LINE = re.compile(r"^(\d{4,10})$", re.M)
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def codes_on(settings):
    cache.clear()
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "VERIFICATION_METHOD": "code", "PASSWORD_RESET_METHOD": "both"}
    yield
    cache.clear()


@pytest.fixture
def api():
    return APIClient()


def _deliver():
    ids = list(OutboxEmail.objects.filter(status="queued").values_list("pk", flat=True))
    deliver_emails(resolve_address_requests(ids))
    return CODE_LINE.findall(mail.outbox[-1].body)[0]


def _wrong(code):
    return "000000" if code != "000000" else "111111"


def test_verify_by_code_and_the_same_400_for_wrong_unknown_and_spent(api, make_user, published):
    make_user(email="ann@example.com")
    assert api.post(BASE + "resend-verification/", {"email": "ann@example.com"}, format="json").status_code == 202
    code = _deliver()
    bad = [api.post(BASE + "verify-email-code/", body, format="json") for body in (
        {"email": "ann@example.com", "code": _wrong(code)},
        {"email": "nobody@example.com", "code": code},
    )]
    ok = api.post(BASE + "verify-email-code/", {"email": "ann@example.com", "code": code}, format="json")
    assert ok.status_code == 200, ok.content
    bad.append(api.post(BASE + "verify-email-code/", {"email": "ann@example.com", "code": code}, format="json"))
    assert {r.status_code for r in bad} == {400}
    assert {r.content for r in bad} == {b'{"detail":"%s"}' % CodeError.public_message.encode()}


def test_reset_by_code_with_a_confirmation_field(api, make_user, published):
    user = make_user(email="ann@example.com")
    api.post(BASE + "request-password-reset/", {"email": "ann@example.com"}, format="json")
    code = _deliver()
    url = BASE + "confirm-password-reset-code/"
    body = {"email": "ann@example.com", "code": code, "new_password": "a brand new passphrase"}
    differs = api.post(url, {**body, "re_new_password": "something else entirely"}, format="json")
    assert differs.status_code == 400 and list(differs.json()) == ["re_new_password"]
    response = api.post(url, {**body, "re_new_password": body["new_password"]}, format="json")
    assert response.status_code == 200, response.content
    user.refresh_from_db()
    assert user.check_password("a brand new passphrase")


def test_the_link_reset_endpoint_takes_the_confirmation_too(api, make_user):
    response = api.post(BASE + "confirm-password-reset/", {
        "uid": "MQ", "token": "x", "new_password": "a brand new passphrase", "re_new_password": "other"},
        format="json")
    assert response.status_code == 400 and list(response.json()) == ["re_new_password"]


def test_anonymous_resend_answers_the_same_for_any_address(api, make_user, published):
    make_user(email="waiting@example.com")
    verified = make_user(email="done@example.com")
    email_utils.send_verification_email(verified)
    email_utils.verify_email_with_code("done@example.com", _deliver())
    answers = [api.post(BASE + "resend-verification/", {"email": a}, format="json")
               for a in ("waiting@example.com", "done@example.com", "nobody@example.com")]
    assert {(r.status_code, r.content) for r in answers} == {
        (202, b'{"detail":"%s"}' % VERIFICATION_REQUESTED.encode())}


def test_a_signed_in_user_keeps_the_old_behaviour(make_user, published):
    client = APIClient()
    user = make_user()
    client.force_authenticate(user)
    response = client.post(BASE + "resend-verification/", {}, format="json")
    assert response.status_code == 202 and "task_id" in response.json()


@pytest.mark.django_db(transaction=True)
def test_spent_attempts_stay_spent_under_atomic_requests(api, make_user, published, settings):
    settings.DATABASES["default"]["ATOMIC_REQUESTS"] = True
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "CODE_MAX_ATTEMPTS": 3}
    make_user(email="ann@example.com")
    email_utils.request_password_reset("ann@example.com")
    code = _deliver()
    body = {"email": "ann@example.com", "new_password": "a brand new passphrase"}
    for _ in range(3):
        response = api.post(BASE + "confirm-password-reset-code/", {**body, "code": _wrong(code)}, format="json")
        assert response.status_code == 400
    assert OneTimeCode.objects.get().attempts == 3
    right = api.post(BASE + "confirm-password-reset-code/", {**body, "code": code}, format="json")
    assert right.status_code == 400  # out of attempts: the right code no longer works


def test_code_endpoints_are_throttled_per_address_and_per_ip(api, settings):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "THROTTLE_RATES": {"code_address": "3/hour", "code_ip": "5/hour"}}
    url = BASE + "verify-email-code/"
    statuses = [api.post(url, {"email": "ann@example.com", "code": "123456"}, format="json").status_code
                for _ in range(4)]
    assert statuses == [400, 400, 400, 429]
    statuses = [api.post(url, {"email": f"other{i}@example.com", "code": "123456"}, format="json").status_code
                for i in range(3)]
    # Every request counts for the IP, the throttled fourth one too: the fifth passes, then none.
    assert statuses == [400, 429, 429]


def custom_handler(exc, context):
    """A host's handler: every error in one envelope."""
    from rest_framework.views import exception_handler

    response = exception_handler(exc, context)
    if response is not None:
        response.data = {"ok": False, "status": response.status_code, "errors": response.data}
    return response


@pytest.mark.custom_user
def test_every_error_goes_through_the_hosts_exception_handler(api, make_user, settings, published):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "EXCEPTION_HANDLER": "tests.test_api_codes.custom_handler"}
    make_user(email="taken@example.com")
    staff = APIClient()
    staff.force_authenticate(make_user(is_staff=True))
    signed_in = APIClient()
    verified = make_user(email_verified=True)
    signed_in.force_authenticate(verified)
    answers = [
        api.post(BASE + "verify-email-code/", {"email": "x@example.com", "code": "1"}, format="json"),  # token
        api.post(BASE + "verify-email/", {"uid": "MQ", "token": "bad"}, format="json"),  # token
        api.post(BASE + "request-password-reset/", {"email": "not an address"}, format="json"),  # serializer
        staff.post(BASE + "send-invitation/", {"email": "taken@example.com", "user_type": "Artist"},
                   format="json"),  # the Python API's InvalidEmailInput
        staff.post(BASE + "send-notification-to-users/", {"user_ids": [999999], "subject": "s", "message": "m"},
                   format="json"),  # the Python API's InvalidEmailInput
        signed_in.post(BASE + "resend-verification/", {}, format="json"),  # already verified
        api.post(BASE + "confirm-password-reset/", {"uid": "MQ", "token": "t", "new_password": "x",
                                                   "re_new_password": "y"}, format="json"),
    ]
    for response in answers:
        assert response.status_code == 400, response.content
        assert response.json()["ok"] is False and response.json()["status"] == 400, response.content
    assert "email" in answers[3].json()["errors"] and "user_ids" in answers[4].json()["errors"]
