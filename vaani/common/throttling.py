"""Per-category rate limits (§11) with fixed one-minute windows kept in the cache.

DRF's own throttles keep a list of timestamps and write it back (read-modify-write),
which loses counts when several processes race. Here each window is one counter
changed with an atomic ``incr``, so Daphne processes sharing Redis share the limit.
"""

import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

from vaani.common.exceptions import RateLimitExceeded


def client_identity(request) -> str:
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return f"ip:{request.META.get('REMOTE_ADDR', 'unknown')}"


class CategoryRateThrottle(BaseThrottle):
    """Counts the request against the view's ``rate_limit_category``.

    Views with no category (Twilio webhooks) are not limited. The figures for the
    ``X-RateLimit-*`` headers are left on the request for the base view to add.
    """

    def allow_request(self, request, view):
        category = getattr(view, "rate_limit_category", None)
        if category is None:
            return True
        limit = settings.RATE_LIMITS[category]
        window = settings.RATE_LIMIT_WINDOW_SECONDS
        now = time.time()
        window_start = int(now // window) * window
        reset_at = window_start + window
        key = f"ratelimit:{category}:{client_identity(request)}:{window_start}"
        # incr() is atomic in Redis and locmem; one round trip once the window's key exists.
        try:
            count = cache.incr(key)
        except ValueError:  # first request of the window: create the key with its expiry
            if cache.add(key, 1, timeout=window + 5):
                count = 1
            else:  # another request created it meanwhile
                try:
                    count = cache.incr(key)
                except ValueError:  # and it expired already
                    cache.set(key, 1, timeout=window + 5)
                    count = 1
        request.rate_limit = {
            "limit": limit,
            "remaining": max(limit - count, 0),
            "reset": reset_at,
        }
        if count > limit:
            raise RateLimitExceeded(
                limit=limit,
                window_seconds=window,
                retry_after=max(int(reset_at - now), 1),
            )
        return True


def add_rate_limit_headers(request, response) -> None:
    figures = getattr(request, "rate_limit", None)
    if figures:
        response["X-RateLimit-Limit"] = str(figures["limit"])
        response["X-RateLimit-Remaining"] = str(figures["remaining"])
        response["X-RateLimit-Reset"] = str(figures["reset"])
