"""Per-category rate limits (§11) with fixed one-minute windows kept in the cache.

DRF's own throttles keep a list of timestamps and write it back (read-modify-write),
which loses counts when several processes race. Here each window is one counter
changed with an atomic ``incr``, so Daphne processes sharing Redis share the limit.

A signed-in request is counted in the same Redis round trip that loads its user
(``accounts.tokens.session_user``): the view opens the request's window before
authenticating (``open_window``), the authenticator counts the token's user there, and
the throttle only settles the figures. Every other request is counted by the throttle.
"""

import contextlib
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

from vaani.common.exceptions import RateLimitExceeded


def client_identity(request) -> str:
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return f"ip:{request.META.get('REMOTE_ADDR', 'unknown')}"


@dataclass(frozen=True, slots=True)
class Window:
    """The current fixed window of a category: its limit and when it ends."""

    category: str
    limit: int
    seconds: int
    start: int
    now: float

    @classmethod
    def current(cls, category: str) -> "Window":
        seconds = settings.RATE_LIMIT_WINDOW_SECONDS
        now = time.time()
        start = int(now // seconds) * seconds
        return cls(category, settings.RATE_LIMITS[category], seconds, start, now)

    @property
    def reset_at(self) -> int:
        return self.start + self.seconds

    @property
    def timeout(self) -> int:
        """How long a window's counter lives in the cache."""
        return self.seconds + 5

    def key(self, identity: str) -> str:
        return f"ratelimit:{self.category}:{identity}:{self.start}"

    def count(self, identity: str) -> int:
        """Counts one request of ``identity`` (atomic in Redis and locmem)."""
        key = self.key(identity)
        try:
            return cache.incr(key)
        except ValueError:  # first request of the window: create the key with its expiry
            if cache.add(key, 1, timeout=self.timeout):
                return 1
            try:  # another request created it meanwhile
                return cache.incr(key)
            except ValueError:  # and it expired already
                cache.set(key, 1, timeout=self.timeout)
                return 1


def open_window(request, view) -> None:
    """Before authentication: the window the request will be counted in, if any, so the
    authenticator can count a signed-in user in the round trip that loads them."""
    category = getattr(view, "rate_limit_category", None)
    request.rate_window = Window.current(category) if category is not None else None
    request.rate_counted = None


def counted_early(request, identity: str, count: int) -> None:
    """The authenticator counted ``identity`` in the request's window already."""
    request.rate_counted = (identity, count)


class CategoryRateThrottle(BaseThrottle):
    """Counts the request against the view's ``rate_limit_category``.

    Views with no category (Twilio webhooks) are not limited. The figures for the
    ``X-RateLimit-*`` headers are left on the request for the base view to add.
    """

    def allow_request(self, request, view):
        category = getattr(view, "rate_limit_category", None)
        if category is None:
            return True
        window = getattr(request, "rate_window", None)
        if window is None or window.category != category:
            window = Window.current(category)
        identity = client_identity(request)
        counted = getattr(request, "rate_counted", None)
        if counted is not None and counted[0] == identity:
            count = counted[1]
        else:
            if counted is not None:  # counted for a user the session then refused: undo
                with contextlib.suppress(ValueError):
                    cache.decr(window.key(counted[0]))
            count = window.count(identity)
        request.rate_limit = {
            "limit": window.limit,
            "remaining": max(window.limit - count, 0),
            "reset": window.reset_at,
        }
        if count > window.limit:
            raise RateLimitExceeded(
                limit=window.limit,
                window_seconds=window.seconds,
                retry_after=max(int(window.reset_at - window.now), 1),
            )
        return True


def add_rate_limit_headers(request, response) -> None:
    figures = getattr(request, "rate_limit", None)
    if figures:
        response["X-RateLimit-Limit"] = str(figures["limit"])
        response["X-RateLimit-Remaining"] = str(figures["remaining"])
        response["X-RateLimit-Reset"] = str(figures["reset"])
