"""OutboxBackend as the host's EMAIL_BACKEND: send_mail(), Django's forms and any app queue
through the outbox, and the worker sends the same message through the real backend."""

import email
import email.policy
from email.message import MIMEPart
from email.mime.image import MIMEImage

import django
import pytest
from django.contrib.auth.forms import PasswordResetForm
from django.contrib.auth.tokens import default_token_generator
from django.core import mail
from django.core.management import call_command
from django.db import transaction

from django_async_email import checks as our_checks
from django_async_email.accounts import suppression
from django_async_email.delivery.pipeline import deliver_emails
from django_async_email.exceptions import InvalidEmailInput, UnstorableMessage
from django_async_email.models import OutboxEmail, StoredAttachment, attachment_storage

pytestmark = pytest.mark.django_db(transaction=True)

OUTBOX = "django_async_email.backends.OutboxBackend"
LOCMEM = "django.core.mail.backends.locmem.EmailBackend"
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000000000200010ae1d1a90000000049454e44ae426082")


@pytest.fixture
def outbox_backend(settings):
    """The host's setup the docs describe: EMAIL_BACKEND (or the default mailer) queues, and
    the worker sends through ASYNC_EMAIL['EMAIL_BACKEND'] (or the MAILER alias)."""
    if settings.USE_MAILERS:
        settings.MAILERS = {"default": {"BACKEND": OUTBOX}, "real": {"BACKEND": LOCMEM}}
        settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "MAILER": "real"}
    else:
        settings.EMAIL_BACKEND = OUTBOX
        settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "EMAIL_BACKEND": LOCMEM}
    mail.outbox = []


def deliver_published(published):
    for name, args, _o in list(published):
        if name.endswith("send_stored_email_task"):
            deliver_emails(args[0])


def rich_message():
    message = mail.EmailMultiAlternatives(
        "Statement for March", "Your statement is attached.", "Royalties <royalties@zamio.test>",
        ["Ann <ann@example.com>", "bob@example.com"], cc=["cc@example.com"], bcc=["audit@example.com"],
        reply_to=["help@zamio.test"], headers={"X-Statement": "2026-03"})
    message.attach_alternative('<p>Your statement <img src="cid:logo"></p>', "text/html")
    message.attach("statement.pdf", b"%PDF-1.4\n\x00\xff binary \r\n bytes", "application/pdf")
    message.attach("notes.txt", "Plain text, ünïcode", "text/plain")
    message.attach(inline_png())
    return message


def inline_png():
    """An inline image with a Content-ID, as a host builds it for its Django version: the
    modern MIMEPart from Django 6.0 (which deprecates MIMEBase), a MIMEImage before."""
    if django.VERSION >= (6, 0):
        part = MIMEPart()
        part.set_content(PNG, "image", "png", disposition="inline", filename="logo.png", cid="<logo>")
        return part
    logo = MIMEImage(PNG, "png")
    logo.add_header("Content-ID", "<logo>")
    logo.add_header("Content-Disposition", "inline", filename="logo.png")
    return logo


def content(message_bytes: bytes):
    """What a reader gets out of a message: headers that matter and every part's decoded bytes."""
    parsed = email.message_from_bytes(message_bytes, policy=email.policy.default)
    head = {name: str(parsed[name]) for name in ("Subject", "From", "To", "Cc", "Reply-To", "X-Statement")}
    parts = [(p.get_content_type(), p.get_filename(), p["Content-ID"], payload(p))
             for p in parsed.walk() if not p.is_multipart()]
    return head, parts


def payload(part) -> bytes:
    """A part's decoded bytes; a text part's line ends as SMTP carries them (CRLF), since a
    7bit or 8bit text part written locally has LF and the wire has CRLF (RFC 5321)."""
    data = part.get_payload(decode=True)
    if part.get_content_maintype() == "text" and part["Content-Transfer-Encoding"] in ("7bit", "8bit"):
        data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return data


