"""TechEmpower's test types on Sanic, as its docs show (run with Sanic's own server, cwd benchmarks/tfb).

The same statements and rules as cello_app.py: one SELECT per row read, `queries`/`count`
clamped to 1..500 (not an integer: 1), one batched UPDATE, the shared fortune.html template.
Responses are Sanic's `json`, `text` and `html` functions. Sanic's server sends neither a
Server nor a Date header, which TFB requires: a response middleware adds both (Sanic's TFB
entry adds them to each response).
"""

from __future__ import annotations

import os
import time
from operator import itemgetter
from pathlib import Path
from random import choices, randint, sample
from typing import Any
from wsgiref.handlers import format_date_time

import asyncpg
import jinja2
import sanic
from sanic import HTTPResponse, Request, Sanic, html, json, text
from sanic.response import BaseHTTPResponse

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

# Cello's Jinja2 settings for App(templates=...).
environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).resolve().parent / "templates"),
    autoescape=jinja2.select_autoescape(("html", "htm", "xml", "jinja")),
    auto_reload=False,
)
fortune_template = environment.get_template("fortune.html")

app = Sanic("tfb")
SERVER = f"Sanic/{sanic.__version__}"

pool: Any = None  # asyncpg.Pool, opened at start-up
cache: dict[int, dict[str, int]] = {}


@app.before_server_start
async def connect(app: Sanic[Any, Any]) -> None:
    global pool
    pool = await asyncpg.create_pool(DSN, min_size=POOL_SIZE, max_size=POOL_SIZE, reset=keep_session)
    async with pool.acquire() as connection:
        rows = await connection.fetch("SELECT id, randomnumber FROM world")
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
