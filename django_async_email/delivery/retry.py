"""The retry policy: how long a transient failure waits before it is tried again."""

from __future__ import annotations

import random

from ..conf import app_settings


def retry_countdown(attempt: int, *, rng=random.random) -> float:
    """Exponential backoff: ``base * 2**(attempt-1)`` times a jitter factor in [1, 1.5), capped
    at ``RETRY_BACKOFF_MAX``.

    The jitter spreads retries of many rows apart; it is multiplicative and below 2, so
    each delay is still longer than the one before (until the cap).
    """
    delay = app_settings.RETRY_BACKOFF * (2 ** max(attempt - 1, 0))
    if app_settings.RETRY_JITTER:
        delay *= 1 + rng() / 2
    return min(delay, app_settings.RETRY_BACKOFF_MAX)


def gives_up(attempts: int) -> bool:
    """Whether a row that has been claimed ``attempts`` times has used up its retries."""
    return attempts > app_settings.MAX_RETRIES
