"""SMTP command pipelining (RFC 2920) for the fast path's messages, over one open session.

Without it every message costs four round trips to the server (MAIL, RCPT, DATA, the end of
the data), whatever the CPU does: about 12 messages a second per connection to a relay
20 ms away. A server that offers PIPELINING lets the client send a group of commands and
then read their replies, in order. Here each group is the previous message's data with
its end mark, then the next message's ``MAIL``, ``RCPT`` (one per recipient) and ``DATA``:
RFC 2920 allows the message content to begin a group, and requires the client to wait for
``DATA``'s 354 before sending content, which this does. So a run of messages costs one
round trip each, plus one.

Each reply is read and acted on as RFC 2920 says: a refused ``MAIL`` fails that message, a
refused ``RCPT`` drops that recipient (the others still get the message, and the refusal is
reported as smtplib reports it), a message whose every recipient was refused is not sent
(its ``DATA`` is refused, or answered with an empty end mark if the server accepts it
anyway), and after any of these a ``RSET`` starts the next message's transaction. A
message's outcome is known (its end-of-data reply read) before it is reported, and it is
reported in the order sent. The errors are smtplib's own exception types, so
``classify.py`` treats them as it treats ``sendmail()``'s.
"""

from __future__ import annotations

import re
import smtplib
from collections.abc import Callable
from dataclasses import dataclass, field

from ..headers import PLAIN_ADDRESS
from .classify import describe_error as describe
from .transfer import offers, smtp_data
from .wire import WireMessage

CRLF = b"\r\n"
_LEADING_DOT = re.compile(rb"(?m)^\.")


def angle(address: str) -> bytes:
    """``<address>`` as MAIL and RCPT take it. The fast path's addresses are plain ASCII
    (``PLAIN_ADDRESS``), which smtplib's ``quoteaddr`` would parse again for each command
    (a tenth of the send step's CPU) only to return this."""
    if PLAIN_ADDRESS.fullmatch(address):
        return b"<" + address.encode("ascii") + b">"
    return smtplib.quoteaddr(address).encode("ascii")


def offers_pipelining(session: smtplib.SMTP) -> bool:
    return offers(session, "pipelining")


def data_block(data: bytes) -> bytes:
    """The message as sent after 354: leading dots doubled, CRLF-terminated, then the end mark."""
    quoted = _LEADING_DOT.sub(b"..", data)
    if not quoted.endswith(CRLF):
        quoted += CRLF
    return quoted + b"." + CRLF


@dataclass
class InFlight:
    """One message between its MAIL and its end-of-data reply."""

    key: object
    message: WireMessage
    data: bytes
    refused: dict = field(default_factory=dict)
    error: Exception | None = None
    accepted: int = 0
    #: its last reply is in (the end of its data, or a refusal that ends it)
    done: bool = False
    reported: bool = False


class ConnectionLost(Exception):
    """The session failed mid-group (its cause says how); the messages in it were reported failed."""


#: ``report(key, error, refused)``: ``error`` None means sent (``refused`` names recipients refused).
Report = Callable[[object, Exception | None, dict], None]


