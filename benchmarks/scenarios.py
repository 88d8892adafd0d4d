"""One function per scenario; each returns a dict of measurements.

Worker scenarios share ``run_with_worker``: reset the database tables and the broker, warm
the publisher, start one ``celery worker`` with the same pool and concurrency, publish,
wait until the sink has counted N messages, then let the worker finish recording.
"""

from __future__ import annotations

import json
import os
import smtplib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

from celery import shared_task

from . import harness

SUBJECT = "New royalty features"
MESSAGE = "Check out the new royalty tracking features on your dashboard.\nThey are live today."
USER_TYPE = "Artist"
EMPTY_USER_TYPE = "Admin"  # no user has it: publishing to it warms every connection, sends nothing


@dataclass
class Context:
    """What every scenario needs from the driver."""

    recipients: int
    sink: object
    run_dir: Path
    env: dict
    broker: str
    redis_url: str
    pool: str
    concurrency: int
    timeout: float
    py_spy: bool = False
    quiet_wait: float = 30.0
    #: the latency proxy in front of the sink (``run.py --latency-ms``), or None: straight to the sink
    proxy: object | None = None

    @property
    def tasks_dir(self) -> Path:
        return self.run_dir / "tasks"


def _rows_models():
    from post_office.models import Email, Log

    from django_async_email.models import Broadcast, FlowEvent, Invitation, OutboxEmail

    return [OutboxEmail, Broadcast, Invitation, FlowEvent, Log, Email]


def reset_state(ctx: Context) -> None:
    harness.reset_tables(_rows_models())
    harness.clear_broker(ctx.broker, ctx.redis_url, ctx.run_dir / "broker")
    harness.clear_folder(ctx.tasks_dir)
    lock = ctx.run_dir / "post_office.lock"
    if lock.exists():
        lock.unlink()


def _sink_result(ctx: Context, t0: float, sink_cpu: float) -> dict:
    sink = ctx.sink
    messages = sink.messages
    seconds = sink.last_at - t0 if messages else None
    result = {
        "messages": messages,
        "seconds": seconds,
        "per_second": messages / seconds if seconds else None,
        "connections": sink.connections,
        #: the most SMTP connections open at the same time: the connections the scenario used
        "peak_connections": sink.peak_open,
        "duplicates": sink.duplicates,
        "mean_message_bytes": sink.bytes / messages if messages else None,
        "sink_cpu_seconds": sink_cpu,
        #: client turns (bursts of client data after the server last replied), counted by the sink
        "sink_turns": sink.turns,
    }
    turns = sink.turns
    if ctx.proxy is not None:
        result["proxy"] = ctx.proxy.snapshot()
        # The proxy's count is the one that matters on a network: what the client waited for.
        turns = result["proxy"]["turns"]
        result["peak_connections"] = result["proxy"]["peak_open"]
    result["round_trips_per_message"] = turns / messages if messages else None
    return result


class TimedWindow:
    """From the first publish to the sink's last message: load on the machine and our CPU."""

    def __init__(self, ctx: Context, sampler: harness.ProcessSampler | None = None):
        self.ctx, self.sampler = ctx, sampler

    def start(self) -> float:
        self.quiet_wait_seconds = harness.wait_for_quiet(max_wait=self.ctx.quiet_wait) if self.ctx.quiet_wait else 0.0
        self.ctx.sink.reset()
        if self.ctx.proxy is not None:
            self.ctx.proxy.reset()
            self.proxy_cpu0 = harness.cpu_seconds(self.ctx.proxy.pid)
        self.sink_cpu0 = harness.cpu_seconds(self.ctx.sink.pid)
        self.own_cpu0 = harness.cpu_seconds(os.getpid())
        self.worker_cpu0 = self._worker_cpu()
        self.meter = harness.LoadMeter().start()
        self.t0 = time.monotonic()
        return self.t0

    def _worker_cpu(self) -> float:
        if self.sampler is None:
            return 0.0
        self.sampler.sample()
        return self.sampler.cpu_seconds

    def finish(self, complete: bool, sender_cpu: float = 0.0) -> dict:
        """``sender_cpu``: CPU of sending processes the window does not know (``limit-2``'s two)."""
        driver_cpu = harness.cpu_seconds(os.getpid()) - self.own_cpu0
        worker_cpu = self._worker_cpu() - self.worker_cpu0
        sink_cpu = harness.cpu_seconds(self.ctx.sink.pid) - self.sink_cpu0
        proxy_cpu = harness.cpu_seconds(self.ctx.proxy.pid) - self.proxy_cpu0 if self.ctx.proxy is not None else 0.0
        load = self.meter.stop(driver_cpu + worker_cpu + sink_cpu + proxy_cpu + sender_cpu)
        result = _sink_result(self.ctx, self.t0, sink_cpu)
        result.update(complete=complete, load=load, quiet_wait_seconds=self.quiet_wait_seconds,
                      driver_cpu_seconds=driver_cpu)
        if self.ctx.proxy is not None:
            result["proxy_cpu_seconds"] = proxy_cpu
        if self.sampler is not None:
            result["worker_cpu_seconds"] = worker_cpu
        return result


