"""Write a rendered email straight to the bytes an SMTP server receives, for the usual shape.

After the SMTP exchange itself, building a MIME tree with the email package, serialising
it and sanitising its addresses is the costliest part of sending a bulk message (about
three times the template render's CPU in docs/benchmarks.md). Most of that
work is the same for every message of a batch: the From, Subject and Reply-To headers, the
adapter's extra headers and their encoding and folding. Here each distinct header value
is written once per batch, by ``delivery.headers`` (the encoder Django's path uses too).
Per message only To, Date, Message-ID, the boundary and the two bodies are written.

Only the shape the package sends is handled: a UTF-8 plain-text body with an optional
HTML alternative, one plain ``To`` address, optional plain Bcc addresses, no Cc and no
attachments. Anything else returns ``None`` and goes through the email backend as before:
an address that would need IDNA, a display name in To, a From this module does not read,
an extra header naming a field written here, or a header ``delivery.headers`` refuses.
Bodies follow ``delivery.bodies``: 7bit or 8bit when every line fits in 998 bytes,
quoted-printable otherwise.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from email.utils import formatdate

from django.conf import settings
from django.core.mail.backends.smtp import EmailBackend as SMTPEmailBackend

from ...conf import app_settings
from ...outbox.publishing import new_message_id
from ..bodies import MAX_LINE, quoted_printable
from ..headers import PLAIN_ADDRESS, HeaderError, address_lines, header_lines, parse_mailbox

logger = logging.getLogger(__name__)

#: Headers the writer sets itself; an extra header with one of these names means the
#: caller wants something this module does not do, so the backend builds that message.
OWN_HEADERS = frozenset({
    "from", "to", "cc", "bcc", "reply-to", "mime-version", "content-type", "content-transfer-encoding",
})
CRLF = b"\r\n"


@dataclass(frozen=True)
class WireMessage:
    """What ``smtplib.SMTP.sendmail`` takes: the envelope and the message bytes."""

    from_addr: str
    recipients: list[str]
    data: bytes


def fast_path_applies(connection) -> bool:
    """True for Django's own SMTP backend (not a subclass: it may sign or rewrite in ``_send``)."""
    return bool(app_settings.FAST_SMTP_PATH) and type(connection) is SMTPEmailBackend


