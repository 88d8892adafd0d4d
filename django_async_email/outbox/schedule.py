"""When an email may go out: ``send_at`` (not before) and ``expires_at`` (not after).

A row due within ``SCHEDULE_ETA_MAX`` seconds is published at once with the broker's ETA;
one due later is written ``held`` and published by the worker-side sweep shortly before it
comes due (``delivery.sweeper.release_held``). So no worker keeps an hour-long ETA in
memory, where a Redis or SQS broker would hand it to a second worker after its visibility
timeout, and a restart of the fleet loses nothing: the schedule is in the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from ..conf import app_settings
from ..exceptions import InvalidEmailInput


@dataclass(frozen=True)
class Schedule:
    """An email's window; both ends optional (``NOW`` is "at once, no expiry")."""

    send_at: datetime | None = None
    expires_at: datetime | None = None

    def eta(self, now: datetime) -> datetime | None:
        """The ETA to publish with: ``send_at`` when it is still ahead, else ``None`` (at once)."""
        return self.send_at if self.send_at is not None and self.send_at > now else None

    def held(self, now: datetime) -> bool:
        """Whether to write the rows unpublished, for the sweep to publish when they come due."""
        return self.send_at is not None and (self.send_at - now).total_seconds() > app_settings.SCHEDULE_ETA_MAX

    def row_fields(self) -> dict:
        """The outbox row's columns for this schedule."""
        return {"available_at": self.send_at, "expires_at": self.expires_at}


NOW = Schedule()


def clean_datetime(field: str, value) -> datetime | None:
    """An aware ``datetime``, or ``None``; ``InvalidEmailInput`` on ``field`` otherwise."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise InvalidEmailInput(field, "Enter a date and time (a datetime).", code="invalid")
    if timezone.is_naive(value):
        # A naive time means different instants on the host and on the workers' machines.
        raise InvalidEmailInput(field, "Give a timezone-aware datetime (with its UTC offset).", code="naive")
    return value


def clean_schedule(send_at=None, expires_at=None, *, now: datetime | None = None) -> Schedule:
    """The validated window, or ``InvalidEmailInput`` naming ``send_at`` or ``expires_at``.

    A ``send_at`` in the past means "now". ``expires_at`` must be later than both ``send_at``
    and now: an email that may never be sent is a mistake to report, not to accept.
    """
    send_at = clean_datetime("send_at", send_at)
    expires_at = clean_datetime("expires_at", expires_at)
    if expires_at is not None:
        now = now or timezone.now()
        if expires_at <= now:
            raise InvalidEmailInput("expires_at", "This time has already passed.", code="past")
        if send_at is not None and expires_at <= send_at:
            raise InvalidEmailInput("expires_at", "Must be later than send_at.", code="before_send_at")
    return Schedule(send_at, expires_at) if send_at or expires_at else NOW
