"""Rate limits with atomic cache counters (``add`` then ``incr``), not read-then-write.

DRF's ``SimpleRateThrottle`` reads a history list and writes it back, so parallel
requests can all pass; here each request is one atomic increment of a fixed-window
counter, so twenty parallel requests cannot exceed a limit of five.
"""

from __future__ import annotations

import time

from django.core.cache import caches
from rest_framework.settings import api_settings as drf_settings
from rest_framework.throttling import BaseThrottle

from ..accounts.tokens import digest
from ..conf import app_settings

PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    count, _, period = rate.partition("/")
    return int(count), PERIODS[period]


def hit(scope: str, ident: str, *, now: float | None = None) -> float | None:
    """Count one request; ``None`` if allowed, else seconds until the window ends."""
    rate = app_settings.THROTTLE_RATES.get(scope)
    if not app_settings.THROTTLE_ENABLED or rate is None:
        return None
    limit, period = parse_rate(rate)
    now = time.time() if now is None else now
    window = int(now // period)
    # Hash the identity: keys stay short and no address is stored in the cache in clear.
    key = f"django_async_email:throttle:{scope}:{digest(ident)[:32]}:{window}"
    cache = caches[app_settings.THROTTLE_CACHE]
    cache.add(key, 0, timeout=period + 1)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=period + 1)
        count = 1
    if count > limit:
        return max((window + 1) * period - now, 1.0)
    return None


class ScopedThrottle(BaseThrottle):
    """Throttle by one scope from ``ASYNC_EMAIL['THROTTLE_RATES']``; ``ident_for`` picks who is counted."""

    scope = ""

    def ident_for(self, request, view) -> str | None:
        raise NotImplementedError

    def allow_request(self, request, view):
        ident = self.ident_for(request, view)
        if ident is None:
            return True
        self._wait = hit(self.scope, ident)
        return self._wait is None

    def wait(self):
        return self._wait


def trusted_proxies() -> int:
    """How many proxies in front of the site append to X-Forwarded-For."""
    if app_settings.NUM_PROXIES is not None:
        return app_settings.NUM_PROXIES
    return drf_settings.NUM_PROXIES or 0


def client_address(request) -> str:
    """The client's address as the host's proxies define it.

    Unlike DRF's ``get_ident`` with ``NUM_PROXIES`` unset, X-Forwarded-For is not trusted
    unless proxies are configured: a client sets that header to whatever it likes, so
    each made-up value would get a limit of its own. With ``n`` proxies, the ``n``-th
    address from the right is the client (each proxy appends the address it saw).
    """
    remote = request.META.get("REMOTE_ADDR", "") or ""
    proxies = trusted_proxies()
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if not proxies or not forwarded:
        return remote
    addresses = [address.strip() for address in forwarded.split(",")]
    return addresses[-min(proxies, len(addresses))]


class PerIPThrottle(ScopedThrottle):
    def ident_for(self, request, view):
        return client_address(request)


class PerUserThrottle(ScopedThrottle):
    def ident_for(self, request, view):
        user = getattr(request, "user", None)
        return f"user:{user.pk}" if user is not None and user.is_authenticated else client_address(request)


class PerAddressThrottle(ScopedThrottle):
    """Counts requests per target address (normalised), whoever sends them."""

    field = "email"

    def ident_for(self, request, view):
        value = request.data.get(self.field) if hasattr(request.data, "get") else None
        return value.strip().casefold() if isinstance(value, str) and value.strip() else None


def throttle(base, scope_name):
    return type(f"{base.__name__}_{scope_name}", (base,), {"scope": scope_name})
