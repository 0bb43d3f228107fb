"""TechEmpower's test types on Sanic, as its docs show (run with Sanic's own server, cwd benchmarks/tfb).

The same statements and rules as cello_app.py: one SELECT per row read, `queries`/`count`
clamped to 1..500 (not an integer: 1), one batched UPDATE, the shared fortunes template (rules.py).
Responses are Sanic's `json`, `text` and `html` functions. Sanic's server sends neither a
Server nor a Date header, which TFB requires: a response middleware adds both (Sanic's TFB
entry adds them to each response).
"""

from __future__ import annotations

import time
from random import choices, randint, sample
from typing import Any
from wsgiref.handlers import format_date_time

import sanic
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
from sanic import HTTPResponse, Request, Sanic, html, json, text
from sanic.response import BaseHTTPResponse

# Cello's Jinja2 settings for App(templates=...).
environment = jinja_environment()
fortune_template = environment.get_template(TEMPLATE)

app = Sanic("tfb")
SERVER = f"Sanic/{sanic.__version__}"

pool: Any = None  # dbpool.Pool, opened at start-up
cache: dict[int, dict[str, int]] = {}


@app.before_server_start
async def connect(app: Sanic[Any, Any]) -> None:
    global pool
    pool = await Pool.open()
    async with pool.acquire() as connection:
        rows = await connection.fetch(READ_WORLD)
    cache.update((id, {"id": id, "randomNumber": number}) for id, number in rows)


@app.after_server_stop
async def disconnect(app: Sanic[Any, Any]) -> None:
    await pool.close()


date = (0, "")  # (second, its HTTP date), formatted once a second


async def server_and_date(request: Request, response: BaseHTTPResponse) -> None:
    global date
    now = int(time.time())
    if now != date[0]:
        date = (now, format_date_time(now))
    response.headers["Server"] = SERVER
    response.headers["Date"] = date[1]


app.register_middleware(server_and_date, "response")


@app.get("/json")
async def json_test(request: Request) -> HTTPResponse:
    return json({"message": "Hello, World!"})


@app.get("/plaintext")
async def plaintext(request: Request) -> HTTPResponse:
    return text("Hello, World!")


@app.get("/db")
async def single_query(request: Request) -> HTTPResponse:
    id = randint(1, 10_000)
    return json({"id": id, "randomNumber": await pool.fetchval(READ_ROW, id)})


@app.get("/queries")
async def multiple_queries(request: Request) -> HTTPResponse:
    ids = choices(IDS, k=clamp(request.args.get("queries", "1")))
    async with pool.acquire() as connection:
        rows = await connection.fetchmany(READ_ROW, [(id,) for id in ids])  # a query per row, pipelined
        return json([{"id": id, "randomNumber": number} for id, (number,) in zip(ids, rows)])


@app.get("/fortunes")
async def fortunes(request: Request) -> HTTPResponse:
    async with pool.acquire() as connection:
        rows: list[Any] = await connection.fetch(READ_FORTUNES)
    rows.append(ADDED_FORTUNE)
    rows.sort(key=by_message)
    return html(fortune_template.render(fortunes=rows))


@app.get("/updates")
async def updates(request: Request) -> HTTPResponse:
    ids = sorted(sample(IDS, clamp(request.args.get("queries", "1"))))  # id order: no deadlocks
    numbers = [randint(1, 10_000) for _ in ids]
    async with pool.acquire() as connection:
        # TFB: each row is read before it is updated (a query per row, pipelined).
        await connection.fetchmany(READ_ROW, [(id,) for id in ids])
        await connection.execute(WRITE_ROWS, ids, numbers)
    return json([{"id": id, "randomNumber": number} for id, number in zip(ids, numbers)])


@app.get("/cached-queries")
async def cached_queries(request: Request) -> HTTPResponse:
    return json([cache[id] for id in choices(IDS, k=clamp(request.args.get("count", "1")))])
