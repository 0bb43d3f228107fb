"""TechEmpower's test types on Litestar, as its docs show (run under Granian, cwd benchmarks/tfb).

The same statements and rules as cello_app.py: one SELECT per row read, `queries`/`count`
clamped to 1..500 (not an integer: 1), one batched UPDATE, the shared fortunes template (rules.py).
Results are msgspec Structs named in the return types (Litestar serialises with msgspec).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from random import choices, randint, sample
from typing import Any

import msgspec
from dbpool import Pool
from litestar import Litestar, MediaType, get
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.template import TemplateConfig
from rules import (
    ADDED_FORTUNE,
    IDS,
    READ_FORTUNES,
    READ_ROW,
    READ_WORLD,
    TEMPLATE,
    WRITE_ROWS,
    by_message,
    clamp,
    jinja_environment,
)


class World(msgspec.Struct):
    id: int
    randomNumber: int  # noqa: N815 (TFB's key)


pool: Any = None  # dbpool.Pool, opened at start-up
cache: dict[int, World] = {}


@asynccontextmanager
async def lifespan(app: Litestar) -> AsyncIterator[None]:
    global pool
    pool = await Pool.open()
    async with pool.acquire() as connection:
        rows = await connection.fetch(READ_WORLD)
    cache.update((id, World(id, number)) for id, number in rows)
    yield
    await pool.close()


@get("/json")
async def json() -> dict[str, str]:
    return {"message": "Hello, World!"}


@get("/plaintext", media_type=MediaType.TEXT)
async def plaintext() -> bytes:
    return b"Hello, World!"


@get("/db")
async def single_query() -> World:
    id = randint(1, 10_000)
    return World(id, await pool.fetchval(READ_ROW, id))


# `queries` is a str, not an int: TFB wants 1 for a non-integer, where an int would be a 400.
@get("/queries")
async def multiple_queries(queries: str = "1") -> list[World]:
    ids = choices(IDS, k=clamp(queries))
    async with pool.acquire() as connection:
        rows = await connection.fetchmany(READ_ROW, [(id,) for id in ids])  # a query per row, pipelined
        return [World(id, number) for id, (number,) in zip(ids, rows)]


@get("/fortunes")
async def fortunes() -> Template:
    async with pool.acquire() as connection:
        rows: list[Any] = await connection.fetch(READ_FORTUNES)
    rows.append(ADDED_FORTUNE)
    rows.sort(key=by_message)
    return Template(TEMPLATE, context={"fortunes": rows})


@get("/updates")
async def updates(queries: str = "1") -> list[World]:
    ids = sorted(sample(IDS, clamp(queries)))  # in id order: concurrent batches cannot deadlock
    numbers = [randint(1, 10_000) for _ in ids]
    async with pool.acquire() as connection:
        # TFB: each row is read before it is updated (a query per row, pipelined).
        await connection.fetchmany(READ_ROW, [(id,) for id in ids])
        await connection.execute(WRITE_ROWS, ids, numbers)
    return [World(id, number) for id, number in zip(ids, numbers)]


@get("/cached-queries")
async def cached_queries(count: str = "1") -> list[World]:
    return [cache[id] for id in choices(IDS, k=clamp(count))]


app = Litestar(
    route_handlers=[json, plaintext, single_query, multiple_queries, fortunes, updates, cached_queries],
    lifespan=[lifespan],
    # Cello's Jinja2 settings for App(templates=...), handed to Litestar's own integration.
    template_config=TemplateConfig(instance=JinjaTemplateEngine.from_environment(jinja_environment())),
)
