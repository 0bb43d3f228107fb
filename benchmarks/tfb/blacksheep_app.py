"""TechEmpower's test types on BlackSheep, as its docs show (run under Granian, cwd benchmarks/tfb).

The same statements and rules as cello_app.py: one SELECT per row read, `queries`/`count`
clamped to 1..500 (not an integer: 1), one batched UPDATE, the shared fortune.html template.
Responses are BlackSheep's `json`, `text` and `html` functions; query parameters are bound
from the handlers' signatures.
"""

from __future__ import annotations

import os
from operator import itemgetter
from pathlib import Path
from random import choices, randint, sample
from typing import Any

import asyncpg
import jinja2
from blacksheep import Application, Response, html, json, text

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

app = Application()
get = app.router.get

pool: Any = None  # asyncpg.Pool, opened at start-up
cache: dict[int, dict[str, int]] = {}


async def connect(application: Application) -> None:
    global pool
    pool = await asyncpg.create_pool(DSN, min_size=POOL_SIZE, max_size=POOL_SIZE, reset=keep_session)
    async with pool.acquire() as connection:
        rows = await connection.fetch("SELECT id, randomnumber FROM world")
    cache.update((id, {"id": id, "randomNumber": number}) for id, number in rows)


async def disconnect(application: Application) -> None:
    await pool.close()


app.on_start += connect
app.on_stop += disconnect


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


@get("/json")
async def json_test() -> Response:
    return json({"message": "Hello, World!"})


@get("/plaintext")
async def plaintext() -> Response:
    return text("Hello, World!")


@get("/db")
async def single_query() -> Response:
    id = randint(1, 10_000)
    return json({"id": id, "randomNumber": await pool.fetchval(READ_ROW, id)})


# `queries` is a str, not an int: TFB wants 1 for a non-integer, where an int would be a 400.
@get("/queries")
async def multiple_queries(queries: str = "1") -> Response:
    ids = choices(IDS, k=clamp(queries))
    async with pool.acquire() as connection:
        rows = await connection.fetchmany(READ_ROW, [(id,) for id in ids])  # a query per row, pipelined
        return json([{"id": id, "randomNumber": number} for id, (number,) in zip(ids, rows)])


@get("/fortunes")
async def fortunes() -> Response:
    async with pool.acquire() as connection:
        rows: list[Any] = await connection.fetch(READ_FORTUNES)
    rows.append(ADDED_FORTUNE)
    rows.sort(key=by_message)
    return html(fortune_template.render(fortunes=rows))


@get("/updates")
async def updates(queries: str = "1") -> Response:
    ids = sorted(sample(IDS, clamp(queries)))  # in id order: concurrent batches cannot deadlock
    numbers = [randint(1, 10_000) for _ in ids]
    async with pool.acquire() as connection:
        # TFB: each row is read before it is updated (a query per row, pipelined).
        await connection.fetchmany(READ_ROW, [(id,) for id in ids])
        await connection.execute(WRITE_ROWS, ids, numbers)
    return json([{"id": id, "randomNumber": number} for id, number in zip(ids, numbers)])


@get("/cached-queries")
async def cached_queries(count: str = "1") -> Response:
    return json([cache[id] for id in choices(IDS, k=clamp(count))])
