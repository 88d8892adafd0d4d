"""Every message correct on the wire, on both send paths (the SMTP fast path and Django's).

Found by a penetration test and a differential check against independent email software;
Python's ``email`` parser with ``email.policy.default`` is the judge throughout.
"""

import pytest

from django_async_email import email_utils
from django_async_email.exceptions import InvalidEmailInput

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
