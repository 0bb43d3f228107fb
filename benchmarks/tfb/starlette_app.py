"""TechEmpower's test types on Starlette, as its docs show (run under Granian, cwd benchmarks/tfb).

The same statements and rules as cello_app.py: one SELECT per row read, `queries`/`count`
clamped to 1..500 (not an integer: 1), one batched UPDATE, the shared fortune.html template.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from operator import itemgetter
from pathlib import Path
from random import choices, randint, sample
from typing import Any

import asyncpg
import jinja2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

DSN = os.environ.get("TFB_DSN", "postgresql://benchmarkdbuser:benchmarkdbpass@127.0.0.1:5432/hello_world")
POOL_SIZE = int(os.environ.get("TFB_POOL_SIZE", "16"))

READ_ROW = "SELECT randomnumber FROM world WHERE id = $1"
READ_FORTUNES = "SELECT id, message FROM fortune"
WRITE_ROWS = (
    "UPDATE world SET randomnumber = new.randomnumber "
    "FROM unnest($1::int[], $2::int[]) AS new(id, randomnumber) WHERE world.id = new.id"
)
ADDED_FORTUNE = (0, "Additional fortune added at request time.")
by_message = itemgetter(1)

# Cello's Jinja2 settings for App(templates=...), handed to Starlette's own integration.
templates = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).resolve().parent / "templates"),
        autoescape=jinja2.select_autoescape(("html", "htm", "xml", "jinja")),
        auto_reload=False,
    )
)

pool: Any = None  # asyncpg.Pool, opened at start-up
cache: dict[int, dict[str, int]] = {}


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    global pool
    pool = await asyncpg.create_pool(DSN, min_size=POOL_SIZE, max_size=POOL_SIZE, reset=keep_session)
    async with pool.acquire() as connection:
        rows = await connection.fetch("SELECT id, randomnumber FROM world")
    cache.update((id, {"id": id, "randomNumber": number}) for id, number in rows)
    yield
    await pool.close()


async def keep_session(connection: Any) -> None:
    """The pool's reset on release: none. asyncpg's default sends `RESET ALL; UNLISTEN *; ...`
    on every release, a round trip per request; this app never changes session state."""


def clamp(queries: str) -> int:
    """TFB's rule for `queries` and `count`: not an integer -> 1, then clamped to 1..500."""
    try:
        value = int(queries)
    except ValueError:
        return 1
    return min(max(value, 1), 500)


IDS = range(1, 10_001)


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
    return templates.TemplateResponse(request, "fortune.html", {"fortunes": rows})


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