def test_send_mail_queues_a_row_and_the_worker_sends_the_same_message(outbox_backend, published):
    assert mail.send_mail("Hello", "Body text", "from@zamio.test", ["ann@example.com"]) == 1
    row = OutboxEmail.objects.get()
    assert (row.kind, row.status, row.recipient) == ("raw", "queued", "ann@example.com")
    assert mail.outbox == []  # nothing sent on the request path
    assert [name for name, _a, _o in published] == ["django_async_email.tasks.send_stored_email_task"]
    deliver_published(published)
    (sent,) = mail.outbox
    assert (sent.subject, sent.body, sent.from_email, sent.to) == ("Hello", "Body text", "from@zamio.test",
                                                                    ["ann@example.com"])
    assert sent.extra_headers["Message-ID"] == row.message_id
    row.refresh_from_db()
    assert row.status == "sent"


def test_alternatives_attachments_and_an_inline_image_come_back_byte_for_byte(outbox_backend, published):
    original = rich_message()
    expected = content(original.message().as_bytes())
    assert mail.get_connection().send_messages([rich_message()]) == 1
    assert StoredAttachment.objects.count() == 3
    deliver_published(published)
    (sent,) = mail.outbox
    assert content(sent.message().as_bytes()) == expected
    assert sorted(sent.recipients()) == sorted(original.recipients())


def test_a_batch_of_stored_messages_costs_the_same_queries_whatever_its_size(outbox_backend, published):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries_for(n):
        published.clear()
        messages = [mail.EmailMessage(f"Hi {i}", "Body", "a@zamio.test", [f"r{i}@example.com"]) for i in range(n)]
        for m in messages:
            m.attach("a.txt", b"attached", "text/plain")
        mail.get_connection().send_messages(messages)
        ((_name, args, _o),) = published
        with CaptureQueriesContext(connection) as ctx:
            assert len(deliver_emails(args[0]).sent) == n
        return len(ctx.captured_queries)

    assert queries_for(5) == queries_for(20)


def test_a_django_celery_email_host_switches_with_settings_only(settings, published):
    # docs/migration.md: the host had EMAIL_BACKEND = CeleryEmailBackend and
    # CELERY_EMAIL_BACKEND = <the real one>; it changes those two settings and no code.
    celery_email_backend = LOCMEM  # what its CELERY_EMAIL_BACKEND said
    if settings.USE_MAILERS:
        settings.MAILERS = {"default": {"BACKEND": OUTBOX}, "real": {"BACKEND": celery_email_backend}}
        settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "MAILER": "real"}
    else:
        settings.EMAIL_BACKEND = OUTBOX
        settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "EMAIL_BACKEND": celery_email_backend}
    mail.outbox = []
    assert our_checks.check_email_backend() == []
    sent = mail.send_mass_mail([("One", "Body one", "a@zamio.test", ["x@example.com"]),
                                ("Two", "Body two", "a@zamio.test", ["y@example.com", "z@example.com"])])
    assert sent == 2 and mail.outbox == []
    deliver_published(published)
    assert sorted((m.subject, tuple(m.to)) for m in mail.outbox) == [
        ("One", ("x@example.com",)), ("Two", ("y@example.com", "z@example.com"))]


def test_a_rolled_back_transaction_queues_nothing(outbox_backend, published):
    with pytest.raises(RuntimeError), transaction.atomic():
        mail.send_mail("Hello", "Body", "from@zamio.test", ["ann@example.com"])
        raise RuntimeError
    assert not OutboxEmail.objects.exists() and published == []


