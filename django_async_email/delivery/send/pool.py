"""A batch's SMTP connections: up to ``SMTP_CONNECTIONS`` at once, each in its own thread.

To a relay 10-50 ms away a connection spends most of its time waiting for replies, so one
worker process can keep several busy: the threads wait on their sockets (the GIL is free
then) while the worker's own thread writes each outcome to the database as it arrives.
Only SMTP happens in the threads; the claim, the build and the record step stay in the
worker's thread. A batch small enough for one connection (and a host that sets
``SMTP_CONNECTIONS`` to 1) sends from the worker's thread as before, with no thread at all.

How many: ``SMTP_CONNECTIONS`` (4), at most ``SMTP_HOST_CONNECTION_LIMITS[host]`` for the
backend's host (a provider's limit on simultaneous connections, divided by the worker
processes that send to it), and one per ``MESSAGES_PER_CONNECTION`` messages of the batch,
so a one-message task opens one.

Exactly once per row is kept as before: each message is reported once, after its final
reply, and the worker's thread records sent rows every ``RECORD_EVERY``. The threads take a
message only with a permit, of ``RECORD_EVERY`` plus one per connection, given back when
the message's outcome is written (a sent row) or known (any other): so however slow the
database, a worker killed mid-batch leaves at most that many messages sent but not
recorded (docs/reliability.md).
"""

from __future__ import annotations

import logging
import math
import queue
import threading
from collections import deque
from collections.abc import Callable

from django.utils import timezone

from ...conf import app_settings
from .connection import open_connection
from .sender import EXPIRED, SENT, SKIPPED, Outcome, Sender, close_quietly

logger = logging.getLogger(__name__)

#: Fewer messages than this per connection do not pay for opening one more.
MESSAGES_PER_CONNECTION = 10


class Work:
    """The batch's messages not yet taken, shared by the connections' threads."""

    def __init__(self, ready, report, permits: threading.Semaphore | None = None):
        self.items = deque(ready)
        self.lock = threading.Lock()
        self.report = report
        #: taken and not yet recorded, at most this many (None: one thread, no bound needed)
        self.permits = permits
        self.stopped = False

    def take(self, only: Callable | None = None):
        """The next ``(row, message)`` to send (``None`` when there is none, or the next one's
        message fails ``only``). A row past its ``expires_at`` is reported expired, not handed out.

        With permits, a plain ``take()`` waits for one; a ``take(only=...)`` (a pipeline
        asking whether another message can follow) does not, and the pipeline ends its
        group instead, so the replies that give permits back are read.
        """
        while True:
            if self.permits is not None and not self._permit(wait=only is None):
                return None
            with self.lock:
                if not self.items or (only is not None and not only(self.items[0][1])):
                    if self.permits is not None:
                        self.permits.release()
                    return None
                row, message = self.items.popleft()
            if row.expires_at is not None and row.expires_at <= timezone.now():
                # Claimed in time, but its turn came after the deadline: late is never sent.
                self.report(row, Outcome(EXPIRED))
                continue
            return row, message

    def _permit(self, *, wait: bool) -> bool:
        assert self.permits is not None
        if not wait:
            return self.permits.acquire(blocking=False)
        while not self.stopped:
            if self.permits.acquire(timeout=0.2):
                return True
        return False

    def drain(self):
        with self.lock:
            items, self.items = list(self.items), deque()
        return items


def connection_limit(connection) -> int:
    """``SMTP_CONNECTIONS``, bounded by the host's entry in ``SMTP_HOST_CONNECTION_LIMITS``."""
    limit = app_settings.SMTP_CONNECTIONS
    host = getattr(connection, "host", None)
    per_host = app_settings.SMTP_HOST_CONNECTION_LIMITS.get(host) if host else None
    return max(1, min(limit, per_host) if per_host else limit)


