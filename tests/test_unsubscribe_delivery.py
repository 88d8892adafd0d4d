"""One-click unsubscribe end to end: a real worker sends through a real SMTP server on
loopback, on the fast path and on Django's path; the captured bytes carry RFC 8058's two
headers with a working per-recipient link, survive a DKIM signature over them, and a 550
at RCPT puts the address on the suppression list."""

import email
import email.policy
from urllib.parse import urlsplit

import pytest
from django.test import Client

from django_async_email import email_utils
from django_async_email.models import Broadcast, EmailPreference, OutboxEmail, Suppression

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True), pytest.mark.custom_user]

PATHS = {"fast path": {}, "Django's path": {"ASYNC_EMAIL_TEST_FAST_SMTP_PATH": "0"}}


def settled(wait_for, count, timeout=40):
    final = ("sent", "failed", "suppressed", "cancelled")
    return wait_for(lambda: OutboxEmail.objects.filter(status__in=final).count() >= count
                    and not OutboxEmail.objects.exclude(status__in=final).exists(),
                    timeout=timeout, message=f"{count} email(s) settled")


def parsed(smtp, address) -> email.message.EmailMessage:
    (message,) = [r for r in smtp.received if r.rcpt_tos == [address]]
    return email.message_from_bytes(message.data, policy=email.policy.default)


def one_click(url):
    """The request a mailbox provider makes (RFC 8058 section 3.2): a POST of the form body,
    no cookies, no CSRF token, to the URL in List-Unsubscribe."""
    parts = urlsplit(url)
    assert parts.scheme == "https" and parts.netloc == "app.zamio.test"
    return Client(enforce_csrf_checks=True).post(parts.path, data="List-Unsubscribe=One-Click",
                                                 content_type="application/x-www-form-urlencoded")


@pytest.mark.parametrize("path", PATHS)
def test_notifications_carry_one_click_headers_and_account_emails_do_not(path, isolated_worker, smtp, wait_for,
                                                                          make_user):
    isolated_worker(**PATHS[path])
    artists = [make_user(user_type="Artist") for _ in range(3)]
    email_utils.send_notification_to_user_types(["Artist"], "New features", "Take a look", email_type="update")
    email_utils.send_welcome_email(welcomed := make_user(user_type="Station"))
    settled(wait_for, 4)
    urls = set()
    for user in artists:
        message = parsed(smtp, user.email)
        header = str(message["List-Unsubscribe"])
        assert header.startswith("<https://app.zamio.test/unsubscribe/") and header.endswith("/>")
        assert str(message["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
        url = header[1:-1]
        urls.add(url)
        text = message.get_body(("plain",)).get_content()
        html = message.get_body(("html",)).get_content()
        assert url in text and url in html  # {{ unsubscribe_url }} in the default template
        assert "https://app.zamio.test/email-preferences/" in text
    assert len(urls) == 3  # one link per recipient
    welcome = parsed(smtp, welcomed.email)
    assert welcome["List-Unsubscribe"] is None and welcome["List-Unsubscribe-Post"] is None
    assert "unsubscribe" not in welcome.get_body(("plain",)).get_content().lower()

    # The first artist presses "Unsubscribe" in their mailbox.
    first = parsed(smtp, artists[0].email)
    response = one_click(str(first["List-Unsubscribe"])[1:-1])
    assert response.status_code == 200
    assert EmailPreference.objects.get(user=artists[0]).subscribed is False
    assert one_click(str(first["List-Unsubscribe"])[1:-1]).status_code == 200  # idempotent

    # The next broadcast to their type skips them, and counts them.
    smtp.reset()
    email_utils.send_notification_to_user_types(["Artist"], "More features", "Again", email_type="feature_announcement")
    settled(wait_for, 7)
    assert sorted(r.rcpt_tos[0] for r in smtp.received) == sorted(u.email for u in artists[1:])
    broadcast = Broadcast.objects.get(subject="More features")
    assert broadcast.progress()["suppressed"] == 1
    assert broadcast.suppressed_by_reason() == {"unsubscribed": 1}
    # Another category still reaches them.
    email_utils.send_notification_to_users([artists[0].pk], "Alert", "Body", email_type="alert")
    settled(wait_for, 8)
    assert [r.rcpt_tos[0] for r in smtp.received][-1] == artists[0].email


@pytest.mark.parametrize("path", PATHS)
def test_a_dkim_signature_over_the_one_click_headers_verifies(path, isolated_worker, smtp, wait_for, make_user):
    import dkim

    from tests.dkim_key import PRIVATE_KEY, dns

    isolated_worker(**PATHS[path])
    user = make_user(user_type="Artist", first_name="Zoë")
    email_utils.send_notification_to_users([user.pk], "Ünïcode subject, long enough to be folded over lines",
                                           "Body", email_type="update")
    settled(wait_for, 1)
    (received,) = smtp.received
    # Signed as an MTA would sign the bytes it was handed, RFC 8058's two headers included.
    signature = dkim.sign(received.data, b"mail", b"zamio.test", PRIVATE_KEY,
                          include_headers=[b"from", b"to", b"subject", b"date", b"message-id",
                                           b"list-unsubscribe", b"list-unsubscribe-post"])
    signed = signature + received.data
    assert b"list-unsubscribe:list-unsubscribe-post" in signature.replace(b"\r\n", b"").replace(b" ", b"").lower()
    assert dkim.verify(signed, dnsfunc=dns)
    # The headers are covered: changing the link breaks the signature.
    tampered = signed.replace(b"/unsubscribe/", b"/unsubscribX/", 1)
    assert not dkim.verify(tampered, dnsfunc=dns)


def test_a_550_at_rcpt_suppresses_the_address_for_notifications_and_resets(isolated_worker, smtp, wait_for,
                                                                           make_user):
    isolated_worker()
    gone = make_user(user_type="Artist", email="gone@example.com")
    kept = make_user(user_type="Artist", email="kept@example.com")
    smtp.refuse("gone@example.com", 550)
    email_utils.send_notification_to_users([gone.pk, kept.pk], "First", "Body", email_type="update")
    settled(wait_for, 2)
    entry = Suppression.objects.get()
    assert (entry.address, entry.reason) == ("gone@example.com", "hard_bounce")
    assert entry.source.startswith("SMTP 550 at RCPT")
    assert OutboxEmail.objects.get(recipient="gone@example.com").status == "failed"

    smtp.reset()  # the server would take it now; the list keeps it from being tried
    email_utils.send_notification_to_users([gone.pk, kept.pk], "Second", "Body", email_type="alert")
    email_utils.request_password_reset("gone@example.com")
    settled(wait_for, 5)
    second = OutboxEmail.objects.get(recipient="gone@example.com", broadcast__subject="Second")
    assert (second.status, second.suppressed_reason) == ("suppressed", "hard_bounce")
    reset = OutboxEmail.objects.get(kind="password_reset")
    assert (reset.status, reset.suppressed_reason) == ("suppressed", "hard_bounce")
    assert [r.rcpt_tos for r in smtp.received] == [["kept@example.com"]]
