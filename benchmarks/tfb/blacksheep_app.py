"""TechEmpower's test types on BlackSheep, as its docs show (run under Granian, cwd benchmarks/tfb).

The same statements and rules as cello_app.py: one SELECT per row read, `queries`/`count`
clamped to 1..500 (not an integer: 1), one batched UPDATE, the shared fortunes template (rules.py).
Responses are BlackSheep's `json`, `text` and `html` functions; query parameters are bound
from the handlers' signatures.
"""

from __future__ import annotations

from random import choices, randint, sample
from typing import Any

from blacksheep import Application, Response, html, json, text
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

# Cello's Jinja2 settings for App(templates=...).
environment = jinja_environment()
fortune_template = environment.get_template(TEMPLATE)

app = Application()
get = app.router.get

pool: Any = None  # dbpool.Pool, opened at start-up
cache: dict[int, dict[str, int]] = {}


async def connect(application: Application) -> None:
    global pool
    pool = await Pool.open()
    async with pool.acquire() as connection:
        rows = await connection.fetch(READ_WORLD)
    cache.update((id, {"id": id, "randomNumber": number}) for id, number in rows)


async def disconnect(application: Application) -> None:
    await pool.close()


app.on_start += connect
app.on_stop += disconnect


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
