"""Every message correct on the wire, on both send paths (the SMTP fast path and Django's).

Found by a penetration test and a differential check against independent email software;
Python's ``email`` parser with ``email.policy.default`` is the judge throughout.
"""

import email.policy
import logging
import os
import re
import string

import django
import pytest
from hypothesis import HealthCheck, event, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from django_async_email import email_utils
from django_async_email.delivery.build.compose import address_message
from django_async_email.delivery.build.messages import NotificationEmail
from django_async_email.delivery.headers import HeaderError, quoted_mailbox
from django_async_email.delivery.pipeline import deliver_emails
from django_async_email.delivery.send.transfer import seven_bit, smtp_data
from django_async_email.delivery.send.wire import WireWriter
from django_async_email.exceptions import InvalidEmailInput
from django_async_email.models import OutboxEmail
from tests.adapters import ConfigurableAdapter
from tests.test_wire import CASES, make_message
from tests.wire_judge import mailboxes, parse, raw_header, smtp_violations

LOOKALIKE = "=?utf-8?q?=0D=0AX-Inj:_1?="

# --- Text the Python API refuses when an email is queued ------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["subject", "message", "email_type"])
@pytest.mark.parametrize("bad", ["\ud800", "a\udfffb"])
def test_lone_surrogates_are_refused_naming_the_field(field, bad, make_user, published):
    user = make_user()
    arguments = {"subject": "Hello", "message": "Body", "email_type": "news", field: f"x{bad}y"}
    with pytest.raises(InvalidEmailInput) as caught:
        email_utils.send_notification_to_users([user.pk], **arguments)
    assert caught.value.field == field and "surrogate" in str(caught.value)


@pytest.mark.django_db
@pytest.mark.parametrize("context", [{"name": "\ud800"}, {"list": ["ok", {"deep": "x\udc80"}]}, {"\ud83d": "key"}])
def test_lone_surrogates_in_context_are_refused_naming_the_field(context, make_user, published):
    user = make_user()
    with pytest.raises(InvalidEmailInput) as caught:
        email_utils.send_notification_to_users([user.pk], "Hello", "Body", context=context)
    assert caught.value.field == "context" and "surrogate" in str(caught.value)


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["subject", "message", "email_type"])
@pytest.mark.parametrize("control", ["\x00", "\x07", "\x0b", "\x0c", "\x1b", "\x1f"])
def test_control_characters_are_refused_naming_the_field(field, control, make_user, published):
    user = make_user()
    arguments = {"subject": "Hello", "message": "Body", "email_type": "news", field: f"a{control}b"}
    with pytest.raises(InvalidEmailInput) as caught:
        email_utils.send_notification_to_users([user.pk], **arguments)
    assert caught.value.field == field and repr(control) in str(caught.value)


@pytest.mark.django_db
def test_tabs_and_line_breaks_in_a_message_are_still_text(make_user, published):
    user = make_user()
    email_utils.send_notification_to_users([user.pk], "Tab\there", "Line one\r\nline\ttwo\rthree\n")


# --- The SMTP fast path: encoded words folded here, spaces kept -----------------------------------

SPACED_VALUES = [
    "x" * 60 + " Zoë 日本語",  # CPython issue 144156: email.policy.SMTP merged the last words
    "Zoë  日本語  with two spaces",
    " leading space é",
    "trailing space é ",
    "日本語" * 40,
    "é" + "x" * 200,
    LOOKALIKE,
    "a\x00b\x1fc\x7fd\x80e",  # control characters, as data
]


@pytest.mark.parametrize("value", SPACED_VALUES)
@pytest.mark.parametrize("name", ["Subject", "X-Tag"])
def test_fast_path_keeps_every_space_between_words(name, value):
    fields = {"subject": value} if name == "Subject" else {"headers": {name: value}}
    wire = WireWriter().write(make_message(**{**CASES["ascii"], **fields}))
    assert wire is not None
    assert str(parse(wire.data)[name]) == value
    assert smtp_violations(wire.data) == []
    head = wire.data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    assert max(len(line) for line in head if b"=?utf-8?" in line) <= 76


