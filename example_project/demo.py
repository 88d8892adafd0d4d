#!/usr/bin/env python3
"""One-command demo of django-async-email: real Celery worker, real queues, real emails.

    python example_project/demo.py

needs only Python 3.10+. It

1. creates ``example_project/var/venv`` and installs the repository into it (first run
   only), then runs itself again with that interpreter, unless the current interpreter
   already has the package (or ``--no-venv`` is given);
2. migrates the example project's SQLite database and seeds users of every type
   (200 Artists and a few Stations, Publishers and Admins; a second run reuses them);
3. starts one ``celery -A core worker`` on the high, normal and low queues and waits
   until it is ready;
4. queues each kind of email through ``django_async_email.email_utils``, plus a
   notification to every Artist, drawing a progress bar while that broadcast goes out;
5. waits until every email it queued is sent or has failed, prints a summary table and
   where the emails were written, and stops the worker (also on Ctrl-C or an error).

The exit status is 0 only if every email was sent in time. Everything the demo writes
goes under ``example_project/var/`` (or ``--var-dir`` / ``$EXAMPLE_VAR_DIR``). The
environment variables described in ``core/settings.py`` switch the broker to Redis or
RabbitMQ, the database to PostgreSQL and delivery to SMTP.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SETTINGS_MODULE = "core.settings"

#: Users the demo makes sure exist, per user type (Artists come from ``--artists``).
OTHER_USERS = {"Station": 5, "Publisher": 5, "Admin": 2}
INVITEE = "new.publisher@example.com"
#: Import paths added to this process, passed on to the worker.
EXTRA_PATHS: list[str] = []


# --- Command line ------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--no-venv", action="store_true", default=os.environ.get("ASYNC_EMAIL_DEMO_NO_VENV") == "1",
        help="use the current interpreter as it is (also: ASYNC_EMAIL_DEMO_NO_VENV=1)",
    )
    parser.add_argument(
        "--var-dir", type=Path, default=Path(os.environ.get("EXAMPLE_VAR_DIR") or HERE / "var"),
        help="where the database, broker, emails and venv go (default: example_project/var)",
    )
    parser.add_argument("--artists", type=int, default=200, help="how many Artists to seed (default: 200)")
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="seconds to wait for delivery (default: 120)"
    )
    args = parser.parse_args(argv)
    args.var_dir = args.var_dir.resolve()
    return args


class DemoError(RuntimeError):
    """Something the demo cannot go on without; printed without a traceback."""


def step(text: str) -> None:
    print(f"==> {text}", flush=True)


# --- Bootstrap: a virtualenv with the package (standard library only) --------------------


def has_package() -> bool:
    """True when this interpreter is a virtualenv that can import the package and Celery."""
    in_venv = sys.prefix != sys.base_prefix
    return in_venv and all(find_spec(name) is not None for name in ("django_async_email", "celery", "django"))


def venv_python(venv_dir: Path) -> Path:
    if os.name == "nt":
        return venv_dir / "Scripts" / "python.exe"
    return venv_dir / "bin" / "python"


def requirements() -> list[str]:
    """The repository itself, plus the clients the configured services need."""
    wanted = [f"{REPO}[drf]"]
    if os.environ.get("CELERY_BROKER_URL", "").startswith(("redis://", "rediss://")):
        wanted.append("redis>=4.5")
    if os.environ.get("EXAMPLE_DB") == "postgres":
        wanted.append("psycopg[binary]>=3.1")
    return wanted


def ensure_venv(venv_dir: Path) -> Path:
    """Create the demo's virtualenv and install the repository into it; returns its python."""
    import venv

    python = venv_python(venv_dir)
    if not python.exists():
        step(f"Creating a virtualenv in {venv_dir}")
        try:
            venv.create(venv_dir, with_pip=True, clear=True)
        except (OSError, subprocess.CalledProcessError) as exc:  # e.g. Debian without python3-venv
            raise DemoError(f"Could not create a virtualenv ({exc}). On Debian/Ubuntu: apt install python3-venv")
    wanted = requirements()
    stamp = json.dumps({"requirements": wanted, "pyproject": _file_digest(REPO / "pyproject.toml")})
    marker = venv_dir / ".demo-installed"
    if not marker.exists() or marker.read_text() != stamp:
        step("Installing django-email-outbox (editable) into the virtualenv; first run only")
        command = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-e", *wanted]
        if subprocess.run(command, check=False).returncode != 0:
            raise DemoError(f"Installing into {venv_dir} failed (see pip's output above).")
        marker.write_text(stamp)
    return python


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rerun_in(python: Path) -> None:
    """Run this script again with ``python``; never returns."""
    argv = [str(python), str(Path(__file__).resolve()), *sys.argv[1:], "--no-venv"]
    if os.name == "nt":
        sys.exit(subprocess.call(argv))
    os.execv(argv[0], argv)


