"""Send rendered messages over one connection, one at a time, and say how each one went.

The pipeline renders a batch first and sends it afterwards (``delivery.pipeline``),
so this runs in the worker's own thread. A sender thread that overlapped rendering with the
SMTP replies was tried and measured: it cost more CPU per message in thread hand-offs
than it saved in waiting, and the worker's other pool process fills the waits anyway
(docs/benchmarks.md).
"""

from __future__ import annotations

import logging
import smtplib
from typing import NamedTuple

from .classify import breaks_connection, describe_error
from .wire import WireMessage

logger = logging.getLogger(__name__)

SENT, ERROR, SKIPPED = "sent", "error", "skipped"


class Outcome(NamedTuple):
    """How sending one message went."""

    #: ``SENT``, ``ERROR`` (``error`` is the exception) or ``SKIPPED`` (the connection had
    #: broken before; ``error`` says how)
    kind: str
    error: object = None
    #: recipients the server refused while it accepted the message for the others
    refused: dict | None = None


class Sender:
    def __init__(self, connection):
        self.connection = connection
        #: The error that broke the connection; later messages are skipped, not tried.
        self.broken: str | None = None

    def send(self, message) -> Outcome:
        """Send one Django message or ``WireMessage``."""
        if self.broken is not None:
            return Outcome(SKIPPED, self.broken)
        refused: dict = {}
        try:
            self.connection.open()
            if isinstance(message, WireMessage):
                # Django's SMTP backend would sanitise the addresses and build the MIME tree
                # again; the open session's sendmail takes the bytes as they are.
                refused = self.connection.connection.sendmail(message.from_addr, message.recipients, message.data)
            else:
                record_refusals(self.connection, refused)
                if not self.connection.send_messages([message]):
                    raise RuntimeError("The email backend reported that nothing was sent.")
        except Exception as exc:
            if breaks_connection(exc):
                self.broken = describe_error(exc)
                close_quietly(self.connection)
            return Outcome(ERROR, exc)
        return Outcome(SENT, None, dict(refused or {}))


def record_refusals(connection, refused: dict) -> None:
    """Collect recipients an SMTP server refused while accepting the message for others.

    ``smtplib.SMTP.sendmail`` returns them, and Django's SMTP backend drops that return
    value; wrapping the open session's ``sendmail`` keeps it. Other backends are left alone.
    """
    session = getattr(connection, "connection", None)
    if not isinstance(session, smtplib.SMTP):
        return
    original = getattr(session, "_async_email_sendmail", session.sendmail)

    def sendmail(*args, **kwargs):
        result = original(*args, **kwargs)
        refused.update(result or {})
        return result

    # Patching one live session: mypy cannot express an added attribute or a replaced method.
    session._async_email_sendmail = original  # type: ignore[attr-defined]  # marks the session as wrapped
    session.sendmail = sendmail  # type: ignore[method-assign]  # this session's sendmail, wrapped on purpose


def close_quietly(connection) -> None:
    try:
        connection.close()
    except Exception:  # closing a dead SMTP session raises; there is nothing left to do
        logger.debug("Ignoring error while closing the email connection", exc_info=True)
