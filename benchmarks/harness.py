"""The measuring parts: a real ``celery worker`` subprocess, an RSS/CPU sampler, state resets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

QUEUES = "celery,high,normal,low"


class Worker:
    """One ``celery worker`` process (and its pool children) for one scenario."""

    def __init__(self, env: dict, log_path: Path, ready_path: Path, *, pool: str, concurrency: int, name: str):
        self.env, self.log_path, self.ready_path = env, log_path, ready_path
        self.pool, self.concurrency, self.name = pool, concurrency, name
        self.proc: subprocess.Popen | None = None
        self.package_dir = ""

    @property
    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "celery", "-A", "benchmarks.celery_app", "worker",
            "-P", self.pool, "-c", str(self.concurrency), "-Q", QUEUES,
            "--without-gossip", "--without-mingle", "--without-heartbeat",
            "-l", "warning", "-n", f"bench-{self.name}@%h",
        ]

    def start(self, timeout: float = 60) -> Worker:
        if self.ready_path.exists():
            self.ready_path.unlink()
        # Stays open for the worker's lifetime; closed in stop().
        self._log = open(self.log_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            self.command, cwd=self.env.get("BENCH_PACKAGE_DIR") or self.env["BENCH_ROOT"], env=self.env,
            stdout=self._log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"celery worker exited early:\n{self.log_path.read_text()[-4000:]}")
            if self.ready_path.exists() and self.ready_path.read_text():
                #: where the worker imported django_async_email from (a snapshot, or the working tree)
                self.package_dir = self.ready_path.read_text()
                return self
            time.sleep(0.05)
        raise RuntimeError(f"celery worker did not become ready:\n{self.log_path.read_text()[-4000:]}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self, timeout: float = 60) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            children = []
            try:
                children = psutil.Process(self.proc.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                pass
            self.proc.send_signal(signal.SIGTERM)  # warm shutdown: running tasks finish
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            for child in children:  # only the pool processes this worker started
                try:
                    child.kill()
                except psutil.NoSuchProcess:
                    pass
        self._log.close()


class ProcessSampler:
    """Samples RSS (summed over a process and its children) and CPU time in a thread."""

    def __init__(self, pid: int, interval: float = 0.05):
        self.root = psutil.Process(pid)
        self.interval = interval
        self.peak_rss = 0
        self.peak_single_rss = 0
        self.cpu_by_pid: dict[int, float] = {}
        #: CPU already spent when sampling started (start-up, imports): not the scenario's
        self.cpu_baseline: dict[int, float] = {}
        self._known: dict[int, psutil.Process] = {pid: self.root}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def start(self) -> ProcessSampler:
        self.sample()
        self.cpu_baseline = dict(self.cpu_by_pid)
        self._thread.start()
        return self

    def sample(self) -> None:
        with self._lock:
            self._sample()

    def _sample(self) -> None:
        try:
            for child in self.root.children(recursive=True):
                self._known.setdefault(child.pid, child)
        except psutil.NoSuchProcess:
            return
        total = 0
        for pid, proc in list(self._known.items()):
            try:
                with proc.oneshot():
                    rss = proc.memory_info().rss
                    times = proc.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += rss
            self.peak_single_rss = max(self.peak_single_rss, rss)
            self.cpu_by_pid[pid] = times.user + times.system
        self.peak_rss = max(self.peak_rss, total)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    @property
    def cpu_seconds(self) -> float:
        return sum(cpu - self.cpu_baseline.get(pid, 0.0) for pid, cpu in self.cpu_by_pid.items())


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def clear_broker(broker: str, redis_url: str, queue_dir: Path) -> None:
    """Drop every queued message (queue bindings stay, so a running publisher keeps working)."""
    if broker == "redis":
        import redis

        client = redis.Redis.from_url(redis_url)
        keys = [k for k in client.scan_iter("*") if not k.startswith(b"_kombu.binding.")]
        if keys:
            client.delete(*keys)
        client.close()
    else:
        for path in queue_dir.glob("*.msg"):
            path.unlink()


def reset_tables(models) -> None:
    """Empty the given models' tables (TRUNCATE on PostgreSQL) between scenarios."""
    from django.core.management.color import no_style
    from django.db import connection

    tables = [m._meta.db_table for m in models]
    for model in models:
        for field in model._meta.local_many_to_many:
            tables.append(field.remote_field.through._meta.db_table)
    statements = connection.ops.sql_flush(no_style(), tables, reset_sequences=False, allow_cascade=True)
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)


