"""The connection pool every TechEmpower app of this directory uses: a fixed set of asyncpg
connections handed out in turn.

asyncpg's own ``Pool`` costs about 30 us of CPU per acquire and release under load (measured
on this machine with 32 tasks sharing 16 connections, one core: 63 us per acquire + fetch of
the fortunes + release, 36 us with this pool), more than the query itself: every acquire runs
under a timeout and every release in a shielded task. The apps here open their connections
once and never change
session state, so none of that is needed. What is kept: requests wait in turn when every
connection is busy, and a connection the server closed (while lent, or idle) is replaced, never
handed out. One whose query was cancelled (wrk drops requests in flight at the end of a run) is
given back as it is: asyncpg makes its next query wait until the cancellation is done.

Every app, Cello's and the peers', uses this same pool: the comparison stays one of frameworks.
"""

from __future__ import annotations

import asyncio
from collections import deque
from types import TracebackType
from typing import Any

import asyncpg
from rules import DSN, POOL_SIZE


class Pool:
    def __init__(self, dsn: str, connections: list[Any]) -> None:
        self._dsn = dsn
        self._idle: deque[Any] = deque(connections)
        self._waiters: deque[asyncio.Future[Any]] = deque()
        self._open: set[Any] = set(connections)
        self._replacing: set[asyncio.Task[None]] = set()

    @classmethod
    async def open(cls, dsn: str = DSN, size: int = POOL_SIZE) -> Pool:
        return cls(dsn, list(await asyncio.gather(*(asyncpg.connect(dsn) for _ in range(size)))))

    def acquire(self) -> Lease:
        """``async with pool.acquire() as connection:``, as with asyncpg's pool."""
        return Lease(self)

    async def fetchval(self, query: str, *args: Any) -> Any:
        async with self.acquire() as connection:
            return await connection.fetchval(query, *args)

    async def close(self) -> None:
        for task in list(self._replacing):
            task.cancel()
        await asyncio.gather(*self._replacing, return_exceptions=True)
        await asyncio.gather(*(connection.close() for connection in self._open), return_exceptions=True)

    # What a Lease calls: take a connection, then give it back, or discard it once closed.

    async def take(self) -> Any:
        idle = self._idle
        while idle:
            # The connection given back last: its backend process is the likeliest to be warm.
            connection = idle.pop()
            if not connection.is_closed():
                return connection
            self.discard(connection)
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # handed over just as we were cancelled
                self.give_back(waiter.result())
            raise

    def give_back(self, connection: Any) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        self._idle.append(connection)

    def discard(self, connection: Any) -> None:
        """Forget a closed connection; another is connected in the background."""
        self._open.discard(connection)
        task = asyncio.get_running_loop().create_task(self._replace())
        self._replacing.add(task)
        task.add_done_callback(self._replacing.discard)

    async def _replace(self) -> None:
        while True:
            try:
                connection = await asyncpg.connect(self._dsn)
            except (OSError, asyncpg.PostgresError):
                await asyncio.sleep(0.1)
                continue
            self._open.add(connection)
            self.give_back(connection)
            return


class Lease:
    __slots__ = ("_pool", "_connection")

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def __aenter__(self) -> Any:
        self._connection = await self._pool.take()
        return self._connection

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._connection.is_closed():
            self._pool.discard(self._connection)
        else:
            self._pool.give_back(self._connection)