def _body(text: str) -> tuple[bytes, bytes] | None:
    """``(Content-Transfer-Encoding, CRLF-terminated lines)`` of one text part."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: leave it to the email package
        return None
    lines = raw.split(b"\n")  # the only line end left: U+2028 and the like are not one on the wire
    if max(map(len, lines)) <= MAX_LINE:
        return (b"7bit" if raw.isascii() else b"8bit"), CRLF.join(lines)
    return b"quoted-printable", quoted_printable(raw, "\r\n").encode("ascii")


def _write_header(name: str, value) -> bytes | None:
    """``Name: value`` as CRLF-terminated bytes (an address field's value: a tuple of
    mailboxes); ``None`` if ``delivery.headers`` does not write it."""
    try:
        if name in ("From", "Reply-To"):
            parsed = [parse_mailbox(mailbox) for mailbox in value]
            mailboxes = [mailbox for mailbox in parsed if mailbox is not None]
            if len(mailboxes) != len(parsed):
                return None
            lines = address_lines(name, mailboxes)
        else:
            lines = header_lines(name, value)
    except HeaderError:
        return None
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def _part_headers(subtype: bytes, cte: bytes) -> bytes:
    return b'Content-Type: text/' + subtype + b'; charset="utf-8"\r\nContent-Transfer-Encoding: ' + cte + CRLF


class WireWriter:
    """Writes the messages of one batch; remembers each header value it has encoded."""

    def __init__(self):
        self._headers: dict[tuple[str, object], bytes | None] = {}
        self._senders: dict[str, tuple[str | None, bytes | None]] = {}
        self._second = -1
        self._date = b""
        # One random prefix per batch and a counter: 128 random bits cannot occur in
        # content rendered from templates, which is all a boundary has to avoid.
        self._boundary_prefix = f"==async-email-{secrets.token_hex(16)}-"
        self._count = 0

    def write(self, message) -> WireMessage | None:
        """The message as SMTP bytes, or ``None`` if it is not of the shape handled here."""
        html = self._html_of(message)
        if html is False:
            return None
        recipients = list(message.to) + list(message.bcc)
        if len(message.to) != 1 or not all(isinstance(a, str) and PLAIN_ADDRESS.match(a) for a in recipients):
            return None
        from_addr, from_line = self._sender(message.from_email)
        if from_addr is None:
            return None
        head = self._head(message, from_line)
        text = _body(message.body) if head is not None else None
        if head is None or text is None:
            return None
        if html is None:
            # smtplib ends the data with CRLF only if it does not end with one already (an
            # empty body ends with the blank line after the headers).
            data = b"".join((*head, _part_headers(b"plain", text[0]), CRLF, text[1],
                             b"" if not text[1] or text[1].endswith(CRLF) else CRLF))
            return WireMessage(from_addr, recipients, data)
        html_body = _body(html)
        if html_body is None:
            return None
        return WireMessage(from_addr, recipients, self._alternative(head, text, html_body))

    def _head(self, message, from_line) -> list[bytes] | None:
        """The message's header lines, up to MIME-Version; ``None`` if one cannot be written here."""
        head = [
            from_line,
            b"To: " + message.to[0].encode("ascii") + CRLF,
            self._header("Subject", message.subject),
        ]
        if message.reply_to:
            head.append(self._header("Reply-To", tuple(message.reply_to)))
        extra = {name.lower(): (name, value) for name, value in message.extra_headers.items()}
        # Names differing only in case are one field: the build step refuses such a pair.
        if OWN_HEADERS & extra.keys() or len(extra) != len(message.extra_headers):
            return None
        if "date" not in extra:
            head.append(self._now())
        # Rows always carry theirs; a message without one gets the package's format.
        message_id = extra.pop("message-id", (None, None))[1] or new_message_id()
        # Unique per message, so written here rather than remembered by _header; no control
        # characters, as for every other header.
        if not isinstance(message_id, str) or not (message_id.isascii() and message_id.isprintable()) \
                or len(message_id) > MAX_LINE - len("Message-ID: "):
            return None
        head.append(b"Message-ID: " + message_id.encode("ascii") + CRLF)
        for name, value in extra.values():
            head.append(self._header(name, value))
        if None in head:
            return None
        head.append(b"MIME-Version: 1.0\r\n")
        return head

    def _alternative(self, head: list[bytes], text: tuple[bytes, bytes], html: tuple[bytes, bytes]) -> bytes:
        """A multipart/alternative message of the text and HTML parts."""
        self._count += 1
        boundary = f"{self._boundary_prefix}{self._count}==".encode("ascii")
        head.append(b'Content-Type: multipart/alternative;\r\n boundary="' + boundary + b'"\r\n')
        delimiter = b"\r\n--" + boundary + CRLF
        return b"".join((
            *head, CRLF,
            b"--", boundary, CRLF, _part_headers(b"plain", text[0]), CRLF, text[1],
            delimiter, _part_headers(b"html", html[0]), CRLF, html[1],
            b"\r\n--", boundary, b"--\r\n",
        ))

    @staticmethod
    def _html_of(message):
        """The HTML alternative (``None`` if there is none), or ``False`` for any other shape."""
        if message.attachments or message.cc or message.content_subtype != "plain" or not isinstance(message.body, str):
            return False
        if (message.encoding or settings.DEFAULT_CHARSET).lower().replace("_", "-") not in ("utf-8", "utf8"):
            return False
        alternatives = list(getattr(message, "alternatives", None) or [])
        if not alternatives:
            return None
        if len(alternatives) != 1:
            return False
        content, mimetype = alternatives[0][0], alternatives[0][1]
        return content if mimetype == "text/html" and isinstance(content, str) else False

    def _sender(self, from_email) -> tuple[str | None, bytes | None]:
        """The envelope sender and the From line of a From value, decided once per distinct value."""
        try:
            return self._senders[from_email]
        except KeyError:
            pass
        except TypeError:  # an unhashable value: not a From this module writes
            return None, None
        mailbox = parse_mailbox(from_email)
        line = _write_header("From", (from_email,)) if mailbox is not None else None
        if line is None:
            # Once per batch: every message of it has this From.
            logger.info("The SMTP fast path does not write the From %r; its emails go through the email backend",
                        from_email)
            mailbox = None
        self._senders[from_email] = (mailbox[1] if mailbox else None), line
        return self._senders[from_email]

    def _header(self, name: str, value) -> bytes | None:
        """One header line (folded), memoised; ``None`` for anything the backend should write."""
        key = (name, value)
        try:
            return self._headers[key]
        except KeyError:
            pass
        except TypeError:  # an unhashable value: not a header this module writes
            return None
        line = self._headers[key] = _write_header(name, value)
        return line

    def _now(self) -> bytes:
        """The Date header, formatted once per second."""
        second = int(time.time())
        if second != self._second:
            self._second = second
            self._date = f"Date: {formatdate(second, localtime=settings.EMAIL_USE_LOCALTIME)}\r\n".encode("ascii")
        return self._date
