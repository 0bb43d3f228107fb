"""A subscriber's end: a bounded queue of messages and how it overflows.

A subscriber that falls behind never slows the publisher or the other subscribers, and never
holds unbounded memory: when its queue is full, the oldest message waiting is dropped to make
room for the new one, and ``dropped`` counts what it lost (a live feed wants the latest
messages; a logged warning says so once per subscription).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable

from cello.channels.message import ChannelMessage, decode

log = logging.getLogger("cello.channels")


class Subscription:
    """An async iterator of ``ChannelMessage`` for the channels it was opened on."""

    def __init__(self, channels: tuple[str, ...], max_queue: int, on_close: Callable[[Subscription], None]) -> None:
        self.channels = channels
        self.max_queue = max_queue
        self.dropped = 0
        self._queue: deque[tuple[str, bytes]] = deque()
        self._ready = asyncio.Event()
        self._closed = False
        self._on_close = on_close

    def deliver(self, channel: str, payload: bytes) -> None:
        """Called by the broker for each message; never blocks."""
        if self._closed:
            return
        if len(self._queue) >= self.max_queue:
            self._queue.popleft()
            self.dropped += 1
            if self.dropped == 1:
                log.warning(
                    "a subscriber of %s is %d messages behind: dropping the oldest (max_queue)",
                    ", ".join(self.channels),
                    self.max_queue,
                )
        self._queue.append((channel, payload))
        self._ready.set()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> ChannelMessage:
        while not self._queue:
            if self._closed:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        channel, payload = self._queue.popleft()
        return ChannelMessage(channel, decode(payload))

    def close(self) -> None:
        """Stop receiving; an iteration in progress ends after the messages already queued."""
        if not self._closed:
            self._closed = True
            self._ready.set()
            self._on_close(self)
