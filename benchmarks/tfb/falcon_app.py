"""TechEmpower's test types on Falcon (ASGI), as its docs show (run under Granian, cwd benchmarks/tfb).

The same statements and rules as cello_app.py: one SELECT per row read, `queries`/`count`
clamped to 1..500 (not an integer: 1), one batched UPDATE, the shared fortunes template (rules.py).
Responses go through `resp.media` (Falcon's default JSON handler), as in Falcon's TFB entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from random import choices, randint, sample
from typing import Any

import falcon
import falcon.asgi
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

pool: Any = None  # dbpool.Pool, opened at start-up
cache: dict[int, dict[str, int]] = {}


class Database:
    """Middleware holding the pool for the ASGI lifespan (Falcon's start-up and shut-down hooks)."""

    async def process_startup(self, scope: Mapping[str, Any], event: Mapping[str, Any]) -> None:
        global pool
        pool = await Pool.open()
        async with pool.acquire() as connection:
            rows = await connection.fetch(READ_WORLD)
        cache.update((id, {"id": id, "randomNumber": number}) for id, number in rows)

    async def process_shutdown(self, scope: Mapping[str, Any], event: Mapping[str, Any]) -> None:
        await pool.close()


class Json:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.media = {"message": "Hello, World!"}


class Plaintext:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.content_type = falcon.MEDIA_TEXT
        resp.data = b"Hello, World!"


class SingleQuery:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        id = randint(1, 10_000)
        resp.media = {"id": id, "randomNumber": await pool.fetchval(READ_ROW, id)}


class MultipleQueries:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        ids = choices(IDS, k=clamp(req.get_param("queries", default="1")))
        async with pool.acquire() as connection:
            rows = await connection.fetchmany(READ_ROW, [(id,) for id in ids])  # a query per row, pipelined
            resp.media = [{"id": id, "randomNumber": number} for id, (number,) in zip(ids, rows)]


class Fortunes:
    template = environment.get_template(TEMPLATE)

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        async with pool.acquire() as connection:
            rows: list[Any] = await connection.fetch(READ_FORTUNES)
        rows.append(ADDED_FORTUNE)
        rows.sort(key=by_message)
        resp.content_type = falcon.MEDIA_HTML
        resp.text = self.template.render(fortunes=rows)


class Updates:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        ids = sorted(sample(IDS, clamp(req.get_param("queries", default="1"))))  # id order: no deadlocks
        numbers = [randint(1, 10_000) for _ in ids]
        async with pool.acquire() as connection:
            # TFB: each row is read before it is updated (a query per row, pipelined).
            await connection.fetchmany(READ_ROW, [(id,) for id in ids])
            await connection.execute(WRITE_ROWS, ids, numbers)
        resp.media = [{"id": id, "randomNumber": number} for id, number in zip(ids, numbers)]


class CachedQueries:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.media = [cache[id] for id in choices(IDS, k=clamp(req.get_param("count", default="1")))]


app = falcon.asgi.App(middleware=[Database()])
app.add_route("/json", Json())
app.add_route("/plaintext", Plaintext())
app.add_route("/db", SingleQuery())
app.add_route("/queries", MultipleQueries())
app.add_route("/fortunes", Fortunes())
app.add_route("/updates", Updates())
app.add_route("/cached-queries", CachedQueries())
