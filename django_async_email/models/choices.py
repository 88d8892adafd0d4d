"""The choices every table shares: kinds of email, row statuses, why a row or an address is suppressed."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Kind(models.TextChoices):
    VERIFICATION = "verification", _("Email verification")
    PASSWORD_RESET = "password_reset", _("Password reset")
    PASSWORD_CHANGED = "password_changed", _("Password changed")
    INVITATION = "invitation", _("Invitation")
    NOTIFICATION = "notification", _("Notification")
    WELCOME = "welcome", _("Welcome")
    #: A message the host built itself and sent through ``OutboxBackend`` (``send_mail()``,
    #: Django's forms, the admin, third-party apps): stored as given, sent as given.
    RAW = "raw", _("Email from the email backend")


class Status(models.TextChoices):
    QUEUED = "queued", _("Queued")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")
    #: Accepted but deliberately not sent (for example a reset asked for an unknown address).
    SUPPRESSED = "suppressed", _("Suppressed")
    #: Not sent by its ``expires_at``, so never sent: a late email would be wrong.
    EXPIRED = "expired", _("Expired")


FINAL_STATUSES = (Status.SENT, Status.FAILED, Status.CANCELLED, Status.SUPPRESSED, Status.EXPIRED)
#: A row in one of these is still to be sent (or being sent).
PENDING_STATUSES = (Status.QUEUED, Status.SENDING)


class SuppressionReason(models.TextChoices):
    """Why a row was not sent, or an address gets nothing (``Suppression.reason``)."""

    #: The user turned the email's category off (one-click, the link, the page, the API).
    UNSUBSCRIBED = "unsubscribed", _("Unsubscribed from the category")
    #: The category is off unless asked for, and the user did not ask.
    NOT_OPTED_IN = "not_opted_in", _("Not opted in to the category")
    HARD_BOUNCE = "hard_bounce", _("Hard bounce")
    COMPLAINT = "complaint", _("Spam complaint")
    UNSUBSCRIBED_ALL = "unsubscribed_all", _("Unsubscribed from all notifications")
    MANUAL = "manual", _("Suppressed by hand")


#: Suppression reasons that stop account emails too (the address does not take mail, or
#: its owner reported us); the others stop notifications only.
BLOCKS_ACCOUNT_EMAIL = (SuppressionReason.HARD_BOUNCE, SuppressionReason.COMPLAINT)
