"""Read-only admin for the audit trail: who was sent what, when, and what went wrong."""

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from .models import Broadcast, FlowEvent, Invitation, OutboxEmail, VerifiedEmail
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
