"""The body of every send task: claim -> build -> send -> record.

``deliver_emails`` runs the steps for a task's row ids. ``SendRun`` is the middle of it for
one task: it renders ``RENDER_BATCH`` rows, sends them, and writes sent rows back
every ``RECORD_EVERY`` messages, so a worker killed mid-batch leaves at most that many
sent-but-unrecorded rows (which the sweeper would send again once their lease runs out).
"""

from __future__ import annotations

import logging
import smtplib
import time

from ..adapter import get_adapter
from ..conf import app_settings
from ..models import Kind, OutboxEmail
from .build.attachments import load_broadcast_attachments
from .build.batches import build_batch
from .build.compose import build_message, stale_recipient
from .build.stored import build_stored, load_stored_messages
from .claim import claim_emails
from .headers import HeaderError
from .record import expire_overdue, mark_sent, record_outcomes, renew_lease
from .report import DeliveryReport
from .screen import describe, screen
from .send.classify import TRANSIENT, classify_send_error, describe_error
from .send.connection import open_connection
from .send.pool import SenderPool
from .send.sender import ERROR, EXPIRED, SKIPPED, Outcome
from .send.wire import WireWriter, fast_path_applies

logger = logging.getLogger(__name__)

#: Messages rendered before any of them is sent. Rendering a run of messages and then
#: sending the run keeps each step's code and data warm and costs less CPU per message than
#: alternating (docs/benchmarks.md); the cap bounds the memory a large chunk can take.
RENDER_BATCH = 500

#: RCPT replies that say the mailbox does not exist or will never take mail (RFC 5321
#: 550 mailbox unavailable, 551 user not local, 553 mailbox name not allowed).
HARD_BOUNCE_CODES = frozenset({550, 551, 553})


def deliver_emails(email_ids, *, connection=None) -> DeliveryReport:
    """Claim, build, send and record the rows of ``email_ids``."""
    report = DeliveryReport()
    email_ids = list(email_ids)
    token, rows = claim_emails(email_ids)
    if len(rows) < len(email_ids):
        # Some rows were not claimable: sent already, held by another worker, not due yet,
        # or past their expiry. Only the last kind changes here (one more query, never on
        # the path where every row is claimed).
        expire_overdue(ids=email_ids)
    if rows:
        send_rows(rows, report, token, connection=connection)
        record_outcomes(token, rows, report)
    return report


def send_rows(rows: list[OutboxEmail], report: DeliveryReport, token: str, connection=None) -> None:
    """Build and send each row over the task's connections (send/pool.py), filling ``report``."""
    SendRun(report, token, connection or open_connection(), extra_connections=connection is None).run(rows)


