"""Publish/subscribe between the handlers of an app: ``app.channels``.

``publish(channel, message)`` hands a ``str``, ``bytes`` or JSON-able message to every current
subscriber of the channel; ``subscribe(*channels)`` is an async context manager giving an async
iterator of ``ChannelMessage``. The broker is named by a URL: ``memory://`` (the default) keeps
everything in this process; ``redis://host:port/db`` (and ``rediss://``, over TLS) shares the
channels between every worker and instance using that Redis.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from cello.channels.broker import Broker
from cello.channels.listener import Listener
from cello.channels.memory import MemoryBroker
from cello.channels.message import BrokerUnavailable, ChannelError, ChannelMessage, encode
from cello.channels.subscription import Subscription

SCHEMES = ("memory", "redis", "rediss", "unix")
# Where a deployment names the broker without touching the code; it wins over App(channels=...).
URL_ENV = "CELLO_CHANNELS"


def configured_url(url: str) -> str:
    """The broker URL an app uses: ``$CELLO_CHANNELS`` when set, else the one it was given."""
    return os.environ.get(URL_ENV) or url


def broker_for(url: str) -> Broker:
    """The broker a URL names; ValueError for one Cello cannot use."""
    scheme, sep, _ = url.partition("://")
    if not sep or scheme not in SCHEMES:
        supported = ", ".join(f"{name}://" for name in SCHEMES)
        raise ValueError(f"channels URL {url!r}: unsupported broker; supported: {supported}")
    if scheme == "memory":
        return MemoryBroker()
    # redis-py is an optional dependency: only an app that names a Redis needs it.
    try:
        from cello.channels.redis_broker import RedisBroker
    except ImportError:
        raise ValueError(
            f"channels URL {scheme}://...: Redis needs redis-py: pip install 'cello-framework[redis]'"
        ) from None
    return RedisBroker(url)


class Channels:
    """``app.channels``: publish to channels and subscribe to them."""

    def __init__(self, url: str = "memory://", max_queue: int = 1000) -> None:
        self.max_queue = max_queue
        self._broker = broker_for(url)

    @property
    def url(self) -> str:
        """The broker's URL, its password (if any) hidden."""
        return self._broker.url

    def use(self, url: str) -> None:
        """Switch to the broker ``url`` names (``--channels``); only before anything subscribed."""
        if self._broker.channel_count():
            raise ChannelError("cannot change the channels broker while subscriptions are open")
        self._broker = broker_for(url)

    @property
    def shared_between_processes(self) -> bool:
        """Whether workers (``--workers N``) and other instances see each other's messages."""
        return self._broker.shared_between_processes

    def subscribed_channels(self) -> list[str]:
        """The channels this process has subscribers for, sorted (nothing is kept for others)."""
        return sorted(self._broker.channel_names())

    async def publish(self, channel: str, message: Any) -> None:
        """Send ``message`` to every subscriber of ``channel`` (none: it is dropped)."""
        if not isinstance(channel, str) or not channel:
            raise ChannelError(f"a channel is a non-empty str, not {channel!r}")
        await self._broker.publish(channel, encode(message))

    @asynccontextmanager
    async def subscribe(self, *channels: str) -> AsyncIterator[Subscription]:
        """Receive the messages published to ``channels`` from now on, until the block ends."""
        if not channels or not all(isinstance(c, str) and c for c in channels):
            raise ChannelError(f"subscribe to one or more non-empty channel names, not {channels!r}")
        subscription = Subscription(tuple(dict.fromkeys(channels)), self.max_queue, self._broker.remove)
        await self._broker.add(subscription)
        try:
            yield subscription
        finally:
            subscription.close()

    async def listen(self, channel: str, callback: Callable[[str, bytes], None]) -> Listener:
        """Call ``callback(channel, payload)`` with each message's encoded payload as it is
        delivered, until the returned listener is closed. For forwarders that must not copy or
        queue per message (``ws.join``); handlers use ``subscribe``."""
        if not isinstance(channel, str) or not channel:
            raise ChannelError(f"a channel is a non-empty str, not {channel!r}")
        listener = Listener((channel,), callback, self._broker.remove)
        await self._broker.add(listener)
        return listener

    async def close(self) -> None:
        await self._broker.close()


__all__ = [
    "Listener",
    "BrokerUnavailable",
    "ChannelError",
    "ChannelMessage",
    "Channels",
    "Subscription",
    "broker_for",
    "configured_url",
]
