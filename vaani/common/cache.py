"""Cache reads that a request needs together, in one round trip to Redis."""

import hashlib

from django.core.cache import cache
from redis.exceptions import NoScriptError

try:
    from django_redis.client import DefaultClient
except ImportError:  # pragma: no cover - django-redis is a requirement
    DefaultClient = None

# KEYS[1]: the counter, KEYS[2..]: the keys read; ARGV[1]: the counter's timeout (s).
# One script: one round trip (EVALSHA), atomic, and about half the client CPU of a
# MULTI/EXEC pipeline of the same commands (redis-py builds and parses each one).
_GET_MANY_AND_COUNT = """
local found = redis.call('MGET', unpack(KEYS, 2))
redis.call('SET', KEYS[1], 0, 'EX', ARGV[1], 'NX')
found[#found + 1] = redis.call('INCR', KEYS[1])
return found
"""
_GET_MANY_AND_COUNT_SHA = hashlib.sha1(_GET_MANY_AND_COUNT.encode()).hexdigest()


def get_many_and_count(keys, counter=None) -> tuple[dict, int | None]:
    """``cache.get_many(keys)`` and, with ``counter`` (``(key, timeout)``), one more on
    that counter (created with the timeout if missing): ``(found, count)``.

    On Redis both are one Lua script: one round trip, and the counter's creation with
    its expiry and its increment are atomic. Other caches (locmem) run ``get_many``
    only: ``count`` is None there (the caller counts on its own), and when no counter
    was asked for. Raises what the cache raises when it is unreachable.
    """
    client = getattr(cache, "client", None)
    if counter is None or DefaultClient is None or type(client) is not DefaultClient:
        return cache.get_many(keys), None
    redis = client.get_client(write=True)
    made = [client.make_key(counter[0])] + [client.make_key(key) for key in keys]
    try:
        reply = redis.evalsha(_GET_MANY_AND_COUNT_SHA, len(made), *made, int(counter[1]))
    except NoScriptError:  # a restarted or flushed Redis: load it again (once)
        redis.script_load(_GET_MANY_AND_COUNT)
        reply = redis.evalsha(_GET_MANY_AND_COUNT_SHA, len(made), *made, int(counter[1]))
    *values, count = reply
    found = {
        key: client.decode(value)
        for key, value in zip(keys, values, strict=True)
        if value is not None
    }
    return found, int(count)
