import json

from django.core.management.base import BaseCommand

from django_async_email.status import system_status


class Command(BaseCommand):
    help = "Show the email configuration findings, the broker, the workers and the queues they consume."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print the full report as JSON.")
        parser.add_argument("--timeout", type=float, default=1.0, help="Seconds to wait for workers to answer.")

    def handle(self, *args, **options):
        status = system_status(inspect_timeout=options["timeout"])
        if options["json"]:
            self.stdout.write(json.dumps(status, indent=2, default=str))
            return
        write, style = self.stdout.write, self.style
        config = status["configuration"]
        write(f"Email backend: {status['email_backend']}")
        write("Configuration: " + (style.SUCCESS("OK") if config["ok"] else style.ERROR("PROBLEMS")))
        for finding in config["errors"] + config["warnings"]:
            write(f"  {finding['id']} ({finding['level']}): {finding['message']}")
        broker = status["broker"]
        reach = style.SUCCESS("reachable") if broker["reachable"] else style.ERROR("NOT reachable")
        write(f"Broker ({broker['transport']}): {reach}")
        for queue in status["queues"]:
            depth = broker["queue_depths"].get(queue)
            write(f"  queue {queue}: {'?' if depth is None else depth} waiting")
        if status["workers"]:
            for worker, queues in status["workers"].items():
                write(f"Worker {worker}: consumes {', '.join(queues)}")
        else:
            write(style.WARNING("No worker answered."))
        for queue in status["queues_without_consumer"]:
            write(style.WARNING(f"No worker consumes queue '{queue}'."))
        for label, counts in status["emails"].items():
            write(f"Emails, {label.replace('_', ' ')}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        for broadcast in status["broadcasts"]:
            write(f"Broadcast {broadcast['id']} '{broadcast['subject']}': {broadcast['sent']}/{broadcast['total']} "
                  f"sent, {broadcast['failed']} failed")