# --- Django ------------------------------------------------------------------------------


def setup_django(var_dir: Path) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS_MODULE
    os.environ["EXAMPLE_VAR_DIR"] = str(var_dir)
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    if find_spec("django_async_email") is None:
        # --no-venv in an environment without the package installed: use the checkout.
        sys.path.append(str(REPO))
        EXTRA_PATHS.append(str(REPO))
    import django

    django.setup()


def migrate() -> None:
    from django.core.management import call_command
    from django.db import connection

    step(f"Migrating the database ({connection.settings_dict['NAME']})")
    call_command("migrate", verbosity=0, interactive=False)
    if connection.vendor == "sqlite":
        # Write-ahead logging lets the demo read progress while the worker writes; it is
        # a property of the file, so this sticks for runserver and later workers too.
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA journal_mode=WAL")


def seed_users(artists: int) -> dict[str, int]:
    """Make sure the demo users exist; creates only the missing ones, so reruns reuse them."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password

    user_model = get_user_model()
    wanted = {"Artist": artists, **OTHER_USERS}
    existing = set(user_model.objects.values_list("username", flat=True))
    new_users = []
    for user_type, count in wanted.items():
        for n in range(1, count + 1):
            username = f"{user_type.lower()}{n:03d}"
            if username in existing:
                continue
            new_users.append(user_model(
                username=username, email=f"{username}@example.com", first_name=user_type, last_name=f"{n:03d}",
                user_type=user_type, email_verified=n % 2 == 0, language="fr" if n % 10 == 0 else "en",
                is_staff=user_type == "Admin",  # admins may invite any user type
                password=make_password(None),  # no login for demo users
            ))
    user_model.objects.bulk_create(new_users, batch_size=500)
    user_model.objects.filter(user_type="Admin").update(is_staff=True)  # also in a database of an older run
    counts = {t: user_model.objects.filter(user_type=t).count() for t in wanted}
    step(f"Users: {', '.join(f'{n} {t}s' for t, n in counts.items())} ({len(new_users)} new)")
    return counts


# --- The Celery worker -------------------------------------------------------------------


class Worker:
    """One ``celery -A core worker`` subprocess, logging to ``var/worker.log``."""

    def __init__(self, var_dir: Path, queues: list[str]):
        self.log_path = var_dir / "worker.log"
        self.queues = queues
        self.proc: subprocess.Popen | None = None
        self._log_start = 0

    def start(self, timeout: float = 60.0) -> None:
        step(f"Starting a Celery worker on queues {', '.join(self.queues)} (log: {self.log_path})")
        # The worker imports what this process imports: the project, and the checkout if needed.
        paths = [str(HERE), *EXTRA_PATHS, os.environ.get("PYTHONPATH", "")]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in paths if p))
        self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:  # the worker keeps its own copy of the handle
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "core", "worker", "-Q", ",".join(self.queues),
                 "-P", "solo", "-l", "info", "--without-gossip", "--without-mingle", "--without-heartbeat",
                 "-n", f"demo-{os.getpid()}@%h"],
                cwd=HERE, env=env, stdout=log, stderr=subprocess.STDOUT,
                # Its own process group: Ctrl-C reaches the demo, which then stops the worker itself.
                start_new_session=os.name != "nt",
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise DemoError(f"The Celery worker exited early:\n{self.log_tail()}")
            if b" ready." in self._read_log():
                return
            time.sleep(0.1)
        raise DemoError(f"The Celery worker was not ready after {timeout:.0f}s:\n{self.log_tail()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _read_log(self) -> bytes:
        with open(self.log_path, "rb") as log:
            log.seek(self._log_start)
            return log.read()

    def log_tail(self, lines: int = 30) -> str:
        text = self._read_log().decode(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.alive():
            self.proc.terminate()  # SIGTERM: warm shutdown, the current task finishes
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            step("Stopped the Celery worker")


# --- Queuing and tracking the emails -----------------------------------------------------


@dataclass
class Job:
    """The emails queued by one call of the API, and how far they have got."""

    label: str
    queue: str
    queued_at: object  # aware datetime, comparable with the rows' updated_at
    row_ids: list[int] = field(default_factory=list)
    broadcast_id: int | None = None
    sent: int = 0
    failed: int = 0
    expected: int | None = None
    finished_at: object = None

    def rows(self):
        from django_async_email.models import OutboxEmail

        if self.broadcast_id is not None:
            return OutboxEmail.objects.filter(broadcast_id=self.broadcast_id)
        return OutboxEmail.objects.filter(pk__in=self.row_ids)

    def refresh(self) -> None:
        from django.db.models import Count, Max, Q

        from django_async_email.models import FINAL_STATUSES, Broadcast, Status

        if self.broadcast_id is not None:
            # Unknown until the fan-out task has created every row.
            self.expected = Broadcast.objects.values_list("total", flat=True).get(pk=self.broadcast_id)
        else:
            self.expected = len(self.row_ids)
        final = Q(status__in=FINAL_STATUSES)
        counts = self.rows().aggregate(
            sent=Count("id", filter=Q(status=Status.SENT)),
            done=Count("id", filter=final),
            last=Max("updated_at", filter=final),
        )
        self.sent, self.failed = counts["sent"], counts["done"] - counts["sent"]
        if self.done:
            self.finished_at = counts["last"]

    @property
    def done(self) -> bool:
        return self.expected is not None and self.sent + self.failed >= self.expected

    @property
    def seconds(self) -> float | None:
        if not self.done or self.finished_at is None:
            return None
        return max((self.finished_at - self.queued_at).total_seconds(), 0.0)


def _queue_of(queue_class: str) -> str:
    from django_async_email.outbox.routing import publish_options

    return publish_options(queue_class)["queue"]


def _single_job(label: str, kind: str, send) -> Job:
    """Call ``send()`` (one API call returning a task id) and remember the rows it wrote."""
    from django.utils import timezone

    from django_async_email.models import OutboxEmail
    from django_async_email.outbox.kinds import route_for

    queued_at = timezone.now()
    task_id = send()
    row_ids = list(OutboxEmail.objects.filter(task_id=task_id).values_list("pk", flat=True))
    return Job(label, _queue_of(route_for(kind).queue_class), queued_at, row_ids=row_ids)


def queue_emails() -> tuple[list[Job], Job]:
    """Queue one email of each kind and a notification to every Artist; returns the jobs."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from django_async_email import email_utils
    from django_async_email.models import Broadcast

    users = get_user_model().objects.order_by("pk")
    artist = users.filter(user_type="Artist", email_verified=False).first() or users.filter(user_type="Artist").first()
    admin = users.filter(user_type="Admin").first()
    publisher = users.filter(user_type="Publisher").first()
    stations = list(users.filter(user_type="Station").values_list("pk", flat=True))

    step("Queuing one email of each kind, then a notification to every Artist")
    jobs = [
        _single_job("verification", "verification", lambda: email_utils.send_verification_email(artist)),
        _single_job("password reset", "password_reset", lambda: email_utils.send_password_reset_email(artist)),
        _single_job("invitation", "invitation",
                    lambda: email_utils.send_invitation_email(admin, INVITEE, "Publisher")),
        _single_job("welcome", "welcome", lambda: email_utils.send_welcome_email(publisher)),
        _single_job("notification (Stations)", "notification", lambda: email_utils.send_notification_to_users(
            stations, "Your monthly airplay report is ready",
            "Log in to see which tracks your station played this month.", email_type="report",
        )),
    ]
    queued_at = timezone.now()
    (task_id,) = email_utils.send_notification_to_user_types(
        ["Artist"], "New Royalty Features", "Check out our new royalty tracking features!",
        email_type="feature_announcement",
    )
    broadcast_id = Broadcast.objects.values_list("pk", flat=True).get(task_id=task_id)
    bulk = Job("bulk to all Artists", _queue_of("low"), queued_at, broadcast_id=broadcast_id)
    return [*jobs, bulk], bulk


