"""``redis://``: counters shared by every worker and instance using one Redis.

One hash per limit and client, ``cello:ratelimit:<limit's name>:<client key>``, holding the
window state of cello/ratelimit/window.py; a Lua script reads it, decides and counts in one
atomic step, on Redis's clock (instances whose clocks differ still share windows). The hash
expires two periods after the last counted request, so Redis forgets idle clients by itself.

If Redis cannot be reached, requests are let through (fail open) without ``RateLimit-*``
headers, and the log says so once, and once again when Redis answers: a rate limiter protects
the service, and should not take it down with the store. While failing, Redis is not asked
again for ``RETRY_AFTER_FAILURE`` seconds, so a Redis that does not answer costs requests
nothing more than the first timeout.

Connections belong to an event loop: they are opened on first use in the loop using them (a
worker process, a TestClient's thread) and opened afresh when another loop comes along.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any, Final

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from cello.ratelimit.window import Outcome, Rate, outcome
from cello.redis_url import check_redis_url, redacted

log = logging.getLogger("cello.ratelimit")

KEY_PREFIX: Final = "cello:ratelimit:"
# Seconds Redis may take to accept a connection or answer: every limited request waits for it.
TIMEOUT: Final = 1.0
# Seconds requests go through unlimited, without asking Redis, after it failed to answer.
RETRY_AFTER_FAILURE: Final = 1.0

# KEYS[1]: the client's hash; ARGV: period (s), limit, "1" for a sliding window.
# Returns {allowed, current, previous, elapsed}: the counts after the request, for the headers.
SCRIPT: Final = """
local period = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local sliding = ARGV[3] == '1'
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local index = math.floor(now / period)
local elapsed = now - index * period
local state = redis.call('HMGET', KEYS[1], 'w', 'c', 'p')
local stored = tonumber(state[1])
local current = tonumber(state[2]) or 0
local previous = tonumber(state[3]) or 0
if stored ~= index then
  if stored == index - 1 then previous = current else previous = 0 end
  current = 0
end
local used = current
if sliding and previous > 0 then
  used = math.floor(previous * (period - elapsed) / period) + current
end
local allowed = 0
if used < limit then
  allowed = 1
  current = current + 1
  redis.call('HSET', KEYS[1], 'w', string.format('%d', index), 'c', current, 'p', previous)
  redis.call('PEXPIRE', KEYS[1], period * 2000)
end
return {allowed, current, previous, string.format('%.6f', elapsed)}
"""


class RedisCounters:
    """One limit's counters in Redis."""

    __slots__ = ("store", "rate", "sliding", "prefix", "_args")

    def __init__(self, store: RedisStore, namespace: str, rate: Rate, sliding: bool) -> None:
        self.store = store
        self.rate = rate
        self.sliding = sliding
        # The rate is in the key: a limit changed between deployments starts afresh.
        self.prefix = f"{KEY_PREFIX}{namespace}:{rate.amount}/{rate.period}s:{'sliding' if sliding else 'fixed'}:"
        self._args = (rate.period, rate.amount, "1" if sliding else "0")

    async def hit(self, key: str) -> Outcome | None:
        """The request's outcome, or None when Redis cannot say (the request goes through)."""
        store = self.store
        if store.failing_until and time.monotonic() < store.failing_until:
            return None
        try:
            allowed, current, previous, elapsed = await store.script()(keys=[self.prefix + key], args=self._args)
        except (RedisError, OSError) as exc:
            store.failed(exc)
            return None
        store.answered()
        return outcome(self.rate, self.sliding, allowed == 1, int(current), int(previous), float(elapsed))


class RedisStore:
    """Counters in the Redis at ``url``."""

    shared_between_processes = True

    def __init__(self, url: str) -> None:
        check_redis_url(url, "rate limit store")
        self._url = url
        self.url = redacted(url)  # for logs
        self._client: Redis | None = None
        self._script: AsyncScript | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # While Redis fails: when to ask it again (monotonic clock); 0.0 when it answers.
        self.failing_until = 0.0

    def counters(self, namespace: str, rate: Rate, sliding: bool) -> RedisCounters:
        return RedisCounters(self, namespace, rate, sliding)

    def script(self) -> AsyncScript:
        loop = asyncio.get_running_loop()
        script = self._script
        if script is None or self._loop is not loop:
            options: dict[str, Any] = {
                "socket_connect_timeout": TIMEOUT,
                "socket_timeout": TIMEOUT,
                "health_check_interval": 0,
                "client_name": f"cello-ratelimit-{os.getpid()}",
            }
            # One quiet retry lets a pooled connection that died with a restarted Redis
            # reconnect; a Redis that stays away fails the request at once.
            self._client = Redis.from_url(self._url, retry=Retry(NoBackoff(), 1), **options)
            self._script = script = self._client.register_script(SCRIPT)
            self._loop = loop
        return script

    def failed(self, exc: BaseException) -> None:
        if not self.failing_until:
            log.warning(
                "rate limits: Redis at %s is unreachable (%s); requests go through unlimited until it answers",
                self.url,
                exc,
            )
        self.failing_until = time.monotonic() + RETRY_AFTER_FAILURE

    def answered(self) -> None:
        if self.failing_until:
            self.failing_until = 0.0
            log.warning("rate limits: Redis at %s answers again; limits apply", self.url)

    async def close(self) -> None:
        client, loop = self._client, self._loop
        self._client = self._script = self._loop = None
        if client is not None and loop is asyncio.get_running_loop():
            await client.aclose()