@pytest.mark.parametrize("display_name", ["x" * 1200, "Zoë " * 300 + "end", "a" * 990 + " b", "日本語" * 100])
def test_fast_path_writes_a_long_display_name_in_lines_of_at_most_998(display_name):
    wire = WireWriter().write(make_message(**{**CASES["ascii"], "from_email": f'"{display_name}" <a@zamio.test>'}))
    assert wire is not None and wire.from_addr == "a@zamio.test"
    assert mailboxes(wire.data, "From") == [(display_name, "a@zamio.test")]
    assert smtp_violations(wire.data) == []


@pytest.mark.parametrize("from_email", [". <a@zamio.test> ,", "  . <a@zamio.test> (a>", ":,:: <a@zamio.test> ,;) ",
                                        "(.<). <a@zamio.test> (:]\\[", "<a@zamio.test", None, ""])
def test_fast_path_leaves_a_malformed_from_to_django_with_one_log_line_per_batch(from_email, caplog):
    writer = WireWriter()
    with caplog.at_level(logging.INFO, logger="django_async_email"):
        for _ in range(3):
            message = make_message(**CASES["ascii"])
            message.from_email = from_email
            assert writer.write(message) is None
    assert len(caplog.records) <= 1 and all(r.levelno <= logging.INFO and not r.exc_info for r in caplog.records)


# --- Django's path: the package writes the same headers, and bodies fit SMTP --------------------

def package_message(subject="Hello", body="Hi Ann,\nplain text.\n", html="<p>Hi Ann</p>",
                    from_email="ZamIO <no-reply@zamio.test>", headers=None, reply_to=(), checked=False):
    """A message as the build step leaves it: rendered (here set directly) and addressed, with
    the build step's checks if ``checked`` (``HeaderError`` if it refuses the message)."""
    message = NotificationEmail(context={}, reply_to=list(reply_to))
    message.subject, message.body, message.html = subject, body, html
    message._attach_body()
    if checked:
        address_message(message, "ann@example.com", from_email=from_email, bcc=[], headers=headers or {},
                        message_id="<abc123@zamio.test>")
    else:
        message.to, message.from_email = ["ann@example.com"], from_email
        message.extra_headers = {**(headers or {}), "Message-ID": "<abc123@zamio.test>"}
    return message


def use_adapter(settings, fast=True):
    """Send through ``ConfigurableAdapter``, on the fast path or Django's."""
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "FAST_SMTP_PATH": fast,
                            "ADAPTER": "tests.adapters.ConfigurableAdapter"}


def django_bytes(message) -> bytes:
    """What Django's SMTP backend hands to ``sendmail``."""
    if django.VERSION >= (6, 0):  # the modern email API, serialised with email.policy.SMTP
        return message.message(policy=email.policy.SMTP).as_bytes()
    return message.message().as_bytes(linesep="\r\n")


HEADER_CASES = [
    ("Subject", lambda value: {"subject": value}, lambda data: str(parse(data)["Subject"])),
    ("X-Tag", lambda value: {"headers": {"X-Tag": value}}, lambda data: str(parse(data)["X-Tag"])),
    ("From", lambda value: {"from_email": quoted_mailbox(f"{value} <a@zamio.test>")},
     lambda data: mailboxes(data, "From")[0][0]),
]


