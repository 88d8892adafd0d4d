"""Send rendered messages over one connection, one at a time, and say how each one went.

The pipeline renders a batch first and sends it afterwards (``delivery.pipeline``),
so this runs in the worker's own thread. A sender thread that overlapped rendering with the
SMTP replies was tried and measured: it cost more CPU per message in thread hand-offs
than it saved in waiting, and the worker's other pool process fills the waits anyway
(docs/benchmarks.md).
"""

from __future__ import annotations

import logging
from typing import NamedTuple

from django.core.mail.backends.smtp import EmailBackend as SMTPEmailBackend

from .classify import breaks_connection, describe_error
from .transfer import smtp_data, wrap_sendmail
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
        #: Django's own backend sends ``message()`` as it is, so its bytes may be re-encoded
        #: for a server without 8BITMIME; a subclass may have signed them.
        self.reencode = type(connection) is SMTPEmailBackend

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
                session = self.connection.connection
                data, options = smtp_data(session, message.data)
                sendmail = getattr(session, "_async_email_sendmail", session.sendmail)  # not wrap_sendmail's
                refused = sendmail(message.from_addr, message.recipients, data, mail_options=options)
            else:
                wrap_sendmail(self.connection, refused, self.reencode)
                if not self.connection.send_messages([message]):
                    raise RuntimeError("The email backend reported that nothing was sent.")
        except Exception as exc:
            if breaks_connection(exc):
                self.broken = describe_error(exc)
                close_quietly(self.connection)
            return Outcome(ERROR, exc)
        return Outcome(SENT, None, dict(refused or {}))


def close_quietly(connection) -> None:
    try:
        connection.close()
    except Exception:  # closing a dead SMTP session raises; there is nothing left to do
        logger.debug("Ignoring error while closing the email connection", exc_info=True)
