"""The README's one-command demo (``example_project/demo.py``) runs end to end, twice.

It runs as a subprocess with this interpreter (``--no-venv``) and everything it writes in a
temporary folder (``--var-dir``): its own SQLite database, filesystem broker, Celery worker
and file-based email backend, so the repository's ``example_project/var/`` is untouched.
"""

import email
import os
import re
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "example_project" / "demo.py"
ARTISTS = 200
OTHERS = {"station": 5, "publisher": 5, "admin": 2}
#: Environment variables that would switch the example project away from its embedded setup.
SERVICE_VARIABLES = ("DJANGO_SETTINGS_MODULE", "CELERY_BROKER_URL", "EMAIL_HOST", "EXAMPLE_DB", "EXAMPLE_VAR_DIR")


def run_demo(var_dir: Path, timeout: float = 80) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARIABLES}
    proc = subprocess.Popen(
        [sys.executable, str(DEMO), "--no-venv", "--var-dir", str(var_dir), "--timeout", "60"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # SIGTERM, not SIGKILL: the demo then stops the worker it started.
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
        pytest.fail(f"The demo did not finish within {timeout}s:\n{output}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, output)


def sent_messages(folder: Path) -> list[email.message.Message]:
    """Every message Django's file-based backend wrote (one file per connection)."""
    messages = []
    for path in sorted(folder.glob("*.log")):
        for chunk in path.read_text().split("-" * 79 + "\n"):
            if chunk.strip():
                messages.append(email.message_from_string(chunk))
    return messages


def recipients_of(messages, subject: str) -> Counter:
    return Counter(m["To"] for m in messages if m["Subject"] == subject)


def assert_summary(output: str) -> None:
    assert "All emails sent." in output, output
    for label, queue, count in [
        ("verification", "high", 1), ("password reset", "high", 1), ("invitation", "normal", 1),
        ("welcome", "normal", 1), (r"notification \(Stations\)", "normal", 5), ("bulk to all Artists", "low", ARTISTS),
    ]:
        # kind, queue, queued, sent, failed, seconds
        row = rf"^\s+{label}\s+{queue}\s+{count}\s+{count}\s+0\s+\d+\.\d\d$"
        assert re.search(row, output, re.MULTILINE), (label, output)


def test_demo_delivers_one_message_per_recipient_and_runs_again(tmp_path):
    first = run_demo(tmp_path)
    assert first.returncode == 0, first.stdout
    assert_summary(first.stdout)
    assert f"{ARTISTS} Artists, 5 Stations, 5 Publishers, 2 Admins ({ARTISTS + 12} new)" in first.stdout
    assert f"Emails were written to {tmp_path / 'sent_emails'}" in first.stdout
    assert "Stopped the Celery worker" in first.stdout

    messages = sent_messages(tmp_path / "sent_emails")
    assert len(messages) == ARTISTS + 5 + 4
    assert len({m["Message-ID"] for m in messages}) == len(messages)
    artists = {f"artist{n:03d}@example.com" for n in range(1, ARTISTS + 1)}
    assert recipients_of(messages, "New Royalty Features") == Counter(artists)  # each Artist once
    stations = {f"station{n:03d}@example.com" for n in range(1, 6)}
    assert recipients_of(messages, "Your monthly airplay report is ready") == Counter(stations)
    # The first unverified Artist gets the account emails; an Admin invites a new Publisher.
    assert recipients_of(messages, "Confirm your email address for ZamIO") == {"artist001@example.com": 1}
    assert recipients_of(messages, "Reset your password on ZamIO") == {"artist001@example.com": 1}
    assert recipients_of(messages, "Welcome to ZamIO") == {"publisher001@example.com": 1}
    assert recipients_of(messages, "You are invited to join ZamIO") == {"new.publisher@example.com": 1}

    # A second run reuses the users and delivers a new set of emails.
    second = run_demo(tmp_path)
    assert second.returncode == 0, second.stdout
    assert_summary(second.stdout)
    assert "(0 new)" in second.stdout
    messages = sent_messages(tmp_path / "sent_emails")
    assert len(messages) == 2 * (ARTISTS + 5 + 4)
    assert recipients_of(messages, "New Royalty Features") == Counter(dict.fromkeys(artists, 2))
