"""In-process look at this package's worker code: queries per chunk and where the time goes.

Runs ``outbox.fanout.fan_out`` and ``delivery.pipeline.deliver_emails`` in this process (publishing
recorded, not sent), against the same database and SMTP sink as the worker scenarios:

- the SQL of the fan-out and of one send task (``CaptureQueriesContext``);
- two send tasks timed without instrumentation, wall clock and this process's CPU;
- two chunks (alternating with those) taken apart stage by stage with the package's own
  functions (claim, render, the SMTP fast path's bytes, SMTP, record), each stage timed on
  its own over the whole chunk, wall clock and CPU: a measurement with no profiler
  overhead in it; for comparison, the same chunk also goes through Django's MIME tree,
  serialisation and address sanitising, which the fast path replaces;
- the fan-out and one send task under ``cProfile`` (saved with their top functions).
"""

from __future__ import annotations

import cProfile
import io
import pstats
import smtplib
import time
from pathlib import Path

from .scenarios import MESSAGE, SUBJECT, USER_TYPE, Context, reset_state

#: stage -> (file suffix, function name); cumulative time of that function in the profile.
STAGES = [
    ("deliver_emails (whole send task)", "django_async_email/delivery/pipeline.py", "deliver_emails"),
    ("claim_emails", "django_async_email/delivery/claim.py", "claim_emails"),
    ("build_message", "django_async_email/delivery/build/compose.py", "build_message"),
    ("render_parts", "django_async_email/delivery/build/rendering.py", "render_parts"),
    ("WireWriter.write", "django_async_email/delivery/send/wire.py", "write"),
    ("smtplib.SMTP.sendmail", "smtplib.py", "sendmail"),
    ("mark_sent", "django_async_email/delivery/record.py", "mark_sent"),
    ("record_outcomes", "django_async_email/delivery/record.py", "record_outcomes"),
]


class _Clock:
    def __init__(self):
        self.stages: dict[str, dict] = {}

    def time(self, name, fn, rows):
        wall, cpu = time.perf_counter(), time.process_time()
        value = fn()
        self.stages[name] = {
            "wall_ms_per_message": 1000 * (time.perf_counter() - wall) / rows,
            "cpu_ms_per_message": 1000 * (time.process_time() - cpu) / rows,
        }
        return value


def stage_breakdown(email_ids) -> dict:
    """One chunk through the package's own steps, each step timed on its own."""
    from django.conf import settings
    from django.core.mail.message import sanitize_address

    from django_async_email.adapter import get_adapter
    from django_async_email.delivery.build.compose import build_message
    from django_async_email.delivery.claim import claim_emails
    from django_async_email.delivery.record import mark_sent
    from django_async_email.delivery.send.wire import WireWriter

    clock = _Clock()
    rows_count = len(email_ids)
    token, rows = clock.time("claim: UPDATE + SELECT of the chunk", lambda: claim_emails(email_ids), rows_count)
    adapter = get_adapter()
    messages = clock.time(
        "render: build_message (context, template lookup, Django template render)",
        lambda: [build_message(row, adapter=adapter) for row in rows], rows_count,
    )
    writer = WireWriter()
    wires = clock.time("bytes: WireWriter.write (the SMTP fast path)", lambda: [writer.write(m) for m in messages],
                       rows_count)
    # What the fast path replaces, for comparison (not part of the package's path any more):
    mimes = clock.time("  instead, Django's MIME tree: EmailMessage.message()", lambda: [m.message() for m in messages],
                       rows_count)
    clock.time("  instead, Django's serialisation: as_bytes()", lambda: [m.as_bytes(linesep="\r\n") for m in mimes],
               rows_count)
    clock.time(
        "  instead, Django's envelope: sanitize_address (from + to)",
        lambda: [(sanitize_address(m.from_email, "utf-8"), [sanitize_address(a, "utf-8") for a in m.recipients()])
                 for m in messages],
        rows_count,
    )

    def send():
        smtp = smtplib.SMTP(settings.EMAIL_HOST, settings.EMAIL_PORT)
        for wire in wires:
            smtp.sendmail(wire.from_addr, wire.recipients, wire.data)
        smtp.quit()

    clock.time("SMTP: sendmail over one connection (4 round trips each)", send, rows_count)
    clock.time("record: mark_sent (one UPDATE)", lambda: mark_sent(token, [r.pk for r in rows], {}), rows_count)
    return clock.stages


def _cumulative(stats: pstats.Stats, suffix: str, function: str) -> tuple[float, int]:
    total, calls = 0.0, 0
    for (filename, _line, name), (_cc, ncalls, _tt, cumtime, _callers) in stats.stats.items():
        if name == function and filename.replace("\\", "/").endswith(suffix):
            total += cumtime
            calls += ncalls
    return total, calls


