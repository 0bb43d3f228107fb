"""TechEmpower's test types (benchmarks/tfb) against a real PostgreSQL: Cello's app follows
TFB's rules on every server variant, and the verifier the benchmark runs first catches an app
that breaks them (each rule broken once by tests/apps/tfb_broken.py)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks" / "tfb"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from database import Postgres  # noqa: E402
from dbpool import Pool  # noqa: E402
from support.servers import RunningServer  # noqa: E402
from verify import verify  # noqa: E402


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    with Postgres.start() as db:
        yield db


def test_the_cello_app_follows_the_rules(
    variant: tuple[str, str], postgres: Postgres, serve_app: Callable[..., RunningServer]
) -> None:
    http, router = variant
    server = serve_app("benchmarks/tfb/cello_app.py", http, router, env={"TFB_DSN": postgres.dsn})
    assert verify(server.port, postgres) == []


def test_the_verifier_catches_each_broken_rule(postgres: Postgres, serve_app: Callable[..., RunningServer]) -> None:
    server = serve_app("tests/apps/tfb_broken.py", env={"TFB_DSN": postgres.dsn})
    problems = verify(server.port, postgres)
    found = "\n".join(problems)
    assert "/json: body" in found
    assert "/plaintext: Content-Type 'application/octet-stream'" in found
    assert "/db: row 1: randomNumber" in found
    assert "/queries?queries=20: after 20 requests: 20 SELECTs on world, expected 400 (one per row)" in found
    assert "/fortunes: rows" in found and "/fortunes: the <script> fortune is not escaped" in found
    assert "/updates?queries=20: id and randomNumber must be integers in 1..10000" in found
    assert "/updates?queries=20: 20 of 20 updated rows not persisted" in found
    assert "/cached-queries?count=20: after 20 requests: 400 SELECTs on world: the cache is not used" in found


def test_the_database_holds_tfb_data(postgres: Postgres) -> None:
    postgres.refresh()  # what the runner does between frameworks: the rows stay as they were
    world = postgres.world()
    assert sorted(world) == list(range(1, 10_001))
    assert all(1 <= number <= 10_000 for number in world.values())
    assert postgres.psql("SELECT count(*) FROM fortune", "hello_world").strip() == "12"


async def _closed(connection: Any) -> bool:
    """Whether ``connection`` is closed after a while: a client learns that the server ended
    its session only when it reads the server's farewell."""
    for _ in range(100):
        if connection.is_closed():
            break
        await asyncio.sleep(0.02)
    return bool(connection.is_closed())


async def test_the_apps_pool_serves_in_turn_and_replaces_a_closed_connection(postgres: Postgres) -> None:
    pool = await Pool.open(postgres.dsn, size=2)
    try:
        # Five times more requests than connections: they wait in turn, each gets its answer.
        assert await asyncio.gather(*(pool.fetchval("SELECT $1::int", n) for n in range(10))) == list(range(10))

        # Cancelled mid-query (as wrk leaves requests at the end of a run): the connection
        # comes back and serves again once the cancellation is done.
        slow = asyncio.create_task(pool.fetchval("SELECT pg_sleep(3)"))
        await asyncio.sleep(0.3)
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        async with pool.acquire() as first, pool.acquire() as second:
            assert await first.fetchval("SELECT 1") == 1 and await second.fetchval("SELECT 2") == 2
            # Cancelled while waiting for a connection: none is lost with it.
            waiting = asyncio.create_task(pool.fetchval("SELECT 3"))
            await asyncio.sleep(0.05)
            assert not waiting.done()
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            # The server ends one connection's session: it is replaced, not handed out closed.
            killed = await first.fetchval("SELECT pg_backend_pid()")
            await second.execute(f"SELECT pg_terminate_backend({killed})")
            await _closed(first)
            with pytest.raises(asyncpg.InterfaceError, match="closed"):
                await first.fetchval("SELECT 1")
        # The replacement connects in the background; meanwhile the other connection serves.
        for _ in range(50):
            pids = set(await asyncio.gather(*(pool.fetchval("SELECT pg_backend_pid()") for _ in range(6))))
            assert killed not in pids
            if len(pids) == 2:
                break
            await asyncio.sleep(0.1)
        assert len(pids) == 2

        # Idle when the server ends its session: skipped (and replaced), not handed out.
        async with pool.acquire() as first, pool.acquire() as second:
            idle, idle_pid = second, await second.fetchval("SELECT pg_backend_pid()")
        assert await pool.fetchval(f"SELECT pg_terminate_backend({idle_pid})") is True
        assert await _closed(idle)
        assert await asyncio.gather(*(pool.fetchval("SELECT $1::int", n) for n in range(4))) == list(range(4))
    finally:
        await pool.close()
