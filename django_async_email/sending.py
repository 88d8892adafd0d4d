"""Send a batch over one connection from a thread of its own.

An SMTP exchange is four round trips per message, and the worker would sit idle through
each of them (about a third of a send task in the benchmark). The sender thread waits
for the server while the worker's main thread renders the next message; smtplib releases
the GIL while it waits. The main thread keeps every database write and decision: the
thread only sends and reports each message's outcome.
"""

from __future__ import annotations

import logging
import queue
import smtplib
import threading

from .classify import breaks_connection, describe_error
from .wire import WireMessage

logger = logging.getLogger(__name__)

SENT, ERROR, SKIPPED = "sent", "error", "skipped"


class PipelinedSender:
    def __init__(self, connection, depth: int = 8):
        self.connection = connection
        self._inbox: queue.Queue = queue.Queue(maxsize=depth)
        self._outcomes: queue.SimpleQueue = queue.SimpleQueue()
        #: The error that broke the connection; later messages are skipped, not tried.
        self.broken: str | None = None
        #: A BaseException (not Exception) raised in the thread, re-raised by ``finish``.
        self.fatal: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="django-async-email-sender", daemon=True)
        self._thread.start()

    def submit(self, pk, message) -> None:
        """Queue a Django message, or a ``WireMessage`` for the open SMTP session (``wire``)."""
        self._inbox.put((pk, message))

    def outcomes(self):
        """Outcomes reported so far, without waiting: ``(pk, kind, error, refused)``."""
        while True:
            try:
                yield self._outcomes.get_nowait()
            except queue.Empty:
                return

    def finish(self) -> None:
        """Wait for every submitted message to be handled."""
        self._inbox.put(None)
        self._thread.join()

    def _run(self) -> None:
        refused: dict = {}
        try:
            while (item := self._inbox.get()) is not None:
                pk, message = item
                if self.broken is not None:
                    self._outcomes.put((pk, SKIPPED, self.broken, None))
                    continue
                try:
                    self.connection.open()
                    refused.clear()
                    if isinstance(message, WireMessage):
                        # Django's SMTP backend would sanitise the addresses and build the
                        # MIME tree again; the session's sendmail takes the bytes as they are.
                        refused.update(
                            self.connection.connection.sendmail(message.from_addr, message.recipients, message.data)
                            or {}
                        )
                    else:
                        record_refusals(self.connection, refused)
                        if not self.connection.send_messages([message]):
                            raise RuntimeError("The email backend reported that nothing was sent.")
                except Exception as exc:
                    if breaks_connection(exc):
                        self.broken = describe_error(exc)
                        close_quietly(self.connection)
                    self._outcomes.put((pk, ERROR, exc, None))
                else:
                    self._outcomes.put((pk, SENT, None, dict(refused)))
        except BaseException as exc:  # noqa: B036 - handed to the main thread, which re-raises it
            self.fatal = exc
            # Keep taking messages so the main thread never blocks on a full inbox.
            while self._inbox.get() is not None:
                pass


def record_refusals(connection, refused: dict) -> None:
    """Collect recipients an SMTP server refused while accepting the message for others.

    ``smtplib.SMTP.sendmail`` returns them, and Django's SMTP backend drops that return
    value; wrapping the open session's ``sendmail`` keeps it. Other backends are left alone.
    """
    session = getattr(connection, "connection", None)
    if not isinstance(session, smtplib.SMTP) or getattr(session, "_async_email_records_refusals", False):
        return
    original = session.sendmail

    def sendmail(*args, **kwargs):
        result = original(*args, **kwargs)
        refused.update(result or {})
        return result

    session.sendmail = sendmail
    session._async_email_records_refusals = True


def close_quietly(connection) -> None:
    try:
        connection.close()
    except Exception:  # closing a dead SMTP session raises; there is nothing left to do
        logger.debug("Ignoring error while closing the email connection", exc_info=True)
