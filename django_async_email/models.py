"""Outbox rows (one per recipient, also the audit trail), broadcasts, invitations, verified addresses."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Kind(models.TextChoices):
    VERIFICATION = "verification", _("Email verification")
    PASSWORD_RESET = "password_reset", _("Password reset")
    PASSWORD_CHANGED = "password_changed", _("Password changed")
    INVITATION = "invitation", _("Invitation")
    NOTIFICATION = "notification", _("Notification")
    WELCOME = "welcome", _("Welcome")


class Status(models.TextChoices):
    QUEUED = "queued", _("Queued")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")
    #: Accepted but deliberately not sent (for example a reset asked for an unknown address).
    SUPPRESSED = "suppressed", _("Suppressed")


FINAL_STATUSES = (Status.SENT, Status.FAILED, Status.CANCELLED, Status.SUPPRESSED)
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


class Broadcast(models.Model):
    """One notification to many users: the request path writes this row and nothing per recipient."""

    class State(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SENDING = "sending", _("Sending")
        DONE = "done", _("Done")
        DONE_WITH_FAILURES = "done_with_failures", _("Done with failures")
        CANCELLED = "cancelled", _("Cancelled")

    #: States a broadcast does not leave.
    FINISHED_STATES = (State.DONE, State.DONE_WITH_FAILURES, State.CANCELLED)

    subject = models.CharField(_("subject"), max_length=255)
    message = models.TextField(_("message"))
    email_type = models.CharField(_("email type"), max_length=64, default="notification")
    template_name = models.CharField(_("template name"), max_length=255, blank=True)
    context = models.JSONField(_("context"), default=dict, blank=True)
    #: Audience: every active user of these types, or exactly these user ids.
    user_types = models.JSONField(_("user types"), default=list, blank=True)
    user_ids = models.JSONField(_("user ids"), null=True, blank=True)
    state = models.CharField(_("state"), max_length=32, choices=State.choices, default=State.QUEUED)
    total = models.PositiveIntegerField(_("recipients"), null=True, blank=True)
    task_id = models.CharField(_("task id"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    #: Held by the fan-out while it runs, renewed every chunk; a fan-out whose lease ran out
    #: died, and the sweeper starts it again (it goes on after the last chunk written).
    lease_expires_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("broadcast")
        verbose_name_plural = _("broadcasts")
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.subject} ({self.get_state_display()})"

    def progress(self) -> dict[str, int | None | str]:
        """Counts by outcome, computed from the rows themselves so they can never drift."""
        counts = self.emails.aggregate(
            created=Count("id"),
            sent=Count("id", filter=Q(status=Status.SENT)),
            failed=Count("id", filter=Q(status=Status.FAILED)),
            cancelled=Count("id", filter=Q(status=Status.CANCELLED)),
            suppressed=Count("id", filter=Q(status=Status.SUPPRESSED)),
        )
        total = self.total if self.total is not None else counts["created"]
        done = counts["sent"] + counts["failed"] + counts["cancelled"] + counts["suppressed"]
        return {
            "state": self.state,
            "total": total,
            "sent": counts["sent"],
            "failed": counts["failed"],
            "cancelled": counts["cancelled"],
            "suppressed": counts["suppressed"],
            "pending": max(total - done, 0),
        }

    def suppressed_by_reason(self) -> dict[str, int]:
        """How many recipients were skipped, by reason (``SuppressionReason``)."""
        rows = (self.emails.filter(status=Status.SUPPRESSED).values_list("suppressed_reason")
                .annotate(n=Count("id")).order_by())
        return {reason or "other": n for reason, n in rows}


class Invitation(models.Model):
    """An invitation to create an account; the token itself is never stored, only its hash."""

    inviter = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+", verbose_name=_("inviter"),
    )
    email = models.EmailField(_("email"), max_length=254)
    user_type = models.CharField(_("user type"), max_length=64, blank=True)
    token_hash = models.CharField(_("token hash"), max_length=128, blank=True, db_index=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    expires_at = models.DateTimeField(_("expires"))
    accepted_at = models.DateTimeField(_("accepted"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)
    accepted_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+", verbose_name=_("accepted by"),
    )

    class Meta:
        verbose_name = _("invitation")
        verbose_name_plural = _("invitations")
        ordering = ["-created_at"]

    def __str__(self):
        return self.email


class VerifiedEmail(models.Model):
    """Which address of a user was verified, kept here so stock ``auth.User`` works."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="async_email_verification",
        verbose_name=_("user"),
    )
    email = models.EmailField(_("email"), max_length=254)
    verified_at = models.DateTimeField(_("verified"))

    class Meta:
        verbose_name = _("verified email")
        verbose_name_plural = _("verified emails")

    def __str__(self):
        return self.email