@pytest.mark.parametrize("value", [*SPACED_VALUES, "x" * 1200, "Tab\there"])
@pytest.mark.parametrize("name, fields, read", HEADER_CASES, ids=[case[0] for case in HEADER_CASES])
def test_djangos_path_writes_the_headers_the_fast_path_writes(name, fields, read, value):
    message = package_message(**fields(value.strip() if name == "From" else value))
    django_data, wire_data = django_bytes(message), WireWriter().write(message).data
    assert read(django_data) == read(wire_data) == (value.strip() if name == "From" else value)
    assert raw_header(django_data, name) == raw_header(wire_data, name)
    assert smtp_violations(django_data, ["BODY=8BITMIME"]) == []
    assert "X-Inj" not in parse(django_data)


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x0b", "\x0c", "\x85", "\x1c"])
@pytest.mark.parametrize("html", [None, "<p>html</p>"])
def test_a_long_line_with_characters_python_splits_lines_at_fits_smtp_on_both_paths(separator, html):
    # One line of 1,800 bytes on the wire, which str.splitlines cuts into pieces of 400.
    body = ("y" * 400 + separator) * 4 + "end"
    message = package_message(body=body, html=html if html is None else html + body)
    for data in (django_bytes(message), WireWriter().write(message).data):
        assert smtp_violations(data, ["BODY=8BITMIME"]) == []
        plain = parse(data).get_body(("plain",)).get_content().replace("\r\n", "\n").rstrip("\n")
        assert plain == body


@pytest.mark.django_db
@pytest.mark.parametrize("fast", [True, False])
def test_encoded_word_look_alikes_reach_the_wire_as_data_on_both_paths(fast, settings, smtp_backend, make_user,
                                                                       published, monkeypatch):
    use_adapter(settings, fast)
    monkeypatch.setattr(ConfigurableAdapter, "from_email", '"{first_name} at ZamIO" <no-reply@zamio.test>')
    monkeypatch.setattr(ConfigurableAdapter, "extra_headers", {"X-Campaign": LOOKALIKE})
    user = make_user(first_name=LOOKALIKE)
    email_utils.send_notification_to_users([user.pk], f"News {LOOKALIKE}", "Body")
    assert len(deliver_emails(list(OutboxEmail.objects.values_list("pk", flat=True))).sent) == 1
    (received,) = smtp_backend.received
    parsed = parse(received.data)
    assert str(parsed["Subject"]) == f"News {LOOKALIKE}" and str(parsed["X-Campaign"]) == LOOKALIKE
    assert mailboxes(received.data, "From") == [(f"{LOOKALIKE} at ZamIO", "no-reply@zamio.test")]
    assert "X-Inj" not in parsed and not any("\r" in str(v) or "\n" in str(v) for v in parsed.values())
    assert LOOKALIKE in parsed.get_body(("plain",)).get_content()  # the greeting, as text
    assert LOOKALIKE.encode() not in received.data.split(b"\r\n\r\n", 1)[0]
    assert bool(re.search(rb'boundary="==async-email-[0-9a-f]{32}-\d+=="', received.data)) is fast


@pytest.mark.django_db
@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("headers, error", [
    ({"X Bad": "v"}, "'X Bad' is not a header name"),
    ({"X:Colon": "v"}, "'X:Colon' is not a header name"),
    ({"X-Tag": "one", "x-tag": "two"}, "'X-Tag' and 'x-tag' are one field"),
    ({"Content-Type": "text/html"}, "the message's own"),
    ({"X-Note": "one\r\nBcc: victim@example.com"}, "cannot contain line breaks"),
    ({"X-Note": "one\u2028two"}, "cannot contain line breaks"),
    ({"List-Unsubscribe": "<https://zamio.test/u/" + "x" * 1200 + ">"}, "longer than 998"),
    ({"List-Unsubscribe": "<https://zamio.test/u/é>"}, "must be printable ASCII"),
], ids=["space", "colon", "case", "mime", "line-break", "u2028", "long-url", "non-ascii-url"])
def test_a_header_no_path_can_write_fails_the_row_and_nothing_is_sent(fast, headers, error, settings, smtp_backend,
                                                                     make_user, published, monkeypatch, caplog):
    use_adapter(settings, fast)
    monkeypatch.setattr(ConfigurableAdapter, "extra_headers", headers)
    email_utils.send_notification_to_users([make_user().pk], "Hello", "Body")
    report = deliver_emails(list(OutboxEmail.objects.values_list("pk", flat=True)))
    row = OutboxEmail.objects.get()
    assert report.failed == [row.pk] and row.status == "failed"
    assert row.last_error.startswith("Rendering failed: HeaderError:") and error in row.last_error
    assert smtp_backend.received == []
    assert not any(record.exc_info for record in caplog.records)  # a refusal, not a crash