def test_a_large_call_is_split_into_bulk_tasks_of_one_chunk(outbox_backend, published, settings,
                                                            django_capture_on_commit_callbacks):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "BULK_CHUNK_SIZE": 4}
    messages = [mail.EmailMessage(f"News {i}", "Body", "from@zamio.test", [f"reader{i}@example.com"])
                for i in range(9)]
    with pytest.raises(RuntimeError), transaction.atomic():
        mail.get_connection().send_messages(messages)
        raise RuntimeError
    assert published == [] and not OutboxEmail.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        assert mail.get_connection().send_messages(messages) == 9
    # Three tasks (4 + 4 + 1) that both worker processes can share, on the low queue.
    assert [len(args[0]) for _n, args, _o in published] == [4, 4, 1]
    assert {options["queue"] for _n, _a, options in published} == {"low"}
    assert len({options["task_id"] for _n, _a, options in published}) == 3
    # A call within one chunk stays one task on the normal queue.
    published.clear()
    with django_capture_on_commit_callbacks(execute=True):
        mail.get_connection().send_messages(messages[:4])
    assert [(len(args[0]), options["queue"]) for _n, args, options in published] == [(4, "normal")]


def test_a_redelivered_task_sends_nothing_twice(outbox_backend, published):
    mail.send_mail("Hello", "Body", "from@zamio.test", ["ann@example.com"])
    deliver_published(published)
    deliver_published(published)
    assert len(mail.outbox) == 1


def test_djangos_password_reset_form_goes_through_the_outbox(outbox_backend, published, make_user, settings):
    settings.ROOT_URLCONF = "tests.urls_with_auth"
    user = make_user(email="reset@example.com")
    form = PasswordResetForm({"email": "reset@example.com"})
    assert form.is_valid()
    form.save(domain_override="app.zamio.test", use_https=True)
    assert OutboxEmail.objects.get().kind == "raw" and mail.outbox == []
    deliver_published(published)
    (sent,) = mail.outbox
    token = sent.body.split("/reset/")[1].split("/")[1]
    assert default_token_generator.check_token(user, token)


def test_a_message_that_builds_its_own_mime_is_refused_not_degraded(outbox_backend, published):
    class Signed(mail.EmailMessage):
        def message(self, *args, **kwargs):
            return super().message(*args, **kwargs)

    with pytest.raises(UnstorableMessage, match="overrides message()"):
        mail.get_connection().send_messages([Signed("Hi", "Body", "a@zamio.test", ["b@example.com"])])
    assert not OutboxEmail.objects.exists() and published == []


def test_attachment_size_limits_are_refused_when_queuing(outbox_backend, published, settings):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "ATTACHMENT_MAX_BYTES": 10, "MESSAGE_MAX_BYTES": 15}
    big = mail.EmailMessage("Hi", "Body", "a@zamio.test", ["b@example.com"])
    big.attach("big.bin", b"x" * 11, "application/octet-stream")
    with pytest.raises(InvalidEmailInput) as caught:
        mail.get_connection().send_messages([big])
    assert caught.value.field == "attachments" and "ATTACHMENT_MAX_BYTES" in str(caught.value)
    two = mail.EmailMessage("Hi", "Body", "a@zamio.test", ["b@example.com"])
    two.attach("a.bin", b"x" * 8, "application/octet-stream")
    two.attach("b.bin", b"x" * 8, "application/octet-stream")
    with pytest.raises(InvalidEmailInput, match="MESSAGE_MAX_BYTES"):
        mail.get_connection().send_messages([two])
    assert not OutboxEmail.objects.exists() and not StoredAttachment.objects.exists()


def test_a_message_without_recipients_is_not_counted(outbox_backend, published):
    assert mail.get_connection().send_messages([mail.EmailMessage("Hi", "Body", "a@zamio.test", [])]) == 0
    assert not OutboxEmail.objects.exists()


def test_fail_silently_returns_zero(outbox_backend, published):
    class Signed(mail.EmailMessage):
        def message(self, *args, **kwargs):
            return super().message(*args, **kwargs)

    connection = mail.get_connection(fail_silently=True)
    assert connection.send_messages([Signed("Hi", "Body", "a@zamio.test", ["b@example.com"])]) == 0


