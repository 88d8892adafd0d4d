#!/usr/bin/env python
"""Bulk notification benchmark: this package against the usual ways of sending, side by side.

    python benchmarks/run.py --recipients 10000
    python benchmarks/run.py --recipients 100000 --scenarios limit,async-email
    python benchmarks/run.py --scenarios limit-2,async-email --latency-ms 10 --sink-pipelining
    python benchmarks/run.py --recipients 100000 --scenarios "" --request-path 20

It creates a throwaway database (PostgreSQL on 127.0.0.1:5432, or SQLite with ``--local``),
seeds N users of type Artist, starts an SMTP sink in its own process, and for each
scenario starts one real ``celery worker`` (same pool and concurrency for all) on Redis
(or the filesystem broker with ``--local``). It measures end-to-end seconds from the
first publish until the sink has counted N messages, messages per second, SMTP
connections, worker peak RSS, worker CPU and database queries per chunk, writes JSON to
``benchmarks/results/`` and prints a markdown table. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
RUN_DIR = RESULTS / "run"
DB_NAME = "async_email_bench"
REDIS_URL = "redis://127.0.0.1:6379/12"
SEED_BATCH = 5000
#: one user of another type per this many Artists, so the audience query has to filter
OTHER_TYPE_EVERY = 20


def parse_args(argv=None):
    from benchmarks.scenarios import SCENARIOS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipients", type=int, default=10_000, help="users of type Artist to seed and notify")
    parser.add_argument(
        "--scenarios", default=",".join(SCENARIOS),
        help=f"comma-separated, in order (default: all): {', '.join(SCENARIOS)}",
    )
    parser.add_argument("--local", action="store_true", help="SQLite and the filesystem broker: no servers needed")
    parser.add_argument("--pool", default="prefork", help="celery worker pool for every scenario (default prefork)")
    parser.add_argument("--concurrency", type=int, default=2, help="celery worker concurrency (default 2)")
    parser.add_argument("--timeout", type=float, default=None, help="seconds to wait per scenario (default: N/20 + 60)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds over all scenarios; the table shows each scenario's median run (default 1)")
    parser.add_argument("--quiet-wait", type=float, default=30.0,
                        help="before each run, wait up to this many seconds for the machine to be idle (0: don't)")
    parser.add_argument(
        "--package-ref", default=None,
        help="benchmark the package as committed at this git ref (e.g. HEAD) instead of the working tree",
    )
    parser.add_argument("--record-every", type=int, default=None,
                        help="this package's RECORD_EVERY for the run (default: the package's own)")
    parser.add_argument("--no-probe", action="store_true", help="skip the in-process query count and profile")
    parser.add_argument("--py-spy", action="store_true", help="record each scenario's worker with py-spy (raw stacks)")
    parser.add_argument(
        "--latency-ms", type=float, default=0.0,
        help="put a TCP proxy in front of the sink that holds every chunk this many ms in each direction "
             "(10: a 20 ms round trip), for every scenario of the run; 0 (default): no proxy",
    )
    parser.add_argument("--sink-pipelining", action="store_true",
                        help="the sink advertises PIPELINING (RFC 2920) in its EHLO reply")
    parser.add_argument(
        "--smtp-connections", type=int, default=None,
        help="this package's ASYNC_EMAIL['SMTP_CONNECTIONS'] for the run (default: not set, the package's own; "
             "a package version without the setting refuses it)",
    )
    parser.add_argument(
        "--request-path", type=int, default=0, metavar="CALLS",
        help="after the scenarios, time CALLS calls (after 3 warm-up calls) of send_notification_to_user_types "
             "to all N recipients, each in a committed transaction, with no worker consuming; 0 (default): don't",
    )
    parser.add_argument("--results-dir", default=None,
                        help="where results, samples, profiles and snapshots go (default: benchmarks/results/)")
    args = parser.parse_args(argv)
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = [s for s in args.scenarios if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}")
    return args


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def git(*args: str) -> str | None:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def package_snapshot(ref: str) -> tuple[str, Path]:
    """``git archive`` of the package at ``ref`` under results/, so edits in progress are not measured."""
    sha = subprocess.run(
        ["git", "rev-parse", "--verify", f"{ref}^{{commit}}"], cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.strip()
    folder = RESULTS / f"package-{sha[:12]}"
    if not (folder / "django_async_email" / "__init__.py").exists():
        folder.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "archive", sha, "django_async_email"], cwd=ROOT, capture_output=True, check=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return sha, folder


def create_postgres_database() -> None:
    import psycopg

    with psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')


def seed_users(recipients: int) -> dict:
    """N Artists (plus a few users of another type), unusable passwords, one bulk INSERT per batch."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    user_model = get_user_model()
    started = time.perf_counter()
    others = recipients // OTHER_TYPE_EVERY
    batch = []
    for n in range(1, recipients + others + 1):
        is_artist = n <= recipients
        name = f"artist{n:06d}" if is_artist else f"station{n:06d}"
        batch.append(user_model(
            username=name, email=f"{name}@bench.test", password="!unusable",
            user_type="Artist" if is_artist else "Station", first_name=name.title(),
        ))
        if len(batch) >= SEED_BATCH:
            user_model.objects.bulk_create(batch)
            batch = []
    if batch:
        user_model.objects.bulk_create(batch)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return {"artists": recipients, "other_users": others, "seconds": time.perf_counter() - started}


