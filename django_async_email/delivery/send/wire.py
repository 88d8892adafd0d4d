"""Write a rendered email straight to the bytes an SMTP server receives, for the usual shape.

After the SMTP exchange itself, building a MIME tree with the email package, serialising
it and sanitising its addresses is the costliest part of sending a bulk message (about
three times the template render's CPU in docs/benchmarks.md). Most of that
work is the same for every message of a batch: the From, Subject and Reply-To headers, the
adapter's extra headers and their encoding and folding. Here each distinct header value
is written once per batch: ASCII text as it is (folded at spaces), address headers and
non-ASCII text encoded and folded by the standard library's ``email.policy.SMTP``. Per
message only To, Date, Message-ID, the boundary and the two bodies are written.

Only the shape the package sends is handled: a UTF-8 plain-text body with an optional
HTML alternative, one plain ``To`` address, optional plain Bcc addresses, no Cc and no
attachments. Anything else returns ``None`` and goes through the email backend as before:
an address that would need IDNA, a display name in To, a header value with a control
character or with text that looks like an RFC 2047 encoded-word (``=?``). The
output follows Django's rule for bodies: 7bit or 8bit when every line fits in 998 bytes,
quoted-printable otherwise.
"""

from __future__ import annotations

import email.policy
import re
import secrets
import time
from dataclasses import dataclass
from email import quoprimime
from email.utils import formatdate, getaddresses

from django.conf import settings
from django.core.mail.backends.smtp import EmailBackend as SMTPEmailBackend

from ...conf import app_settings
from ...outbox.publishing import new_message_id

#: An addr-spec that is its own envelope address: ASCII, no display name, no quoting.
PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?\Z")
#: RFC 5321 line limit, without the CRLF.
MAX_LINE = 998
#: Headers the writer sets itself; an extra header with one of these names means the
#: caller wants something this module does not do, so the backend builds that message.
OWN_HEADERS = frozenset({
    "from", "to", "cc", "bcc", "reply-to", "mime-version", "content-type", "content-transfer-encoding",
})
POLICY = email.policy.SMTP
CRLF = b"\r\n"
#: Folded with the email package (address parsing and quoting); other ASCII headers as written.
ADDRESS_HEADERS = frozenset({"from", "reply-to"})
FOLD_AT = 78
#: A field name: printable ASCII but the colon (RFC 5322 section 3.6.8).
HEADER_NAME = re.compile(r"[!-9;-~]+\Z")
#: A line break inside a folded header that is not CRLF followed by white space.
UNFOLDED_BREAK = re.compile(rb"\r\n(?![ \t])|\r(?!\n)|(?<!\r)\n")


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
    lines = raw.split(b"\n")
    if max(map(len, lines)) <= MAX_LINE:
        return (b"7bit" if raw.isascii() else b"8bit"), CRLF.join(lines)
    # quoprimime escapes every byte but printable ASCII, CR and LF before it splits lines.
    return b"quoted-printable", quoprimime.body_encode(raw.decode("latin-1"), 76, "\r\n").encode("ascii")


def _fold_ascii(name: str, value: str) -> bytes | None:
    """``Name: value`` as it is, folded at spaces to about 78 characters (unfolding gives the
    value back exactly); an unstructured ASCII value needs no encoding, and a URL in
    List-Unsubscribe must stay as written."""
    words = value.split(" ")
    lines, current = [], f"{name}: {words[0]}"
    for word in words[1:]:
        if word and len(current) + 1 + len(word) > FOLD_AT:
            lines.append(current)
            current = " " + word
        else:
            current += " " + word
    lines.append(current)
    if max(map(len, lines)) > MAX_LINE:
        return None
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def _fold_with_policy(name: str, value: str) -> bytes | None:
    """An address header, or non-ASCII text, encoded (RFC 2047) and folded by ``email.policy.SMTP``."""
    try:
        header = POLICY.header_factory(name, value)
        addresses = getattr(header, "addresses", None)
        if addresses is None and str(header) != value:
            return None  # the parser changed the text: not ours to send
        # The standard library would turn a non-ASCII domain into an encoded-word
        # (python/cpython#83938); Django IDNA-encodes it instead, so leave it to Django.
        if header.defects or any(not a.domain.isascii() for a in addresses or ()):
            return None
        line = header.fold(policy=POLICY).encode("ascii")
    except (UnicodeEncodeError, ValueError, IndexError):
        return None
    if "\r" in str(header) or "\n" in str(header) or UNFOLDED_BREAK.search(line[:-2]):
        return None
    return line


