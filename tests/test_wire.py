"""The SMTP fast path: messages written straight to bytes must mean what Django's would."""

import email
import email.policy
import re

import pytest
from django.core.mail import EmailMultiAlternatives
from django.core.mail.backends.smtp import EmailBackend as SMTPEmailBackend

from django_async_email import email_utils
from django_async_email.delivery.pipeline import deliver_emails
from django_async_email.delivery.send.connection import open_connection
from django_async_email.delivery.send.wire import WireWriter, fast_path_applies
from django_async_email.models import OutboxEmail
from tests.wire_judge import mailboxes

LONG_LINE = "word " * 300  # 1,500 characters on one line: over SMTP's 998
CASES = {
    "ascii": dict(subject="Hello", body="Hi Ann,\nplain text.\n", html="<p>Hi Ann</p>"),
    "non-ascii everywhere": dict(
        subject="Nouvelles de Zamío: ça marche ✓", body="Bonjour Zoë,\nvoilà.\n", html="<p>Bonjour Zoë</p>",
        from_email="Équipe Zamío <no-reply@zamio.test>",
    ),
    "long subject folds": dict(subject=("A very long subject line " * 8).strip(), body="x", html="<b>x</b>"),
    "long lines are quoted-printable": dict(subject="Long", body=LONG_LINE + "\nnext é", html=f"<p>{LONG_LINE}é</p>"),
    "dots, From lines and mixed line ends": dict(
        subject="Dots", body=".\n..leading dots\r\nFrom the team\rend", html=".<p>\n.</p>",
    ),
    "text only": dict(subject="Text", body="Only text, café.", html=None),
    "reply-to, bcc and extra headers": dict(
        subject="Extras", body="b", html="<i>b</i>", reply_to=["Support Désk <help@zamio.test>"],
        bcc=["audit@zamio.test"], headers={"List-Unsubscribe": "<https://zamio.test/u/1>", "X-Tag": "été"},
    ),
    "empty bodies": dict(subject="", body="", html=""),
}


def make_message(subject, body, html, from_email="ZamIO <no-reply@zamio.test>", to="ann@example.com",
                 headers=None, **kwargs):
    message = EmailMultiAlternatives(subject, body, from_email, [to], headers={
        "Message-ID": "<abc123@zamio.test>", **(headers or {})}, **kwargs)
    if html is not None:
        message.attach_alternative(html, "text/html")
    return message


def parse(data: bytes):
    return email.message_from_bytes(data, policy=email.policy.default)


def meaning(parsed):
    """What a reader sees: headers (but Date), each non-empty part's type and decoded content.

    (Django 4.2 and 5.2 leave an empty plain-text part out of an alternative; 6.x keeps it.)
    """
    own = ("date", "content-type", "content-transfer-encoding", "mime-version")
    headers = {k: str(v) for k, v in parsed.items() if k.lower() not in own}
    parts = [(p.get_content_type(), p.get_content_charset(), p.get_content().replace("\r\n", "\n").rstrip("\n"))
             for p in parsed.walk() if not p.is_multipart() and p.get_content().strip()]
    return headers, parsed.get_content_type(), parts


