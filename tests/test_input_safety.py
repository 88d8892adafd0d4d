"""Property-based tests of what users can type: no header injection, HTML always escaped,
addresses within RFC limits."""

import string

import pytest
from django.core import mail
from hypothesis import HealthCheck, assume, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from django_async_email import email_utils
from django_async_email.delivery.pipeline import deliver_emails
from django_async_email.exceptions import InvalidEmailInput
from django_async_email.models import OutboxEmail
from django_async_email.outbox.validation import CONTROL_CHARACTERS, clean_address

pytestmark = pytest.mark.django_db
PROPERTY = hsettings(max_examples=60, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
nasty_text = st.lists(st.sampled_from(list("ab <>&\"'\r\n\t\x0b\x0c\u2028\u0085é") + ["<x-inject>"]),
                      min_size=1, max_size=30).map("".join)


def _headers(message):
    return message.message().items()


def _send_all():
    deliver_emails(list(OutboxEmail.objects.filter(status="queued").values_list("pk", flat=True)))
    return mail.outbox[-1]


@PROPERTY
@given(subject=nasty_text, message=nasty_text)
def test_notification_subject_never_breaks_a_header_and_html_is_escaped(make_user, published, subject, message):
    OutboxEmail.objects.all().delete()
    user = make_user()
    try:
        email_utils.send_notification_to_users([user.pk], subject, message)
    except InvalidEmailInput as exc:
        assert exc.field in ("subject", "message")
        assert (any(c in subject for c in "\r\n") or not subject.strip() or not message.strip()
                or CONTROL_CHARACTERS.search(subject + message))
        return
    sent = _send_all()
    for name, value in _headers(sent):
        assert "\r" not in value and "\n" not in value.replace("\n ", "").replace("\n\t", ""), (name, value)
    html = sent.alternatives[0][0]
    assert "<x-inject>" not in html
    assert "<x-inject>" in sent.body or "<x-inject>" not in message


@PROPERTY
@given(first_name=nasty_text, last_name=nasty_text)
def test_names_from_the_database_cannot_inject_headers(make_user, published, first_name, last_name):
    OutboxEmail.objects.all().delete()
    inviter = make_user(first_name=first_name[:150], last_name=last_name[:150])
    email_utils.send_invitation_email(inviter, f"new{inviter.pk}@example.com", "Artist")
    sent = _send_all()
    assert "\n" not in sent.subject and "\r" not in sent.subject
    for _name, value in _headers(sent):
        assert "\r" not in value.replace("\r\n ", "")
    assert "<x-inject>" not in sent.alternatives[0][0]


@hsettings(max_examples=200, deadline=None)
@given(local=st.text(alphabet=string.ascii_letters + string.digits + "._+-", min_size=1, max_size=80),
       domain_label=st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=70),
       labels=st.integers(min_value=1, max_value=5))
def test_addresses_are_validated_within_rfc_limits(local, domain_label, labels):
    assume(not local.startswith(".") and not local.endswith(".") and ".." not in local)
    domain = ".".join([domain_label[:63]] * labels) + ".com"
    address = f"{local}@{domain}"
    try:
        cleaned = clean_address("email", address)
    except InvalidEmailInput as exc:
        assert exc.field == "email"
        assert len(local) > 64 or len(address) > 254 or len(domain_label) > 63
        return
    assert len(local) <= 64 and len(cleaned) <= 254


@pytest.mark.parametrize("address", [
    "a" * 64 + "@example.com",
    "x@" + ".".join(["a" * 63] * 3) + "." + "b" * 56 + ".com",  # exactly 254
])
def test_addresses_at_the_limits_are_accepted(address):
    assert len(address) <= 254
    assert clean_address("email", address) == address


@pytest.mark.parametrize("address", [
    "a" * 65 + "@example.com",
    "x@" + ".".join(["a" * 63] * 4) + ".com",
    "victim@example.com\r\nBcc: all@example.com",
    "victim@example.com\nX: y",
])
def test_addresses_over_the_limits_or_with_line_breaks_are_rejected(address):
    with pytest.raises(InvalidEmailInput):
        clean_address("email", address)