class OneTimeCode(models.Model):
    """The code a person types to verify an address or reset a password; only its keyed hash is kept.

    One row per user and purpose: a newer code replaces the older one. ``attempts`` counts
    every check, right or wrong, so a code dies after ``CODE_MAX_ATTEMPTS`` of them.
    """

    class Purpose(models.TextChoices):
        VERIFICATION = "verification", _("Email verification")
        PASSWORD_RESET = "password_reset", _("Password reset")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", verbose_name=_("user"),
    )
    purpose = models.CharField(_("purpose"), max_length=32, choices=Purpose.choices)
    #: HMAC-SHA256 (keyed with SECRET_KEY) over the code, the user and the account state.
    code_hash = models.CharField(max_length=64, editable=False)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    created_at = models.DateTimeField(_("created"))
    expires_at = models.DateTimeField(_("expires"))
    used_at = models.DateTimeField(_("used"), null=True, blank=True)

    class Meta:
        verbose_name = _("one-time code")
        verbose_name_plural = _("one-time codes")
        constraints = [
            models.UniqueConstraint(fields=["user", "purpose"], name="async_email_one_code_per_user_purpose"),
        ]

    def __str__(self):
        return f"{self.get_purpose_display()} code for user {self.user_id}"


class OutboxEmail(models.Model):
    """One email to one recipient: the unit of delivery, idempotency and audit."""

    kind = models.CharField(_("kind"), max_length=32, choices=Kind.choices)
    email_type = models.CharField(_("email type"), max_length=64, blank=True)
    recipient = models.EmailField(_("recipient"), max_length=254)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+", verbose_name=_("user"),
    )
    broadcast = models.ForeignKey(
        Broadcast, null=True, blank=True, on_delete=models.CASCADE, related_name="emails",
        verbose_name=_("broadcast"),
    )
    invitation = models.ForeignKey(
        Invitation, null=True, blank=True, on_delete=models.SET_NULL, related_name="emails",
        verbose_name=_("invitation"),
    )
    #: Non-secret values the template needs (base URL, inviter name, ...). Tokens never go here.
    context = models.JSONField(_("context"), default=dict, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    #: For a ``suppressed`` row skipped by a preference or the suppression list: why.
    suppressed_reason = models.CharField(
        _("suppressed because"), max_length=32, choices=SuppressionReason.choices, blank=True)
    #: Assigned when the row is written and reused on every attempt.
    message_id = models.CharField(_("Message-ID"), max_length=255, unique=True)
    task_id = models.CharField(_("task id"), max_length=255, blank=True, db_index=True)
    #: Set by the worker that claimed the row; the lease lets a dead worker's rows be taken back.
    claim_token = models.CharField(max_length=32, blank=True, db_index=True, editable=False)
    lease_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    #: Not to be sent before this (a retry's backoff); the sweeper leaves a row alone until then.
    available_at = models.DateTimeField(_("available"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)

    class Meta:
        verbose_name = _("email")
        verbose_name_plural = _("emails")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "created_at"], name="async_email_status_created"),
            # Broadcast progress checks probe this, so their cost does not grow with the audience.
            models.Index(fields=["broadcast", "status"], name="async_email_broadcast_status"),
            # The sweep's look for rows of dead workers reads this index only.
            models.Index(fields=["status", "lease_expires_at"], name="async_email_status_lease"),
            models.Index(fields=["status", "updated_at"], name="async_email_status_updated"),
        ]
        constraints = [
            # Re-running a fan-out adds no second row for the same user.
            models.UniqueConstraint(
                fields=["broadcast", "user"], condition=Q(broadcast__isnull=False),
                name="async_email_one_row_per_broadcast_user",
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} to {self.recipient} ({self.get_status_display()})"


class SweeperLease(models.Model):
    """Which worker sweeps, until when: one row per job, so only one worker of the fleet
    runs the recovery sweep at a time, on every database."""

    name = models.CharField(max_length=64, primary_key=True)
    holder = models.CharField(max_length=255)
    expires_at = models.DateTimeField()

    class Meta:
        verbose_name = _("sweeper lease")
        verbose_name_plural = _("sweeper leases")

    def __str__(self):
        return f"{self.name}: {self.holder} until {self.expires_at}"


class FlowEvent(models.Model):
    """One attempt to complete an account flow: the audit trail of token use.

    Callers see one uniform error for a bad token; this row records which it was.
    """

    class Flow(models.TextChoices):
        VERIFICATION = "verification", _("Email verification")
        PASSWORD_RESET = "password_reset", _("Password reset")
        PASSWORD_RESET_REQUEST = "password_reset_request", _("Password reset request")
        VERIFICATION_REQUEST = "verification_request", _("Verification request")
        #: An invitation asked for and not sent (the address has an account, or someone
        #: else's invitation to it is open); the caller got the usual answer.
        INVITATION_REQUEST = "invitation_request", _("Invitation request")
        INVITATION = "invitation", _("Invitation")

    class Outcome(models.TextChoices):
        SUCCEEDED = "succeeded", _("Succeeded")
        INVALID = "invalid", _("Invalid token")
        EXPIRED = "expired", _("Expired token")
        USED = "used", _("Already used")
        REVOKED = "revoked", _("Revoked")
        REJECTED = "rejected", _("Rejected input")
        #: A one-time code that had used up its attempts.
        EXHAUSTED = "exhausted", _("Out of attempts")

    flow = models.CharField(_("flow"), max_length=32, choices=Flow.choices)
    outcome = models.CharField(_("outcome"), max_length=16, choices=Outcome.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        verbose_name=_("user"),
    )
    #: SHA-256 of a token that was used, so a second use is recorded as "used", not "invalid".
    token_digest = models.CharField(max_length=64, blank=True, db_index=True, editable=False)
    detail = models.CharField(_("detail"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("account flow event")
        verbose_name_plural = _("account flow events")
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.get_flow_display()}: {self.get_outcome_display()}"


class EmailPreference(models.Model):
    """Whether a user receives one category of notifications, and when and how that was set.

    No row means the category's default (``ASYNC_EMAIL['CATEGORIES']``).
    """

    class Source(models.TextChoices):
        ONE_CLICK = "one_click", _("One-click unsubscribe (RFC 8058)")
        LINK = "link", _("Unsubscribe link")
        PAGE = "page", _("Preferences page")
        API = "api", _("REST API")
        ADMIN = "admin", _("Admin")
        PYTHON = "python", _("Python API")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", verbose_name=_("user"),
    )
    category = models.CharField(_("category"), max_length=64)
    subscribed = models.BooleanField(_("receives it"))
    source = models.CharField(_("changed by"), max_length=16, choices=Source.choices)
    changed_at = models.DateTimeField(_("changed"), default=timezone.now)

    class Meta:
        verbose_name = _("email preference")
        verbose_name_plural = _("email preferences")
        constraints = [
            models.UniqueConstraint(fields=["user", "category"], name="async_email_one_preference_per_category"),
        ]

    def __str__(self):
        return f"{self.category}: {'on' if self.subscribed else 'off'} for user {self.user_id}"


class Suppression(models.Model):
    """An address that gets no notification (and, after a hard bounce or a complaint, no email)."""

    #: ``accounts.addresses.suppression_key``: the normal form, lowercased.
    address = models.CharField(_("address"), max_length=254, unique=True)
    reason = models.CharField(_("reason"), max_length=32, choices=SuppressionReason.choices)
    #: Where it came from: the SMTP reply of a bounce, "admin", an ESP webhook...
    source = models.CharField(_("source"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("suppressed address")
        verbose_name_plural = _("suppressed addresses")
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.address} ({self.get_reason_display()})"
