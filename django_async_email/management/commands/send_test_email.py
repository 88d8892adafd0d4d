from collections.abc import Sequence

from django.core.management.base import BaseCommand, CommandError

from django_async_email.email_utils import send_test_email
from django_async_email.exceptions import InvalidEmailInput
from django_async_email.models import OutboxEmail

from ._progress import wait_for_rows


class Command(BaseCommand):
    help = "Send a test email through the queue and a worker, wait for it, and report what happened."

    def add_arguments(self, parser):
        parser.add_argument("address", help="Where to send the test email.")
        parser.add_argument("--subject", help="Subject (default: 'Test email from <site name>').")
        parser.add_argument("--timeout", type=float, default=60, help="Seconds to wait for delivery (default 60).")
        parser.add_argument("--no-wait", action="store_true", help="Queue it and return at once.")

    def handle(self, *args, **options):
        try:
            task_id = send_test_email(options["address"], subject=options["subject"])
        except InvalidEmailInput as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Queued test email to {options['address']} (task {task_id}).")
        if options["no_wait"]:
            return
        rows: Sequence[OutboxEmail | None] = wait_for_rows(task_id, options["timeout"]) or [None]
        (row,) = rows
        if row is None or row.status in ("queued", "sending"):
            raise CommandError(
                f"Not delivered within {options['timeout']:g}s (status: {row.status if row else 'unknown'}). "
                "Is a worker consuming the queues? Try: manage.py email_status"
            )
        if row.status != "sent":
            raise CommandError(f"Delivery failed after {row.attempts} attempt(s): {row.last_error}")
        self.stdout.write(self.style.SUCCESS(
            f"Sent to {row.recipient} in {row.attempts} attempt(s); Message-ID {row.message_id}."))