def _start_py_spy(ctx: Context, pid: int, name: str):
    import subprocess
    import sys

    out = ctx.run_dir.parent / f"py-spy-{name}-{ctx.recipients}.txt"
    py_spy = Path(sys.executable).with_name("py-spy")
    proc = subprocess.Popen(
        [str(py_spy), "record", "--pid", str(pid), "--subprocesses", "--rate", "200", "--format", "raw",
         "--output", str(out), "--nonblocking", "--idle"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    return proc, out


def run_with_worker(
    ctx: Context, name: str, publish: Callable[[str], None], *, chunk_size: int,
    extra_env: dict | None = None, settle: Callable[[], bool] | None = None,
) -> dict:
    from .celery_app import noop

    reset_state(ctx)
    # Warm the publisher (broker connection, code paths) with an audience of nobody, then
    # drop what that queued: the timed publish below is a warm request, as in a server.
    publish(EMPTY_USER_TYPE)
    noop.delay()
    reset_state(ctx)

    env = harness.worker_env(ctx.env, **(extra_env or {}))
    worker = harness.Worker(
        env, ctx.run_dir / f"worker-{name}.log", ctx.run_dir / "worker-ready",
        pool=ctx.pool, concurrency=ctx.concurrency, name=name,
    ).start()
    spy = None
    try:
        sampler = harness.ProcessSampler(worker.pid).start()
        window = TimedWindow(ctx, sampler)
        if ctx.py_spy:
            spy = _start_py_spy(ctx, worker.pid, name)
        window.start()
        request_started = time.perf_counter()
        publish(USER_TYPE)
        request_seconds = time.perf_counter() - request_started
        complete = ctx.sink.wait_for(ctx.recipients, ctx.timeout)
        result = window.finish(complete)
        settled_seconds = None
        if complete and settle is not None:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not settle():
                time.sleep(0.05)
            settled_seconds = time.monotonic() - window.t0
        time.sleep(1.0)  # anything sent twice would arrive now
        sampler.stop()
        result["messages_after_grace"] = ctx.sink.messages
        result["duplicates"] = ctx.sink.duplicates
    finally:
        if spy is not None:
            import signal
            import subprocess

            spy[0].send_signal(signal.SIGINT)
            try:
                spy[0].wait(60)
            except subprocess.TimeoutExpired:
                spy[0].kill()
        worker.stop()
    tasks = harness.read_task_stats(ctx.tasks_dir)
    # Per pool process (and the main process): shows whether both processes shared the work.
    worker_cpu_by_process = sorted(
        (cpu - sampler.cpu_baseline.get(pid, 0.0) for pid, cpu in sampler.cpu_by_pid.items()), reverse=True,
    )
    total_queries = sum(t["queries"] for t in tasks.values())
    chunks = -(-ctx.recipients // chunk_size)
    result.update(
        complete=complete,
        request_ms=request_seconds * 1000,
        settled_seconds=settled_seconds,
        worker_peak_rss_mib=sampler.peak_rss / 2**20,
        worker_peak_single_process_rss_mib=sampler.peak_single_rss / 2**20,
        worker_command=" ".join(worker.command[1:]),
        worker_package_dir=worker.package_dir,
        chunk_size=chunk_size,
        chunks=chunks,
        queries_total=total_queries,
        queries_per_chunk=total_queries / chunks,
        queries_per_1000=total_queries * 1000 / ctx.recipients,
        tasks=tasks,
        worker_cpu_seconds_by_process=worker_cpu_by_process,
    )
    if spy is not None:
        result["py_spy"] = str(spy[1])
    return result


# --- the scenarios ------------------------------------------------------------------------------

def _prerendered(ctx: Context) -> list[tuple[str, bytes]]:
    """One distinct message (name, address, Message-ID) per user, rendered before any clock starts."""
    from django.core.mail import make_msgid

    from .benchapp.tasks import recipients, render_message

    name_mark, address_mark = "zzNAMEMARKzz", "zzaddressmarkzz@bench.test"
    template = render_message(SimpleNamespace(username=name_mark, email=address_mark), SUBJECT, MESSAGE).message()
    message_id = template["Message-ID"].encode()
    raw = template.as_bytes(linesep="\r\n")
    if raw.count(name_mark.encode()) < 2 or address_mark.encode() not in raw:
        raise RuntimeError("The pre-rendered message does not carry the name marker in both parts")
    users = list(recipients(USER_TYPE).values_list("username", "email"))
    assert len(users) == ctx.recipients, (len(users), ctx.recipients)
    return [
        (address, raw.replace(name_mark.encode(), username.encode())
         .replace(address_mark.encode(), address.encode())
         .replace(message_id, make_msgid().encode()))
        for username, address in users
    ]


def _send_prerendered(host: str, port: int, sender: str, messages) -> None:
    smtp = smtplib.SMTP(host, port)
    for address, data in messages:
        smtp.sendmail(sender, [address], data)
    smtp.quit()


def limit(ctx: Context) -> dict:
    """Pre-rendered messages over one ``smtplib`` connection, in this process: the ceiling."""
    from django.conf import settings

    reset_state(ctx)
    messages = _prerendered(ctx)
    window = TimedWindow(ctx)
    window.start()
    _send_prerendered(settings.EMAIL_HOST, settings.EMAIL_PORT, settings.DEFAULT_FROM_EMAIL, messages)
    return window.finish(ctx.sink.wait_for(ctx.recipients, ctx.timeout))


#: the forked sending processes of ``limit-2`` read their half of the messages from here
_LIMIT2_MESSAGES: list = []


def _limit2_child(index: int, parts: int, host: str, port: int, sender: str, go, cpu_out, errors) -> None:
    messages = _LIMIT2_MESSAGES[index::parts]
    go.wait()
    cpu0 = time.process_time()
    try:
        _send_prerendered(host, port, sender, messages)
    except Exception as exc:  # noqa: BLE001  (reported to the parent, which fails the run)
        errors.put(f"{type(exc).__name__}: {exc}")
    cpu_out[index] = time.process_time() - cpu0


def limit_2(ctx: Context, parts: int = 2) -> dict:
    """The limit for two worker processes: two forked processes, each sending half of the
    pre-rendered messages over its own ``smtplib`` connection; the clock covers both."""
    import multiprocessing

    from django.conf import settings
    from django.db import connections

    reset_state(ctx)
    _LIMIT2_MESSAGES[:] = _prerendered(ctx)
    connections.close_all()  # the children must not share this process's database connection
    mp = multiprocessing.get_context("fork")  # the children inherit the messages, nothing is copied
    go, cpu_out, errors = mp.Event(), mp.RawArray("d", parts), mp.Queue()
    children = [
        mp.Process(target=_limit2_child, name=f"bench-limit-2-{i}", daemon=True,
                   args=(i, parts, settings.EMAIL_HOST, settings.EMAIL_PORT, settings.DEFAULT_FROM_EMAIL,
                         go, cpu_out, errors))
        for i in range(parts)
    ]
    try:
        for child in children:
            child.start()
        window = TimedWindow(ctx)
        window.start()
        go.set()
        deadline = time.monotonic() + ctx.timeout
        for child in children:
            child.join(max(deadline - time.monotonic(), 0))
        complete = ctx.sink.wait_for(ctx.recipients, max(deadline - time.monotonic(), 1))
        sender_cpu = list(cpu_out)
        result = window.finish(complete, sender_cpu=sum(sender_cpu))
    finally:
        for child in children:
            if child.is_alive():
                child.kill()
        _LIMIT2_MESSAGES.clear()
    failures = []
    while not errors.empty():
        failures.append(errors.get())
    if failures:
        raise RuntimeError("; ".join(failures))
    result.update(sender_cpu_seconds=sum(sender_cpu), sender_cpu_seconds_by_process=sender_cpu)
    return result


def django_one_process(ctx: Context) -> dict:
    """Django templates + ``EmailMultiAlternatives`` over one Django SMTP connection, one process."""
    from django.core.mail import get_connection

    from .benchapp.tasks import pages, recipients, render_message

    reset_state(ctx)
    window = TimedWindow(ctx)
    window.start()
    connection = get_connection()
    connection.open()
    for page in pages(recipients(USER_TYPE)):
        connection.send_messages([render_message(user, SUBJECT, MESSAGE) for user in page])
    connection.close()
    return window.finish(ctx.sink.wait_for(ctx.recipients, ctx.timeout))


def naive(ctx: Context) -> dict:
    from .benchapp.tasks import naive_fan_out

    return run_with_worker(
        ctx, "naive", lambda user_type: naive_fan_out.delay(user_type, SUBJECT, MESSAGE), chunk_size=50,
    )


def celery_email(chunk_size: int):
    def scenario(ctx: Context) -> dict:
        from .benchapp.tasks import celery_email_fan_out

        return run_with_worker(
            ctx, f"celery-email-{chunk_size}",
            lambda user_type: celery_email_fan_out.delay(user_type, SUBJECT, MESSAGE),
            chunk_size=chunk_size, extra_env={"BENCH_CELERY_EMAIL_CHUNK_SIZE": str(chunk_size)},
        )

    return scenario


def post_office(ctx: Context) -> dict:
    from post_office.models import STATUS, Email
    from post_office.settings import get_batch_size

    from .benchapp.tasks import post_office_fan_out

    return run_with_worker(
        ctx, "post-office", lambda user_type: post_office_fan_out.delay(user_type, SUBJECT, MESSAGE),
        chunk_size=get_batch_size(),
        settle=lambda: Email.objects.filter(status=STATUS.sent).count() >= ctx.recipients,
    )


def async_email(ctx: Context) -> dict:
    """This package: ``send_notification_to_user_types`` → fan-out → chunk send tasks."""
    from django.db import transaction

    from django_async_email.conf import app_settings
    from django_async_email.email_utils import send_notification_to_user_types
    from django_async_email.models import Broadcast, OutboxEmail, Status

    def publish(user_type):
        # The request path: one transaction, the broadcast row, the publish on commit.
        with transaction.atomic():
            send_notification_to_user_types([user_type], SUBJECT, MESSAGE)

    def settled():
        # Every row recorded as sent, and the broadcast marked done.
        return (
            OutboxEmail.objects.filter(status=Status.SENT).count() >= ctx.recipients
            and not Broadcast.objects.exclude(state=Broadcast.State.DONE).exists()
        )

    return run_with_worker(ctx, "async-email", publish, chunk_size=app_settings.BULK_CHUNK_SIZE, settle=settled)


def request_path_timing(ctx: Context, calls: int = 20, warmup: int = 3) -> dict:
    """``send_notification_to_user_types([USER_TYPE], ...)`` to all N recipients, as a request makes
    it: in ``transaction.atomic()``, committed, the fan-out published on commit. ``warmup`` calls
    first, then ``calls`` timed ones. No worker runs meanwhile (each scenario stops its own), and
    the broker and the tables are emptied afterwards, so the published tasks are never consumed."""
    import statistics

    from django.db import connection, transaction

    from django_async_email.email_utils import send_notification_to_user_types

    queries: list[int] = []

    def count(execute, sql, params, many, context):
        queries[-1] += 1
        return execute(sql, params, many, context)

    reset_state(ctx)
    timings = []
    try:
        for n in range(warmup + calls):
            queries.append(0)
            with connection.execute_wrapper(count):
                started = time.perf_counter()
                with transaction.atomic():
                    send_notification_to_user_types([USER_TYPE], SUBJECT, MESSAGE)
                elapsed = time.perf_counter() - started
            if n >= warmup:
                timings.append(1000 * elapsed)
    finally:
        reset_state(ctx)
    ordered = sorted(timings)
    return {
        "recipients": ctx.recipients,
        "warmup_calls": warmup,
        "calls": calls,
        "ms": timings,
        "median_ms": statistics.median(timings),
        "p90_ms": ordered[max(int(round(0.9 * len(ordered))) - 1, 0)],
        "min_ms": ordered[0],
        "max_ms": ordered[-1],
        #: statements per timed call (BEGIN/COMMIT not counted), from the last call
        "queries_per_call": queries[-1],
    }


# --- the host's own code through EMAIL_BACKEND: this package's OutboxBackend ------------------------

OUTBOX_BACKEND = "django_async_email.backends.OutboxBackend"
#: what ``backend_fan_out`` measured, written by the worker process that ran it
HOST_TASK_STATS = "host-task.json"


@shared_task(name="bench.backend_fan_out")
def backend_fan_out(user_type: str, subject: str, message: str, call_size: int):
    """A host's send_mass_mail()-style code: render the messages, hand lists of them to EMAIL_BACKEND.

    The same host code as ``benchapp.tasks.celery_email_fan_out`` (pages of 500 users, the same
    ``render_message``), with ``get_connection()``, which is the host's ``EMAIL_BACKEND``, and
    one ``send_messages()`` call per ``call_size`` messages (``send_mass_mail`` makes one
    call for all its messages). Its cost is written to ``RUN_DIR/host-task.json``.
    """
    from django.conf import settings
    from django.core.mail import get_connection

    from .benchapp.tasks import pages, recipients, render_message

    connection = get_connection()
    stats = {"backend": f"{type(connection).__module__}.{type(connection).__qualname__}", "call_size": call_size,
             "calls": 0, "messages": 0, "render_seconds": 0.0, "render_cpu_seconds": 0.0,
             "send_messages_seconds": [], "send_messages_cpu_seconds": []}

    def send(batch):
        wall, cpu = time.perf_counter(), time.process_time()
        stats["messages"] += connection.send_messages(batch)
        stats["send_messages_seconds"].append(time.perf_counter() - wall)
        stats["send_messages_cpu_seconds"].append(time.process_time() - cpu)
        stats["calls"] += 1

    batch: list = []
    for page in pages(recipients(user_type)):
        wall, cpu = time.perf_counter(), time.process_time()
        batch.extend(render_message(user, subject, message) for user in page)
        stats["render_seconds"] += time.perf_counter() - wall
        stats["render_cpu_seconds"] += time.process_time() - cpu
        while len(batch) >= call_size:
            send(batch[:call_size])
            batch = batch[call_size:]
    if batch:
        send(batch)
    if stats["messages"]:  # the warm-up publish, to nobody, writes nothing
        (Path(settings.RUN_DIR) / HOST_TASK_STATS).write_text(json.dumps(stats))
    return stats["messages"]


def outbox_backend(call_size: int | None):
    """``EMAIL_BACKEND = OutboxBackend``: the host's code stores one ``raw`` row per message in
    ``send_messages()``; each call's rows go out as one send task per ``BULK_CHUNK_SIZE``
    (a call larger than that on the low queue), which this package's worker sends through
    ``ASYNC_EMAIL['EMAIL_BACKEND']`` (the SMTP backend). ``call_size`` messages per call;
    ``None``: all of them in one call."""

    def scenario(ctx: Context) -> dict:
        from django_async_email.models import OutboxEmail, Status

        size = call_size or ctx.recipients
        stats_path = ctx.run_dir / HOST_TASK_STATS
        stats_path.unlink(missing_ok=True)
        result = run_with_worker(
            ctx, "outbox-backend" if call_size else "outbox-backend-one-call",
            lambda user_type: backend_fan_out.delay(user_type, SUBJECT, MESSAGE, size),
            chunk_size=size, extra_env={"BENCH_EMAIL_BACKEND": OUTBOX_BACKEND},
            settle=lambda: OutboxEmail.objects.filter(status=Status.SENT).count() >= ctx.recipients,
        )
        if stats_path.exists():
            result["host_task"] = json.loads(stats_path.read_text())
        return result

    return scenario


SCENARIOS: dict[str, tuple[str, Callable[[Context], dict]]] = {
    "limit": ("smtplib limit: pre-rendered, one connection", limit),
    "limit-2": ("smtplib limit, two processes: pre-rendered, one connection each", limit_2),
    "django-one-process": ("Django render + one connection, one process (reference)", django_one_process),
    "naive": ("naive: task per 50 ids, connection per email", naive),
    "celery-email-10": ("django-celery-email, CELERY_EMAIL_CHUNK_SIZE=10 (default)", celery_email(10)),
    "celery-email-100": ("django-celery-email, CELERY_EMAIL_CHUNK_SIZE=100", celery_email(100)),
    "celery-email-500": ("django-celery-email, CELERY_EMAIL_CHUNK_SIZE=500", celery_email(500)),
    "post-office": ("django-post-office: send_many + send_queued_mail (Celery)", post_office),
    "async-email": ("django-async-email: send_notification_to_user_types", async_email),
    "outbox-backend": ("django-async-email OutboxBackend: send_messages() per 500 messages", outbox_backend(500)),
    "outbox-backend-one-call": (
        "django-async-email OutboxBackend: one send_messages() call for all", outbox_backend(None),
    ),
}
