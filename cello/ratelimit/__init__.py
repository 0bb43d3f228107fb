"""Rate limits: ``app.enable_rate_limit("100/minute")``, ``bp.enable_rate_limit(...)`` and
``@app.get(path, rate_limit="10/second")`` (docs: OPS_SECTION.md, "Rate limits").

A limit counts the requests of each client (``key``: the client's address by default) in
windows of its period, in a store: ``memory://`` (this process) or ``redis://`` (every worker
and instance). A request over a limit gets 429 with ``Retry-After``; every limited response
carries the ``RateLimit-Limit``, ``RateLimit-Remaining`` and ``RateLimit-Reset`` headers of
the IETF draft (draft-ietf-httpapi-ratelimit-headers).

An app's or a blueprint's limit is one budget per client for all of its routes (404 and 405
answers included); a route's own is a budget for that route. They stack: a request is counted
by each limit that applies, outermost first, and the first one exceeded refuses it (the
outer ones have counted it by then). The headers describe the limit closest to refusing.

Nothing here runs for a route without a limit: the endpoint of a limited route gets one
before-hook (count, or refuse) and one after-hook (the headers), composed once.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final, Protocol, Union

from cello.errors import HTTPException
from cello.ratelimit.memory import MemoryCounters, MemoryStore
from cello.ratelimit.window import STRATEGIES, Outcome, Rate, parse_rate

if TYPE_CHECKING:
    from cello.ratelimit.redis_store import RedisCounters
    from cello.request import Request
    from cello.response import Response

__all__ = ["RateLimit", "Outcome", "Rate", "parse_rate", "RateLimitStores", "EndpointLimits"]

KeyFunction = Callable[["Request"], Union[str, None]]
SCHEMES: Final = ("memory", "redis", "rediss", "unix")
# Where a deployment names the default store without touching the code; wins over the App's.
STORE_ENV: Final = "CELLO_RATE_LIMIT_STORE"


def client_address(request: Request) -> str:
    """The default key: the client's address (the one a trusted proxy names, if any)."""
    return request.client_ip() or "unknown"


def check_store_url(url: str) -> None:
    """ValueError for a store URL Cello cannot use (at configuration time)."""
    scheme, sep, _ = url.partition("://")
    if not sep or scheme not in SCHEMES:
        supported = ", ".join(f"{name}://" for name in SCHEMES)
        # Only the scheme: the rest may hold a password.
        shown = f"{scheme}://..." if sep else url
        raise ValueError(f"rate limit store {shown!r}: unsupported; supported: {supported}")
    if scheme != "memory":
        # redis-py is optional: only an app that names a Redis needs it.
        try:
            from cello.redis_url import check_redis_url
        except ImportError:
            raise ValueError(
                f"rate limit store {scheme}://...: Redis needs redis-py: pip install 'cello-framework[redis]'"
            ) from None
        check_redis_url(url, "rate limit store")


class RateLimit:
    """A limit as declared: ``RateLimit("10/second", key=..., store=..., strategy="sliding")``
    is what ``rate_limit=`` on a route takes besides a plain ``"10/second"``.

    ``key(request) -> str | None``: whose budget a request spends (None: this request is not
    limited); ``store``: ``memory://`` or ``redis://...`` (None: the app's ``rate_limit_store``);
    ``strategy``: ``"fixed"`` or ``"sliding"`` windows.
    """

    __slots__ = ("rate", "key", "store", "sliding")

    def __init__(
        self,
        limit: str,
        key: KeyFunction | None = None,
        store: str | None = None,
        strategy: str = "fixed",
    ) -> None:
        self.rate = parse_rate(limit)
        if key is not None and not callable(key):
            raise TypeError(f"rate limit {limit!r}: key must be a function of the request, got {key!r}")
        if strategy not in STRATEGIES:
            raise ValueError(f"rate limit {limit!r}: strategy is 'fixed' or 'sliding', not {strategy!r}")
        if store is not None:
            check_store_url(store)
        self.key: KeyFunction = key or client_address
        self.store = store
        self.sliding = strategy == "sliding"

    @classmethod
    def of(cls, value: str | RateLimit) -> RateLimit:
        """A route's ``rate_limit=`` option as a RateLimit; ValueError naming a bad string."""
        if isinstance(value, RateLimit):
            return value
        if not isinstance(value, str):
            raise TypeError(f"rate_limit takes a string such as '10/second' or a RateLimit, not {value!r}")
        return cls(value)

    def __repr__(self) -> str:
        strategy = "sliding" if self.sliding else "fixed"
        return f"RateLimit({self.rate.text!r}, strategy={strategy!r}, store={self.store!r})"


