"""One-time codes for verification and password reset: minted in the worker, stored hashed,
single use, expiring, attempt-limited, replaced by a newer one; the Python API and REST."""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from django_async_email import email_utils
from django_async_email.accounts import flows
from django_async_email.accounts.verification import is_verified
from django_async_email.delivery.address_lookup import resolve_address_requests
from django_async_email.delivery.pipeline import deliver_emails
from django_async_email.exceptions import CodeError, InvalidEmailInput, TokenError
from django_async_email.models import FlowEvent, Kind, OneTimeCode, OutboxEmail

pytestmark = pytest.mark.django_db

CODE_LINE = re.compile(r"^(\d{4,10})$", re.M)


@pytest.fixture
def codes_on(settings):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "VERIFICATION_METHOD": "code", "PASSWORD_RESET_METHOD": "code"}


def _deliver_latest():
    ids = list(OutboxEmail.objects.filter(status="queued").values_list("pk", flat=True))
    deliver_emails(resolve_address_requests(ids))
    return mail.outbox[-1]


def _code_of(message) -> str:
    (code,) = CODE_LINE.findall(message.body)
    return code


def test_the_code_is_minted_in_the_worker_on_a_line_of_its_own_and_only_its_hash_is_kept(
        codes_on, make_user, published):
    user = make_user(email="ann@example.com")
    email_utils.send_verification_email(user)
    assert not OneTimeCode.objects.exists()  # nothing is minted on the request path
    message = _deliver_latest()
    code = _code_of(message)
    assert len(code) == 6 and "verify-email?" not in message.body  # "code" only: no link
    assert code in message.alternatives[0][0]
    stored = OneTimeCode.objects.get()
    assert stored.code_hash != code and code not in stored.code_hash and len(stored.code_hash) == 64
    row = OutboxEmail.objects.get()
    assert code not in str(row.context) + row.last_error + str(published)
    assert email_utils.verify_email_with_code("ann@example.com", code) == user
    user.refresh_from_db()
    assert is_verified(user)
    assert FlowEvent.objects.get(outcome="succeeded").flow == "verification"


def test_both_methods_send_the_link_and_the_code(settings, make_user, published):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "VERIFICATION_METHOD": "both", "CODE_LENGTH": 8}
    email_utils.send_verification_email(make_user())
    message = _deliver_latest()
    assert "verify-email?uid=" in message.body and len(_code_of(message)) == 8


def test_a_code_works_once(codes_on, make_user, published):
    email_utils.send_verification_email(make_user(email="ann@example.com"))
    code = _code_of(_deliver_latest())
    email_utils.verify_email_with_code("ann@example.com", code)
    with pytest.raises(CodeError):
        email_utils.verify_email_with_code("ann@example.com", code)


def test_a_wrong_an_expired_and_an_unknown_address_get_the_same_error(codes_on, make_user, published):
    make_user(email="ann@example.com")
    email_utils.request_password_reset("ann@example.com")
    code = _code_of(_deliver_latest())
    wrong = "000000" if code != "000000" else "111111"
    errors = []
    for email, attempt, now in [("ann@example.com", wrong, None), ("nobody@example.com", code, None),
                                ("ann@example.com", code, timezone.now() + timedelta(seconds=901))]:
        with pytest.raises(CodeError) as raised:
            email_utils.reset_password_with_code(email, attempt, "a brand new passphrase") if now is None else \
                flows.reset_password_with_code(email, attempt, "a brand new passphrase", now=now)
        errors.append(str(raised.value))
    assert len(set(errors)) == 1 and errors[0] == CodeError.public_message
    assert isinstance(raised.value, TokenError)
    assert set(FlowEvent.objects.values_list("outcome", flat=True)) >= {"invalid", "expired"}