def create_post_office_template() -> None:
    from django.template.loader import get_template
    from post_office.models import EmailTemplate

    from benchmarks.benchapp.tasks import POST_OFFICE_TEMPLATE

    def source(name):
        return Path(get_template(name).origin.name).read_text()

    EmailTemplate.objects.update_or_create(
        name=POST_OFFICE_TEMPLATE, language="",
        defaults={"subject": "{{ subject }}", "content": source("bench/notification.txt"),
                  "html_content": source("bench/notification.html")},
    )


def machine_info(args, package: dict) -> dict:
    import celery
    import django
    import psutil

    cpu_model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break

    def version(dist):
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as v

        try:
            return v(dist)
        except PackageNotFoundError:
            return None

    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT version()" if connection.vendor == "postgresql" else "SELECT sqlite_version()")
        db_version = cursor.fetchone()[0]
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "django": django.get_version(),
        "celery": celery.__version__,
        "kombu": version("kombu"),
        "django-celery-email": version("django-celery-email"),
        "django-post-office": version("django-post_office") or version("django-post-office"),
        "django-templated-mail": version("django-templated-mail"),
        "aiosmtpd": version("aiosmtpd"),
        "redis-py": version("redis"),
        "psycopg": version("psycopg"),
        "database": db_version,
        "broker": "filesystem" if args.local else REDIS_URL,
        "git_head": git("rev-parse", "--short", "HEAD"),
        "package": package,
    }


# --- the table ----------------------------------------------------------------------------------

def _fmt(value, spec=",.0f", missing="—"):
    return missing if value is None else format(value, spec)


