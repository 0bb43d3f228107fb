"""``redis://``: channels shared by every worker and instance connected to one Redis.

Each process keeps one connection in Redis's subscribed mode, subscribed to every channel the
process has subscribers for (Redis multiplexes them on it); a message arriving there is handed
to each local subscription, as the memory broker does. Publishing goes over redis-py's pool of
ordinary connections, since a subscribed connection can run no other command.

Redis pub/sub keeps nothing: while the subscriber connection is down, messages are lost. When
it fails, the broker logs it, retries with a growing delay and, once Redis answers again,
subscribes to every channel still wanted and logs that. Meanwhile ``publish`` and new
subscriptions raise ``ChannelError``; subscriptions already open simply wait.

Connections belong to an event loop: they are opened on first use, in the loop using them (a
worker process, a test's ``asyncio.run``), and opened afresh when another loop comes along.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any, Final

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from cello.channels.broker import LocalSubscribers, Receiver
from cello.channels.message import BrokerUnavailable
from cello.redis_url import check_redis_url, redacted

log = logging.getLogger("cello.channels")

# Seconds Redis may take to accept a connection or confirm a subscription.
CONNECT_TIMEOUT: Final = 5.0
# A subscriber connection silent this long is pinged; unanswered for as long again, it is lost
# (a peer that vanished without closing the socket would otherwise go unnoticed forever).
HEARTBEAT: Final = 5.0
# Delays between reconnection attempts: doubling from the first to the last.
RETRY_DELAYS: Final = (0.1, 2.0)


class RedisBroker:
    """Publish through Redis; deliver what Redis sends this process to its local subscribers."""

    shared_between_processes = True

    def __init__(self, url: str) -> None:
        check_redis_url(url, "channels URL")
        self._url = url
        self.url = redacted(url)  # shown in messages and logs
        self._local = LocalSubscribers()
        self._link: _Link | None = None
        self._publish_failing = False  # logged once when publishing starts failing, once when it stops

    def _current(self) -> _Link:
        loop = asyncio.get_running_loop()
        if self._link is None or self._link.loop is not loop:
            # The old loop's connections cannot be used (or closed) from this one: drop them.
            self._link = _Link(self, loop)
        return self._link

    async def publish(self, channel: str, payload: bytes) -> None:
        try:
            await self._current().client.publish(channel, payload)
        except (RedisError, OSError) as exc:
            if not self._publish_failing:
                self._publish_failing = True
                log.warning("channels: cannot publish: Redis at %s is unreachable (%s)", self.url, exc)
            raise BrokerUnavailable(
                f"cannot publish to {channel!r}: Redis at {self.url} is unreachable ({exc})"
            ) from None
        if self._publish_failing:
            self._publish_failing = False
            log.warning("channels: publishing to Redis at %s again", self.url)

    async def add(self, receiver: Receiver) -> None:
        self._local.add(receiver)
        try:
            await self._current().subscribed(receiver.channels)
        except BaseException:
            self.remove(receiver)
            raise

    def remove(self, receiver: Receiver) -> None:
        self._local.remove(receiver)
        if self._link is not None:
            self._link.resync_soon()

    def channel_count(self) -> int:
        return len(self._local)

    def channel_names(self) -> set[str]:
        return self._local.channels()

    async def close(self) -> None:
        self._local.clear()
        link, self._link = self._link, None
        if link is not None:
            await link.close()


class _Link:
    """One event loop's connections to Redis: the publishing pool and the subscriber connection."""

    def __init__(self, broker: RedisBroker, loop: asyncio.AbstractEventLoop) -> None:
        self.broker = broker
        self.loop = loop
        options: dict[str, Any] = {"socket_connect_timeout": CONNECT_TIMEOUT, "health_check_interval": 0}
        # Named, so that CLIENT LIST in Redis tells which process holds which connection.
        name = f"cello-channels-{os.getpid()}"
        # One quiet retry lets a pooled connection that died with a restarted Redis reconnect;
        # a Redis that stays away fails the publish at once.
        self.client = Redis.from_url(broker._url, retry=Retry(NoBackoff(), 1), client_name=name, **options)
        # The subscriber connection never retries by itself: the reader below owns reconnection,
        # so that it knows to subscribe again and can say so.
        self._subscriber_client = Redis.from_url(
            broker._url, retry=Retry(NoBackoff(), 0), client_name=f"{name}-subscriber", **options
        )
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._up = asyncio.Event()
        self._first_attempt: asyncio.Future[None] = loop.create_future()
        self._error: BaseException | None = None
        # Channels SUBSCRIBE was sent for on the current connection, and those Redis confirmed.
        self._requested: set[str] = set()
        self._confirmed: set[str] = set()
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._lock = asyncio.Lock()
        self._resync: asyncio.Task[None] | None = None
        self._dirty = False
        # After a reconnection: the channels whose subscription Redis has yet to confirm.
        self._resuming: set[str] | None = None

    async def subscribed(self, channels: tuple[str, ...]) -> None:
        """Returns once Redis confirmed that this connection is subscribed to ``channels``."""
        if self._reader is None:
            self._reader = self.loop.create_task(self._read_forever(), name="cello-channels-redis")
        await asyncio.shield(self._first_attempt)
        if not self._up.is_set():
            raise self._unreachable()
        waiting = [self._waiter(channel) for channel in channels if channel not in self._confirmed]
        try:
            await self._sync()
            if waiting:
                await asyncio.wait_for(asyncio.gather(*waiting), CONNECT_TIMEOUT)
        except (asyncio.TimeoutError, RedisError, OSError) as exc:
            self._error = exc
            raise self._unreachable() from None
        finally:
            for future in waiting:
                future.cancel()

    def _unreachable(self) -> BrokerUnavailable:
        reason = f" ({self._error})" if self._error else ""
        return BrokerUnavailable(f"cannot subscribe: Redis at {self.broker.url} is unreachable{reason}")

    def _waiter(self, channel: str) -> asyncio.Future[None]:
        future: asyncio.Future[None] = self.loop.create_future()
        self._waiters.setdefault(channel, []).append(future)
        return future

    def resync_soon(self) -> None:
        """Unsubscribe, later, from channels nobody here listens to any more (remove() cannot wait)."""
        if self.loop.is_closed():
            return
        self._dirty = True
        if self._resync is None or self._resync.done():
            self._resync = self.loop.create_task(self._quiet_sync())

    async def _quiet_sync(self) -> None:
        # A subscription closing while a sync runs marks it dirty again: the loop catches it.
        while self._dirty:
            self._dirty = False
            try:
                await self._sync()
            except (RedisError, OSError):
                return  # the reader notices a lost connection and subscribes afresh when it is back

    async def _sync(self) -> None:
        """Bring the connection's subscriptions in line with the channels this process wants."""
        async with self._lock:
            pubsub = self._pubsub
            if pubsub is None or not self._up.is_set():
                return
            wanted = self.broker._local.channels()
            new = sorted(wanted - self._requested)
            gone = sorted(self._requested - wanted)
            if new:
                await pubsub.execute_command("SUBSCRIBE", *new)
                self._requested.update(new)
            if gone:
                await pubsub.execute_command("UNSUBSCRIBE", *gone)
                self._requested.difference_update(gone)

    async def _read_forever(self) -> None:
        delay = RETRY_DELAYS[0]
        lost = False
        while True:
            try:
                await self._connect()
                if lost:
                    # "Back" is said once Redis has confirmed every subscription made again.
                    self._resuming = set(self._requested)
                    self._say_back_when_resubscribed()
                    lost = False
                delay = RETRY_DELAYS[0]
                await self._pump()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # whatever broke the connection: start again on a new one
                self._error = exc
                if not lost:
                    log.warning(
                        "channels: %s Redis at %s (%s); subscriptions resume when it is back",
                        "lost the connection to" if self._first_attempt.done() else "cannot reach",
                        self.broker.url,
                        exc,
                    )
                lost = True
                await self._disconnect()
            finally:
                if not self._first_attempt.done():
                    self._first_attempt.set_result(None)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_DELAYS[1])

    async def _connect(self) -> None:
        pubsub = self._subscriber_client.pubsub()
        await pubsub.connect()  # type: ignore[no-untyped-call]
        self._pubsub = pubsub
        self._requested.clear()
        self._confirmed.clear()
        self._error = None
        self._up.set()
        if not self._first_attempt.done():
            self._first_attempt.set_result(None)
        await self._sync()

    async def _pump(self) -> None:
        pubsub = self._pubsub
        assert pubsub is not None
        local = self.broker._local
        unanswered_ping = False
        while True:
            response = await pubsub.parse_response(block=False, timeout=HEARTBEAT)
            if response is None:
                if unanswered_ping:
                    raise ConnectionError(f"no answer to PING in {2 * HEARTBEAT:g} s")
                await pubsub.execute_command("PING")
                unanswered_ping = True
                continue
            unanswered_ping = False
            if not isinstance(response, list):
                continue  # PONG while subscribed to nothing
            kind = response[0]
            if kind == b"message":
                local.deliver(response[1].decode(), response[2])
            elif kind == b"subscribe":
                channel = response[1].decode()
                self._confirmed.add(channel)
                if self._resuming is not None:
                    self._resuming.discard(channel)
                    self._say_back_when_resubscribed()
                for future in self._waiters.pop(channel, ()):
                    if not future.done():
                        future.set_result(None)
            elif kind == b"unsubscribe":
                self._confirmed.discard(response[1].decode())

    def _say_back_when_resubscribed(self) -> None:
        if self._resuming is not None and not self._resuming:
            self._resuming = None
            log.warning(
                "channels: Redis at %s is back; subscribed again to %d channel(s)",
                self.broker.url,
                len(self._confirmed),
            )

    async def _disconnect(self) -> None:
        self._up.clear()
        self._resuming = None
        # A subscription waiting for Redis's confirmation learns now that none will come.
        for waiters in self._waiters.values():
            for future in waiters:
                if not future.done():
                    future.set_exception(ConnectionError("the connection to Redis was lost"))
        self._waiters.clear()
        pubsub, self._pubsub = self._pubsub, None
        self._requested.clear()
        self._confirmed.clear()
        if pubsub is not None:
            try:
                await pubsub.aclose()  # type: ignore[no-untyped-call]
            except Exception:  # the connection is already broken; nothing to tidy up
                pass

    async def close(self) -> None:
        """Stop reading and close every connection (leaving Redis subscribed to nothing)."""
        tasks = [task for task in (self._reader, self._resync) if task is not None]
        for task in tasks:
            task.cancel()
        # Cancelled or already failed: either way it is over, and nothing is left to report.
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._disconnect()
        for client in (self.client, self._subscriber_client):
            try:
                await client.aclose()
            except Exception:
                pass
