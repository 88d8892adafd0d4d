"""The bytes and MAIL options an SMTP session gets: 8-bit data declared, or re-encoded.

RFC 6152 allows 8-bit data only after ``BODY=8BITMIME`` on MAIL FROM, and only to a server
that offers the 8BITMIME extension; smtplib declares nothing by itself. Both send paths
go through ``smtp_data``: data with 8-bit bytes is declared when the server offers
8BITMIME; when it does not, each 8bit text part is re-encoded as quoted-printable (the
fast path's bytes, and Django's backend's ``message()`` bytes, which nothing has signed).
A subclass of the backend may sign its bytes in ``_send``, so its data is only declared,
never rewritten.
"""

from __future__ import annotations

import email
import email.policy
import smtplib

from ..bodies import decoded_bytes, set_quoted_printable

EIGHT_BIT = "BODY=8BITMIME"
#: Reads and writes a message keeping every header as it was folded.
AS_RECEIVED = email.policy.default.clone(linesep="\r\n", refold_source="none")


class EightBitNotAccepted(smtplib.SMTPNotSupportedError):
    """The server does not offer 8BITMIME and the data has 8-bit bytes that cannot be re-encoded."""


def offers(session: smtplib.SMTP, extension: str) -> bool:
    """Whether the server announced ``extension`` in its EHLO reply (sending EHLO if needed)."""
    session.ehlo_or_helo_if_needed()
    return bool(session.has_extn(extension))


def offers_8bitmime(session: smtplib.SMTP) -> bool:
    return offers(session, "8bitmime")


def smtp_data(session: smtplib.SMTP, data: bytes, reencode: bool = True) -> tuple[bytes, list[str]]:
    """``(data, mail_options)`` for ``session.sendmail``."""
    if data.isascii():
        return data, []
    if offers_8bitmime(session):
        return data, [EIGHT_BIT]
    if not reencode:
        return data, []
    data = seven_bit(data)
    if not data.isascii():
        raise EightBitNotAccepted("The SMTP server does not offer 8BITMIME, and the message has 8-bit data "
                                  "outside its text parts.")
    return data, []


def seven_bit(data: bytes) -> bytes:
    """``data`` with every text part that has 8-bit bytes as quoted-printable, the rest as it was."""
    message = email.message_from_bytes(data, policy=AS_RECEIVED)
    for part in message.walk():
        if part.is_multipart() or part.get_content_maintype() != "text":
            continue
        if str(part.get("Content-Transfer-Encoding", "7bit")).lower() in ("7bit", "8bit"):
            raw = decoded_bytes(part)
            if not raw.isascii():
                set_quoted_printable(part, raw)
    return message.as_bytes(policy=AS_RECEIVED)


def wrap_sendmail(connection, refused: dict, reencode: bool) -> None:
    """Make the backend's open session declare or re-encode 8-bit data (``smtp_data``) and
    collect the recipients the server refused while it accepted the message for others.

    ``smtplib.SMTP.sendmail`` returns those, and Django's SMTP backend drops that return
    value. Backends without an ``smtplib`` session are left alone.
    """
    session = getattr(connection, "connection", None)
    if not isinstance(session, smtplib.SMTP):
        return
    original = getattr(session, "_async_email_sendmail", session.sendmail)

    def sendmail(from_addr, to_addrs, msg, mail_options=(), rcpt_options=()):
        if isinstance(msg, bytes):
            msg, options = smtp_data(session, msg, reencode)
            mail_options = [*mail_options, *(o for o in options if o not in mail_options)]
        result = original(from_addr, to_addrs, msg, mail_options, rcpt_options)
        refused.update(result or {})
        return result

    # Patching one live session: mypy cannot express an added attribute or a replaced method.
    session._async_email_sendmail = original  # type: ignore[attr-defined]  # marks the session as wrapped
    session.sendmail = sendmail  # type: ignore[method-assign]  # this session's sendmail, wrapped on purpose
