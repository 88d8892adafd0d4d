"""The allauth bridge: allauth renders its account emails, AccountAdapter queues them in the
outbox, a worker sends them, and what arrives works with allauth's own views.

The host's EMAIL_BACKEND here is Django's test backend (locmem), not OutboxBackend: an email
sent on the request path would land in mail.outbox, so an empty mail.outbox after the
request shows it was only queued. The settings are in tests/settings.py, as
docs/integration.md tells a host to write them.
"""

import re

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.core.cache import cache

from django_async_email.delivery.pipeline import deliver_emails
from django_async_email.models import Kind, OutboxEmail

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("tests.urls_bridges")]

CONFIRM_LINK = re.compile(r"https?://[^\s/]+(/accounts/confirm-email/[^\s/]+/)")


@pytest.fixture(autouse=True)
def clear_rate_limits():
    # allauth counts in the cache, per address too: one confirmation per address per 3 minutes.
    cache.clear()
    yield
    cache.clear()


def sign_up(client, email="ann@example.com"):
    response = client.post("/accounts/signup/", {
        "username": "ann", "email": email, "password1": "correct horse battery", "password2": "correct horse battery"})
    assert response.status_code == 302, response.content[:2000]
    return response


def confirmation_path(body: str) -> str:
    (path,) = CONFIRM_LINK.findall(body)
    return path


def test_signup_queues_the_confirmation_and_its_link_confirms_the_address(client, published):
    sign_up(client)
    row = OutboxEmail.objects.get()
    assert (row.kind, row.status, row.recipient) == (Kind.RAW, "queued", "ann@example.com")
    assert "Confirm" in row.stored_message.subject  # allauth's own subject template
    assert mail.outbox == []  # not sent on the request path
    assert [name for name, _args, _options in published] == ["django_async_email.tasks.send_stored_email_task"]
    assert not EmailAddress.objects.get(email="ann@example.com").verified

    # What the worker does with the published task, here in the test process.
    deliver_emails(published[0][1][0])
    (sent,) = mail.outbox
    assert sent.to == ["ann@example.com"]
    assert client.post(confirmation_path(sent.body)).status_code == 302
    assert EmailAddress.objects.get(email="ann@example.com").verified


def test_allauths_other_emails_are_queued_too(client, make_user, published):
    user = make_user(email="bob@example.com")
    EmailAddress.objects.create(user=user, email="bob@example.com", verified=True, primary=True)
    assert client.post("/accounts/password/reset/", {"email": "bob@example.com"}).status_code == 302
    stored = OutboxEmail.objects.get(recipient="bob@example.com").stored_message
    assert "/accounts/password/reset/key/" in stored.body  # the reset link, as allauth rendered it
    assert mail.outbox == []


@pytest.mark.integration
def test_a_real_worker_delivers_the_signup_confirmation_and_its_link_confirms(isolated_worker, smtp, wait_for,
                                                                               client):
    # The worker starts only after the request: nothing can reach the SMTP server before.
    sign_up(client)
    row = OutboxEmail.objects.get()
    assert row.status == "queued" and row.kind == Kind.RAW
    assert mail.outbox == [] and smtp.received == []

    isolated_worker()
    wait_for(lambda: OutboxEmail.objects.filter(pk=row.pk, status="sent").exists(), timeout=30, message="sent")
    (received,) = smtp.received
    assert received.rcpt_tos == ["ann@example.com"]
    assert received.message["Message-ID"] == OutboxEmail.objects.get(pk=row.pk).message_id
    body = received.message.get_body(("plain",)).get_content()
    assert client.post(confirmation_path(body)).status_code == 302
    assert EmailAddress.objects.get(email="ann@example.com").verified
