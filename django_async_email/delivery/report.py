"""What one delivery run did to each row it claimed, and why, as the steps fill it in."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DeliveryReport:
    """Row ids by outcome, with the error text each row gets; JSON-friendly via ``as_dict``."""

    sent: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    suppressed: list[int] = field(default_factory=list)
    retry: list[int] = field(default_factory=list)
    #: rows whose ``expires_at`` passed before they could be sent
    expired: list[int] = field(default_factory=list)
    #: row id -> the text stored as the row's ``last_error`` (also for a sent row with refusals)
    errors: dict[int, str] = field(default_factory=dict)
    #: row id -> its ``suppressed_reason`` (a ``SuppressionReason``), for rows the screen held back
    reasons: dict[int, str] = field(default_factory=dict)
    #: address -> the server's reply, for recipients refused for good (they join the suppression list)
    bounces: dict[str, str] = field(default_factory=dict)
    retry_countdown: float = 0.0
    #: the retry is longer than ``SCHEDULE_ETA_MAX``: its rows are held for the sweep to
    #: publish when due, and the task does not ask Celery for a retry
    retry_held: bool = False

    def add_sent(self, pk: int, note: str = "") -> None:
        self.sent.append(pk)
        if note:
            self.errors[pk] = note

    def add_failed(self, pk: int, error: str) -> None:
        self.failed.append(pk)
        self.errors[pk] = error

    def add_retry(self, pk: int, error: str) -> None:
        self.retry.append(pk)
        self.errors[pk] = error

    def add_suppressed(self, pk: int, reason: str, code: str = "") -> None:
        self.suppressed.append(pk)
        self.errors[pk] = reason
        if code:
            self.reasons[pk] = code

    def add_expired(self, pk: int) -> None:
        self.expired.append(pk)
        self.errors[pk] = "Not sent: its expires_at passed first."

    def as_dict(self) -> dict:
        return {"sent": len(self.sent), "failed": len(self.failed), "retrying": len(self.retry),
                **({"suppressed": len(self.suppressed)} if self.suppressed else {}),
                **({"expired": len(self.expired)} if self.expired else {})}