class SendRun:
    """One connection's rows: build a batch, send it, record what was sent as it goes."""

    def __init__(self, report: DeliveryReport, token: str, connection, *, extra_connections: bool = True):
        self.report = report
        self.token = token
        self.connection = connection
        self.adapter = get_adapter()
        self.writer = WireWriter() if fast_path_applies(connection) else None
        #: the run's connections (its own, and more for a large batch; send/pool.py)
        self.pool = SenderPool(connection, extra_connections=extra_connections)
        #: sent rows not yet written back
        self.unrecorded: list[int] = []
        #: when the lease of the rows was last extended (the claim set it)
        self.leased_at = time.monotonic()
        #: row id -> suppressed addresses left out of a stored message (the screen step's)
        self.withheld: dict[int, frozenset[str]] = {}
        #: row id -> its message from a shared render, or the context made for it (build_batch)
        self.prebuilt: dict[int, object] = {}
        self.contexts: dict[int, dict] = {}

    def run(self, rows: list[OutboxEmail]) -> None:
        try:
            for start in range(0, len(rows), RENDER_BATCH):
                self.send(self.build(rows[start:start + RENDER_BATCH]))
        finally:
            # Also when the task is interrupted: what was already sent gets recorded, before
            # the goodbye to the server (QUIT is one more round trip a kill could interrupt).
            try:
                self.flush()
            finally:
                self.pool.close()

    def build(self, rows: list[OutboxEmail]) -> list[tuple[OutboxEmail, object]]:
        """The rows that can be sent, each with its message (SMTP bytes where the fast path takes it)."""
        ready = []
        load_stored_messages(rows)
        load_broadcast_attachments(rows)
        held, self.withheld = screen(rows)
        # Notification rows of one broadcast share one template render where it is provably
        # the same as rendering each (build/batch_render.py); the rest are built one by one.
        self.prebuilt, self.contexts = build_batch([row for row in rows if row.pk not in held],
                                                   adapter=self.adapter, connection=self.connection)
        for row in rows:
            if row.pk in held:
                self.report.add_suppressed(row.pk, describe(held[row.pk]), held[row.pk])
                continue
            if self.pool.broken is not None:
                self.take(row, Outcome(SKIPPED, self.pool.broken))
                continue
            message = self.build_one(row)
            if message is not None:
                # A stored message goes out through the backend, as the host built it.
                ready.append((row, message if row.kind == Kind.RAW else self.as_wire(message)))
        return ready

    def build_one(self, row: OutboxEmail):
        """The row's message, or ``None`` (recorded in the report) if it must not or cannot be sent."""
        stale = stale_recipient(row)
        if stale:
            self.report.add_suppressed(row.pk, stale)
            logger.warning("Not sending email %s (%s): %s", row.pk, row.kind, stale)
            return None
        try:
            if row.kind == Kind.RAW:
                return build_stored(row, self.connection, withheld=self.withheld.get(row.pk, frozenset()))
            if row.pk in self.prebuilt:
                return self.prebuilt.pop(row.pk)
            return build_message(row, adapter=self.adapter, connection=self.connection,
                                 context=self.contexts.pop(row.pk, None))
        except HeaderError as exc:
            # Refused as it is written (the adapter's headers or From, say): no traceback to show.
            logger.error("Not sending email %s (%s) to %s: %s", row.pk, row.kind, row.recipient, exc)
            self.report.add_failed(row.pk, f"Rendering failed: {describe_error(exc)}")
            return None
        except Exception as exc:
            logger.exception("Could not render email %s (%s) to %s", row.pk, row.kind, row.recipient)
            self.report.add_failed(row.pk, f"Rendering failed: {describe_error(exc)}")
            return None

    def as_wire(self, message):
        """The message as SMTP bytes when the fast path takes it, else the message itself."""
        if self.writer is not None:
            try:
                return self.writer.write(message) or message
            except Exception:
                # A bug here must not cost an email: the backend can still build this one.
                logger.exception("Could not write email %s directly; sending it through the backend",
                                 message.extra_headers.get("Message-ID"))
        return message

    def send(self, ready: list[tuple[OutboxEmail, object]]) -> None:
        def take(row, outcome):
            self.take(row, outcome)
            self.keep_lease()

        self.pool.send(ready, take)

    def keep_lease(self, *, recording: bool = False) -> None:
        """Extend the rows' lease at least every ``LEASE_SECONDS / 3`` while this run sends, so
        a slow batch keeps its rows and the lease can stay short: a row whose worker died is
        claimable again within one lease. A recording step renews it too once a sixth of the
        lease has passed (renewing at every step would rewrite every held row each time)."""
        elapsed = time.monotonic() - self.leased_at
        if elapsed >= app_settings.LEASE_SECONDS / (6 if recording else 3):
            renew_lease(self.token)
            self.leased_at = time.monotonic()

    def take(self, row: OutboxEmail, outcome: Outcome) -> None:
        """Put one row's outcome in the report."""
        if outcome.kind == EXPIRED:
            self.report.add_expired(row.pk)
        elif outcome.kind == SKIPPED:
            # The connection failed; the rest of the batch waits for the retry instead of
            # each paying the timeout again.
            self.report.add_retry(row.pk, f"Not attempted after connection failure: {outcome.error}")
        elif outcome.kind == ERROR:
            self.take_error(row, outcome.error)
        else:
            self.take_sent(row, outcome.refused)

    def take_error(self, row: OutboxEmail, exc) -> None:
        error = describe_error(exc)
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            self.note_bounces(exc.recipients)
        if classify_send_error(exc) == TRANSIENT:
            self.report.add_retry(row.pk, error)
            logger.warning("Transient failure sending email %s to %s: %s", row.pk, row.recipient, error)
        else:
            self.report.add_failed(row.pk, error)
            logger.error("Permanent failure sending email %s to %s: %s", row.pk, row.recipient, error)

    def take_sent(self, row: OutboxEmail, refused: dict | None) -> None:
        note = ""
        if refused:
            # Some recipients of this message were refused; the rest have it.
            note = describe_error(smtplib.SMTPRecipientsRefused(refused))
            self.note_bounces(refused)
            logger.warning("Email %s sent, but some recipients were refused: %s", row.pk, note)
        self.report.add_sent(row.pk, note)
        self.unrecorded.append(row.pk)
        if len(self.unrecorded) >= app_settings.RECORD_EVERY:
            self.flush()

    def note_bounces(self, refused: dict) -> None:
        """Recipients refused for good at RCPT (550, 551, 553) join the suppression list as
        hard bounces when the run is recorded; a 552 (over quota) or a 4xx may pass."""
        for address, reply in refused.items():
            code, text = reply if isinstance(reply, tuple) and len(reply) == 2 else (None, reply)
            if code in HARD_BOUNCE_CODES:
                message = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
                self.report.bounces[address] = f"SMTP {code} at RCPT: {message}"

    def flush(self) -> None:
        """Write the sent rows not yet recorded."""
        if self.unrecorded:
            mark_sent(self.token, self.unrecorded, self.report.errors)
            self.unrecorded.clear()
            self.pool.recorded()
            self.keep_lease(recording=True)