@pytest.mark.django_db
@pytest.mark.parametrize("from_email", [". <no-reply@zamio.test> ,", "  . <no-reply@zamio.test> (a>",
                                        "(.<). <no-reply@zamio.test> (:]\\[", "<no-reply@zamio.test",
                                        "=?utf-8?q?x?= <no-reply@zamio.test> (c)", "josé@zamio.test"])
def test_a_from_no_path_can_send_fails_each_row_with_a_clear_error(from_email, settings, smtp_backend, make_user,
                                                                  published, monkeypatch, caplog):
    use_adapter(settings)
    monkeypatch.setattr(ConfigurableAdapter, "from_email", from_email)
    email_utils.send_notification_to_users([make_user().pk, make_user().pk], "Hello", "Body")
    deliver_emails(list(OutboxEmail.objects.values_list("pk", flat=True)))
    for row in OutboxEmail.objects.all():
        assert row.status == "failed" and "is not one the package can send" in row.last_error
    assert smtp_backend.received == [] and not any(record.exc_info for record in caplog.records)


@pytest.mark.django_db
@pytest.mark.parametrize("fast", [True, False])
def test_a_name_with_special_characters_is_one_mailbox_on_both_paths(fast, settings, smtp_backend, make_user,
                                                                    published, monkeypatch):
    use_adapter(settings, fast)
    monkeypatch.setattr(ConfigurableAdapter, "from_email", "Doe, John (Support) <no-reply@zamio.test>")
    monkeypatch.setattr(ConfigurableAdapter, "extra_headers", {"message-id": "<adapters-own@zamio.test>"})
    email_utils.send_notification_to_users([make_user().pk], "Hello", "Body")
    deliver_emails(list(OutboxEmail.objects.values_list("pk", flat=True)))
    (received,) = smtp_backend.received
    assert received.mail_from == "no-reply@zamio.test"
    assert mailboxes(received.data, "From") == [("Doe, John (Support)", "no-reply@zamio.test")]
    assert parse(received.data)["Message-ID"] == OutboxEmail.objects.get().message_id  # always the row's own


# --- 8-bit data: declared with BODY=8BITMIME, or quoted-printable for a server without it --------

@pytest.mark.django_db
@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("offered", [True, False], ids=["8bitmime", "no-8bitmime"])
def test_8bit_bodies_are_declared_or_sent_quoted_printable(fast, offered, settings, smtp_backend, make_user,
                                                           published):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "FAST_SMTP_PATH": fast}
    if not offered:
        smtp_backend.without_8bitmime()
    user = make_user(first_name="Zoë")
    email_utils.send_notification_to_users([user.pk], "Été", "Voilà, ça marche: 日本語\n.leading dot")
    assert len(deliver_emails(list(OutboxEmail.objects.values_list("pk", flat=True))).sent) == 1
    (received,) = smtp_backend.received
    assert smtp_violations(received.data, received.mail_options) == []
    if offered:
        # 8-bit data is declared. The fast path sends the body as 8bit; Django 6's own
        # encoder may choose quoted-printable instead, which needs no declaration.
        assert ("BODY=8BITMIME" in received.mail_options) is not received.data.isascii()
        assert not fast or not received.data.isascii()
    else:
        assert received.data.isascii() and "BODY=8BITMIME" not in received.mail_options
    parsed = parse(received.data)
    assert "Voilà, ça marche: 日本語\n.leading dot" in parsed.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert "Zoë" in parsed.get_body(("html",)).get_content() and str(parsed["Subject"]) == "Été"
    assert bool(re.search(rb'boundary="==async-email-[0-9a-f]{32}-\d+=="', received.data)) is fast