# --- Waiting, with a progress bar --------------------------------------------------------


def progress_bar(job: Job, audience: int, width: int = 30) -> str:
    total = job.expected if job.expected is not None else audience
    done = job.sent + job.failed
    filled = int(width * done / total) if total else width
    pending = max(total - done, 0)
    return (f"  {job.label:<20} [{'#' * filled}{'.' * (width - filled)}] {done:>4}/{total:<4} "
            f"sent {job.sent:<4} failed {job.failed:<4} pending {pending:<4}")


def wait_for_delivery(jobs: list[Job], bulk: Job, worker: Worker, audience: int, timeout: float) -> bool:
    """Poll the outbox until every job is done; True if so before ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    try:
        while True:
            for job in jobs:
                job.refresh()
            sys.stdout.write("\r" + progress_bar(bulk, audience))
            sys.stdout.flush()
            if all(job.done for job in jobs):
                return True
            if time.monotonic() > deadline:
                print(f"\nTimed out after {timeout:.0f}s waiting for delivery.", end="")
                return False
            if not worker.alive():
                print(f"\nThe Celery worker died:\n{worker.log_tail()}", end="")
                return False
            time.sleep(0.2)
    finally:
        print()  # end the progress bar's line, also on Ctrl-C


# --- Reporting ---------------------------------------------------------------------------


def print_summary(jobs: list[Job]) -> None:
    header = f"  {'kind':<24} {'queue':<8} {'queued':>6} {'sent':>6} {'failed':>6} {'seconds':>8}"
    print()
    print(header)
    print("  " + "-" * (len(header) - 2))
    for job in jobs:
        queued = job.expected if job.expected is not None else len(job.row_ids)
        seconds = f"{job.seconds:.2f}" if job.seconds is not None else "timeout"
        print(f"  {job.label:<24} {job.queue:<8} {queued:>6} {job.sent:>6} {job.failed:>6} {seconds:>8}")
    print("  " + "-" * (len(header) - 2))
    totals = [sum((j.expected or 0) for j in jobs), sum(j.sent for j in jobs), sum(j.failed for j in jobs)]
    print(f"  {'total':<24} {'':<8} {totals[0]:>6} {totals[1]:>6} {totals[2]:>6}")
    print()


def print_failures(jobs: list[Job]) -> None:
    from django_async_email.models import Status

    for job in jobs:
        for row in job.rows().exclude(status=Status.SENT)[:5]:
            print(f"  not sent: {job.label} to {row.recipient}: {row.status} {row.last_error[:200]}")


def print_output_location(jobs: list[Job], files_before: set[Path]) -> None:
    from django.conf import settings

    backend, options = settings.EXAMPLE_EMAIL["BACKEND"], settings.EXAMPLE_EMAIL["OPTIONS"]
    if "file_path" not in options:
        print(f"Emails were sent with {backend} to {options['host']}:{options['port']}.")
        return
    folder = Path(options["file_path"])
    new_files = sorted(p for p in folder.glob("*.log") if p not in files_before)
    messages = sum(count_messages(p) for p in new_files)
    print(f"Emails were written to {folder}{os.sep}")
    print(f"  {messages} message(s) in {len(new_files)} new file(s): one file per connection, "
          f"so a bulk chunk shares one")
    example = _file_with(new_files, jobs[0].rows().values_list("message_id", flat=True).first())
    if example:
        print(f"  the verification email, for example: {example}")


def count_messages(path: Path) -> int:
    """Messages in one file of Django's file-based backend (each starts with its headers)."""
    return sum(1 for line in path.read_text(errors="replace").splitlines() if line.startswith("Message-ID: "))


