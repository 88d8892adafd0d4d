"""Send rendered messages over one connection and say how each one went.

One at a time through the backend, or, for the fast path's bytes to a server that offers
PIPELINING, a run of them with one round trip each (``pipelining.py``). A batch's
connections each have their own ``Sender``; ``pool.py`` runs them side by side.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

from django.core.mail.backends.smtp import EmailBackend as SMTPEmailBackend

from ...conf import app_settings
from .classify import breaks_connection, describe_error
from .pipelining import ConnectionLost, PipelinedSender, offers_pipelining
from .transfer import smtp_data, wrap_sendmail
from .wire import WireMessage

logger = logging.getLogger(__name__)

SENT, ERROR, SKIPPED, EXPIRED = "sent", "error", "skipped", "expired"


class Outcome(NamedTuple):
    """How sending one message went."""

    #: ``SENT``, ``ERROR`` (``error`` is the exception), ``SKIPPED`` (the connection had
    #: broken before; ``error`` says how) or ``EXPIRED`` (its ``expires_at`` came first)
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
        #: groups of commands written and waited for while pipelining (a test's measure)
        self.round_trips = 0

    def send_stream(self, work, report) -> None:
        """Send what ``work`` (a ``pool.Work``) hands out until it is empty or this
        connection breaks; ``report(row, outcome)`` for each, in the order sent."""
        while self.broken is None:
            item = work.take()
            if item is None:
                return
            row, message = item
            if isinstance(message, WireMessage) and self.pipelines():
                self.pipeline(item, work, report)
            else:
                report(row, self.send(message))

    def pipelines(self) -> bool:
        """Whether this connection's server takes pipelined commands (opens it if needed)."""
        if not app_settings.SMTP_PIPELINING:
            return False
        try:
            self.connection.open()
            return offers_pipelining(self.connection.connection)
        except Exception:  # the plain send reports the failure to open, as it always has
            return False

    def pipeline(self, first, work, report) -> None:
        """Pipeline ``first`` and the fast-path messages right behind it in ``work``."""
        pending = [first]

        def take_next():
            item = pending.pop() if pending else work.take(only=lambda m: isinstance(m, WireMessage))
            return item

        def outcome(row, error, refused):
            report(row, Outcome(SENT, None, dict(refused)) if error is None else Outcome(ERROR, error))

        sender = PipelinedSender(self.connection.connection)
        try:
            sender.send_all(take_next, outcome)
        except ConnectionLost as exc:
            self.broken = str(exc)
            close_quietly(self.connection)
        finally:
            self.round_trips += sender.round_trips

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