def _part_headers(subtype: bytes, cte: bytes) -> bytes:
    return b'Content-Type: text/' + subtype + b'; charset="utf-8"\r\nContent-Transfer-Encoding: ' + cte + CRLF


class WireWriter:
    """Writes the messages of one batch; remembers each header value it has encoded."""

    def __init__(self):
        self._headers: dict[tuple[str, str], bytes | None] = {}
        self._envelope_from: dict[str, str | None] = {}
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
        from_addr = self._from_address(message.from_email)
        if from_addr is None:
            return None
        head = self._head(message)
        text = _body(message.body) if head is not None else None
        if head is None or text is None:
            return None
        if html is None:
            # smtplib ends the data with CRLF only if it does not end with one already.
            data = b"".join((*head, _part_headers(b"plain", text[0]), CRLF, text[1],
                             b"" if text[1].endswith(CRLF) else CRLF))
            return WireMessage(from_addr, recipients, data)
        html_body = _body(html)
        if html_body is None:
            return None
        return WireMessage(from_addr, recipients, self._alternative(head, text, html_body))

    def _head(self, message) -> list[bytes] | None:
        """The message's header lines, up to MIME-Version; ``None`` if one cannot be written here."""
        head = [
            self._header("From", message.from_email),
            b"To: " + message.to[0].encode("ascii") + CRLF,
            self._header("Subject", message.subject),
        ]
        if message.reply_to:
            head.append(self._header("Reply-To", ", ".join(message.reply_to)))
        extra = {name.lower(): (name, value) for name, value in message.extra_headers.items()}
        if OWN_HEADERS & extra.keys():
            return None
        if "date" not in extra:
            head.append(self._now())
        # Rows always carry theirs; a message without one gets the package's format.
        message_id = extra.pop("message-id", (None, None))[1] or new_message_id()
        # Unique per message, so written here rather than remembered by _header; no control
        # characters, as for every other header.
        if not isinstance(message_id, str) or not (message_id.isascii() and message_id.isprintable()):
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
        head.append(b'Content-Type: multipart/alternative; boundary="' + boundary + b'"\r\n')
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

    def _from_address(self, from_email) -> str | None:
        """The envelope sender of a From value, once per distinct value."""
        if from_email not in self._envelope_from:
            parsed = getaddresses([from_email]) if isinstance(from_email, str) else []
            address = parsed[0][1] if len(parsed) == 1 else ""
            self._envelope_from[from_email] = address if PLAIN_ADDRESS.match(address) else None
        return self._envelope_from[from_email]

    def _header(self, name: str, value) -> bytes | None:
        """One header line (folded), memoised; ``None`` for anything the backend should write."""
        key = (name, value)
        try:
            return self._headers[key]
        except KeyError:
            pass
        except TypeError:  # an unhashable value: not a header this module writes
            return None
        line = None
        # Control characters (CR and LF among them) and text that looks like an RFC 2047
        # encoded-word are left to Django: the standard library's header parser decodes
        # encoded-words, and before Python 3.11.10 / 3.12.5 it could turn an encoded CRLF
        # into a real one (CVE-2024-6923).
        if isinstance(value, str) and HEADER_NAME.match(name) and value.isprintable() and "=?" not in value:
            if value.isascii() and name.lower() not in ADDRESS_HEADERS:
                line = _fold_ascii(name, value)
            else:
                line = _fold_with_policy(name, value)
        self._headers[key] = line
        return line

    def _now(self) -> bytes:
        """The Date header, formatted once per second."""
        second = int(time.time())
        if second != self._second:
            self._second = second
            self._date = f"Date: {formatdate(second, localtime=settings.EMAIL_USE_LOCALTIME)}\r\n".encode("ascii")
        return self._date
