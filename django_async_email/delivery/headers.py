"""Header fields as the package writes them, on the SMTP fast path and in Django's MIME tree.

Both send paths write the headers the package is responsible for (Subject, From,
Reply-To and the adapter's extra headers) with ``header_lines``, so both mean the same
and neither depends on how a Python or Django version encodes and folds:

- Plain ASCII text (printable, no space at either end, nothing like an RFC 2047
  encoded word) goes out as written, folded before a run of spaces; unfolding gives it
  back exactly.
- Any other text of an unstructured field (Subject, an ``X-`` header) is written as RFC
  2047 encoded words: the whole value, cut at character boundaries into words of at most
  75 characters, folded between words. A decoder drops the white space between adjacent
  encoded words, so it reads the value back exactly, spaces included, and text that looks
  like an encoded word (``=?utf-8?q?=0D=0A?=``) is data, never markup. The standard
  library's folding is not used: ``email.policy.SMTP`` drops and moves spaces between
  encoded words (CPython issue 144156), and before Python 3.11.10 and 3.12.5 it could turn
  an encoded line break into a real one (CVE-2024-6923).
- Fields in which RFC 2047 forbids encoded words (Message-ID, References, Date, the
  ``List-*`` fields) are written as they are. Their value must be printable ASCII and
  foldable into lines of 998 characters; any other value is refused with ``HeaderError``.
- Address fields (From, Reply-To): the address as it is (its domain in IDNA), the
  display name as atoms, as a quoted string, or with encoded words for the runs of words
  that need them.

A value with a line break is refused (``HeaderError``): CR, LF, or any other character
``str.splitlines`` breaks at (U+2028, U+0085, ``\\x0b`` and others). Every line is at most 78
characters where a space allows it (76 with an encoded word) and never more than 998.
"""

from __future__ import annotations

import base64
import re
import string

from django.utils.encoding import punycode

#: RFC 5321 and 5322 line limit, without the CRLF.
MAX_LINE = 998
#: Where lines are folded if a space allows it (RFC 5322 section 2.1.1).
FOLD_AT = 78
#: A line with an encoded word (RFC 2047 section 2), and one encoded word.
EW_LINE = 76
EW_MAX = 75
#: A field name: printable ASCII but the colon (RFC 5322 section 3.6.8). The length cap
#: keeps the name and the start of its value on one line.
HEADER_NAME = re.compile(r"[!-9;-~]{1,76}\Z")
#: Fields written as they are: RFC 2047 section 5 allows no encoded word in them.
VERBATIM = frozenset({"message-id", "in-reply-to", "references", "date", "resent-message-id", "resent-date"})
VERBATIM_PREFIX = "list-"

#: Printable ASCII with no space at either end (or nothing).
PLAIN_TEXT = re.compile(r"(?:[!-~](?:[ -~]*[!-~])?)?\Z")
VERBATIM_TEXT = re.compile(r"[\t -~]*\Z")
ENCODED_WORD = re.compile(r"=\?[^?\s]*\?[bBqQ]\?[^?\s]*\?=")
#: A fold point is before a run of spaces: each token is the spaces and the word after them.
FOLD_TOKEN = re.compile(r" *[^ ]+| +")
#: RFC 5322 atext: a display-name word that needs neither quotes nor encoding.
ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+\Z")
QUOTED_SPECIAL = re.compile(r'["\\]')
#: An addr-spec that is its own envelope address: ASCII dot-atom, no quoting.
PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?\Z")
DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*\Z")
#: ``addr`` or ``name <addr>``, the name one quoted string or text without ``<>"``; only
#: spaces and tabs around the parts (a Unicode space may belong to the name).
MAILBOX = re.compile(r"""[ \t]*(?:
    (?P<name>"(?:[^"\\]|\\.)*"|[^<>"]*?)[ \t]*<(?P<angle>[^<>\s]+)>   # name <addr>
    |(?P<bare>[^<>\s"]+)                                             # addr
)[ \t]*\Z""", re.S | re.X)
QUOTED_NAME = re.compile(r'"((?:[^"\\]|\\.)*)"\Z', re.S)
NAME_SPECIALS = frozenset('()<>[]:;@\\,"')
#: Where ``str.splitlines`` breaks a line. Django 6's email policy refuses a header value
#: with one of these in it, and the legacy one cut the value there, so none of them is
#: written on either path.
LINE_BREAK = re.compile("[\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")

#: Q encoding of each byte: the characters RFC 2047 section 5 (3) allows in any context
#: as they are, the space as ``_``, every other byte as ``=XX``.
_Q_SAFE = frozenset((string.ascii_letters + string.digits + "!*+-/").encode("ascii"))
_Q = tuple(chr(b) if b in _Q_SAFE else "_" if b == 0x20 else f"={b:02X}" for b in range(256))
_EW_OVERHEAD = len("=?utf-8?q??=")


