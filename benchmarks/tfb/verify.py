"""TechEmpower's rules, checked against a running app before any load is measured.

Each test type is checked the way TFB's verifier does it, and more strictly where a rule is
cheap to check: status, `Server`/`Date`/`Content-Type` headers, the body's shape and values
against the database, the clamping of `queries`/`count`, the fortunes page row by row
(escaped, sorted, the added row), updates persisted, and the queries an app really sends,
counted with `pg_stat_statements` (one SELECT per row read: batching reads is against the
rules, caching them too except in cached-queries).

    problems = verify(port, db)   # [] when the app follows every rule
"""

from __future__ import annotations

import html
import json
import re
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message

from database import FORTUNES, Postgres

ADDED = (0, "Additional fortune added at request time.")
HELLO = "Hello, World!"
ROWS = re.compile(r"<tr><td>(.*?)</td><td>(.*?)</td></tr>", re.S)


@dataclass
class Answer:
    status: int
    headers: Message
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)


def get(port: int, path: str) -> Answer:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return Answer(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, error.headers, error.read())


class Checker:
    def __init__(self, port: int, db: Postgres) -> None:
        self.port = port
        self.db = db
        self.problems: list[str] = []

    def fail(self, path: str, why: str) -> None:
        self.problems.append(f"{path}: {why}")

    def fetch(self, path: str, content_type: str) -> Answer | None:
        """The answer when it is a 200 with Server, Date, a right Content-Length and
        ``content_type``'s media type (a charset, if any, UTF-8; required when
        ``content_type`` names one)."""
        answer = get(self.port, path)
        if answer.status != 200:
            self.fail(path, f"status {answer.status}, body {answer.body[:200]!r}")
            return None
        for name in ("Server", "Date"):
            if not answer.headers.get(name):
                self.fail(path, f"no {name} header")
        got = answer.headers.get("Content-Type") or ""
        media, *parameters = [part.strip().lower() for part in got.split(";")]
        charset_ok = all(p.replace(" ", "") == "charset=utf-8" for p in parameters)
        wanted, _, required = content_type.partition(";")
        if media != wanted or not charset_ok or (required and not parameters):
            self.fail(path, f"Content-Type {got!r}, expected {content_type!r}")
        length = answer.headers.get("Content-Length")
        if length is not None and int(length) != len(answer.body):
            self.fail(path, f"Content-Length {length} but {len(answer.body)} bytes")
        return answer

    def json_body(self, path: str) -> object:
        answer = self.fetch(path, "application/json")
        if answer is None:
            return None
        try:
            return answer.json()
        except ValueError:
            self.fail(path, f"not JSON: {answer.body[:200]!r}")
            return None

    def world_rows(self, path: str, value: object, count: int, world: dict[int, int] | None) -> None:
        if not isinstance(value, list) or len(value) != count:
            self.fail(path, f"expected a list of {count} rows, got {str(value)[:200]}")
            return
        for row in value:
            self.world_row(path, row, world)

    def world_row(self, path: str, row: object, world: dict[int, int] | None) -> None:
        if not isinstance(row, dict) or set(row) != {"id", "randomNumber"}:
            self.fail(path, f"a row is not {{id, randomNumber}}: {row!r}")
            return
        id, number = row["id"], row["randomNumber"]
        if not (isinstance(id, int) and isinstance(number, int) and 1 <= id <= 10_000 and 1 <= number <= 10_000):
            self.fail(path, f"id and randomNumber must be integers in 1..10000: {row!r}")
        elif world is not None and world.get(id) != number:
            self.fail(path, f"row {id}: randomNumber {number}, the database has {world.get(id)}")

    def statements(self, path: str, requests: int, expect: Callable[[int, int], str | None]) -> None:
        """Send ``requests`` requests and check the statements they sent: ``expect(selects,
        update_rows)`` returns what is wrong, if anything."""
        self.db.reset_statements()
        for _ in range(requests):
            get(self.port, path)
        selects = updated = 0
        for query, (calls, rows) in self.db.statement_calls().items():
            if "FROM WORLD" in query and query.startswith("SELECT"):
                selects += calls
            elif query.startswith("UPDATE WORLD"):
                updated += rows
        problem = expect(selects, updated)
        if problem:
            self.fail(path, f"after {requests} requests: {problem}")


