"""TechEmpower's Framework Benchmarks test types on Cello, written as an application would be.

    TFB_DSN=postgresql://... cello build benchmarks/tfb/cello_app.py
    TFB_DSN=postgresql://... cello serve benchmarks/tfb/cello_app.py

The rules (https://github.com/TechEmpower/FrameworkBenchmarks/wiki/Project-Information-Framework-Tests-Overview):
every row read is its own query; `queries`/`count` is clamped to 1..500 (anything that is not
an integer counts as 1); fortunes get one row added at request time, are sorted by message
and escaped by the template; updates are persisted before the answer.
"""

from __future__ import annotations

import os
from operator import itemgetter
from random import choices, randint, sample
from typing import Any

import asyncpg
import msgspec

from cello import App, Response

app = App(templates="templates")

DSN = os.environ.get("TFB_DSN", "postgresql://benchmarkdbuser:benchmarkdbpass@127.0.0.1:5432/hello_world")
POOL_SIZE = int(os.environ.get("TFB_POOL_SIZE", "16"))

READ_ROW = "SELECT randomnumber FROM world WHERE id = $1"
READ_FORTUNES = "SELECT id, message FROM fortune"
# One statement writes the whole batch (TFB allows batched updates; the reads stay one per row).
WRITE_ROWS = (
    "UPDATE world SET randomnumber = new.randomnumber "
    "FROM unnest($1::int[], $2::int[]) AS new(id, randomnumber) WHERE world.id = new.id"
)
ADDED_FORTUNE = (0, "Additional fortune added at request time.")
by_message = itemgetter(1)


class World(msgspec.Struct):
    id: int
    randomNumber: int  # noqa: N815 (TFB's key)


pool: Any = None  # asyncpg.Pool, opened by each worker at start-up
cache: dict[int, World] = {}


async def keep_session(connection: Any) -> None:
    """The pool's reset on release: none. asyncpg's default sends `RESET ALL; UNLISTEN *; ...`
    on every release, a round trip per request; this app never changes session state."""


@app.on_startup
async def connect() -> None:
    global pool
    pool = await asyncpg.create_pool(DSN, min_size=POOL_SIZE, max_size=POOL_SIZE, reset=keep_session)
    async with pool.acquire() as connection:
        rows = await connection.fetch("SELECT id, randomnumber FROM world")
    cache.update((id, World(id, number)) for id, number in rows)


@app.on_shutdown
async def disconnect() -> None:
    await pool.close()


def clamp(queries: str) -> int:
    """TFB's rule for `queries` and `count`: not an integer -> 1, then clamped to 1..500."""
    try:
        value = int(queries)
    except ValueError:
        return 1
    return min(max(value, 1), 500)


IDS = range(1, 10_001)


@app.get("/json")
def json() -> dict[str, str]:
    return {"message": "Hello, World!"}


@app.get("/plaintext")
def plaintext() -> Response:
    return Response(b"Hello, World!", content_type="text/plain")


@app.get("/db")
async def single_query() -> World:
    id = randint(1, 10_000)
    return World(id, await pool.fetchval(READ_ROW, id))


@app.get("/queries")
async def multiple_queries(queries: str = "1") -> list[World]:
    ids = choices(IDS, k=clamp(queries))
    async with pool.acquire() as connection:
        rows = await connection.fetchmany(READ_ROW, [(id,) for id in ids])  # a query per row, pipelined
        return [World(id, number) for id, (number,) in zip(ids, rows)]


@app.get("/fortunes")
async def fortunes() -> Response:
    async with pool.acquire() as connection:
        rows: list[Any] = await connection.fetch(READ_FORTUNES)
    rows.append(ADDED_FORTUNE)
    rows.sort(key=by_message)
    return Response.template("fortune.html", fortunes=rows)


@app.get("/updates")
async def updates(queries: str = "1") -> list[World]:
    # Distinct ids (a batch never writes one row twice), in id order (concurrent batches lock
    # rows in the same order, so they cannot deadlock).
    ids = sorted(sample(IDS, clamp(queries)))
    numbers = [randint(1, 10_000) for _ in ids]
    async with pool.acquire() as connection:
        # TFB: each row is read before it is updated (a query per row, pipelined).
        await connection.fetchmany(READ_ROW, [(id,) for id in ids])
        await connection.execute(WRITE_ROWS, ids, numbers)
    return [World(id, number) for id, number in zip(ids, numbers)]


@app.get("/cached-queries")
def cached_queries(count: str = "1") -> list[World]:
    return [cache[id] for id in choices(IDS, k=clamp(count))]