def _is_statement(sql: str) -> bool:
    """A statement the worker's counter would see too (Django 4.2+ also logs BEGIN/COMMIT)."""
    return not sql.lstrip().upper().startswith(
        ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT", "BEGIN", "COMMIT", "ROLLBACK")
    )


def probe_async_email(ctx: Context, out_dir: Path) -> dict:
    from celery.app.task import Task
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from django_async_email.delivery import pipeline as delivery
    from django_async_email.email_utils import send_notification_to_user_types
    from django_async_email.outbox.fanout import fan_out

    reset_state(ctx)
    published = []
    original = Task.apply_async

    def record(self, args=None, kwargs=None, **options):
        published.append((self.name, args))

    Task.apply_async = record
    try:
        with transaction.atomic():
            send_notification_to_user_types([USER_TYPE], SUBJECT, MESSAGE)
        broadcast_id = published[0][1][0]
        fan_out_profiler = cProfile.Profile()
        with CaptureQueriesContext(connection) as fan_out_queries:
            started, cpu_started = time.perf_counter(), time.process_time()
            fan_out_profiler.enable()
            fan_out_result = fan_out(broadcast_id)
            fan_out_profiler.disable()
            fan_out_seconds, fan_out_cpu = time.perf_counter() - started, time.process_time() - cpu_started
        chunks = [args[0] for name, args in published if name.endswith(".send_notification_email_task")]
        ctx.sink.reset(sample=False)

        with CaptureQueriesContext(connection) as send_queries:
            delivery.deliver_emails(chunks[0])
        # Alternate the whole send task and the stage-by-stage run, so both see the same
        # conditions on a machine that may be shared.
        timings, breakdowns = [], []
        for index, chunk in enumerate(chunks[1:5]):
            if index % 2:
                breakdowns.append(stage_breakdown(chunk))
                continue
            started, cpu_started = time.perf_counter(), time.process_time()
            delivery.deliver_emails(chunk)
            timings.append((len(chunk), time.perf_counter() - started, time.process_time() - cpu_started))
        breakdown = {
            stage: {key: sum(b[stage][key] for b in breakdowns) / len(breakdowns) for key in costs}
            for stage, costs in breakdowns[0].items()
        } if breakdowns else None
        profiler = cProfile.Profile()
        profile_chunk = chunks[5] if len(chunks) > 5 else chunks[-1]
        profiler.enable()
        delivery.deliver_emails(profile_chunk)
        profiler.disable()
    finally:
        Task.apply_async = original

    profile_path = out_dir / f"profile-deliver_emails-{ctx.recipients}.pstats"
    profiler.dump_stats(str(profile_path))
    stats = pstats.Stats(profiler)
    whole, _ = _cumulative(stats, "django_async_email/delivery/pipeline.py", "deliver_emails")
    stages = []
    for label, suffix, function in STAGES:
        seconds, calls = _cumulative(stats, suffix, function)
        stages.append({"stage": label, "seconds": seconds, "calls": calls,
                       "percent": 100 * seconds / whole if whole else None})
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(25)
    (out_dir / f"profile-deliver_emails-{ctx.recipients}.txt").write_text(text.getvalue())

    text = io.StringIO()
    pstats.Stats(fan_out_profiler, stream=text).sort_stats("tottime").print_stats(25)
    (out_dir / f"profile-fan_out-{ctx.recipients}.txt").write_text(text.getvalue())

    fan_out_sql = [q["sql"] for q in fan_out_queries.captured_queries if _is_statement(q["sql"])]
    send_sql = [q["sql"] for q in send_queries.captured_queries if _is_statement(q["sql"])]
    rows = sum(n for n, _, _ in timings)
    seconds = sum(s for _, s, _ in timings)
    cpu_seconds = sum(c for _, _, c in timings)
    reset_state(ctx)
    return {
        "chunk_size": len(chunks[0]),
        "fan_out": {
            "recipients": fan_out_result["recipients"], "chunks": fan_out_result["chunks"],
            "seconds": fan_out_seconds, "cpu_seconds_under_profiler": fan_out_cpu, "queries": len(fan_out_sql),
            "queries_per_chunk": len(fan_out_sql) / max(fan_out_result["chunks"], 1),
            "sql_first_chunk": [sql[:160] for sql in fan_out_sql[:8]],
        },
        "send_task": {"queries": len(send_sql), "sql": [sql[:160] for sql in send_sql]},
        "send_task_ms_per_message": 1000 * seconds / rows if rows else None,
        "send_task_cpu_ms_per_message": 1000 * cpu_seconds / rows if rows else None,
        "stage_breakdown": breakdown,
        "profile": {"clock": "perf_counter (wall)", "rows": len(profile_chunk), "seconds": whole,
                    "stages": stages, "pstats": str(profile_path)},
    }
