"""TechEmpower's Framework Benchmarks test types on Cello, written as an application would be.

    TFB_DSN=postgresql://... cello build benchmarks/tfb/cello_app.py
    TFB_DSN=postgresql://... cello serve benchmarks/tfb/cello_app.py

The rules (https://github.com/TechEmpower/FrameworkBenchmarks/wiki/Project-Information-Framework-Tests-Overview):
every row read is its own query; `queries`/`count` is clamped to 1..500 (anything that is not
an integer counts as 1); fortunes get one row added at request time, are sorted by message
and escaped by the template; updates are persisted before the answer.
"""

from __future__ import annotations

from random import choices, randint, sample
from typing import Any

import msgspec
from dbpool import Pool
from rules import (
    ADDED_FORTUNE,
    IDS,
    READ_FORTUNES,
    READ_ROW,
    READ_WORLD,
    TEMPLATE,
    TEMPLATES,
    WRITE_ROWS,
    by_message,
    clamp,
)

from cello import App, Response

app = App(templates=TEMPLATES)


class World(msgspec.Struct):
    id: int
    randomNumber: int  # noqa: N815 (TFB's key)


pool: Any = None  # dbpool.Pool, opened by each worker at start-up
cache: dict[int, World] = {}


@app.on_startup
async def connect() -> None:
    global pool
    pool = await Pool.open()
    async with pool.acquire() as connection:
        rows = await connection.fetch(READ_WORLD)
    cache.update((id, World(id, number)) for id, number in rows)


@app.on_shutdown
async def disconnect() -> None:
    await pool.close()


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
    return Response.template(TEMPLATE, fortunes=rows)


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
