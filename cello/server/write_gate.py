"""Waiting for a transport that asked its writers to pause (asyncio's pause_writing)."""

from __future__ import annotations

import asyncio


class WriteGate:
    """Writers await ``wait()`` while the transport is paused; ``release()`` (from
    resume_writing, or when the connection is lost) lets every one of them go on."""

    __slots__ = ("_loop", "_waiter")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._waiter: asyncio.Future[None] | None = None

    async def wait(self) -> None:
        waiter = self._waiter
        if waiter is None:
            waiter = self._loop.create_future()
            self._waiter = waiter
        await waiter

    def release(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)
