"""The outbox: broadcasts, one row per email (also the audit trail), the sweeper's lease, stored messages."""

from __future__ import annotations

from django.conf import settings
from django.core.files.storage import storages
from django.db import models
from django.db.models import Count, Q
from django.utils.translation import gettext_lazy as _

from ..conf import app_settings
from .accounts import Invitation
from .choices import Kind, Status, SuppressionReason


class Broadcast(models.Model):
    """One notification to many users: the request path writes this row and nothing per recipient."""

    class State(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SENDING = "sending", _("Sending")
        DONE = "done", _("Done")
        DONE_WITH_FAILURES = "done_with_failures", _("Done with failures")
        CANCELLED = "cancelled", _("Cancelled")
        #: Its fan-out could not start before ``expires_at``; nobody was sent anything.
        EXPIRED = "expired", _("Expired")

    #: States a broadcast does not leave.
    FINISHED_STATES = (State.DONE, State.DONE_WITH_FAILURES, State.CANCELLED, State.EXPIRED)

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
    #: Not to start before this; rows not sent by ``expires_at`` are ``expired``.
    send_at = models.DateTimeField(_("send at"), null=True, blank=True)
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    #: Written but not published: its ``send_at`` was further off than ``SCHEDULE_ETA_MAX``,
    #: so the worker-side sweep publishes its fan-out when it comes due.
    held = models.BooleanField(default=False, editable=False)
    #: How many files every recipient's email carries (``StoredAttachment.broadcast``); the
    #: send step reads them only for batches whose broadcast has any.
    attachment_count = models.PositiveSmallIntegerField(_("attachments"), default=0)

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
            expired=Count("id", filter=Q(status=Status.EXPIRED)),
        )
        total = self.total if self.total is not None else counts["created"]
        done = counts["sent"] + counts["failed"] + counts["cancelled"] + counts["suppressed"] + counts["expired"]
        return {
            "state": self.state,
            "total": total,
            "sent": counts["sent"],
            "failed": counts["failed"],
            "cancelled": counts["cancelled"],
            "suppressed": counts["suppressed"],
            "expired": counts["expired"],
            "pending": max(total - done, 0),
        }

    def suppressed_by_reason(self) -> dict[str, int]:
        """How many recipients were skipped, by reason (``SuppressionReason``)."""
        rows = (self.emails.filter(status=Status.SUPPRESSED).values_list("suppressed_reason")
                .annotate(n=Count("id")).order_by())
        return {reason or "other": n for reason, n in rows}


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
    #: Not to be sent before this (its ``send_at``, or a retry's backoff): the claim refuses
    #: the row until then, and the sweeper leaves it alone.
    available_at = models.DateTimeField(_("available"), null=True, blank=True)
    #: Not to be sent after this: a row still unsent then becomes ``expired``.
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    #: Written but not published: it comes due further off than ``SCHEDULE_ETA_MAX`` (a
    #: scheduled email, or a retry's long backoff), so no task waits in a worker's memory
    #: for it; the worker-side sweep publishes it shortly before ``available_at``.
    held = models.BooleanField(default=False, editable=False)
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
            # The sweep's look for held rows coming due, and for rows past their expiry: partial,
            # so rows without a schedule (nearly all) cost these indexes nothing on insert.
            models.Index(fields=["available_at"], condition=Q(held=True), name="async_email_held_due"),
            models.Index(fields=["expires_at"], condition=Q(expires_at__isnull=False), name="async_email_expiring"),
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


def attachment_storage():
    """The storage ``ASYNC_EMAIL['ATTACHMENT_STORAGE']`` names (a ``STORAGES`` alias)."""
    return storages[app_settings.ATTACHMENT_STORAGE]


class StoredMessage(models.Model):
    """The message of a ``raw`` row, every attribute of Django's ``EmailMessage`` that is
    sent, so the worker rebuilds the same message the host handed to ``send_messages()``."""

    email = models.OneToOneField(OutboxEmail, on_delete=models.CASCADE, related_name="stored_message",
                                 verbose_name=_("email"))
    subject = models.TextField(_("subject"), blank=True)
    body = models.TextField(_("body"), blank=True)
    #: ``[[content, mimetype], ...]`` of an ``EmailMultiAlternatives``
    alternatives = models.JSONField(_("alternatives"), default=list, blank=True)
    #: the main body's subtype ("plain", or "html" when the host set ``content_subtype``)
    content_subtype = models.CharField(max_length=32, default="plain")
    mixed_subtype = models.CharField(max_length=32, default="mixed")
    alternative_subtype = models.CharField(max_length=32, default="alternative")
    encoding = models.CharField(max_length=64, blank=True)
    from_email = models.TextField(_("from"), blank=True)
    to = models.JSONField(_("to"), default=list, blank=True)
    cc = models.JSONField(_("cc"), default=list, blank=True)
    bcc = models.JSONField(_("bcc"), default=list, blank=True)
    reply_to = models.JSONField(_("reply to"), default=list, blank=True)
    #: ``extra_headers``, as ``[[name, value], ...]`` in the host's order
    headers = models.JSONField(_("headers"), default=list, blank=True)

    class Meta:
        verbose_name = _("stored message")
        verbose_name_plural = _("stored messages")

    def __str__(self):
        return self.subject


class StoredAttachment(models.Model):
    """One attachment of a stored message, or of every email of a broadcast (one of the two
    is set); the bytes are in ``ATTACHMENT_STORAGE``.

    A ``(filename, content, mimetype)`` attachment keeps those three; a MIME part the host
    built itself (an inline image with a ``Content-ID``, say) keeps its headers too, and is
    rebuilt with them.
    """

    message = models.ForeignKey(StoredMessage, null=True, blank=True, on_delete=models.CASCADE,
                                related_name="attachments", verbose_name=_("message"))
    broadcast = models.ForeignKey(Broadcast, null=True, blank=True, on_delete=models.CASCADE,
                                  related_name="attachments", verbose_name=_("broadcast"))
    position = models.PositiveSmallIntegerField()
    filename = models.CharField(_("file name"), max_length=255, blank=True)
    mimetype = models.CharField(_("type"), max_length=255, blank=True)
    #: a MIME part's own headers, ``[[name, value], ...]`` (empty for a plain attachment)
    part_headers = models.JSONField(default=list, blank=True)
    file = models.FileField(_("file"), storage=attachment_storage, upload_to="async_email/attachments/%Y/%m/%d",
                            max_length=255)
    size = models.PositiveIntegerField(_("size"))

    class Meta:
        verbose_name = _("attachment")
        verbose_name_plural = _("attachments")
        ordering = ["message", "broadcast", "position"]
        constraints = [
            models.UniqueConstraint(fields=["message", "position"], name="async_email_one_attachment_per_position"),
            models.UniqueConstraint(fields=["broadcast", "position"],
                                    name="async_email_one_broadcast_attachment_per_position"),
        ]

    def __str__(self):
        return self.filename or f"attachment {self.position}"
