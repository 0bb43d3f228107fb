"""TechEmpower's test types on Falcon (ASGI), as its docs show (run under Granian, cwd benchmarks/tfb).

The same statements and rules as cello_app.py: one SELECT per row read, `queries`/`count`
clamped to 1..500 (not an integer: 1), one batched UPDATE, the shared fortune.html template.
Responses go through `resp.media` (Falcon's default JSON handler), as in Falcon's TFB entry.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from operator import itemgetter
from pathlib import Path
from random import choices, randint, sample
from typing import Any

import asyncpg
import falcon
import falcon.asgi
import jinja2

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

pool: Any = None  # asyncpg.Pool, opened at start-up
cache: dict[int, dict[str, int]] = {}


class Database:
    """Middleware holding the pool for the ASGI lifespan (Falcon's start-up and shut-down hooks)."""

    async def process_startup(self, scope: Mapping[str, Any], event: Mapping[str, Any]) -> None:
        global pool
        pool = await asyncpg.create_pool(DSN, min_size=POOL_SIZE, max_size=POOL_SIZE, reset=keep_session)
        async with pool.acquire() as connection:
            rows = await connection.fetch("SELECT id, randomnumber FROM world")
        cache.update((id, {"id": id, "randomNumber": number}) for id, number in rows)

    async def process_shutdown(self, scope: Mapping[str, Any], event: Mapping[str, Any]) -> None:
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
    template = environment.get_template("fortune.html")

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
