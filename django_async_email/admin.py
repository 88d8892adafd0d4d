"""Read-only admin for the audit trail: who was sent what, when, and what went wrong; and the
two lists an operator edits: suppressed addresses and users' notification preferences."""

from django import forms
from django.contrib import admin, messages
from django.db.models import BLANK_CHOICE_DASH
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .accounts.categories import categories
from .accounts.suppression import list_reasons, suppression_key
from .accounts.users import email_field_name
from .models import (
    Broadcast,
    EmailPreference,
    FlowEvent,
    Invitation,
    OutboxEmail,
    Suppression,
    SuppressionReason,
    VerifiedEmail,
)
from .outbox.broadcasts import cancel_broadcast


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(OutboxEmail)
class OutboxEmailAdmin(ReadOnlyAdmin):
    list_display = ("id", "created_at", "kind", "email_type", "recipient", "status", "attempts", "sent_at")
    list_filter = ("status", "kind", "email_type", ("created_at", admin.DateFieldListFilter))
    search_fields = ("recipient", "message_id", "task_id")
    date_hierarchy = "created_at"
    list_select_related = ()
    readonly_fields = [f.name for f in OutboxEmail._meta.fields if f.editable] + ["created_at", "updated_at"]
    exclude = ()


@admin.register(Broadcast)
class BroadcastAdmin(ReadOnlyAdmin):
    list_display = ("id", "created_at", "subject", "email_type", "state", "total", "progress_summary")
    list_filter = ("state", "email_type", ("created_at", admin.DateFieldListFilter))
    search_fields = ("subject", "task_id")
    date_hierarchy = "created_at"
    actions = ["cancel"]

    @admin.display(description=_("progress"))
    def progress_summary(self, obj):
        p = obj.progress()
        return _("%(sent)s sent, %(failed)s failed, %(pending)s pending") % p

    def has_cancel_permission(self, request):
        # The admin is read-only, but stopping a broadcast is an operator's job.
        return request.user.has_perm("django_async_email.change_broadcast")

    @admin.action(description=_("Cancel the selected broadcasts"), permissions=["cancel"])
    def cancel(self, request, queryset):
        stopped = sum(cancel_broadcast(b.pk) for b in queryset)
        self.message_user(request, _("Cancelled; %d email(s) will not be sent.") % stopped, messages.SUCCESS)


@admin.register(Invitation)
class InvitationAdmin(ReadOnlyAdmin):
    list_display = ("email", "user_type", "inviter", "created_at", "expires_at", "accepted_at", "revoked_at")
    list_filter = ("user_type", ("created_at", admin.DateFieldListFilter))
    search_fields = ("email",)
    exclude = ("token_hash",)


@admin.register(VerifiedEmail)
class VerifiedEmailAdmin(ReadOnlyAdmin):
    list_display = ("user", "email", "verified_at")
    search_fields = ("email",)


@admin.register(FlowEvent)
class FlowEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "flow", "outcome", "user", "detail")
    list_filter = ("flow", "outcome", ("created_at", admin.DateFieldListFilter))
    date_hierarchy = "created_at"
    exclude = ("token_digest",)


class SuppressionForm(forms.ModelForm):
    """The address in the list's key form (as ``suppress()`` stores it), so an entry typed
    by hand matches however the address is written; only the reasons an address can have."""

    class Meta:
        model = Suppression
        fields = ("address", "reason", "source")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        reason = self.fields["reason"]
        assert isinstance(reason, forms.ChoiceField)
        reason.choices = [*BLANK_CHOICE_DASH, *((r, SuppressionReason(r).label) for r in list_reasons())]

    def clean_address(self):
        address = suppression_key(self.cleaned_data["address"])
        local, at, domain = address.rpartition("@")
        if not at or not local or not domain:
            raise forms.ValidationError(_("Enter a valid email address."), code="invalid")
        return address


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    form = SuppressionForm
    list_display = ("address", "reason", "source", "created_at")
    list_filter = ("reason", ("created_at", admin.DateFieldListFilter))
    search_fields = ("address",)
    date_hierarchy = "created_at"

    def get_search_results(self, request, queryset, search_term):
        # Entries are stored in the key form: search in it too (case, invisible characters).
        return super().get_search_results(request, queryset, suppression_key(search_term))

    def save_model(self, request, obj, form, change):
        if not obj.source:
            obj.source = "admin"
        super().save_model(request, obj, form, change)


class EmailPreferenceForm(forms.ModelForm):
    """The category picked from the configured ones (and the row's own, if no longer configured)."""

    class Meta:
        model = EmailPreference
        fields = ("user", "category", "subscribed")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        choices = [(c.key, f"{c.label} ({c.key})") for c in categories()]
        current = self.instance.category if self.instance.pk else None
        if current and current not in {key for key, _label in choices}:
            choices.append((current, current))
        self.fields["category"] = forms.ChoiceField(label=_("category"), choices=choices)


@admin.register(EmailPreference)
class EmailPreferenceAdmin(admin.ModelAdmin):
    form = EmailPreferenceForm
    list_display = ("user", "category", "subscribed", "source", "changed_at")
    list_filter = ("category", "subscribed", "source")
    list_select_related = ("user",)
    raw_id_fields = ("user",)
    readonly_fields = ("source", "changed_at")

    def get_search_fields(self, request):
        return (f"user__{email_field_name()}",)

    def save_model(self, request, obj, form, change):
        obj.source = EmailPreference.Source.ADMIN
        obj.changed_at = timezone.now()
        super().save_model(request, obj, form, change)
