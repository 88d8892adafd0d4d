"""Every message correct on the wire, on both send paths (the SMTP fast path and Django's).

Found by a penetration test and a differential check against independent email software;
Python's ``email`` parser with ``email.policy.default`` is the judge throughout.
"""

import logging

import pytest

from django_async_email import email_utils
from django_async_email.delivery.send.wire import WireWriter
from django_async_email.exceptions import InvalidEmailInput
from tests.test_wire import CASES, make_message
from tests.wire_judge import mailboxes, parse, smtp_violations

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
    "=?utf-8?q?=0D=0AX-Inj:_1?=",
    "a\u2028b\x85c\x0bd",
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
