"""TechEmpower's test types on FastAPI, as its docs show (run under Granian, cwd benchmarks/tfb).

The same statements and rules as cello_app.py: one SELECT per row read, `queries`/`count`
clamped to 1..500 (not an integer: 1), one batched UPDATE, the shared fortunes template (rules.py).
Results are Pydantic models named in the return types: FastAPI serialises them with Pydantic
(its ORJSONResponse/UJSONResponse, which TFB's entry once used, are deprecated for that).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from random import choices, randint, sample
from typing import Any

from dbpool import Pool
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel
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

# Cello's Jinja2 settings for App(templates=...), handed to FastAPI's own integration.
templates = Jinja2Templates(env=jinja_environment())


class Message(BaseModel):
    message: str


class World(BaseModel):
    id: int
    randomNumber: int  # noqa: N815 (TFB's key)


pool: Any = None  # dbpool.Pool, opened at start-up
cache: dict[int, World] = {}


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    global pool
    pool = await Pool.open()
    async with pool.acquire() as connection:
        rows = await connection.fetch(READ_WORLD)
    cache.update((id, World(id=id, randomNumber=number)) for id, number in rows)
    yield
    await pool.close()


app = FastAPI(lifespan=lifespan)


@app.get("/json")
async def json() -> Message:
    return Message(message="Hello, World!")


@app.get("/plaintext", response_class=PlainTextResponse)
async def plaintext() -> PlainTextResponse:
    return PlainTextResponse(b"Hello, World!")


@app.get("/db")
async def single_query() -> World:
    id = randint(1, 10_000)
    return World(id=id, randomNumber=await pool.fetchval(READ_ROW, id))


# `queries` is a str, not an int: TFB wants 1 for a non-integer, where an int would be a 422.
@app.get("/queries")
async def multiple_queries(queries: str = "1") -> list[World]:
    ids = choices(IDS, k=clamp(queries))
    async with pool.acquire() as connection:
        rows = await connection.fetchmany(READ_ROW, [(id,) for id in ids])  # a query per row, pipelined
        return [World(id=id, randomNumber=number) for id, (number,) in zip(ids, rows)]


@app.get("/fortunes", response_class=HTMLResponse)
async def fortunes(request: Request) -> HTMLResponse:
    async with pool.acquire() as connection:
        rows: list[Any] = await connection.fetch(READ_FORTUNES)
    rows.append(ADDED_FORTUNE)
    rows.sort(key=by_message)
    return templates.TemplateResponse(request, TEMPLATE, {"fortunes": rows})


@app.get("/updates")
async def updates(queries: str = "1") -> list[World]:
    ids = sorted(sample(IDS, clamp(queries)))  # in id order: concurrent batches cannot deadlock
    numbers = [randint(1, 10_000) for _ in ids]
    async with pool.acquire() as connection:
        # TFB: each row is read before it is updated (a query per row, pipelined).
        await connection.fetchmany(READ_ROW, [(id,) for id in ids])
        await connection.execute(WRITE_ROWS, ids, numbers)
    return [World(id=id, randomNumber=number) for id, number in zip(ids, numbers)]


@app.get("/cached-queries")
async def cached_queries(count: str = "1") -> list[World]:
    return [cache[id] for id in choices(IDS, k=clamp(count))]
