from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q
from django.utils import timezone

from django_async_email.models import (
    FINAL_STATUSES,
    PENDING_STATUSES,
    Broadcast,
    FlowEvent,
    OutboxEmail,
    StoredAttachment,
    attachment_storage,
)


class Command(BaseCommand):
    help = ("Delete finished emails (sent, failed, cancelled, suppressed, expired) with their stored messages and "
            "attachment files, finished broadcasts and account flow events older than DAYS days. Queued and "
            "sending emails are never deleted.")

    def add_arguments(self, parser):
        parser.add_argument("--older-than", type=int, required=True, metavar="DAYS")
        parser.add_argument("--dry-run", action="store_true", help="Only count what would be deleted.")

    def handle(self, *args, **options):
        days = options["older_than"]
        if days < 0:
            raise CommandError("--older-than must be 0 or more days.")
        cutoff = timezone.now() - timedelta(days=days)
        emails = OutboxEmail.objects.filter(created_at__lt=cutoff, status__in=FINAL_STATUSES)
        events = FlowEvent.objects.filter(created_at__lt=cutoff)
        broadcasts = Broadcast.objects.filter(created_at__lt=cutoff, state__in=Broadcast.FINISHED_STATES).exclude(
            emails__status__in=PENDING_STATUSES)
        counts = {"emails": emails.count(), "broadcasts": broadcasts.count(), "flow events": events.count()}
        # Attachment files live in ATTACHMENT_STORAGE, not in the rows: they go with them.
        files = list(StoredAttachment.objects.filter(Q(message__email__in=emails) | Q(broadcast__in=broadcasts))
                     .values_list("file", flat=True))
        counts["attachment files"] = len(files)
        if not options["dry_run"]:
            emails.delete()
            storage = attachment_storage()
            for name in files:
                storage.delete(name)
            events.delete()
            Broadcast.objects.filter(pk__in=list(broadcasts.values_list("pk", flat=True))).delete()
        verb = "Would delete" if options["dry_run"] else "Deleted"
        self.stdout.write(f"{verb} " + ", ".join(f"{n} {label}" for label, n in counts.items())
                          + f" older than {days} day(s).")
