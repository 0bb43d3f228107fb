"""TechEmpower's test types on Starlette, as its docs show (run under Granian, cwd benchmarks/tfb).

The same statements and rules as cello_app.py: one SELECT per row read, `queries`/`count`
clamped to 1..500 (not an integer: 1), one batched UPDATE, the shared fortunes template (rules.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from random import choices, randint, sample
from typing import Any

from dbpool import Pool
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
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

# Cello's Jinja2 settings for App(templates=...), handed to Starlette's own integration.
templates = Jinja2Templates(env=jinja_environment())

pool: Any = None  # dbpool.Pool, opened at start-up
cache: dict[int, dict[str, int]] = {}


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    global pool
    pool = await Pool.open()
    async with pool.acquire() as connection:
        rows = await connection.fetch(READ_WORLD)
    cache.update((id, {"id": id, "randomNumber": number}) for id, number in rows)
    yield
    await pool.close()


async def json(request: Request) -> JSONResponse:
    return JSONResponse({"message": "Hello, World!"})


async def plaintext(request: Request) -> PlainTextResponse:
    return PlainTextResponse(b"Hello, World!")


async def single_query(request: Request) -> JSONResponse:
    id = randint(1, 10_000)
    return JSONResponse({"id": id, "randomNumber": await pool.fetchval(READ_ROW, id)})


async def multiple_queries(request: Request) -> JSONResponse:
    ids = choices(IDS, k=clamp(request.query_params.get("queries", "1")))
    async with pool.acquire() as connection:
        rows = await connection.fetchmany(READ_ROW, [(id,) for id in ids])  # a query per row, pipelined
        return JSONResponse([{"id": id, "randomNumber": number} for id, (number,) in zip(ids, rows)])


async def fortunes(request: Request) -> Response:
    async with pool.acquire() as connection:
        rows: list[Any] = await connection.fetch(READ_FORTUNES)
    rows.append(ADDED_FORTUNE)
    rows.sort(key=by_message)
    return templates.TemplateResponse(request, TEMPLATE, {"fortunes": rows})


async def updates(request: Request) -> JSONResponse:
    ids = sorted(sample(IDS, clamp(request.query_params.get("queries", "1"))))  # id order: no deadlocks
    numbers = [randint(1, 10_000) for _ in ids]
    async with pool.acquire() as connection:
        # TFB: each row is read before it is updated (a query per row, pipelined).
        await connection.fetchmany(READ_ROW, [(id,) for id in ids])
        await connection.execute(WRITE_ROWS, ids, numbers)
    return JSONResponse([{"id": id, "randomNumber": number} for id, number in zip(ids, numbers)])


async def cached_queries(request: Request) -> JSONResponse:
    return JSONResponse([cache[id] for id in choices(IDS, k=clamp(request.query_params.get("count", "1")))])


app = Starlette(
    routes=[
        Route("/json", json),
        Route("/plaintext", plaintext),
        Route("/db", single_query),
        Route("/queries", multiple_queries),
        Route("/fortunes", fortunes),
        Route("/updates", updates),
        Route("/cached-queries", cached_queries),
    ],
    lifespan=lifespan,
)
