"""Text bodies as SMTP carries them: which transfer encoding, and quoted-printable when needed.

Shared by the SMTP fast path, the build step (Django's MIME tree) and the send step
(``send.transfer``, for a server without 8BITMIME). The rule on both paths: 7bit or 8bit
when every line fits in 998 bytes, quoted-printable otherwise. Lines are counted in bytes
between CR, LF or CRLF, as SMTP sees them: Python's ``str.splitlines`` also breaks at
U+2028, U+0085, ``\\x0b`` and a few more, which are not line ends on the wire (Django's
rule counts with it).
"""

from __future__ import annotations

import re
from email import quoprimime
from email.message import Message

#: RFC 5321 line limit, without the CRLF.
MAX_LINE = 998
LINE_BREAK = re.compile(rb"\r\n|\r|\n")


def lines_fit(raw: bytes) -> bool:
    """Whether every line of ``raw`` (split at CR, LF or CRLF) is at most 998 bytes."""
    return max(map(len, LINE_BREAK.split(raw))) <= MAX_LINE


def quoted_printable(raw: bytes, eol: str) -> str:
    """``raw`` as quoted-printable lines of at most 76 characters ending in ``eol``.

    quoprimime escapes every byte but printable ASCII, CR and LF before it splits lines,
    so a character Python counts as a line break is escaped, never taken for a line end.
    """
    return quoprimime.body_encode(raw.decode("latin-1"), 76, eol)


def set_quoted_printable(part: Message, raw: bytes) -> None:
    """Make a text part of a MIME tree carry ``raw`` (its decoded bytes) as quoted-printable."""
    # Message.set_payload, not a subclass's (Django's picks an encoding of its own).
    Message.set_payload(part, quoted_printable(raw, "\n"))
    part.replace_header("Content-Transfer-Encoding", "quoted-printable")


def decoded_bytes(part: Message) -> bytes:
    """The bytes a 7bit or 8bit part carries."""
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""