@pytest.mark.parametrize("case", CASES)
def test_fast_path_means_what_django_means(case):
    message = make_message(**CASES[case])
    wire = WireWriter().write(message)
    assert wire is not None
    django_bytes = message.message().as_bytes()
    assert meaning(parse(wire.data)) == meaning(parse(django_bytes))
    assert wire.from_addr == "no-reply@zamio.test"
    assert wire.recipients == message.recipients()
    # What an SMTP server accepts: CRLF line ends only, every line within the limit.
    assert b"\n" not in wire.data.replace(b"\r\n", b"")
    assert max(len(line) for line in wire.data.split(b"\r\n")) <= 998
    assert max(len(line) for line in wire.data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")) <= 78
    assert parse(wire.data)["Date"] is not None and parse(wire.data)["MIME-Version"] == "1.0"


def test_non_ascii_headers_are_encoded_words():
    wire = WireWriter().write(make_message(**CASES["non-ascii everywhere"]))
    head = wire.data.split(b"\r\n\r\n", 1)[0]
    assert head.isascii() and b"=?utf-8?" in head


def raw_headers(data: bytes) -> dict[str, str]:
    """Each header as sent, unfolded but not decoded."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("ascii").replace("\r\n ", " ").replace("\r\n\t", "\t")
    return dict(line.split(": ", 1) for line in head.split("\r\n"))


def test_ascii_headers_go_out_as_written_and_fold_back_exactly():
    url = "<https://zamio.test/unsubscribe/" + "x" * 120 + "?sig=" + "y" * 40 + ">"
    subject = "A long ASCII subject, with  two spaces and words, " * 3
    wire = WireWriter().write(make_message(**{**CASES["ascii"], "subject": subject.strip(),
                                              "headers": {"List-Unsubscribe": url}}))
    headers = raw_headers(wire.data)
    assert headers["List-Unsubscribe"] == url and headers["Subject"] == subject.strip()
    assert max(len(line) for line in wire.data.split(b"\r\n\r\n")[0].split(b"\r\n")) <= 998


@pytest.mark.parametrize("value", [
    "=?utf-8?q?x=0D=0ABcc:_victim@example.com=0D=0A=0D=0Afake_body?=",  # CVE-2024-6923
    "Offer =?utf-8?b?w6k=?= inside",
    "Tab\there", "Bell\x07", "Delete\x7f",
])
def test_encoded_word_look_alikes_and_control_characters_are_encoded_as_data(value):
    """Written here, as encoded words: a reader sees the text as it was, never a line break."""
    for fields, read in [
        ({"subject": value}, lambda data: str(parse(data)["Subject"])),
        ({"headers": {"X-Note": value}}, lambda data: str(parse(data)["X-Note"])),
        ({"from_email": '"' + value + '" <a@zamio.test>'}, lambda data: mailboxes(data, "From")[0][0]),
    ]:
        wire = WireWriter().write(make_message(**{**CASES["ascii"], **fields}))
        assert wire is not None, fields
        head = wire.data.split(b"\r\n\r\n", 1)[0]
        assert head.isascii() and b"=?utf-8?" in head
        assert read(wire.data) == value and "Bcc" not in parse(wire.data), fields


def test_a_text_only_body_ends_as_it_was_written():
    for body, sent in [("Line one\nline two\n", b"Line one\r\nline two\r\n"), ("No newline", b"No newline\r\n")]:
        wire = WireWriter().write(make_message(**{**CASES["text only"], "body": body}))
        assert wire.data.split(b"\r\n\r\n", 1)[1] == sent


def test_long_lines_use_quoted_printable_and_short_non_ascii_uses_8bit():
    long_wire = WireWriter().write(make_message(**CASES["long lines are quoted-printable"]))
    assert long_wire.data.count(b"Content-Transfer-Encoding: quoted-printable") == 2
    short_wire = WireWriter().write(make_message(**CASES["non-ascii everywhere"]))
    assert short_wire.data.count(b"Content-Transfer-Encoding: 8bit") == 2


def test_each_message_of_a_batch_gets_its_own_boundary_and_headers_are_encoded_once():
    writer = WireWriter()
    first, second = (writer.write(make_message(**CASES["non-ascii everywhere"])) for _ in range(2))
    boundaries = [parse(w.data).get_param("boundary") for w in (first, second)]
    assert boundaries[0] != boundaries[1]
    assert len(writer._senders) == 1 and len(writer._headers) == 1  # From and Subject, once for both messages


@pytest.mark.parametrize("change", [
    dict(cc=["cc@example.com"]),
    dict(to="Ann <ann@example.com>"),
    dict(to="ann@exämple.com"),
    dict(headers={"From": "Other <other@zamio.test>"}),
    dict(headers={"X-Bad": "one\r\nBcc: victim@example.com"}),
    dict(headers={"Message-ID": "<abc\x00def@zamio.test>"}),
    dict(headers={"X Bad": "v"}),
    dict(headers={"X-Note": "Line\u2028separator"}),
    dict(headers={"X-Tag": "one", "x-tag": "two"}),
    dict(from_email=". <a@zamio.test> ,"),
    dict(attachments=[("a.txt", "attached", "text/plain")]),
])
def test_other_shapes_are_left_to_the_backend(change):
    fields = {**CASES["ascii"], **change}
    attachments = fields.pop("attachments", None)
    message = make_message(**fields)
    for attachment in attachments or []:
        message.attach(*attachment)
    assert WireWriter().write(message) is None


def test_a_from_domain_is_written_in_idna_as_djangos_backend_does():
    wire = WireWriter().write(make_message(**{**CASES["ascii"], "from_email": "ZamIO <no-reply@zamío.test>"}))
    assert wire.from_addr == "no-reply@xn--zamo-xpa.test"
    assert parse(wire.data)["From"].addresses[0].addr_spec == "no-reply@xn--zamo-xpa.test"


def test_other_alternatives_and_charsets_are_left_to_the_backend():
    message = make_message(**CASES["ascii"])
    message.attach_alternative("{}", "application/json")
    assert WireWriter().write(message) is None
    message = make_message(**CASES["ascii"])
    message.encoding = "iso-8859-1"
    assert WireWriter().write(message) is None


class SigningBackend(SMTPEmailBackend):
    """A host's subclass (one that might sign messages in ``_send``)."""


def test_only_djangos_own_smtp_backend_takes_the_fast_path(settings, email_backend):
    for path, expected in [("django.core.mail.backends.smtp.EmailBackend", True),
                           ("tests.test_wire.SigningBackend", False),
                           ("django.core.mail.backends.locmem.EmailBackend", False)]:
        email_backend(path, **({"host": "127.0.0.1", "port": 2525} if "smtp" in path.lower() or "Signing" in path
                               else {}))
        assert fast_path_applies(open_connection()) is expected, path
    email_backend("django.core.mail.backends.smtp.EmailBackend", host="127.0.0.1", port=2525)
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "FAST_SMTP_PATH": False}
    assert not fast_path_applies(open_connection())


@pytest.mark.django_db
@pytest.mark.parametrize("fast", [True, False])
def test_delivered_over_smtp_the_same_either_way(fast, settings, smtp_backend, make_user, published):
    """A real server receives the same email from the fast path and from Django's backend."""
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "FAST_SMTP_PATH": fast}
    user = make_user(email="zoe@example.com", username="zoe", first_name="Zoë")
    email_utils.send_notification_to_users(
        [user.pk], subject="Été: ça marche", message=".leading dot\nline two", email_type="news",
    )
    report = deliver_emails(list(OutboxEmail.objects.values_list("pk", flat=True)))
    assert len(report.sent) == 1
    (received,) = smtp_backend.received
    row = OutboxEmail.objects.get()
    assert received.rcpt_tos == ["zoe@example.com"]
    parsed = received.message
    assert (parsed["Subject"], parsed["Message-ID"], parsed["To"]) == ("Été: ça marche", row.message_id,
                                                                       "zoe@example.com")
    text = parsed.get_body(("plain",)).get_content()
    assert ".leading dot\nline two" in text.replace("\r\n", "\n") and "Zoë" in text
    assert "Zoë" in parsed.get_body(("html",)).get_content()
    ours = re.search(rb'boundary="==async-email-[0-9a-f]{32}-\d+=="', received.data)
    assert bool(ours) is fast  # the fast path wrote it, or Django's backend did
