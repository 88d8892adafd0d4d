"""Shared by the commands: wait for outbox rows or a broadcast, drawing a progress bar."""

from __future__ import annotations

import time

from django_async_email.email_utils import broadcast_progress
from django_async_email.models import FINAL_STATUSES, Broadcast, OutboxEmail


def bar(done: int, total: int, width: int = 30) -> str:
    total = max(total, 1)
    filled = int(width * min(done, total) / total)
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total}"


def wait_for_rows(task_id: str, timeout: float, poll: float = 0.2) -> list[OutboxEmail]:
    deadline = time.monotonic() + timeout
    while True:
        rows = list(OutboxEmail.objects.filter(task_id=task_id))
        if rows and all(r.status in FINAL_STATUSES for r in rows):
            return rows
        if time.monotonic() > deadline:
            return rows
        time.sleep(poll)


def follow_broadcast(task_id: str, write, timeout: float, poll: float = 0.3) -> dict:
    """Redraw a progress bar until the broadcast is finished (or ``timeout``); return its progress."""
    deadline = time.monotonic() + timeout
    while True:
        progress = broadcast_progress(task_id)
        done = progress["sent"] + progress["failed"] + progress["cancelled"]
        total = progress["total"] or 0
        write(f"\r{bar(done, total)} sent {progress['sent']}, failed {progress['failed']}", ending="")
        finished = progress["state"] in Broadcast.FINISHED_STATES
        if finished or time.monotonic() > deadline:
            write("")
            return progress
        time.sleep(poll)