def median_run(runs: list[dict]) -> dict | None:
    """The run with the median throughput (the lower one of the middle two)."""
    good = [r for r in runs if "error" not in r and r.get("per_second")]
    if not good:
        return None
    good.sort(key=lambda r: r["per_second"])
    return good[(len(good) - 1) // 2]


def cpu_seconds_of(r: dict) -> float | None:
    """The senders' CPU: the worker's, ``limit-2``'s two processes', or the measuring process's."""
    for key in ("worker_cpu_seconds", "sender_cpu_seconds", "driver_cpu_seconds"):
        if r.get(key) is not None:
            return r[key]
    return None


def latency_limit(r: dict, rtt: float) -> float | None:
    """Messages/s the connections used allow at round trip ``rtt``: connections / (round trips per message × rtt)."""
    if not rtt or not r.get("round_trips_per_message"):
        return None
    return r["peak_connections"] / (r["round_trips_per_message"] * rtt)


def markdown_table(recipients: int, chosen: dict, runs: dict, labels: dict, *, rtt: float = 0.0) -> str:
    limit = (chosen.get("limit") or {}).get("per_second")
    limit2 = chosen.get("limit-2") or {}
    raw_cpu = cpu_seconds_of(limit2) / limit2["messages"] if limit2.get("messages") else None
    lines = [
        f"Recipients: {recipients:,}" + (f"; round trip {1000 * rtt:.0f} ms (latency proxy)" if rtt else "; loopback"),
        "",
        (
            "| Scenario | End-to-end s | Messages/s | Runs: min–max msg/s | % of limit | % of limit-2 "
            "| SMTP connections (at once) | Round trips per msg | Latency limit msg/s | % of latency limit "
            "| Worker peak RSS MiB | Worker CPU ms/msg | CPU ÷ raw smtplib's | Sink CPU ms/msg "
            "| DB queries per chunk (chunk) | DB queries per 1k msgs | Request path ms | Other load % |"
        ),
        "|---|" + "---:|" * 17,
    ]
    for name, r in chosen.items():
        if r is None:
            errors = "; ".join(sorted({x.get("error", "incomplete") for x in runs[name]}))
            lines.append(f"| {labels[name]} | failed: {errors} |" + " |" * 16)
            continue
        n = r["messages"] or 1
        cpu = cpu_seconds_of(r)
        cpu_per_message = cpu / n if cpu is not None else None
        speeds = [x["per_second"] for x in runs[name] if x.get("per_second")]
        spread = f"{len(speeds)}: {min(speeds):,.0f}–{max(speeds):,.0f}" if len(speeds) > 1 else "1"
        chunk = (
            f"{r['queries_per_chunk']:.1f} ({r['chunk_size']})" if r.get("queries_per_chunk") is not None else "—"
        )
        complete = "" if r.get("complete", True) else " (incomplete)"
        ceiling = latency_limit(r, rtt)
        ratio = cpu_per_message / raw_cpu if raw_cpu and cpu_per_message and "worker_cpu_seconds" in r else None
        lines.append(
            f"| {labels[name]}{complete} | {_fmt(r['seconds'], '.2f')} | {_fmt(r['per_second'])} | {spread} "
            f"| {_fmt(100 * r['per_second'] / limit if limit and r['per_second'] else None, '.0f')} "
            f"| {_fmt(100 * r['per_second'] / limit2['per_second'] if limit2.get('per_second') else None, '.0f')} "
            f"| {r['connections']:,} ({r.get('peak_connections', '—')}) "
            f"| {_fmt(r.get('round_trips_per_message'), '.2f')} | {_fmt(ceiling, ',.1f')} "
            f"| {_fmt(100 * r['per_second'] / ceiling if ceiling and r['per_second'] else None, '.0f')} "
            f"| {_fmt(r.get('worker_peak_rss_mib'), '.0f')} "
            f"| {_fmt(1000 * cpu_per_message if cpu_per_message is not None else None, '.2f')} "
            f"| {_fmt(ratio, '.2f')} "
            f"| {_fmt(1000 * r['sink_cpu_seconds'] / n, '.2f')} | {chunk} "
            f"| {_fmt(r.get('queries_per_1000'), '.1f')} | {_fmt(r.get('request_ms'), '.1f')} "
            f"| {_fmt(r['load']['other_percent'], '.0f')} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    global RESULTS, RUN_DIR
    sys.path.insert(0, str(ROOT))
    args = parse_args(argv)
    if args.results_dir:
        RESULTS = Path(args.results_dir).resolve()
        RUN_DIR = RESULTS / "run"
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    sink_port = free_port()
    proxy_port = free_port() if args.latency_ms > 0 else None
    #: where every sender connects: the proxy when there is one, else the sink
    smtp_port = proxy_port or sink_port
    env = {
        "BENCH_ROOT": str(ROOT),
        "BENCH_RUN_DIR": str(RUN_DIR),
        "BENCH_DB": "sqlite" if args.local else "postgres",
        "BENCH_DB_NAME": DB_NAME,
        "BENCH_BROKER": "filesystem" if args.local else "redis",
        "BENCH_REDIS_URL": REDIS_URL,
        "BENCH_SMTP_PORT": str(smtp_port),
        "DJANGO_SETTINGS_MODULE": "benchmarks.settings",
    }
    if args.record_every:
        env["BENCH_RECORD_EVERY"] = str(args.record_every)
    if args.smtp_connections:
        env["BENCH_SMTP_CONNECTIONS"] = str(args.smtp_connections)
    if args.package_ref:
        sha, folder = package_snapshot(args.package_ref)
        sys.path.insert(0, str(folder))
        env["BENCH_PACKAGE_DIR"] = str(folder)
        package = {"source": f"git archive of {args.package_ref}", "commit": sha}
    else:
        package = {
            "source": "working tree",
            "commit": git("rev-parse", "HEAD"),
            "uncommitted_changes": git("status", "--porcelain", "--", "django_async_email"),
        }
    os.environ.update(env)
    worker_base_env = dict(os.environ)

    if args.local:
        sqlite_file = RUN_DIR / "bench.sqlite3"
        if sqlite_file.exists():
            sqlite_file.unlink()
    else:
        create_postgres_database()

    import django

    django.setup()
    from django.core.management import call_command

    import benchmarks.celery_app  # noqa: F401  (binds the shared tasks to the benchmark's app)
    from benchmarks import scenarios
    from benchmarks.latency_proxy import LatencyProxy
    from benchmarks.sink import Sink

    call_command("migrate", verbosity=0)
    print(f"seeding {args.recipients:,} Artist users ...", flush=True)
    seed = seed_users(args.recipients)
    create_post_office_template()
    import django_async_email

    package["imported_from"] = str(Path(django_async_email.__file__).parent)
    machine = machine_info(args, package)
    command = "python benchmarks/run.py " + " ".join(argv if argv is not None else sys.argv[1:])

    sink = Sink(sink_port, RUN_DIR / "sample.eml", pipelining=args.sink_pipelining).start()
    proxy = LatencyProxy(proxy_port, sink_port, args.latency_ms).start() if proxy_port else None
    rtt = 2 * args.latency_ms / 1000
    # At a round trip of RTT, one connection sends at most 1 / (4 RTT) messages a second.
    timeout = args.timeout or args.recipients / 20 + 60 + args.recipients * 5 * rtt / max(args.concurrency, 1)
    ctx = scenarios.Context(
        recipients=args.recipients, sink=sink, run_dir=RUN_DIR, env=worker_base_env,
        broker="filesystem" if args.local else "redis", redis_url=REDIS_URL, pool=args.pool,
        concurrency=args.concurrency, timeout=timeout, py_spy=args.py_spy,
        quiet_wait=args.quiet_wait, proxy=proxy,
    )
    labels = {name: label for name, (label, _fn) in scenarios.SCENARIOS.items()}
    runs: dict[str, list[dict]] = {name: [] for name in args.scenarios}
    probe = request_path = None
    started_at = datetime.datetime.now(datetime.UTC)
    try:
        for round_number in range(1, args.repeat + 1):
            for name in args.scenarios:
                print(f"--- {name} (round {round_number}/{args.repeat}): {labels[name]}", flush=True)
                _label, scenario = scenarios.SCENARIOS[name]
                try:
                    r = scenario(ctx)
                except Exception as exc:  # noqa: BLE001  (one failed scenario must not lose the others' numbers)
                    import traceback

                    traceback.print_exc()
                    runs[name].append({"error": f"{type(exc).__name__}: {exc}"})
                    continue
                r["round"] = round_number
                runs[name].append(r)
                sample = RUN_DIR / "sample.eml"
                if sample.exists():
                    sample.replace(RESULTS / f"sample-{name}.eml")
                print(
                    f"    {r['messages']:,} messages in {r['seconds']:.2f}s = {r['per_second']:,.0f}/s, "
                    f"{r['connections']:,} connections ({r['peak_connections']} at once), "
                    f"{r['round_trips_per_message']:.2f} round trips per message, duplicates {r['duplicates']}, "
                    f"worker peak RSS {r.get('worker_peak_rss_mib', 0):.0f} MiB, "
                    f"other load {r['load']['other_percent']:.0f}% (waited {r['quiet_wait_seconds']:.0f}s for quiet)",
                    flush=True,
                )
                host = r.get("host_task")
                if host:
                    calls = host["send_messages_seconds"]
                    print(
                        f"    host task: {host['calls']} send_messages() call(s) of up to {host['call_size']:,}, "
                        f"{1000 * sum(calls) / max(host['messages'], 1):.3f} ms wall per message in them "
                        f"(longest call {1000 * max(calls):,.0f} ms); render "
                        f"{1000 * host['render_seconds'] / max(host['messages'], 1):.3f} ms per message; "
                        f"worker CPU by process (s): "
                        f"{', '.join(f'{c:.1f}' for c in r['worker_cpu_seconds_by_process'])}",
                        flush=True,
                    )
        if args.request_path:
            print(f"--- request path: {args.request_path} calls to {args.recipients:,} recipients", flush=True)
            request_path = scenarios.request_path_timing(ctx, calls=args.request_path)
            print(f"    median {request_path['median_ms']:.2f} ms, p90 {request_path['p90_ms']:.2f} ms, "
                  f"{request_path['queries_per_call']} queries per call", flush=True)
        if "async-email" in args.scenarios and not args.no_probe and args.recipients >= 3000:
            from benchmarks.probe import probe_async_email

            print("--- probe: queries and profile of this package's send task, in-process", flush=True)
            probe = probe_async_email(ctx, RESULTS)
    finally:
        if proxy is not None:
            proxy.stop()
        sink.stop()

    chosen = {name: median_run(name_runs) for name, name_runs in runs.items()}
    table = markdown_table(args.recipients, chosen, runs, labels, rtt=rtt)
    report = {
        "command": command,
        "started_at": started_at.isoformat(timespec="seconds"),
        "recipients": args.recipients,
        "worker": {"pool": args.pool, "concurrency": args.concurrency, "queues": "celery,high,normal,low",
                   "log_level": "warning"},
        "repeat": args.repeat,
        "record_every": args.record_every,
        "latency_ms": args.latency_ms,
        "round_trip_seconds": rtt,
        "sink_pipelining": args.sink_pipelining,
        "smtp_connections": args.smtp_connections,
        "timeout_seconds": timeout,
        "machine": machine,
        "seed": seed,
        "results": {name: r for name, r in chosen.items()},
        "runs": runs,
        "probe": probe,
        "request_path": request_path,
        "table": table,
    }
    out = RESULTS / f"run-{args.recipients}-{started_at.strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(report, indent=2, default=str))
    print()
    print(table)
    if request_path:
        print(f"\nrequest path at {args.recipients:,} recipients: median {request_path['median_ms']:.2f} ms, "
              f"p90 {request_path['p90_ms']:.2f} ms over {request_path['calls']} calls")
    if probe:
        print()
        print(f"probe: fan-out {probe['fan_out']['queries_per_chunk']:.1f} queries/chunk "
              f"({1000 * probe['fan_out']['seconds'] / max(probe['fan_out']['recipients'], 1):.3f} ms per recipient"
              " under cProfile), "
              f"send task {probe['send_task']['queries']} queries per {probe['chunk_size']}-row chunk, "
              f"{probe['send_task_ms_per_message']:.2f} ms wall and "
              f"{probe['send_task_cpu_ms_per_message']:.2f} ms CPU per message in-process; stage by stage:")
        for stage, cost in (probe["stage_breakdown"] or {}).items():
            print(f"    {stage:<72} {cost['wall_ms_per_message']:6.3f} ms wall "
                  f"{cost['cpu_ms_per_message']:6.3f} ms CPU per message")
    print(f"\nresults: {out}")
    return 0 if all(r is not None and r.get("complete") for r in chosen.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