def _file_with(files: list[Path], needle: str | None) -> Path | None:
    for path in files:
        if needle and needle in path.read_text(errors="replace"):
            return path
    return files[0] if files else None


def email_files(folder) -> set[Path]:
    return set(Path(folder).glob("*.log")) if folder else set()


# --- Main --------------------------------------------------------------------------------


def run_demo(args: argparse.Namespace) -> int:
    args.var_dir.mkdir(parents=True, exist_ok=True)
    setup_django(args.var_dir)
    from django.conf import settings

    from django_async_email.accounts.recipients import recipients_of_types
    from django_async_email.outbox.routing import queue_names

    migrate()
    seed_users(args.artists)
    files_before = email_files(settings.EXAMPLE_EMAIL["OPTIONS"].get("file_path"))
    worker = Worker(args.var_dir, queue_names())
    try:
        worker.start()
        audience = recipients_of_types(["Artist"]).count()
        jobs, bulk = queue_emails()
        delivered = wait_for_delivery(jobs, bulk, worker, audience, args.timeout)
    finally:
        worker.stop()
    print_summary(jobs)
    ok = delivered and all(job.failed == 0 and job.sent == job.expected for job in jobs)
    if not ok:
        print_failures(jobs)
    print_output_location(jobs, files_before)
    print("All emails sent." if ok else "Some emails were not sent; see above and the worker log.")
    return 0 if ok else 1


def main(argv=None) -> int:
    args = parse_args(argv)
    # A plain `kill` should stop the worker too: turn SIGTERM into an exception, so the
    # `finally` that stops it runs.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        if not args.no_venv and not has_package():
            rerun_in(ensure_venv(args.var_dir / "venv"))
        return run_demo(args)
    except DemoError as exc:
        print(f"\n{exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nInterrupted; the worker was stopped.")
        return 130


if __name__ == "__main__":
    sys.exit(main())
