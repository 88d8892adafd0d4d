"""Django's MIME tree, corrected where Django and the email package get the wire format wrong.

The package's message classes pass what Django's ``EmailMessage.message()`` built through
``correct_tree``, so every backend that serialises ``message()`` (SMTP, its subclasses,
file and console) gets:

- the headers the package is responsible for (Subject, From, Reply-To and the adapter's
  extra headers) as ``delivery.headers`` writes them, the same as the SMTP fast path.
  Django writes an ASCII value as it is, so text that looks like an RFC 2047 encoded
  word is decoded by the reader; Python's header folding cuts values at the characters
  ``str.splitlines`` breaks at (U+2028, ``\\x0b``...), starts the value on a line of its
  own (which Python's parser reads as a leading space) and cannot fold a long word;
- text parts with a line over 998 bytes as quoted-printable (``delivery.bodies``): Django
  counts lines with ``str.splitlines``, so a long line with U+2028 in it went out 8bit.
"""

from __future__ import annotations

from email.policy import Compat32
from email.message import Message

from ..bodies import decoded_bytes, lines_fit, set_quoted_printable
from ..headers import address_lines, header_lines, parse_mailbox

#: Extra headers Django's ``message()`` does not copy as they are (it writes its own From,
#: To, Cc and Reply-To from the message's attributes).
DJANGO_ADDRESS_HEADERS = frozenset({"from", "to", "cc", "reply-to"})


class WrittenHeader(str):
    """A header ``delivery.headers`` encoded and folded: the value as written, unfolded.

    The modern email policies (Django 6) write a header object with a ``name`` by calling
    its ``fold``; the legacy policy (``compat32``, Django before 6.0) would fold any string
    again, so ``correct_tree`` gives the tree ``WrittenHeaderPolicy``, which calls it too.
    """

    name: str
    lines: list[str]

    def __new__(cls, name: str, lines: list[str]):
        header = super().__new__(cls, "".join(lines)[len(name) + 2:])
        header.name = name
        header.lines = lines
        return header

    def fold(self, *, policy) -> str:
        return policy.linesep.join(self.lines) + policy.linesep


class WrittenHeaderPolicy(Compat32):
    """``compat32`` that writes a ``WrittenHeader`` as it is folded."""

    def fold(self, name, value):
        return value.fold(policy=self) if isinstance(value, WrittenHeader) else super().fold(name, value)

    def fold_binary(self, name, value):
        if isinstance(value, WrittenHeader):
            return value.fold(policy=self).encode("ascii")
        return super().fold_binary(name, value)


WRITTEN_COMPAT32 = WrittenHeaderPolicy()


def correct_tree(msg: Message, message) -> None:
    """Rewrite ``msg`` (what ``message.message()`` built) in place, as the module docstring says."""
    if type(msg.policy) is Compat32:
        msg.policy = WRITTEN_COMPAT32
    for name, value in header_sources(message).items():
        if msg.get(name) is None:
            continue
        lines = written_lines(name, value)
        if lines is not None:
            msg.replace_header(name, WrittenHeader(name, lines))
    for part in msg.walk():
        if part.get_content_maintype() == "text" and not part.is_multipart() \
                and str(part.get("Content-Transfer-Encoding", "")).lower() in ("7bit", "8bit"):
            raw = decoded_bytes(part)
            if not lines_fit(raw):
                set_quoted_printable(part, raw)


def header_sources(message) -> dict[str, object]:
    """Each header the package writes, with the value Django's ``message()`` took it from."""
    extra = message.extra_headers
    sources: dict[str, object] = {"Subject": message.subject, "From": extra.get("From", message.from_email)}
    if message.reply_to and "Reply-To" not in extra:
        sources["Reply-To"] = list(message.reply_to)
    for name, value in extra.items():
        if name.lower() not in DJANGO_ADDRESS_HEADERS:
            sources[name] = value
    return sources


def written_lines(name: str, value) -> list[str] | None:
    """The header's lines, or ``None`` for an address this package does not read (Django's stays)."""
    if name in ("From", "Reply-To"):
        values = value if isinstance(value, list) else [value]
        parsed = [parse_mailbox(str(item)) for item in values]
        mailboxes = [mailbox for mailbox in parsed if mailbox is not None]
        return address_lines(name, mailboxes) if len(mailboxes) == len(parsed) else None
    return header_lines(name, str(value))