class Store(Protocol):
    url: str
    shared_between_processes: bool

    async def close(self) -> None: ...


class RateLimitStores:
    """The stores an app's limits count in, by URL, made when the endpoints are first built
    and kept across rebuilds (the counters of ``memory://`` live in them)."""

    def __init__(self, default: str) -> None:
        default = os.environ.get(STORE_ENV) or default
        check_store_url(default)
        self.default = default
        self._memory: MemoryStore | None = None
        self._redis: dict[str, Store] = {}

    @property
    def process_local(self) -> bool:
        """Whether a limit in use counts in this process only (``memory://``)."""
        return self._memory is not None

    def counters(self, namespace: str, limit: RateLimit) -> MemoryCounters | RedisCounters:
        url = limit.store or self.default
        if url.startswith("memory://"):
            if self._memory is None:
                self._memory = MemoryStore()
            return self._memory.counters(namespace, limit.rate, limit.sliding)
        # redis-py is optional: only an app that names a Redis needs it.
        try:
            from cello.ratelimit.redis_store import RedisStore
        except ImportError:
            raise ValueError(
                "rate limit store redis://...: Redis needs redis-py: pip install 'cello-framework[redis]'"
            ) from None
        store = self._redis.get(url)
        if store is None:
            store = self._redis[url] = RedisStore(url)
        assert isinstance(store, RedisStore)
        return store.counters(namespace, limit.rate, limit.sliding)

    async def close(self) -> None:
        """Close the Redis connections (at app shutdown)."""
        for store in self._redis.values():
            await store.close()


class EndpointLimits:
    """The limits of one endpoint, as its first before-hook and its last after-hook."""

    __slots__ = ("_limits", "_memory", "before")

    def __init__(self, limits: Sequence[tuple[KeyFunction, MemoryCounters | RedisCounters]]) -> None:
        self._limits = tuple(limits)
        self._memory = tuple((key, counters) for key, counters in limits if isinstance(counters, MemoryCounters))
        # All in this process: a synchronous hook, so the route keeps the synchronous fast path.
        self.before: Callable[[Request], Any] = (
            self._before_memory if len(self._memory) == len(self._limits) else self._before_async
        )

    @classmethod
    def create(cls, stores: RateLimitStores, limits: Sequence[tuple[str, RateLimit]]) -> EndpointLimits | None:
        """``limits``: (namespace, limit) pairs, outermost first; None when there is none."""
        if not limits:
            return None
        return cls([(limit.key, stores.counters(namespace, limit)) for namespace, limit in limits])

    def _before_memory(self, request: Request) -> None:
        now = time.time()
        closest: Outcome | None = None
        for key_of, counters in self._memory:
            key = key_of(request)
            if key is None:
                continue
            got = counters.hit(key, now)
            if not got.allowed:
                _refuse(request, got)
            if closest is None or got.remaining < closest.remaining:
                closest = got
        if closest is not None:
            request.state.rate_limit = closest

    async def _before_async(self, request: Request) -> None:
        now = time.time()
        closest: Outcome | None = None
        for key_of, counters in self._limits:
            key = key_of(request)
            if key is None:
                continue
            got = counters.hit(key, now) if isinstance(counters, MemoryCounters) else await counters.hit(key)
            if got is None:
                continue  # the store cannot say: let it through
            if not got.allowed:
                _refuse(request, got)
            if closest is None or got.remaining < closest.remaining:
                closest = got
        if closest is not None:
            request.state.rate_limit = closest

    @staticmethod
    def after(request: Request, response: Response) -> None:
        got = request.state.get("rate_limit")
        if not isinstance(got, Outcome):
            return
        headers = response.raw_headers()
        headers.append(("ratelimit-limit", str(got.limit)))
        headers.append(("ratelimit-remaining", str(got.remaining)))
        headers.append(("ratelimit-reset", got.reset_header()))
        if not got.allowed:
            # Here rather than on the exception, so an app's own 429 error handler keeps it.
            headers.append(("retry-after", got.retry_after_header()))


def _refuse(request: Request, got: Outcome) -> None:
    request.state.rate_limit = got
    raise HTTPException(429, f"Too Many Requests: more than {got.rate.describe()}")
