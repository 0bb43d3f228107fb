"""The request body of ``stream_body`` endpoints, handed to the handler as it arrives."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Protocol


class StreamOwner(Protocol):
    """What a RequestStream needs from its connection (the connection implements it)."""

    def send_continue(self) -> None: ...

    def pause_for_stream(self) -> None: ...

    def resume_for_stream(self) -> None: ...


class RequestStream:
    """``AsyncIterator[bytes]`` over one request body.

    The connection ``feed``s chunks in and ``end``s or ``fail``s it; the handler iterates.
    Above ``high_water`` queued bytes the connection stops reading the socket until the
    handler has caught up, so a slow handler cannot make the server buffer a whole upload.
    """

    __slots__ = (
        "_owner",
        "_loop",
        "_chunks",
        "_queued",
        "_high_water",
        "_paused",
        "_done",
        "_error",
        "_waiter",
        "_continue",
    )

    def __init__(
        self,
        owner: StreamOwner,
        loop: asyncio.AbstractEventLoop,
        high_water: int,
        expect_continue: bool,
    ) -> None:
        self._owner = owner
        self._loop = loop
        self._chunks: deque[bytes] = deque()
        self._queued = 0
        self._high_water = high_water
        self._paused = False
        self._done = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        # "100 Continue" goes out when the handler first asks for the body, not before:
        # a handler that answers without reading it spares the client the upload.
        self._continue = expect_continue

    def __aiter__(self) -> RequestStream:
        return self

    async def __anext__(self) -> bytes:
        if self._continue:
            self._continue = False
            self._owner.send_continue()
        while not self._chunks:
            error = self._error
            if error is not None:
                raise error
            if self._done:
                raise StopAsyncIteration
            waiter = self._loop.create_future()
            self._waiter = waiter
            await waiter
        data = self._chunks.popleft()
        self._queued -= len(data)
        if self._paused and self._queued <= self._high_water:
            self._paused = False
            self._owner.resume_for_stream()
        return data

    @property
    def complete(self) -> bool:
        return self._done

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # -- the connection's side --------------------------------------------------------

    def feed(self, data: bytes) -> None:
        self._chunks.append(data)
        self._queued += len(data)
        if not self._paused and self._queued > self._high_water:
            self._paused = True
            self._owner.pause_for_stream()
        self._wake()

    def end(self) -> None:
        self._done = True
        self._continue = False
        self._wake()

    def fail(self, error: BaseException) -> None:
        if self._done or self._error is not None:
            return
        self._error = error
        self._continue = False
        self._wake()
