import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from tests.celery_app import app as celery_app  # noqa: F401  (the host wires its app like this)
from tests.smtp_server import RecordingSMTPServer

ROOT = Path(__file__).resolve().parent.parent


def pytest_ignore_collect(collection_path, config):
    # tests/zamio is another host, with its own user model: it runs with its own settings
    # (the "adopter" stage of scripts/test.sh), never inside this project's.
    if "zamio" in collection_path.parts and settings.SETTINGS_MODULE != "tests.zamio.settings":
        return True
    return None


def pytest_collection_modifyitems(config, items):
    if not settings.CUSTOM_USER:
        # Tests of user types, languages and a host verified flag need the custom user model.
        deselected = [i for i in items if i.get_closest_marker("custom_user")]
        if deselected:
            config.hook.pytest_deselected(items=deselected)
            items[:] = [i for i in items if not i.get_closest_marker("custom_user")]


@pytest.fixture
def make_user(django_user_model):
    counter = {"n": 0}

    def make(email=None, password="correct horse battery", **fields):
        counter["n"] += 1
        n = counter["n"]
        email = email if email is not None else f"user{n}@example.com"
        if not settings.CUSTOM_USER:
            for key in ("user_type", "language", "email_verified"):
                fields.pop(key, None)
        return django_user_model.objects.create_user(
            username=fields.pop("username", f"user{n}"), email=email, password=password, **fields
        )

    return make


@pytest.fixture(scope="session")
def smtp_server():
    server = RecordingSMTPServer().start()
    yield server
    server.stop()


@pytest.fixture
def smtp(smtp_server):
    smtp_server.reset()
    yield smtp_server
    smtp_server.reset()


class WorkerProcess:
    def __init__(self, env, log_path: Path, queues="high,normal,low"):
        self.env = env
        self.log_path = log_path
        self.queues = queues
        self.proc = None

    def start(self, timeout=60):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tests.celery_app", "worker", "-Q", self.queues,
             "-P", "solo", "-c", "1", "--without-gossip", "--without-mingle", "--without-heartbeat",
             "-l", "info", "-n", f"tests-{os.getpid()}-{time.monotonic_ns()}@%h"],
            cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        start_size = self.log_path.stat().st_size if self.log_path.exists() else 0
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Celery worker exited early:\n{self.log_path.read_text()[-4000:]}")
            if b" ready." in self.log_path.read_bytes()[start_size:]:
                return self
            time.sleep(0.1)
        raise RuntimeError(f"Celery worker did not start:\n{self.log_path.read_text()[-4000:]}")

    def stop(self, sig=None):
        if self.proc and self.proc.poll() is None:
            if sig is None:
                self.proc.terminate()
            else:
                self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture(scope="session")
def worker_env(django_db_setup, smtp_server):
    from django.db import connection

    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE=settings.SETTINGS_MODULE,  # the worker runs the same host as the tests
        ASYNC_EMAIL_TEST_DB_NAME=str(connection.settings_dict["NAME"]),
        ASYNC_EMAIL_TEST_EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        ASYNC_EMAIL_TEST_SMTP_PORT=str(smtp_server.port),
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
    )
    return env


@pytest.fixture(scope="session")
def celery_worker(worker_env):
    """A real ``celery worker`` process consuming high, normal and low on the test broker."""
    worker = WorkerProcess(worker_env, Path(settings.RUN_DIR) / "worker.log").start()
    yield worker
    worker.stop()


@pytest.fixture
def wait_for():
    def wait(predicate, timeout=30, interval=0.1, message="condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(interval)
        raise AssertionError(f"Timed out after {timeout}s waiting for {message}")

    return wait


class Published(list):
    """Tasks published through ``apply_async`` in unit tests: (task name, args, options)."""

    def names(self):
        return [name for name, _args, _options in self]


@pytest.fixture
def published(monkeypatch):
    """Record publishes instead of sending them to a broker (unit tests only)."""
    from celery.app.task import Task

    calls = Published()

    def record(self, args=None, kwargs=None, **options):
        calls.append((self.name, args, options))

    monkeypatch.setattr(Task, "apply_async", record)
    return calls


@pytest.fixture
def email_backend(settings):
    """Choose the email backend the way this Django version configures it (MAILERS on 6.1+)."""

    def use(path, **smtp_options):
        if settings.USE_MAILERS:
            options = {"timeout": 5, **smtp_options} if smtp_options or path.endswith("smtp.EmailBackend") else {}
            settings.MAILERS = {"default": {"BACKEND": path, "OPTIONS": options}}
        else:
            settings.EMAIL_BACKEND = path
            if "host" in smtp_options:
                settings.EMAIL_HOST = smtp_options["host"]
            if "port" in smtp_options:
                settings.EMAIL_PORT = smtp_options["port"]

    return use


@pytest.fixture
def smtp_backend(email_backend, smtp):
    """Send through Django's SMTP backend to the in-process aiosmtpd server."""
    email_backend("django.core.mail.backends.smtp.EmailBackend", host=smtp.host, port=smtp.port)
    return smtp


@pytest.fixture
def isolated_worker(worker_env, settings, tmp_path):
    """Start workers of this test's own (on queues nobody else consumes), with env overrides.

    Returns ``start(**env)``; the test's settings publish to the same queues.
    """
    prefix = f"t{os.getpid()}-{time.monotonic_ns()}-"
    settings.ASYNC_EMAIL = {**settings.ASYNC_EMAIL,
                            "QUEUES": {c: f"{prefix}{c}" for c in ("high", "normal", "low")}}
    started = []

    def start(**env):
        full_env = {**worker_env, "ASYNC_EMAIL_TEST_QUEUE_PREFIX": prefix, **{k: str(v) for k, v in env.items()}}
        queues = ",".join(f"{prefix}{c}" for c in ("high", "normal", "low"))
        worker = WorkerProcess(full_env, tmp_path / f"worker-{len(started)}.log", queues=queues).start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


RELIABILITY_RESULTS = []


@pytest.fixture
def reliability(request):
    """Record a fault scenario's outcome for docs/reliability.md (see scripts/reliability_report.py)."""

    def record(scenario, expected, delivered, duplicated, lost, note="", recovery_s=None):
        RELIABILITY_RESULTS.append({
            "scenario": scenario, "expected": expected, "delivered": delivered, "duplicated": duplicated,
            "lost": lost, "note": note, "test": request.node.name,
            "recovery_s": None if recovery_s is None else round(recovery_s, 1),
        })

    return record


def pytest_sessionfinish(session, exitstatus):
    if not RELIABILITY_RESULTS:
        return
    import json

    out = ROOT / "test-artifacts"
    out.mkdir(exist_ok=True)
    broker = os.environ.get("ASYNC_EMAIL_TEST_BROKER", "filesystem")
    database = os.environ.get("ASYNC_EMAIL_TEST_DB", "sqlite")
    if not settings.CUSTOM_USER:
        database += "-auth-user"  # the stock-user run must not overwrite the main run's results
    (out / f"reliability-{broker}-{database}.json").write_text(json.dumps(
        {"broker": broker, "database": database, "results": RELIABILITY_RESULTS}, indent=2))