class HeaderError(ValueError):
    """A header the package cannot write correctly; the row fails instead of being sent."""


def check_name(name) -> str:
    """``name`` if it is a valid field name, else ``HeaderError``."""
    if not isinstance(name, str) or not HEADER_NAME.match(name):
        raise HeaderError(f"{name!r} is not a header name: printable ASCII without spaces or ':', "
                          f"at most 76 characters.")
    return name


def header_lines(name: str, value: str) -> list[str]:
    """``Name: value`` as folded lines (without CRLF), the way both send paths write it."""
    check_name(name)
    if isinstance(value, str) and "=?" not in value and PLAIN_TEXT.match(value):
        # Plain text (no control character, so no line break) is right in every field;
        # it needs no encoding if it folds.
        lines = _fold(f"{name}: ", value, FOLD_AT)
        if lines is not None:
            return lines
    _check_text(name, value)
    key = name.lower()
    if key in VERBATIM or key.startswith(VERBATIM_PREFIX):
        return _verbatim(name, value)
    lines = _fold(f"{name}: ", " ".join(encoded_words(value, _first_room(name))), EW_LINE)
    assert lines is not None  # encoded words are short, and a name is at most 76 characters
    return lines


def address_lines(name: str, mailboxes: list[tuple[str, str]]) -> list[str]:
    """An address field of ``(display name, addr-spec)`` pairs as folded lines."""
    check_name(name)
    for display_name, address in mailboxes:
        _check_text(name, display_name)
        if not PLAIN_ADDRESS.match(address):
            raise HeaderError(f"The {name} header has an address that is not plain ASCII: {address!r}.")
    for force in (False, True):
        parts: list[str] = []
        for display_name, address in mailboxes:
            first_room = _first_room(name) if not parts else EW_MAX
            phrase = display_phrase(display_name, first_room, force_encoding=force)
            parts.append(f"{phrase} <{address}>" if phrase else address)
        text = ", ".join(parts)
        lines = _fold(f"{name}: ", text, EW_LINE if "=?" in text else FOLD_AT)
        if lines is not None:
            return lines
    raise HeaderError(f"The {name} header cannot be folded into lines of {MAX_LINE} characters.")


def parse_mailbox(value) -> tuple[str, str] | None:
    """``(display name, addr-spec)`` of ``addr`` or ``name <addr>``, the domain in IDNA.

    The name may be quoted; unquoted, it is everything before ``<`` (special characters
    and all: it is written quoted or encoded). ``None`` for anything else: a comment after
    the address, a group, several addresses, a quoted or non-ASCII local part, a stray
    quote or bracket.
    """
    parts = _mailbox_parts(value)
    if parts is None:
        return None
    name, _quoted, local, domain = parts
    try:
        address = f"{local}@{punycode(domain)}"
    except UnicodeError:
        return None
    return (name, address) if PLAIN_ADDRESS.match(address) and DOT_ATOM.match(local) else None


def quoted_mailbox(value: str) -> str:
    """``value`` (which ``parse_mailbox`` reads) written so that every parser, Django's and
    the email package's among them, reads the same mailbox from it.

    A display name with special characters is quoted, and in a quoted name ``=?`` is
    written ``=\\?``: the email package decodes encoded words even inside quotes (Django
    computes the envelope sender with it), and a quoted pair means the same character.
    """
    parts = _mailbox_parts(value)
    if parts is None:
        return value
    name, quoted, local, domain = parts
    if "=?" not in name and (quoted or not NAME_SPECIALS & set(name)):
        return value
    escaped = QUOTED_SPECIAL.sub(r"\\\g<0>", name).replace("=?", "=\\?")
    return f'"{escaped}" <{local}@{domain}>'


def _mailbox_parts(value) -> tuple[str, bool, str, str] | None:
    """``(display name, whether it was quoted, local part, domain)``."""
    if not isinstance(value, str) or "\r" in value or "\n" in value:
        return None
    match = MAILBOX.match(value)
    if match is None:
        return None
    name = match["name"] or ""
    quoted = QUOTED_NAME.match(name)
    if quoted:
        name = re.sub(r"\\(.)", r"\1", quoted[1], flags=re.S)
    local, _at, domain = (match["angle"] or match["bare"]).rpartition("@")
    return name, bool(quoted), local, domain