def test_a_code_dies_after_the_maximum_of_attempts_even_the_right_one(codes_on, make_user, published, settings):
    make_user(email="ann@example.com")
    email_utils.request_password_reset("ann@example.com")
    code = _code_of(_deliver_latest())
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(settings.ASYNC_EMAIL.get("CODE_MAX_ATTEMPTS", 5)):
        with pytest.raises(CodeError):
            email_utils.reset_password_with_code("ann@example.com", wrong, "a brand new passphrase")
    with pytest.raises(CodeError) as raised:
        email_utils.reset_password_with_code("ann@example.com", code, "a brand new passphrase")
    assert raised.value.reason == "exhausted"
    assert OneTimeCode.objects.get().attempts == 5


def test_a_newer_code_replaces_the_older_one(codes_on, make_user, published):
    user = make_user(email="ann@example.com")
    email_utils.send_verification_email(user)
    first = _code_of(_deliver_latest())
    email_utils.send_verification_email(user)
    second = _code_of(_deliver_latest())
    assert OneTimeCode.objects.count() == 1
    if first != second:
        with pytest.raises(CodeError):
            email_utils.verify_email_with_code("ann@example.com", first)
    assert email_utils.verify_email_with_code("ann@example.com", second) == user


def test_codes_survive_a_key_rotation(codes_on, make_user, published, settings):
    user = make_user(email="ann@example.com")
    email_utils.send_verification_email(user)
    code = _code_of(_deliver_latest())
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-new-key-after-rotation"
    assert email_utils.verify_email_with_code("ann@example.com", code) == user


def test_a_code_is_bound_to_the_account_state(codes_on, make_user, published):
    user = make_user(email="ann@example.com")
    email_utils.request_password_reset("ann@example.com")
    code = _code_of(_deliver_latest())
    user.set_password("changed elsewhere meanwhile")
    user.save()
    with pytest.raises(CodeError):
        email_utils.reset_password_with_code("ann@example.com", code, "a brand new passphrase")


def test_reset_by_code_applies_the_validators_keeps_the_code_and_sends_the_notice(codes_on, make_user, published):
    user = make_user(email="ann@example.com")
    email_utils.request_password_reset("ann@example.com")
    code = _code_of(_deliver_latest())
    with pytest.raises(InvalidEmailInput) as refused:
        email_utils.reset_password_with_code("ann@example.com", code, "short")
    assert refused.value.field == "new_password"
    email_utils.reset_password_with_code("ann@example.com", code, "a brand new passphrase")
    user.refresh_from_db()
    assert user.check_password("a brand new passphrase")
    assert OutboxEmail.objects.filter(kind=Kind.PASSWORD_CHANGED, user=user).count() == 1
    assert FlowEvent.objects.filter(flow="password_reset", outcome="succeeded").count() == 1


def test_a_verification_code_cannot_reset_a_password(settings, make_user, published):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "VERIFICATION_METHOD": "code"}
    email_utils.send_verification_email(make_user(email="ann@example.com"))
    code = _code_of(_deliver_latest())
    with pytest.raises(CodeError):
        email_utils.reset_password_with_code("ann@example.com", code, "a brand new passphrase")


def test_the_link_method_mints_no_code(make_user, published):
    email_utils.send_verification_email(make_user())
    message = _deliver_latest()
    assert not CODE_LINE.findall(message.body) and not OneTimeCode.objects.exists()


def test_anonymous_resend_goes_only_to_an_unverified_account(codes_on, make_user, published):
    waiting = make_user(email="waiting@example.com")
    done = make_user(email="done@example.com")
    email_utils.send_verification_email(done)
    email_utils.verify_email_with_code("done@example.com", _code_of(_deliver_latest()))
    sent_before = len(mail.outbox)
    for address in ("waiting@example.com", "done@example.com", "nobody@example.com"):
        email_utils.request_verification_email(address)
    _deliver_latest()
    assert [m.to for m in mail.outbox[sent_before:]] == [["waiting@example.com"]]
    assert OutboxEmail.objects.filter(status="suppressed").count() == 2
    assert email_utils.verify_email_with_code("waiting@example.com", _code_of(mail.outbox[-1])) == waiting
