"""The djoser bridge: djoser renders its account emails with its own classes' templates and
context, the bridge's subclasses queue them in the outbox, a worker sends them, and the uid
and token that arrive activate the account through djoser's endpoint.

The host's EMAIL_BACKEND here is Django's test backend (locmem), not OutboxBackend: an email
sent on the request path would land in mail.outbox. The DJOSER settings are in
tests/settings.py, as docs/integration.md tells a host to write them.
"""

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail

from django_async_email.delivery.pipeline import deliver_emails
from django_async_email.models import Kind, OutboxEmail

# djoser needs Django REST framework: the run without it (tox -e nodrf) has neither.
djoser_email = pytest.importorskip("djoser.email")

from django_async_email.contrib import djoser as bridge  # noqa: E402  (a failing import must fail, not skip)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("tests.urls_bridges")]

ACTIVATION_LINK = re.compile(r"https?://[^\s/]+/activate/([^\s/]+)/([^\s/]+)")
CLASSES = ["ActivationEmail", "ConfirmationEmail", "PasswordResetEmail", "PasswordChangedConfirmationEmail",
           "UsernameChangedConfirmationEmail", "UsernameResetEmail"]


def create_user(client, email="ann@example.com"):
    response = client.post("/auth/users/", {"username": "ann", "email": email, "password": "correct horse battery"},
                           content_type="application/json")
    assert response.status_code == 201, response.content[:2000]
    return get_user_model().objects.get(email=email)


def uid_and_token(body: str) -> tuple[str, str]:
    (found,) = ACTIVATION_LINK.findall(body)
    return found


@pytest.mark.parametrize("name", CLASSES)
def test_each_class_is_djosers_and_queues_instead_of_sending(name, make_user, published):
    cls = getattr(bridge, name)
    assert issubclass(cls, getattr(djoser_email, name))  # djoser's template and context
    user = make_user(email="bob@example.com")
    cls(context={"user": user}).send(["bob@example.com"])
    stored = OutboxEmail.objects.get(kind=Kind.RAW, recipient="bob@example.com").stored_message
    assert stored.subject and stored.body and stored.to == ["bob@example.com"]
    assert mail.outbox == []


def test_user_create_queues_the_activation_and_its_uid_and_token_activate(client, published):
    user = create_user(client)
    assert not user.is_active
    row = OutboxEmail.objects.get()
    assert (row.kind, row.status, row.recipient) == (Kind.RAW, "queued", "ann@example.com")
    assert mail.outbox == []  # not sent on the request path

    # What the worker does with the published task, here in the test process.
    deliver_emails(published[0][1][0])
    (sent,) = mail.outbox
    uid, token = uid_and_token(sent.body)
    response = client.post("/auth/users/activation/", {"uid": uid, "token": token}, content_type="application/json")
    assert response.status_code == 204, response.content
    user.refresh_from_db()
    assert user.is_active


@pytest.mark.integration
def test_a_real_worker_delivers_the_activation_and_its_uid_and_token_activate(isolated_worker, smtp, wait_for,
                                                                              client):
    # The worker starts only after the request: nothing can reach the SMTP server before.
    user = create_user(client)
    row = OutboxEmail.objects.get()
    assert row.status == "queued" and row.kind == Kind.RAW
    assert mail.outbox == [] and smtp.received == []

    isolated_worker()
    wait_for(lambda: OutboxEmail.objects.filter(pk=row.pk, status="sent").exists(), timeout=30, message="sent")
    (received,) = smtp.received
    assert received.rcpt_tos == ["ann@example.com"]
    uid, token = uid_and_token(received.message.get_body(("plain",)).get_content())
    response = client.post("/auth/users/activation/", {"uid": uid, "token": token}, content_type="application/json")
    assert response.status_code == 204, response.content
    user.refresh_from_db()
    assert user.is_active