@pytest.mark.django_db
@pytest.mark.parametrize("fast", [True, False])
def test_ascii_data_declares_nothing(fast, settings, smtp_backend, make_user, published):
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL, "FAST_SMTP_PATH": fast}
    email_utils.send_notification_to_users([make_user(first_name="Ann").pk], "Hello", "Plain ASCII")
    deliver_emails(list(OutboxEmail.objects.values_list("pk", flat=True)))
    (received,) = smtp_backend.received
    assert received.data.isascii() and not any(o.startswith("BODY=") for o in received.mail_options)


def test_re_encoding_for_a_server_without_8bitmime_keeps_headers_and_meaning():
    message = package_message(subject="Zoë " * 30, body="Bonjour Zoë\n" + "é" * 600, html="<p>日本語</p>",
                              headers={"List-Unsubscribe": "<https://zamio.test/u/" + "x" * 100 + ">"})
    for data in (django_bytes(message), WireWriter().write(message).data):
        seven = seven_bit(data)
        assert seven.isascii() and smtp_violations(seven) == []
        assert seven.split(b"\r\n\r\n", 1)[0] == data.split(b"\r\n\r\n", 1)[0]  # the headers byte for byte
        for original, encoded in zip(parse(data).walk(), parse(seven).walk(), strict=True):
            assert original.get_content_type() == encoded.get_content_type()
            if not original.is_multipart():
                assert original.get_content() == encoded.get_content()


# --- Differential: the fast path's bytes and Django's path's mean the same, and both are SMTP -----

