from django.core.management.base import BaseCommand

from django_async_email.delivery.sweeper import requeue_stuck_emails


class Command(BaseCommand):
    help = ("Republish emails whose task was lost (for example the broker was down at commit) and give back "
            "emails held by workers that died. Safe to run at any time, e.g. from cron every few minutes.")

    def add_arguments(self, parser):
        parser.add_argument("--stuck-after", type=int, default=None,
                            help="Seconds a queued email may wait before it is republished "
                                 "(default: ASYNC_EMAIL['STUCK_AFTER']).")
        parser.add_argument("--dry-run", action="store_true", help="Only count what would be done.")

    def handle(self, *args, **options):
        report = requeue_stuck_emails(stuck_after=options["stuck_after"], dry_run=options["dry_run"])
        prefix = "Would have" if options["dry_run"] else "Done:"
        self.stdout.write(
            f"{prefix} released {report['leases_released']} expired lease(s), republished "
            f"{report['emails_republished']} email(s) in {report['tasks_published']} task(s), restarted "
            f"{report['broadcasts_restarted']} broadcast fan-out(s)."
        )
