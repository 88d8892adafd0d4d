#!/usr/bin/env python
"""Recovery with the package's defaults: kill a worker mid-bulk, start another, count.

    python benchmarks/recovery.py --broker redis --db postgres --recipients 1500
    python benchmarks/recovery.py --broker amqp --db postgres --recipients 3000 --kill fanout
    python benchmarks/recovery.py --broker embedded --db sqlite --recipients 1500 --record-every 10
    python benchmarks/recovery.py --broker redis --db postgres --recipients 1500 --survivor

What it does, in order:

1. Creates throwaway state: a PostgreSQL database (``async_email_recovery_<pid>`` on
   127.0.0.1:5432, user postgres, dropped at the end) or an SQLite file; a Redis database
   (``--redis-db``, 11 by default, flushed before and after), a RabbitMQ vhost
   (``async_email_recovery_<pid>``, made and deleted with ``rabbitmqctl``) or the embedded
   filesystem broker (``django_async_email.contrib.filesystem_broker``) in a temporary folder.
2. Seeds N users of type Artist (plus N/20 Stations, so the audience query filters).
3. Starts an SMTP sink on loopback (``tests/smtp_server.py``'s aiosmtpd server, in this
   process) that waits ``--data-delay`` seconds (5 ms) before answering each DATA, so the
   kill lands mid-bulk.
4. Starts a real ``celery worker`` (``-P prefork -c 2 -Q high,normal,low``, Celery's default
   prefetch) on ``benchmarks.celery_app`` with ``benchmarks/recovery_settings.py``: the
   package's documented defaults (``LEASE_SECONDS`` 60, ``SWEEP_EVERY`` 30, ``STUCK_AFTER``
   60, the sweep inside the workers), ``CELERY_TASK_ACKS_LATE`` and
   ``CELERY_TASK_REJECT_ON_WORKER_LOST`` on, no beat, no cron, nothing calls the sweeper.
5. Sends one notification to the type (``email_utils.send_notification_to_user_types``,
   in ``transaction.atomic()``).
6. ``--kill bulk`` (default): once the sink has received ``--kill-after`` (50) emails,
   SIGKILLs the worker's whole process group (main process and pool).
   ``--kill fanout``: once the fan-out task has written ``--kill-after`` rows (default N/3)
   and not yet finished, the same kill. The fan-out of N=1,500 at the default chunk of 500
   is over in a fraction of a second, so this mode sets ``BULK_CHUNK_SIZE`` to
   ``--chunk-size`` (10 by default) through ``RECOVERY_BULK_CHUNK_SIZE``, which only
   ``recovery_settings.py`` reads.
   ``--survivor``: a fleet of two. Another worker (``survivor``) is started first and
   waits until it holds the fleet's sweeper lease; then the worker to be killed starts,
   and both share the bulk (chunks of ``--chunk-size``, 100 by default here, so each has
   some). The kill takes only the second worker, and no new worker is started: the
   survivor's sweeps alone must bring the rows back.
7. Starts a new worker at once (not with ``--survivor``) and waits until every recipient was received (``--timeout``,
   300 s), then until every row is recorded sent and the broadcast done, plus 2 s for late
   copies.
8. Prints and writes (``benchmarks/results/recovery-<broker>-<db>-<kill>-<time>.json``):
   delivered (distinct recipients received), duplicates (extra copies; and how many
   recipients got more than one), lost, the recovery time from the kill and from the new
   worker's start to the last recipient delivered, and a timeline from the new worker's log
   (when it was ready, when a sweep first gave rows back or restarted the fan-out).

``--record-every`` sets ``RECORD_EVERY`` (default: the package's own). Run one at a time:
the Redis database number is fixed. The machine's other load is not measured here; the
waits that dominate recovery are timers, not CPU.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
USER_TYPE = "Artist"
QUEUES = "high,normal,low"
SUBJECT = "New royalty features"
MESSAGE = "Check out the new royalty tracking features on your dashboard."


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--broker", choices=("embedded", "redis", "amqp"), default="redis")
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="postgres")
    parser.add_argument("--recipients", type=int, default=1500)
    parser.add_argument("--kill", choices=("bulk", "fanout"), default="bulk",
                        help="kill mid-send (bulk) or while the fan-out writes chunks (fanout)")
    parser.add_argument("--kill-after", type=int, default=None,
                        help="bulk: emails received before the kill (50); fanout: rows written (N/3)")
    parser.add_argument("--chunk-size", type=int, default=None,
                        help="BULK_CHUNK_SIZE for this run (default: the package's 500; 10 with --kill fanout)")
    parser.add_argument("--record-every", type=int, default=None, help="RECORD_EVERY (default: the package's)")
    parser.add_argument("--data-delay", type=float, default=0.005, help="sink's wait before each DATA reply, s")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for every recipient")
    parser.add_argument("--redis-db", type=int, default=11)
    parser.add_argument("--survivor", action="store_true",
                        help="a second worker, holding the sweeper lease, runs throughout and is not killed")
    parser.add_argument("--json", type=Path, default=None, help="where to write the result (default: results/)")
    args = parser.parse_args(argv)
    if args.kill == "fanout" and args.chunk_size is None:
        args.chunk_size = 10
    if args.survivor and args.chunk_size is None:
        args.chunk_size = 100
    if args.kill_after is None:
        args.kill_after = 50 if args.kill == "bulk" else args.recipients // 3
    return args


# --- throwaway state ------------------------------------------------------------------------------

class Resources:
    """The database, broker namespace and folder of one run; ``close()`` removes them."""

    def __init__(self, args):
        self.args = args
        self.run_dir = Path(tempfile.mkdtemp(prefix="async-email-recovery-"))
        self.db_name = f"async_email_recovery_{os.getpid()}"
        self.vhost = f"async_email_recovery_{os.getpid()}"
        self.broker_url = ""

    def open(self) -> dict:
        a = self.args
        if a.db == "postgres":
            self._postgres(f'CREATE DATABASE "{self.db_name}"')
        if a.broker == "redis":
            self.broker_url = f"redis://127.0.0.1:6379/{a.redis_db}"
            self._flush_redis()
        elif a.broker == "amqp":
            subprocess.run(["rabbitmqctl", "-q", "add_vhost", self.vhost], check=True, capture_output=True)
            subprocess.run(["rabbitmqctl", "-q", "set_permissions", "-p", self.vhost, "guest", ".*", ".*", ".*"],
                           check=True, capture_output=True)
            self.broker_url = f"amqp://guest:guest@127.0.0.1:5672/{self.vhost}"
        env = {
            "DJANGO_SETTINGS_MODULE": "benchmarks.recovery_settings",
            "RECOVERY_RUN_DIR": str(self.run_dir),
            "RECOVERY_DB": a.db,
            "RECOVERY_DB_NAME": self.db_name,
            "RECOVERY_BROKER": a.broker,
            "RECOVERY_BROKER_URL": self.broker_url,
        }
        if a.record_every:
            env["RECOVERY_RECORD_EVERY"] = str(a.record_every)
        if a.chunk_size:
            env["RECOVERY_BULK_CHUNK_SIZE"] = str(a.chunk_size)
        return env

    def _postgres(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres", autocommit=True) as c:
            c.execute(sql)

    def _flush_redis(self) -> None:
        import redis

        client = redis.Redis.from_url(self.broker_url)
        client.flushdb()
        client.close()

    def close(self) -> None:
        from django.db import connections

        connections.close_all()
        if self.args.db == "postgres":
            self._postgres(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
        if self.args.broker == "redis" and self.broker_url:
            self._flush_redis()
        elif self.args.broker == "amqp" and self.broker_url:
            subprocess.run(["rabbitmqctl", "-q", "delete_vhost", self.vhost], capture_output=True)
        shutil.rmtree(self.run_dir, ignore_errors=True)


# --- the worker -----------------------------------------------------------------------------------

class Worker:
    """One ``celery worker`` in its own process group, so a kill takes its pool too."""

    def __init__(self, name: str, env: dict, run_dir: Path, concurrency: int):
        self.name, self.env, self.run_dir, self.concurrency = name, env, run_dir, concurrency
        self.log_path = run_dir / f"worker-{name}.log"
        self.ready_path = run_dir / "worker-ready"
        self.proc: subprocess.Popen | None = None
        self.started_at = self.ready_at = None
        self.package_dir = ""

    def start(self) -> Worker:
        if self.ready_path.exists():
            self.ready_path.unlink()
        self._log = open(self.log_path, "wb")  # noqa: SIM115  (closed in stop/kill)
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "benchmarks.celery_app", "worker", "-P", "prefork",
             "-c", str(self.concurrency), "-Q", QUEUES, "--without-gossip", "--without-mingle",
             "--without-heartbeat", "-l", "info", "-n", f"recovery-{self.name}@%h"],
            cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        return self

    def poll_ready(self) -> bool:
        if self.ready_at is None:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited:\n{self.log_path.read_text()[-3000:]}")
            if self.ready_path.exists() and self.ready_path.read_text():
                self.ready_at = time.monotonic()
                self.package_dir = self.ready_path.read_text()
        return self.ready_at is not None

    def wait_ready(self, timeout: float = 60) -> Worker:
        deadline = time.monotonic() + timeout
        while not self.poll_ready():
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker {self.name} not ready:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.02)
        return self

    def kill(self) -> float:
        """SIGKILL the process group (main process and pool); the monotonic time of the kill."""
        at = time.monotonic()
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self._log.close()
        return at

    def stop(self, timeout: float = 30) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)  # warm shutdown
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        try:  # pool processes left behind, if any
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._log.close()


LOG_LINE = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): (\w+)/([\w-]+)\] (.*)$")


def log_events(path: Path, wall_to_mono: float) -> list[tuple[float, str]]:
    """``(monotonic time, text)`` of the log lines that matter for recovery."""
    events = []
    for line in path.read_text(errors="replace").splitlines():
        m = LOG_LINE.match(line)
        if not m:
            continue
        text = m.group(4)
        if not any(key in text for key in ("Recovery sweep", "Sweeper:", "received", "fanned out")):
            continue
        wall = datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
        events.append((wall - wall_to_mono, text))
    return events


# --- the run --------------------------------------------------------------------------------------

def seed_users(n: int) -> None:
    from django.contrib.auth import get_user_model

    user_model = get_user_model()
    users = [user_model(username=f"artist{i:06d}", email=f"artist{i:06d}@bench.test", password="!",
                        user_type=USER_TYPE, first_name=f"Artist{i}") for i in range(1, n + 1)]
    users += [user_model(username=f"station{i:06d}", email=f"station{i:06d}@bench.test", password="!",
                         user_type="Station") for i in range(1, n // 20 + 1)]
    user_model.objects.bulk_create(users, batch_size=2000)


def db_state(broadcast_id=None) -> dict:
    from django.db.models import Count

    from django_async_email.models import Broadcast, OutboxEmail, SweeperLease

    state = {"rows": dict(OutboxEmail.objects.values_list("status").annotate(n=Count("id")).order_by())}
    broadcast = Broadcast.objects.filter(pk=broadcast_id).first() if broadcast_id else Broadcast.objects.first()
    if broadcast:
        state["broadcast"] = {"state": broadcast.state, "total": broadcast.total,
                              "lease_expires_at": str(broadcast.lease_expires_at)}
    lease = SweeperLease.objects.first()
    if lease:
        state["sweeper_lease"] = {"holder": lease.holder, "expires_at": str(lease.expires_at)}
    return state


def wait_for_sweeper_lease(holder_prefix: str, timeout: float = 30) -> None:
    from django_async_email.models import SweeperLease

    deadline = time.monotonic() + timeout
    while not SweeperLease.objects.filter(holder__startswith=holder_prefix).exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"no worker {holder_prefix}… took the sweeper lease")
        time.sleep(0.05)


def first_receipts(received) -> dict[str, float]:
    first: dict[str, float] = {}
    for r in received:
        for rcpt in r.rcpt_tos:
            first.setdefault(rcpt.lower(), r.at)
    return first


def run(args) -> dict:
    sys.path.insert(0, str(ROOT))
    resources = Resources(args)
    env = resources.open()
    from tests.smtp_server import RecordingSMTPServer, free_port

    smtp_port = free_port()
    env["RECOVERY_SMTP_PORT"] = str(smtp_port)
    os.environ.update(env)
    worker_env = dict(os.environ)
    worker_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    workers: list[Worker] = []
    smtp = None
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import transaction

        import benchmarks.celery_app  # noqa: F401  (the host's Celery app: publishing goes to its broker)
        import django_async_email
        from django_async_email import email_utils
        from django_async_email.conf import app_settings
        from django_async_email.models import Broadcast, OutboxEmail

        call_command("migrate", verbosity=0)
        seed_users(args.recipients)
        settings_used = {k: getattr(app_settings, k) for k in (
            "LEASE_SECONDS", "SWEEP_EVERY", "STUCK_AFTER", "SWEEP_IN_WORKER", "RECORD_EVERY", "BULK_CHUNK_SIZE",
            "SEND_TIMEOUT")}
        print(f"{args.broker}+{args.db}, {args.recipients:,} recipients, kill {args.kill} after {args.kill_after}; "
              f"settings {settings_used}", flush=True)

        smtp = RecordingSMTPServer(port=smtp_port).start()
        smtp.slow_data(args.data_delay)
        survivor = None
        if args.survivor:
            survivor = Worker("survivor", worker_env, resources.run_dir, args.concurrency).start().wait_ready()
            workers.append(survivor)
            wait_for_sweeper_lease("recovery-survivor@")
        first = Worker("1", worker_env, resources.run_dir, args.concurrency).start().wait_ready()
        workers.append(first)
        expected_package = str(Path(django_async_email.__file__).parent)
        if Path(first.package_dir) != Path(expected_package):
            raise RuntimeError(f"the worker imported {first.package_dir}, not {expected_package}")

        published_at = time.monotonic()
        with transaction.atomic():
            email_utils.send_notification_to_user_types([USER_TYPE], SUBJECT, MESSAGE)
        broadcast_id = Broadcast.objects.get().pk

        deadline = time.monotonic() + 120
        while True:
            if args.kill == "bulk":
                if len(smtp.received) >= args.kill_after:
                    break
                time.sleep(0.002)
            else:
                written = OutboxEmail.objects.filter(broadcast_id=broadcast_id).count()
                if written >= args.kill_after:
                    if Broadcast.objects.filter(pk=broadcast_id, total__isnull=True).exists():
                        break
                    raise RuntimeError("the fan-out finished before the kill: use a smaller --chunk-size")
                time.sleep(0.005)
            if time.monotonic() > deadline:
                raise RuntimeError("the kill point was never reached")
        killed_at = first.kill()
        received_at_kill = len(smtp.received)
        if survivor is None:
            second = Worker("2", worker_env, resources.run_dir, args.concurrency).start()
            workers.append(second)
        else:
            second = survivor  # nobody new: the survivor recovers; its times count from the kill
            second.started_at = killed_at
        wall_to_mono = time.time() - time.monotonic()
        at_kill = db_state(broadcast_id)
        at_kill["rows_written"] = OutboxEmail.objects.filter(broadcast_id=broadcast_id).count()
        at_kill["received"] = received_at_kill
        at_kill["since_publish_s"] = killed_at - published_at
        at_kill["first_worker_up_s"] = killed_at - first.ready_at
        print(f"killed {at_kill['since_publish_s']:.2f}s after the publish, {received_at_kill} received; "
              f"state {at_kill}", flush=True)

        deadline = second.started_at + args.timeout
        complete = False
        while time.monotonic() < deadline:
            second.poll_ready()
            if len(first_receipts(smtp.received)) >= args.recipients:
                complete = True
                break
            time.sleep(0.05)
        second.wait_ready()
        settle_deadline = time.monotonic() + 60
        while time.monotonic() < settle_deadline:
            if (not OutboxEmail.objects.exclude(status="sent").exists()
                    and Broadcast.objects.filter(pk=broadcast_id, state="done").exists()):
                break
            time.sleep(0.1)
        settled_at = time.monotonic()
        time.sleep(2)  # late copies
        final = db_state(broadcast_id)
        received = smtp.received
        counts = Counter(rcpt.lower() for r in received for rcpt in r.rcpt_tos)
        receipts = first_receipts(received)
        addresses = {f"artist{i:06d}@bench.test" for i in range(1, args.recipients + 1)}
        delivered = len(addresses & set(counts))
        last_at = max(receipts.values()) if complete else None
        after_start = [r.at for r in received if r.at > second.started_at]
        events = [(t - second.started_at, text) for t, text in log_events(second.log_path, wall_to_mono)]
        recovery_events = [(round(t, 2), text) for t, text in events
                           if "Recovery sweep by" in text or "fanned out" in text]
        result = {
            "command": "python benchmarks/recovery.py " + " ".join(sys.argv[1:]),
            "started_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "broker": args.broker, "database": args.db, "kill": args.kill, "recipients": args.recipients,
            "kill_after": args.kill_after, "data_delay_s": args.data_delay, "concurrency": args.concurrency,
            "settings": settings_used, "package": expected_package,
            "delivered": delivered, "lost": args.recipients - delivered,
            "messages_received": len(received),
            "duplicates": sum(n - 1 for n in counts.values() if n > 1),
            "recipients_duplicated": sum(1 for n in counts.values() if n > 1),
            "complete": complete,
            "recovery_from_kill_s": None if last_at is None else last_at - killed_at,
            "survivor": args.survivor,
        "recovery_from_new_worker_start_s": None if last_at is None or survivor else last_at - second.started_at,
            "new_worker_ready_after_start_s": second.ready_at - second.started_at,
            "first_receipt_after_new_start_s": (min(after_start) - second.started_at) if after_start else None,
            "settled_after_new_start_s": settled_at - second.started_at,
            "at_kill": at_kill, "final": final,
            "recovery_events_after_new_start": recovery_events,
            "attempts": dict(Counter(OutboxEmail.objects.values_list("attempts", flat=True))),
        }
        result["targets"] = {
            "recovery_within_90s": bool(complete and (result["recovery_from_kill_s"] if survivor else
                                                      result["recovery_from_new_worker_start_s"]) <= 90),
            "duplicates_within_record_every_plus_one_per_process":
                result["duplicates"] <= settings_used["RECORD_EVERY"] + args.concurrency,
        }
        logs = {w.name: w.log_path.read_text(errors="replace")[-20000:] for w in workers}
        result["worker_logs_tail"] = logs
        return result
    finally:
        for w in workers:
            try:
                w.stop()
            except Exception as exc:  # noqa: BLE001  (cleanup goes on)
                print(f"could not stop worker {w.name}: {exc}", file=sys.stderr)
        if smtp is not None:
            smtp.stop()
        resources.close()


def summary(r: dict) -> str:
    def s(v):
        return "—" if v is None else f"{v:.1f}"

    scenario = r["kill"] + (" (survivor sweeps)" if r.get("survivor") else "")
    return (f"| {r['broker']} | {r['database']} | {scenario} | {r['recipients']:,} | {r['delivered']:,} "
            f"| {r['duplicates']} | {r['lost']} | {s(r['recovery_from_kill_s'])} "
            f"| {s(r['recovery_from_new_worker_start_s'])} |")


def main(argv=None) -> int:
    args = parse_args(argv)
    result = run(args)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.json or RESULTS / f"recovery-{args.broker}-{args.db}-{args.kill}-{stamp}.json"
    out.write_text(json.dumps(result, indent=2, default=str))
    print(json.dumps({k: v for k, v in result.items() if k != "worker_logs_tail"}, indent=2, default=str))
    print("| broker | database | scenario | recipients | delivered | duplicates | lost | kill→last s "
          "| new worker start→last s |")
    print(summary(result))
    print(f"results: {out}")
    return 0 if result["complete"] and result["lost"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
