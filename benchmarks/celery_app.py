"""The benchmark host's Celery app, wired as a host wires its own, plus two measuring hooks.

- When the worker is ready it writes ``BENCH_RUN_DIR/worker-ready`` (the worker logs at
  WARNING, so there is no "ready." line to wait for), naming where it imported the package from.
- Each task's database queries are counted with ``connection.execute_wrapper`` in the
  process that runs it, and written per process to ``BENCH_RUN_DIR/tasks/<pid>.json``
  (tasks, queries, seconds per task name). DEBUG stays off, so nothing else changes.
"""

import json
import os
import time
from pathlib import Path

from celery import Celery
from celery.signals import task_postrun, task_prerun, worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")

app = Celery("benchmarks")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

_stats: dict[str, dict[str, float]] = {}
_current: dict[str, object] = {}


def _run_dir() -> Path:
    from django.conf import settings

    return Path(settings.RUN_DIR)


@worker_ready.connect
def _mark_ready(**kwargs):
    import django_async_email

    (_run_dir() / "worker-ready").write_text(str(Path(django_async_email.__file__).parent))


def _count_query(execute, sql, params, many, context):
    _current["queries"] = _current.get("queries", 0) + 1
    return execute(sql, params, many, context)


@task_prerun.connect
def _start_counting(task=None, **kwargs):
    from django.db import connection

    _current.clear()
    _current.update(queries=0, started=time.perf_counter())
    connection.execute_wrappers.append(_count_query)


@task_postrun.connect
def _stop_counting(task=None, **kwargs):
    from django.db import connection

    if _count_query in connection.execute_wrappers:
        connection.execute_wrappers.remove(_count_query)
    stats = _stats.setdefault(task.name, {"tasks": 0, "queries": 0, "seconds": 0.0, "max_queries": 0})
    queries = int(_current.get("queries", 0))
    stats["tasks"] += 1
    stats["queries"] += queries
    stats["max_queries"] = max(stats["max_queries"], queries)
    stats["seconds"] += time.perf_counter() - float(_current.get("started", time.perf_counter()))
    folder = _run_dir() / "tasks"
    folder.mkdir(exist_ok=True)
    (folder / f"{os.getpid()}.json").write_text(json.dumps(_stats))


@app.task(name="bench.noop")
def noop():
    """Published before a worker starts, to warm the publisher's broker connection."""
