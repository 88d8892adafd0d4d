"""Outbox rows (one per recipient, also the audit trail), broadcasts, stored messages, and account state.

Split by what the tables are about (``choices``, ``outbox``, ``accounts``); everything is
importable from here, as Django and the rest of the package expect.
"""

from .accounts import EmailPreference, FlowEvent, Invitation, OneTimeCode, Suppression, VerifiedEmail
from .choices import (
    BLOCKS_ACCOUNT_EMAIL,
    FINAL_STATUSES,
    PENDING_STATUSES,
    Kind,
    Status,
    SuppressionReason,
)
from .outbox import Broadcast, OutboxEmail, StoredAttachment, StoredMessage, SweeperLease, attachment_storage

__all__ = [
    "BLOCKS_ACCOUNT_EMAIL", "FINAL_STATUSES", "PENDING_STATUSES", "Broadcast", "EmailPreference", "FlowEvent",
    "Invitation", "Kind", "OneTimeCode", "OutboxEmail", "Status", "StoredAttachment", "StoredMessage", "Suppression",
    "SuppressionReason", "SweeperLease", "VerifiedEmail", "attachment_storage",
]
