"""TechEmpower's test types (benchmarks/tfb) against a real PostgreSQL: Cello's app follows
TFB's rules on every server variant, and the verifier the benchmark runs first catches an app
that breaks them (each rule broken once by tests/apps/tfb_broken.py)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks" / "tfb"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from database import Postgres  # noqa: E402
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