def display_phrase(name: str, first_room: int = EW_MAX, force_encoding: bool = False) -> str:
    """A display name as RFC 5322 words: atoms, a quoted string, or with encoded words.

    Printable ASCII is written as atoms or one quoted string; otherwise each run of words
    that are not atoms becomes encoded words and the atoms between runs stay as they are.
    (A run longer than one encoded word is cut where there is no space, so RFC 2047
    decoders join it exactly; Python's parser keeps a space at each cut, in display names
    only.)
    """
    if not name:
        return ""
    if not force_encoding and PLAIN_TEXT.match(name) and "=?" not in name:
        if all(ATOM.match(word) for word in name.split(" ")):
            return name
        return '"' + QUOTED_SPECIAL.sub(r"\\\g<0>", name) + '"'
    words: list[str] = []
    run: list[str] = []
    for word in name.split(" "):
        if not force_encoding and ATOM.match(word) and "=?" not in word:
            if run:
                words += encoded_words(" ".join(run), first_room if not words else EW_MAX)
                run = []
            words.append(word)
        else:
            run.append(word)
    if run:
        words += encoded_words(" ".join(run), first_room if not words else EW_MAX)
    return " ".join(words)


def encoded_words(text: str, first_room: int = EW_MAX) -> list[str]:
    """``text`` as UTF-8 encoded words of at most 75 characters (the first at most
    ``first_room``), each a whole number of characters; B or Q, whichever is shorter."""
    data = text.encode("utf-8")
    q_size = sum(len(_Q[b]) for b in data)
    if 4 * -(-len(data) // 3) < q_size:
        return _b_words(text, first_room)
    return _q_words(text, first_room)


def _q_words(text: str, room: int) -> list[str]:
    words: list[str] = []
    chunk: list[str] = []
    size = 0
    for char in text:
        encoded = "".join(_Q[b] for b in char.encode("utf-8"))
        if chunk and size + len(encoded) > room - _EW_OVERHEAD:
            words.append("=?utf-8?q?" + "".join(chunk) + "?=")
            chunk, size, room = [], 0, EW_MAX
        chunk.append(encoded)
        size += len(encoded)
    if chunk or not words:
        words.append("=?utf-8?q?" + "".join(chunk) + "?=")
    return words


def _b_words(text: str, room: int) -> list[str]:
    words: list[str] = []
    chunk = b""
    for char in text:
        encoded = char.encode("utf-8")
        if chunk and 4 * -(-(len(chunk) + len(encoded)) // 3) > room - _EW_OVERHEAD:
            words.append("=?utf-8?b?" + base64.b64encode(chunk).decode("ascii") + "?=")
            chunk, room = b"", EW_MAX
        chunk += encoded
    words.append("=?utf-8?b?" + base64.b64encode(chunk).decode("ascii") + "?=")
    return words


def _first_room(name: str) -> int:
    """Room for the first encoded word on the line that starts with ``Name: ``."""
    return min(EW_MAX, EW_LINE - len(name) - 2)


def _verbatim(name: str, value: str) -> list[str]:
    value = value.strip(" \t")
    if not VERBATIM_TEXT.match(value) or ENCODED_WORD.search(value):
        raise HeaderError(f"The {name} header must be printable ASCII (RFC 2047 allows no encoding in it): "
                          f"{value[:80]!r}.")
    lines = _fold(f"{name}: ", value, FOLD_AT)
    if lines is None:
        raise HeaderError(f"The {name} header has a part with no space to fold at that makes a line longer "
                          f"than {MAX_LINE} characters.")
    return lines


def _check_text(name: str, value) -> None:
    if not isinstance(value, str):
        raise HeaderError(f"The {name} header's value is not text: {value!r}.")
    if LINE_BREAK.search(value):
        raise HeaderError(f"The {name} header cannot contain line breaks (CR, LF, or a character Python's "
                          f"email package breaks lines at, such as U+2028): {value[:80]!r}.")
    try:
        value.isascii() or value.encode("utf-8")
    except UnicodeEncodeError:
        raise HeaderError(f"The {name} header is not valid Unicode text (it has a lone surrogate).") from None


def _fold(prefix: str, text: str, width: int) -> list[str] | None:
    """``prefix + text`` folded before runs of spaces so lines fit ``width`` where they can;
    ``None`` if a line would still be longer than 998 characters."""
    if len(prefix) + len(text) <= width:
        return [prefix + text]
    lines, current = [], prefix
    # Every token but the first starts with spaces: folding before one keeps them all.
    for index, token in enumerate(FOLD_TOKEN.findall(text)):
        if index and len(current) + len(token) > width and token.strip():
            lines.append(current)
            current = token
        else:
            current += token
    lines.append(current)
    return None if max(map(len, lines)) > MAX_LINE else lines