#: Examples per run; ASYNC_EMAIL_TEST_DIFFERENTIAL_EXAMPLES=10000 for a longer one.
DIFFERENTIAL_EXAMPLES = int(os.environ.get("ASYNC_EMAIL_TEST_DIFFERENTIAL_EXAMPLES", "1500"))
#: Header text: no line breaks, Python's included (refused when built; the tests above say so).
NOT_SURROGATE_OR_BREAK = st.characters(blacklist_categories=("Cs",),
                                       blacklist_characters="\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
WORDS = st.one_of(
    st.text(string.ascii_letters + string.digits + ".,;:!?'\"()<>@[]\\/-_=+*&%$#", min_size=1, max_size=10),
    st.text("éüñçøÅßœ日本語中文한국어ЖЩΩ🙂\u00a0\u200b", min_size=1, max_size=8),
    st.sampled_from([LOOKALIKE, "=?", "?=", "=?utf-8?b?w6k=?=", "=?iso-8859-1?q?caf=E9?=", "_", "=", "\t",
                     "\x00", "\x1f", "\x7f", "\u00a0"]),
    st.text(string.ascii_letters, min_size=60, max_size=1100),  # longer than a line, or than 998
    st.text(NOT_SURROGATE_OR_BREAK, min_size=1, max_size=12),
)
SPACES = st.sampled_from([" ", "  ", "   "])
EDGE = st.sampled_from(["", "", " ", "  "])
TEXT = st.builds(lambda lead, pairs, tail: lead + "".join(s + w for s, w in pairs).lstrip() + tail,
                 EDGE, st.lists(st.tuples(SPACES, WORDS), min_size=0, max_size=8), EDGE)
BODY_LINE = st.one_of(TEXT, st.sampled_from([".", "..leading dots", "From the team", "", "\x85", "\x0b", "\x0c"]),
                      st.text(string.ascii_letters + " ", min_size=900, max_size=2100))
BODY = st.builds(lambda lines, ends: "".join(line + end for line, end in zip(lines, ends, strict=False)),
                 st.lists(BODY_LINE, min_size=1, max_size=6),
                 st.lists(st.sampled_from(["\n", "\r\n", "\r", "\u2028", ""]), min_size=6, max_size=6))
HEADER_NAMES = ["X-Tag", "X-Campaign", "Comments", "Keywords", "List-Unsubscribe", "List-Id", "Precedence"]
URL = st.builds(lambda path: f"<https://zamio.test/u/{path}>",
                st.text(string.ascii_letters + string.digits + "-._~%?=&", min_size=0, max_size=1100))


def quoted(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


@st.composite
def package_messages(draw):
    """A message built the package's way, with what it was built from (the expected meaning)."""
    names = draw(st.lists(st.sampled_from(HEADER_NAMES), unique=True, max_size=3))
    headers = {name: draw(URL if name.startswith("List-") else TEXT) for name in names}
    display, reply_names = draw(TEXT), draw(st.lists(TEXT, max_size=2))
    fields = dict(subject=draw(TEXT), body=draw(BODY), html=draw(st.one_of(st.none(), BODY)),
                  reply_to=[f"{quoted(n)} <reply{i}@zamio.test>" for i, n in enumerate(reply_names)])
    try:
        message = package_message(**fields, from_email=quoted(display) + " <no-reply@zamio.test>", headers=headers,
                                  checked=True)
    except HeaderError:
        message = None  # refused when built: nothing is sent
    expected = {"From": [(display, "no-reply@zamio.test")], "Subject": fields["subject"], "headers": headers,
                "Reply-To": [(n, f"reply{i}@zamio.test") for i, n in enumerate(reply_names)],
                "text": fields["body"], "html": fields["html"]}
    return message, expected


class FakeSession:
    """What ``transfer.smtp_data`` asks of an SMTP session."""

    def __init__(self, offers_8bitmime):
        self.offers = offers_8bitmime

    def ehlo_or_helo_if_needed(self):
        pass

    def has_extn(self, name):
        return self.offers and name == "8bitmime"


def as_received(data: bytes) -> bytes:
    return data if data.endswith(b"\r\n") else data + b"\r\n"  # smtplib ends the data with CRLF


def meaning(data: bytes) -> dict:
    parsed = parse(as_received(data))
    text = parsed.get_body(("plain",))
    html = parsed.get_body(("html",))
    return {
        "From": mailboxes(data, "From"), "To": str(parsed["To"]), "Subject": str(parsed["Subject"]),
        "Reply-To": mailboxes(data, "Reply-To"),
        "headers": {name: str(value) for name, value in parsed.items() if name in HEADER_NAMES},
        # Line ends as LF, and none at the end: Django 6 ends every text part with one.
        "text": body_text(text.get_content()) if text is not None else None,
        "html": body_text(html.get_content()) if html is not None and html is not text else None,
    }


def body_text(value: str | None) -> str | None:
    return None if value is None else value.replace("\r\n", "\n").replace("\r", "\n").rstrip("\n")


@hsettings(max_examples=DIFFERENTIAL_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(built=package_messages())
def test_both_paths_mean_the_same_and_every_byte_string_is_smtp(built):
    message, expected = built
    if message is None:
        event("refused when built")
        return
    django_data = django_bytes(message)
    wire = WireWriter().write(message)
    event("both paths" if wire is not None else "Django's path only")
    sent = [django_data] + ([wire.data] if wire is not None else [])
    for data in sent:
        for offered in (True, False):
            on_wire, options = smtp_data(FakeSession(offered), data)
            assert smtp_violations(on_wire, options) == [], (offered, on_wire)
    django_meaning = meaning(django_data)
    if wire is not None:
        assert meaning(wire.data) == django_meaning
    assert django_meaning["From"] == expected["From"] and django_meaning["Reply-To"] == expected["Reply-To"]
    assert django_meaning["Subject"] == expected["Subject"] and django_meaning["To"] == "ann@example.com"
    assert django_meaning["headers"] == expected["headers"]
    if expected["text"]:
        assert django_meaning["text"] == body_text(expected["text"])
        assert django_meaning["html"] == body_text(expected["html"] or None)
