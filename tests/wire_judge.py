"""What a reader makes of the bytes the package sends: the tests' independent judge.

Python's ``email`` parser with ``email.policy.default`` reads everything, except one thing
it does not read as RFC 2047 says: in a display name it keeps the white space between two
adjacent encoded words (which a decoder must drop) and turns a TAB inside one into a
space. Display names are read with the standard library's RFC 2047 decoder
(``email.header.decode_header``) instead; the address itself still comes from the parser.
"""

from __future__ import annotations

import email
import email.policy
import re
from email.header import decode_header, make_header

#: RFC 5321: a line is at most 998 bytes before its CRLF.
MAX_LINE = 998
ENCODED_WORD = re.compile(rb"=\?[^?\s]+\?[bqBQ]\?[^?\s]*\?=")
QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"\Z', re.S)
MAILBOX = re.compile(r'(?:(?P<phrase>(?:"(?:[^"\\]|\\.)*"|[^",<])*?)\s*<[^<>]*>|[^\s,<>"]+)\s*(?:,\s*|\Z)')


def parse(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)


def raw_header(data: bytes, name: str) -> str | None:
    """A header's value as sent, unfolded (CRLF removed) but not decoded."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("ascii")
    for field in re.split(r"\r\n(?![ \t])", head):
        field_name, _, value = field.partition(":")
        if field_name.lower() == name.lower():
            return value.replace("\r\n", "").lstrip(" \t")
    return None


def mailboxes(data: bytes, name: str) -> list[tuple[str, str]]:
    """``(display name, address)`` of each mailbox of an address header, read as RFC 2047 says."""
    header = parse(data)[name]
    if header is None:
        return []
    addresses = [a.addr_spec for a in header.addresses]
    # The package writes "phrase <address>" or "address", joined by ", ".
    phrases = [m["phrase"] or "" for m in MAILBOX.finditer(raw_header(data, name) or "")]
    return [(_phrase(phrase), address) for phrase, address in zip(phrases, addresses, strict=True)]


def _phrase(raw: str) -> str:
    quoted = QUOTED.match(raw)
    if quoted:
        return re.sub(r"\\(.)", r"\1", quoted[1], flags=re.S)
    return str(make_header(decode_header(raw))) if raw else ""


def smtp_violations(data: bytes, mail_options=()) -> list[str]:
    """What is wrong with ``data`` as the content of an SMTP DATA command ([] if nothing).

    As ``smtplib`` sends it: it ends the data with CRLF if it does not end with one.
    """
    problems = []
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    lines = data[:-2].split(b"\r\n")
    if any(b"\r" in line or b"\n" in line for line in lines):
        problems.append("has a bare CR or LF")
    longest = max(map(len, lines))
    if longest > MAX_LINE:
        problems.append(f"has a line of {longest} bytes")
    if not data.isascii():
        if "BODY=8BITMIME" not in mail_options:
            problems.append("has 8-bit bytes without BODY=8BITMIME")
        for part in parse(data).walk():
            encoding = str(part.get("Content-Transfer-Encoding", "7bit")).lower()
            if not part.is_multipart() and encoding != "8bit" and not part.get_payload().isascii():
                problems.append(f"has 8-bit bytes in a {encoding} part")
    head = data.split(b"\r\n\r\n", 1)[0]
    if not head.isascii():
        problems.append("has 8-bit bytes in its headers")
    if any(len(word) > 75 for word in ENCODED_WORD.findall(data)):
        problems.append("has an encoded word longer than 75 characters")
    return problems
