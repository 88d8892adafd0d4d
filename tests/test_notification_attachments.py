"""``attachments=`` on the notification functions: stored once per broadcast in
ATTACHMENT_STORAGE, refused past the size limits when queuing, read once per batch, and on
every recipient's email byte for byte (an inline image with its Content-ID included)."""

import email
import email.policy

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from django_async_email import email_utils
from django_async_email.delivery.pipeline import deliver_emails
from django_async_email.exceptions import InvalidEmailInput
from django_async_email.models import Broadcast, OutboxEmail, StoredAttachment, attachment_storage
from django_async_email.outbox.fanout import fan_out
from tests.test_outbox_backend import PNG, inline_png, payload

pytestmark = pytest.mark.django_db(transaction=True)

PDF = b"%PDF-1.4\n\x00\xff binary \r\n bytes"


logo = inline_png


ATTACHMENTS = [("statement.pdf", PDF, "application/pdf"), ("notes.txt", "Plain text, ünïcode", "text/plain")]


def files_of(message_bytes: bytes):
    parsed = email.message_from_bytes(message_bytes, policy=email.policy.default)
    return [(p.get_content_type(), p.get_filename(), p["Content-ID"], payload(p))
            for p in parsed.walk() if p.get_filename() or p["Content-ID"]]


def as_django_sends(attachments):
    """The files as Django itself writes them when the message is built with them directly
    (Django 6.1 ends a text attachment with a newline, for one)."""
    message = mail.EmailMessage("s", "b", "from@example.com", ["to@example.com"])
    for attachment in attachments:
        message.attach(*attachment) if isinstance(attachment, tuple) else message.attach(attachment)
    return files_of(message.message().as_bytes())


EXPECTED = as_django_sends([*ATTACHMENTS, logo()])
# The binary file and the image are the caller's bytes exactly.
assert [(f[0], f[1], f[2]) for f in EXPECTED] == [("application/pdf", "statement.pdf", None),
                                                 ("text/plain", "notes.txt", None), ("image/png", "logo.png", "<logo>")]
assert EXPECTED[0][3] == PDF and EXPECTED[2][3] == PNG


def test_every_recipient_gets_the_files_byte_for_byte(make_user, published):
    users = [make_user(email=f"user{i}@example.com") for i in range(3)]
    email_utils.send_notification_to_users([u.pk for u in users], "Statement", "Attached.",
                                           attachments=[*ATTACHMENTS, logo()])
    broadcast = Broadcast.objects.get()
    assert broadcast.attachment_count == 3 and StoredAttachment.objects.filter(broadcast=broadcast).count() == 3
    deliver_emails(list(OutboxEmail.objects.values_list("pk", flat=True)))
    assert len(mail.outbox) == 3
    for sent in mail.outbox:
        assert files_of(sent.message().as_bytes()) == EXPECTED


@pytest.mark.custom_user
def test_a_fanned_out_broadcast_reads_its_files_once_per_batch(make_user, published,
                                                               django_capture_on_commit_callbacks):
    for i in range(4):
        make_user(email=f"artist{i}@example.com", user_type="Artist")
    email_utils.send_notification_to_user_types(["Artist"], "Statement", "Attached.", attachments=ATTACHMENTS)
    with django_capture_on_commit_callbacks(execute=True):
        fan_out(Broadcast.objects.get().pk)
    ids = list(OutboxEmail.objects.order_by("pk").values_list("pk", flat=True))

    def queries_for(batch):
        OutboxEmail.objects.filter(pk__in=batch).update(status="queued", attempts=0)
        with CaptureQueriesContext(connection) as captured:
            deliver_emails(batch)
        return len([q for q in captured if "async_email_storedattachment" in q["sql"]])

    assert queries_for(ids[:1]) == queries_for(ids) == 1
    assert all(files_of(m.message().as_bytes()) == EXPECTED[:2] for m in mail.outbox)


def test_a_notification_without_files_reads_no_attachments(make_user, published):
    user = make_user()
    email_utils.send_notification_to_users([user.pk], "Hi", "Body")
    with CaptureQueriesContext(connection) as captured:
        deliver_emails(list(OutboxEmail.objects.values_list("pk", flat=True)))
    assert not [q for q in captured if "async_email_storedattachment" in q["sql"]]
    assert mail.outbox[0].attachments == []


@pytest.mark.parametrize(("attachments", "limits", "message"), [
    ([("big.bin", b"x" * 101, "application/octet-stream")], {"ATTACHMENT_MAX_BYTES": 100}, "ATTACHMENT_MAX_BYTES"),
    ([("a.bin", b"x" * 60, None), ("b.bin", b"x" * 60, None)], {"MESSAGE_MAX_BYTES": 100}, "MESSAGE_MAX_BYTES"),
    ([("a.bin", 12345, None)], {}, "bytes or str"),
    (["just a string"], {}, "MIME parts"),
])
def test_bad_attachments_are_refused_naming_the_field_before_anything_is_queued(
        make_user, published, settings, attachments, limits, message):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, **limits}
    user = make_user()
    with pytest.raises(InvalidEmailInput, match=message) as caught:
        email_utils.send_notification_to_users([user.pk], "Hi", "Body", attachments=attachments)
    assert caught.value.field == "attachments"
    assert not Broadcast.objects.exists() and not StoredAttachment.objects.exists() and published == []


def test_purge_deletes_a_broadcasts_files(make_user, published):
    user = make_user()
    email_utils.send_notification_to_users([user.pk], "Hi", "Body", attachments=ATTACHMENTS)
    deliver_emails(list(OutboxEmail.objects.values_list("pk", flat=True)))
    names = list(StoredAttachment.objects.values_list("file", flat=True))
    storage = attachment_storage()
    assert len(names) == 2 and all(storage.exists(n) for n in names)
    call_command("purge_email_log", "--older-than", "0", stdout=open("/dev/null", "w"))
    assert not Broadcast.objects.exists() and not StoredAttachment.objects.exists()
    assert not any(storage.exists(n) for n in names)


@pytest.mark.integration
def test_a_real_worker_sends_the_files(celery_worker, smtp, wait_for, make_user):
    user = make_user(email="statement@example.com")
    email_utils.send_notification_to_users([user.pk], "Statement", "Attached.", attachments=[*ATTACHMENTS, logo()])
    wait_for(lambda: smtp.messages_to("statement@example.com"), timeout=30, message="the email")
    (received,) = [r for r in smtp.received if "statement@example.com" in r.rcpt_tos]
    assert files_of(received.data) == EXPECTED
