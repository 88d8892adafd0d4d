from django.core.management.base import BaseCommand, CommandError

from django_async_email.email_utils import send_notification_to_user_types
from django_async_email.exceptions import InvalidEmailInput
from django_async_email.models import Broadcast

from ._progress import follow_broadcast


class Command(BaseCommand):
    help = "Send a notification to every active user of one or more types, with a progress bar until delivered."

    def add_arguments(self, parser):
        parser.add_argument("--user-type", action="append", required=True, dest="user_types",
                            help="A user type; repeat for several.")
        parser.add_argument("--subject", required=True)
        parser.add_argument("--message", required=True)
        parser.add_argument("--email-type", default="notification")
        parser.add_argument("--timeout", type=float, default=600, help="Seconds to wait (default 600).")
        parser.add_argument("--no-wait", action="store_true", help="Queue it and return at once.")

    def handle(self, *args, **options):
        try:
            task_ids = send_notification_to_user_types(
                options["user_types"], options["subject"], options["message"], email_type=options["email_type"])
        except InvalidEmailInput as exc:
            raise CommandError(str(exc)) from None
        failed = False
        # The API drops repeated types, so pair each distinct type with its task id.
        for user_type, task_id in zip(dict.fromkeys(options["user_types"]), task_ids, strict=True):
            self.stdout.write(f"{user_type}: broadcast queued (task {task_id}).")
            if options["no_wait"]:
                continue
            progress = follow_broadcast(task_id, self.stdout.write, options["timeout"])
            if progress["state"] not in Broadcast.FINISHED_STATES:
                raise CommandError(f"{user_type}: not finished within {options['timeout']:g}s: {progress}")
            failed = failed or progress["failed"] > 0
            self.stdout.write(f"{user_type}: {progress['sent']} sent, {progress['failed']} failed.")
        if failed:
            raise CommandError("Some emails failed; see the admin's email log for the errors.")