class SenderPool:
    """The connections of one delivery run; the first is the run's own."""

    def __init__(self, connection, *, extra_connections: bool = True):
        self.senders = [Sender(connection)]
        # A caller that handed in its own connection gets that one only, not a mix of two backends.
        self.limit = connection_limit(connection) if extra_connections else 1
        #: the threaded batch's permits, and how many sent messages hold one until recorded
        self.permits: threading.Semaphore | None = None
        self.held = 0

    @property
    def broken(self) -> str | None:
        """How the connections broke, once every one of them has."""
        if all(s.broken is not None for s in self.senders):
            return self.senders[0].broken
        return None

    def why_skipped(self) -> str:
        return next((s.broken for s in self.senders if s.broken), "connection closed")

    def recorded(self) -> None:
        """The sent rows reported so far are written: their permits go back to the threads."""
        if self.permits is not None and self.held:
            self.permits.release(self.held)
        self.held = 0

    @property
    def round_trips(self) -> int:
        return sum(s.round_trips for s in self.senders)

    def send(self, ready, report: Callable[[object, Outcome], None]) -> None:
        """Send ``ready`` (``(row, message)`` pairs); ``report(row, outcome)`` runs in the
        caller's thread for each, as outcomes come in."""
        wanted = min(self.limit, math.ceil(len(ready) / MESSAGES_PER_CONNECTION))
        while len(self.senders) < wanted:
            self.senders.append(Sender(open_connection()))
        live = [s for s in self.senders[:max(wanted, 1)] if s.broken is None]
        if len(live) <= 1:
            work = Work(ready, report)
            if live:
                live[0].send_stream(work, report)
            self._skip_rest(work, report)
            return
        self._send_in_threads(live, ready, report)

    def _send_in_threads(self, senders, ready, report) -> None:
        outcomes: queue.Queue = queue.Queue()
        self.permits, self.held = threading.Semaphore(app_settings.RECORD_EVERY + len(senders)), 0
        work = Work(ready, lambda row, outcome: outcomes.put((row, outcome)), self.permits)
        threads = [threading.Thread(target=self._run, args=(s, work, outcomes), daemon=True,
                                    name=f"django-async-email-smtp-{i}") for i, s in enumerate(senders)]
        for thread in threads:
            thread.start()
        expected, got = len(ready), 0
        try:
            while got < expected:
                try:
                    row, outcome = outcomes.get(timeout=0.5)
                except queue.Empty:
                    if any(t.is_alive() for t in threads) or not outcomes.empty():
                        continue
                    # Every connection broke: what is left waits for the retry.
                    for row, _message in work.drain():
                        outcomes.put((row, Outcome(SKIPPED, self.why_skipped())))
                    if outcomes.empty():
                        # A thread failed holding a message: its row stays leased, and the
                        # sweeper gives it back when the lease runs out (never sent twice here).
                        logger.error("%d email(s) have no outcome; their lease will run out", expected - got)
                        return
                    continue
                got += 1
                if outcome.kind == SENT:
                    self.held += 1  # given back when the caller has written it (recorded())
                elif outcome.kind != SKIPPED:
                    self.permits.release()
                report(row, outcome)
        finally:
            work.stopped = True
            work.drain()  # an error here (the database): the threads stop at their next message
            for thread in threads:
                thread.join()
            self.permits, self.held = None, 0

    @staticmethod
    def _run(sender: Sender, work: Work, outcomes: queue.Queue) -> None:
        try:
            sender.send_stream(work, lambda row, outcome: outcomes.put((row, outcome)))
        except Exception:  # a bug must not lose the outcome of what this thread took
            logger.exception("SMTP connection thread failed")
            sender.broken = sender.broken or "the sending thread failed"

    def _skip_rest(self, work: Work, report) -> None:
        for row, _message in work.drain():
            report(row, Outcome(SKIPPED, self.why_skipped()))

    def close(self) -> None:
        for sender in self.senders:
            close_quietly(sender.connection)
