"""A TechEmpower app that breaks one rule per test type, for tests/test_tfb.py: the
verifier (benchmarks/tfb/verify.py) must catch every one of them."""

from __future__ import annotations

import os
from typing import Any

import asyncpg

from cello import App, Response

app = App()
pool: Any = None


@app.on_startup
async def connect() -> None:
    global pool
    pool = await asyncpg.create_pool(os.environ["TFB_DSN"], min_size=1, max_size=2)


@app.get("/json")
def json_() -> dict[str, str]:
    return {"message": "Hello, world"}  # wrong text


@app.get("/plaintext")
def plaintext() -> bytes:
    return b"Hello, World!"  # application/octet-stream


@app.get("/db")
async def single_query() -> dict[str, int]:
    number = await pool.fetchval("SELECT randomnumber FROM world WHERE id = 1")
    return {"id": 1, "randomNumber": number % 10_000 + 1}  # in range, but not what the row holds


@app.get("/queries")
async def multiple_queries(queries: str = "1") -> list[dict[str, int]]:
    count = min(max(int(queries) if queries.isdigit() else 1, 1), 500)
    ids = list(range(1, count + 1))
    # Every row in one query: against the rules (one query per row).
    rows = await pool.fetch("SELECT id, randomnumber FROM world WHERE id = ANY($1)", ids)
    return [{"id": id, "randomNumber": number} for id, number in rows]


@app.get("/fortunes")
async def fortunes() -> Response:
    rows = await pool.fetch("SELECT id, message FROM fortune ORDER BY message")  # no added row
    cells = "".join(f"<tr><td>{id}</td><td>{message}</td></tr>" for id, message in rows)  # not escaped
    return Response.html(f"<!DOCTYPE html><html><body><table>{cells}</table></body></html>")


@app.get("/updates")
async def updates(queries: str = "1") -> list[dict[str, int]]:
    count = min(max(int(queries) if queries.isdigit() else 1, 1), 500)
    rows = []
    for id in range(1, count + 1):
        await pool.fetchval("SELECT randomnumber FROM world WHERE id = $1", id)
        rows.append({"id": id, "randomNumber": 10_001})  # out of range, and never written
    return rows


@app.get("/cached-queries")
async def cached_queries(count: str = "1") -> list[dict[str, int]]:
    number = min(max(int(count) if count.isdigit() else 1, 1), 500)
    rows = []
    for id in range(1, number + 1):  # no cache: the database every time
        rows.append({"id": id, "randomNumber": await pool.fetchval("SELECT randomnumber FROM world WHERE id = $1", id)})
    return rows