def read_task_stats(folder: Path) -> dict[str, dict]:
    """Per task name: tasks run, queries, seconds, summed over the worker's processes."""
    totals: dict[str, dict] = {}
    for path in folder.glob("*.json"):
        for name, stats in json.loads(path.read_text()).items():
            into = totals.setdefault(name, {"tasks": 0, "queries": 0, "seconds": 0.0, "max_queries": 0})
            into["tasks"] += stats["tasks"]
            into["queries"] += stats["queries"]
            into["seconds"] += stats["seconds"]
            into["max_queries"] = max(into["max_queries"], stats["max_queries"])
    return totals


def clear_folder(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for path in folder.iterdir():
        if path.is_file():
            path.unlink()


def worker_env(base: dict, **extra: str) -> dict:
    env = dict(base)
    env.update(extra)
    # A package snapshot (``--package-ref``) comes first, and is the worker's working directory,
    # so the working tree's copy of the package is not the one imported.
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [env.get("BENCH_PACKAGE_DIR"), env["BENCH_ROOT"], env.get("PYTHONPATH")])
    )
    return env


SERVICE_NAMES = ("postgres", "redis-server")


def _busy(times) -> float:
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def _service_cpu() -> dict[int, float]:
    cpu = {}
    for proc in psutil.process_iter(["name", "cpu_times"]):
        if proc.info["name"] in SERVICE_NAMES and proc.info["cpu_times"] is not None:
            cpu[proc.pid] = proc.info["cpu_times"].user + proc.info["cpu_times"].system
    return cpu


class LoadMeter:
    """How busy the machine was during a run, split into ours, the database/broker, and others.

    Others (for example another test suite on the same cores) slow a scenario down; a run
    where they took a noticeable share is flagged rather than silently compared.
    """

    def start(self) -> LoadMeter:
        self.started = time.monotonic()
        self.busy0 = _busy(psutil.cpu_times())
        self.services0 = _service_cpu()
        return self

    def stop(self, own_cpu_seconds: float) -> dict:
        wall = time.monotonic() - self.started
        busy = _busy(psutil.cpu_times()) - self.busy0
        services1 = _service_cpu()
        # A backend that started during the run (a worker's first database connection) counts
        # from zero; before, its CPU was counted as other load.
        services = sum(cpu - self.services0.get(pid, 0.0) for pid, cpu in services1.items())
        capacity = wall * (psutil.cpu_count() or 1)
        other = max(busy - own_cpu_seconds - services, 0.0)
        return {
            "wall_seconds": wall,
            "busy_percent": 100 * busy / capacity,
            "own_percent": 100 * own_cpu_seconds / capacity,
            "db_and_broker_percent": 100 * services / capacity,
            "other_percent": 100 * other / capacity,
        }


def wait_for_quiet(threshold_percent: float = 15.0, quiet_seconds: int = 3, max_wait: float = 180.0) -> float:
    """Wait until the machine has been nearly idle for a few seconds; returns the seconds waited."""
    started = time.monotonic()
    quiet = 0
    while time.monotonic() - started < max_wait:
        quiet = quiet + 1 if psutil.cpu_percent(interval=1.0) < threshold_percent else 0
        if quiet >= quiet_seconds:
            break
    return time.monotonic() - started