def test_suppressed_recipients_are_left_out_and_an_all_suppressed_message_is_not_sent(outbox_backend, published):
    suppression.suppress("bob@example.com", "hard_bounce")
    suppression.suppress("ann@example.com", "manual")  # stops notifications only
    mail.send_mail("One", "Body", "a@zamio.test", ["ann@example.com", "bob@example.com"])
    mail.send_mail("Two", "Body", "a@zamio.test", ["Bob <BOB@example.com>"])
    deliver_published(published)
    (sent,) = mail.outbox
    assert (sent.subject, sent.to) == ("One", ["ann@example.com"])
    two = OutboxEmail.objects.get(stored_message__subject="Two")
    assert (two.status, two.suppressed_reason) == ("suppressed", "hard_bounce")


def test_purge_deletes_the_attachment_files(outbox_backend, published):
    mail.get_connection().send_messages([rich_message()])
    names = list(StoredAttachment.objects.values_list("file", flat=True))
    storage = attachment_storage()
    assert all(storage.exists(n) for n in names)
    deliver_published(published)
    call_command("purge_email_log", older_than=0, stdout=open("/dev/null", "w"))
    assert not OutboxEmail.objects.exists() and not StoredAttachment.objects.exists()
    assert not any(storage.exists(n) for n in names)


def test_the_worker_may_not_send_through_the_outbox_backend(settings):
    if settings.USE_MAILERS:
        settings.MAILERS = {"default": {"BACKEND": OUTBOX}}
    else:
        settings.EMAIL_BACKEND = OUTBOX
    assert [m.id for m in our_checks.check_email_backend()] == ["django_async_email.E011"]
    if settings.USE_MAILERS:
        settings.MAILERS = {"default": {"BACKEND": OUTBOX}, "real": {"BACKEND": LOCMEM}}
        settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "MAILER": "real"}
    else:
        settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "EMAIL_BACKEND": LOCMEM}
    assert our_checks.check_email_backend() == []


# --- Through a real worker and a real SMTP server -------------------------------------------------

@pytest.mark.integration
def test_a_real_worker_sends_what_the_host_built(celery_worker, smtp, wait_for, settings, make_user):
    # The test process queues (OutboxBackend); the worker sends over SMTP, as its own settings say.
    if settings.USE_MAILERS:
        settings.MAILERS = {"default": {"BACKEND": OUTBOX}}
    else:
        settings.EMAIL_BACKEND = OUTBOX
    settings.ROOT_URLCONF = "tests.urls_with_auth"
    original = rich_message()
    expected = content(original.message().as_bytes())
    assert mail.send_mail("Plain one", "Just text", "from@zamio.test", ["plain@example.com"]) == 1
    assert mail.get_connection().send_messages([rich_message()]) == 1
    user = make_user(email="reset@example.com")
    form = PasswordResetForm({"email": "reset@example.com"})
    assert form.is_valid()
    form.save(domain_override="app.zamio.test", use_https=True)
    wait_for(lambda: OutboxEmail.objects.filter(status="sent").count() == 3, timeout=30, message="3 sent")
    by_subject = {str(r.message["Subject"]): r for r in smtp.received}
    rich = by_subject["Statement for March"]
    assert content(rich.data) == expected
    assert sorted(rich.rcpt_tos) == sorted(["ann@example.com", "bob@example.com", "cc@example.com",
                                            "audit@example.com"])
    assert "Bcc" not in rich.message
    assert rich.message["Message-ID"] == OutboxEmail.objects.get(stored_message__subject="Statement for March"
                                                                 ).message_id
    reset = next(r for s, r in by_subject.items() if "reset" in s.lower())
    token = reset.message.get_body(("plain",)).get_content().split("/reset/")[1].split("/")[1]
    assert default_token_generator.check_token(user, token)
    assert by_subject["Plain one"].message.get_body(("plain",)).get_content().strip() == "Just text"
