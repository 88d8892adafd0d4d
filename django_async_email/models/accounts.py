"""Account state: invitations, verified addresses, one-time codes, flow events, preferences, the suppression list."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .choices import SuppressionReason


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
