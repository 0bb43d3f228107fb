"""``store="redis://..."``: sessions kept in Redis, only a signed random id in the cookie.

The data lives under ``cello:session:<id>`` as JSON, set with an expiry of ``max_age`` seconds
on every save, so Redis forgets a session nobody changed for that long. Logging out really
ends a session here (its key is deleted), which a cookie store cannot do.

A request that brings a session cookie has its session read from Redis before the handler
runs (the handler may be synchronous and could not wait for Redis itself); one without a
cookie costs nothing. If Redis cannot be reached, the request still runs: only reading
``request.session`` answers 503, as does saving a changed session. The log says why; the
client sees no address, password or exception.

Connections belong to an event loop: they are opened on first use in the loop using them (a
worker process, a TestClient's thread) and opened afresh when another loop comes along.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Final

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from cello.errors import HTTPException
from cello.middleware.cors import add_vary
from cello.redis_url import check_redis_url, redacted
from cello.sessions.cookie import SessionCookie, json_error
from cello.sessions.session import Session
from cello.sessions.signing import JsonCodec, Signer

if TYPE_CHECKING:
    from cello.request import Request
    from cello.response import Response

log = logging.getLogger("cello.sessions")

KEY_PREFIX: Final = "cello:session:"
# Seconds Redis may take to accept a connection or answer a command: a frozen Redis must not
# hold every request that carries a session cookie for ever.
TIMEOUT: Final = 5.0
UNAVAILABLE: Final = "Service Unavailable: the session store cannot be reached"


def _unavailable(request: Request) -> Session:
    raise HTTPException(503, UNAVAILABLE)


class RedisSessions:
    """Server-side sessions in Redis (``store="redis://host:6379/0"``)."""

    def __init__(self, url: str, signer: Signer, cookie: SessionCookie) -> None:
        check_redis_url(url, "sessions store")
        self._url = url
        self.url = redacted(url)  # for logs
        self.signer = signer
        self.cookie = cookie
        self._client: Redis | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._failing = False  # logged once when Redis starts failing, once when it is back

    def client(self) -> Redis:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            # One quiet retry lets a pooled connection that died with a restarted Redis
            # reconnect; a Redis that stays away fails the request at once.
            self._client = Redis.from_url(
                self._url,
                retry=Retry(NoBackoff(), 1),
                socket_connect_timeout=TIMEOUT,
                socket_timeout=TIMEOUT,
                health_check_interval=0,
                client_name=f"cello-sessions-{os.getpid()}",
            )
            self._loop = loop
        return self._client

    def _failed(self, what: str, exc: BaseException) -> None:
        if not self._failing:
            self._failing = True
            log.error("sessions: cannot %s: Redis at %s is unreachable (%s)", what, self.url, exc)

    def _ok(self) -> None:
        if self._failing:
            self._failing = False
            log.warning("sessions: Redis at %s answers again", self.url)

    def load(self, request: Request) -> Session:
        """What ``request.session`` calls when ``preload`` found no session: a new one."""
        return Session()

    def before_handler(self) -> Callable[[Request], Awaitable[None]]:
        return self.preload

    async def preload(self, request: Request) -> None:
        """Before the handler: read the session of the request's cookie, if it has one."""
        if request.header(b"cookie") is None:
            return
        value = request.cookies.get(self.cookie.name)
        sid = self.signer.loads(value) if value else None
        if not isinstance(sid, str):
            return
        try:
            raw = await self.client().get(KEY_PREFIX + sid)
        except (RedisError, OSError) as exc:
            self._failed("read a session", exc)
            request.session_loader = _unavailable
            return
        self._ok()
        if raw is None:
            return  # expired, or deleted at logout: a new session (under a new id)
        try:
            data = JsonCodec.loads(raw)
        except ValueError:
            return
        if isinstance(data, dict):
            request.loaded_session = Session(data, sid, new=False)

    async def save(self, request: Request, response: Response) -> None:
        """After the handler and the other after-hooks, before the response head is written."""
        session = request.loaded_session
        if session is None:
            return
        add_vary(response, "Cookie")
        if not session.modified:
            return
        old = session.sid
        try:
            if not session:
                if old is not None:
                    await self.client().delete(KEY_PREFIX + old)
                if not session.new:
                    self.cookie.delete(request, response)
                self._ok()
                return
            try:
                payload = JsonCodec.dumps(session.to_dict())
            except (TypeError, ValueError) as exc:
                raise json_error(exc) from None
            sid = old if old is not None and not session.regenerated else secrets.token_urlsafe(32)
            async with self.client().pipeline(transaction=True) as pipe:
                if old is not None and old != sid:
                    pipe.delete(KEY_PREFIX + old)
                pipe.set(KEY_PREFIX + sid, payload, ex=self.cookie.max_age)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            self._failed("save a session", exc)
            raise HTTPException(503, UNAVAILABLE) from None
        self._ok()
        session.sid = sid
        self.cookie.set(request, response, self.signer.dumps(sid))

    async def close(self) -> None:
        client, loop = self._client, self._loop
        self._client = self._loop = None
        if client is not None and loop is asyncio.get_running_loop():
            await client.aclose()