class PipelinedSender:
    """Sends ``WireMessage``s over ``session`` (open, EHLO done, PIPELINING offered)."""

    def __init__(self, session: smtplib.SMTP):
        self.session = session
        #: groups written and then waited for: one per message, plus one, in a run
        self.round_trips = 0
        #: a 421 reply: the server is closing the connection
        self.closing: tuple[int, bytes] | None = None

    def send_all(self, take_next: Callable[[], tuple[object, WireMessage] | None], report: Report) -> None:
        """Send what ``take_next()`` hands out until it returns ``None``; ``report`` each outcome.

        A socket or protocol error reports every message without an outcome yet as failed
        with it, then raises ``ConnectionLost`` (the connection is gone). An error raised by
        ``report`` itself propagates as it is.
        """
        body: InFlight | None = None  # its DATA got 354; its content opens the next group
        needs_rset = False
        while True:
            item = take_next()
            group: list[bytes] = []
            steps: list[tuple[str, InFlight | None, str]] = []
            if body is not None:
                group.append(data_block(body.data))
                steps.append(("end", body, ""))
            current = None
            if item is not None:
                key, message = item
                try:
                    data, options = smtp_data(self.session, message.data)
                except Exception as exc:  # 8-bit data the server cannot take: this message only
                    report(key, exc, {})
                    if body is None:
                        continue
                else:
                    current = InFlight(key, message, data)
                    if needs_rset:
                        group.append(b"RSET" + CRLF)
                        steps.append(("rset", None, ""))
                        needs_rset = False
                    group.append(self._mail(message.from_addr, data, options))
                    steps.append(("mail", current, ""))
                    for recipient in message.recipients:
                        group.append(b"RCPT TO:" + angle(recipient) + CRLF)
                        steps.append(("rcpt", current, recipient))
                    group.append(b"DATA" + CRLF)
                    steps.append(("data", current, ""))
            if not group:
                if needs_rset:
                    # The last transaction failed after its MAIL: close it, so whatever uses
                    # this session next (another batch, a plain send) starts clean, as
                    # smtplib's sendmail() leaves it.
                    self._rset()
                return
            try:
                self.session.send(b"".join(group))
                self.round_trips += 1
                body = None
                for step, flight, recipient in steps:
                    code, text = self.session.getreply()
                    outcome = self._reply(step, flight, recipient, code, text)
                    if outcome == "body":
                        body = flight
                    elif outcome == "rset":
                        needs_rset = True
                if self.closing is not None:
                    raise smtplib.SMTPServerDisconnected(f"{self.closing[0]} {self.closing[1]!r}")
            except Exception as exc:
                # The connection is gone mid-group. A message whose last reply was read keeps
                # its own outcome (one the server accepted is sent: never retried, never
                # twice); any other failed with the error (transient, so retried; one whose
                # data had gone out without its reply may arrive twice).
                for _step, flight, _r in steps:
                    if flight is not None and not flight.reported:
                        flight.reported = True
                        if flight.done:
                            report(flight.key, flight.error, flight.refused)
                        else:
                            report(flight.key, flight.error or exc, {})
                raise ConnectionLost(describe(exc)) from exc
            for _step, flight, _r in steps:
                if flight is not None and flight.done and not flight.reported:
                    flight.reported = True
                    report(flight.key, flight.error, flight.refused)

    def _rset(self) -> None:
        try:
            self.session.send(b"RSET" + CRLF)
            self.round_trips += 1
            self.session.getreply()
        except Exception as exc:
            raise ConnectionLost(describe(exc)) from exc

    def _mail(self, from_addr: str, data: bytes, options: list[str]) -> bytes:
        options = list(options)
        if self.session.has_extn("size"):
            options.append(f"size={len(data)}")  # as smtplib.sendmail declares it
        return b"MAIL FROM:" + angle(from_addr) + "".join(f" {o}" for o in options).encode("ascii") + CRLF

    def _reply(self, step: str, flight: InFlight | None, recipient: str, code: int, text: bytes) -> str:
        """Act on one reply; "body" when the message's content is to follow, "rset" when the
        next transaction must start with RSET."""
        if code == 421 and self.closing is None:
            self.closing = (code, text)  # the group's other replies are read, then the session ends
        if step == "rset" or flight is None:
            return ""
        if step == "mail":
            if code != 250:
                flight.error = smtplib.SMTPSenderRefused(code, text, flight.message.from_addr)
            return ""
        if step == "rcpt":
            if code in (250, 251):
                flight.accepted += 1
            else:
                flight.refused[recipient] = (code, text)
            return ""
        if step == "data":
            if code == 354 and flight.error is None and flight.accepted:
                return "body"
            if code == 354 and flight.accepted:
                # Accepted recipients under a refused MAIL: the server's state is not ours.
                # An empty end mark could deliver an empty message; drop the connection.
                raise smtplib.SMTPServerDisconnected("354 after a refused MAIL: the session is out of step")
            if code == 354:
                # DATA taken with no recipient (RFC 2920 allows it): end it at once, empty.
                self.session.send(b"." + CRLF)
                self.session.getreply()
            if flight.error is None:
                flight.error = (smtplib.SMTPRecipientsRefused(flight.refused) if not flight.accepted
                                else smtplib.SMTPDataError(code, text))
            flight.done = True
            return "rset"
        # "end": the reply to the message's content
        if code != 250:
            flight.error = smtplib.SMTPDataError(code, text)
        flight.done = True
        return "" if code == 250 else "rset"
