"""Text bodies as SMTP carries them: which transfer encoding, and quoted-printable when needed.

The rule: 7bit or 8bit when every line fits in 998 bytes, quoted-printable otherwise.
Lines are counted in bytes between CR, LF or CRLF, as SMTP sees them: Python's
``str.splitlines`` also breaks at U+2028, U+0085, ``\\x0b`` and a few more, which are not
line ends on the wire.
"""

from __future__ import annotations

from email import quoprimime

#: RFC 5321 line limit, without the CRLF.
MAX_LINE = 998


def quoted_printable(raw: bytes, eol: str) -> str:
    """``raw`` as quoted-printable lines of at most 76 characters ending in ``eol``.

    quoprimime escapes every byte but printable ASCII, CR and LF before it splits lines,
    so a character Python counts as a line break is escaped, never taken for a line end.
    """
    return quoprimime.body_encode(raw.decode("latin-1"), 76, eol)