def verify(port: int, db: Postgres) -> list[str]:
    c = Checker(port, db)

    answer = c.fetch("/json", "application/json")
    if answer is not None and answer.json() != {"message": HELLO}:
        c.fail("/json", f"body {answer.body[:200]!r}")
    answer = c.fetch("/plaintext", "text/plain")
    if answer is not None and answer.body != HELLO.encode():
        c.fail("/plaintext", f"body {answer.body[:200]!r}")

    world = db.world()
    c.world_row("/db", c.json_body("/db"), world)
    for query, count in [("", 1), ("?queries=", 1), ("?queries=foo", 1), ("?queries=0", 1), ("?queries=-3", 1)]:
        c.world_rows(f"/queries{query}", c.json_body(f"/queries{query}"), count, world)
    for query, count in [("?queries=1", 1), ("?queries=20", 20), ("?queries=500", 500), ("?queries=501", 500)]:
        c.world_rows(f"/queries{query}", c.json_body(f"/queries{query}"), count, world)

    fortunes(c)

    for query, count in [("?count=foo", 1), ("?count=0", 1), ("?count=20", 20), ("?count=501", 500), ("", 1)]:
        c.world_rows(f"/cached-queries{query}", c.json_body(f"/cached-queries{query}"), count, world)

    for query, count in [("?queries=foo", 1), ("?queries=0", 1), ("?queries=501", 500), ("?queries=20", 20)]:
        path = f"/updates{query}"
        rows = c.json_body(path)
        c.world_rows(path, rows, count, None)
        if isinstance(rows, list):
            now = db.world()
            shaped = [row for row in rows if isinstance(row, dict) and set(row) == {"id", "randomNumber"}]
            stale = [row for row in shaped if now.get(row["id"]) != row["randomNumber"]]
            if stale:
                c.fail(path, f"{len(stale)} of {len(rows)} updated rows not persisted, e.g. {stale[0]!r}")

    c.statements("/db", 50, lambda selects, _: None if selects >= 50 else f"{selects} SELECTs on world, expected 50")
    c.statements(
        "/queries?queries=20",
        20,
        lambda selects, _: None if selects >= 400 else f"{selects} SELECTs on world, expected 400 (one per row)",
    )
    c.statements(
        "/updates?queries=20",
        20,
        lambda selects, updated: (
            None
            if selects >= 400 and updated >= 400
            else f"{selects} SELECTs and {updated} rows updated, expected 400 of each"
        ),
    )
    c.statements(
        "/cached-queries?count=20",
        20,
        lambda selects, _: None if selects < 20 else f"{selects} SELECTs on world: the cache is not used",
    )
    return c.problems


def fortunes(c: Checker) -> None:
    answer = c.fetch("/fortunes", "text/html; charset=utf-8")
    if answer is None:
        return
    text = answer.body.decode("utf-8", "replace")
    rows = [(cell_id, cell_message) for cell_id, cell_message in ROWS.findall(re.sub(r">\s+<", "><", text))]
    expected = sorted([*FORTUNES, ADDED], key=lambda row: row[1])
    got = [(html.unescape(id), html.unescape(message)) for id, message in rows]
    if got != [(str(id), message) for id, message in expected]:
        c.fail("/fortunes", f"rows {got[:3]}... differ from the {len(expected)} sorted fortunes")
    if "<script>" in text or "&lt;script&gt;" not in text:
        c.fail("/fortunes", "the <script> fortune is not escaped")
    if not text.lstrip().lower().startswith("<!doctype html>"):
        c.fail("/fortunes", "not an HTML document")
