"""A throwaway PostgreSQL cluster holding TechEmpower's `hello_world` database.

Debian's PostgreSQL (installed with apt-get when missing) is initialised in a temporary
directory owned by the `postgres` user, listens on 127.0.0.1 only, on a free port, with
trust authentication and `pg_stat_statements` loaded (the verification counts each app's
queries with it). The schema and data are TFB's: `world` (10,000 rows, a random number in
1..10000 each) and `fortune` (TFB's 12 messages). Settings follow TFB's PostgreSQL image
where they matter for a benchmark: no synchronous commit, enough connections for every
pool.

    with Postgres.start(cpu=1) as db:
        db.dsn            # postgresql://benchmarkdbuser:benchmarkdbpass@127.0.0.1:PORT/hello_world
        db.reset_statements(); ...; db.statement_calls()

Nothing of it survives: stopping the server removes the directory.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import pinned  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "apps"))
from fortunes import FORTUNES  # noqa: E402  (TFB's 12 messages, as benchmarks/run.py serves them)
from support.ports import free_port  # noqa: E402

HERE = Path(__file__).resolve().parent
DATABASE = "hello_world"
USER = "benchmarkdbuser"
PASSWORD = "benchmarkdbpass"
WORLD_ROWS = 10_000


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


SCHEMA = f"""
CREATE TABLE world (
    id integer NOT NULL PRIMARY KEY,
    randomnumber integer NOT NULL DEFAULT 0
);
INSERT INTO world (id, randomnumber)
    SELECT x, least(floor(random() * 10000 + 1), 10000) FROM generate_series(1, {WORLD_ROWS}) AS x;
CREATE TABLE fortune (
    id integer NOT NULL PRIMARY KEY,
    message varchar(2048) NOT NULL
);
INSERT INTO fortune (id, message) VALUES
    {", ".join(f"({id}, {_sql_string(message)})" for id, message in FORTUNES)};
GRANT SELECT, UPDATE ON world TO {USER};
GRANT SELECT ON fortune TO {USER};
CREATE EXTENSION pg_stat_statements;
GRANT pg_read_all_stats TO {USER};
VACUUM ANALYZE;
"""

SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "max_connections": "1000",
    "shared_buffers": "256MB",
    "synchronous_commit": "off",
    "fsync": "off",  # a throwaway cluster: nothing to recover after a crash
    "full_page_writes": "off",
    "shared_preload_libraries": "pg_stat_statements",
    "pg_stat_statements.track": "all",
    "log_min_messages": "warning",
}


def _binaries() -> Path:
    """The newest PostgreSQL server installed (apt-get install postgresql when there is none)."""
    root = Path("/usr/lib/postgresql")
    if not root.exists() or not any(root.glob("*/bin/postgres")):
        print("installing PostgreSQL (apt-get)...", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "postgresql", "postgresql-contrib"], check=True, env=env)
    versions = sorted(root.glob("*/bin/postgres"), key=lambda p: int(p.parent.parent.name))
    if not versions:
        raise SystemExit("PostgreSQL is required: apt-get install postgresql")
    return versions[-1].parent


def _as_postgres() -> dict[str, Any]:
    """PostgreSQL refuses to run as root: its server programs run as the `postgres` user then
    (set in the child itself, so the process we hold is the server and gets our signals)."""
    return {"user": "postgres", "group": "postgres", "extra_groups": []} if os.geteuid() == 0 else {}


@dataclass
class Postgres:
    port: int
    directory: Path
    process: subprocess.Popen[bytes]
    bin: Path

    @property
    def dsn(self) -> str:
        return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{DATABASE}"

    @classmethod
    @contextmanager
    def start(cls, cpu: int | None = None) -> Iterator[Postgres]:
        bin = _binaries()
        directory = Path(tempfile.mkdtemp(prefix="cello-tfb-pg-"))
        if os.geteuid() == 0:
            shutil.chown(directory, "postgres", "postgres")
        data = directory / "data"
        try:
            subprocess.run(
                [str(bin / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8"]
                + ["--locale=C.UTF-8", "--no-sync"],
                check=True,
                stdout=subprocess.DEVNULL,
                cwd=directory,
                **_as_postgres(),
            )
            port = free_port()
            options = [f"-c{key}={value}" for key, value in SETTINGS.items()]
            argv = [str(bin / "postgres"), "-D", str(data), "-p", str(port), "-k", str(directory), *options]
            log = open(directory / "postgres.log", "wb")  # noqa: SIM115
            process = subprocess.Popen(
                pinned(cpu, argv) if cpu is not None else argv, stderr=log, cwd=directory, **_as_postgres()
            )
            log.close()
            db = cls(port, directory, process, bin)
            try:
                db._wait_ready()
                db.psql(f"CREATE USER {USER} PASSWORD '{PASSWORD}'")
                db.psql(f"CREATE DATABASE {DATABASE}")
                db.psql(SCHEMA, database=DATABASE)
                yield db
            finally:
                db._stop()
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            ready = subprocess.run(
                [str(self.bin / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)], check=False
            )
            if ready.returncode == 0:
                return
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = (self.directory / "postgres.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"PostgreSQL did not start: {log}")
            time.sleep(0.1)

    def _stop(self) -> None:
        if self.process.poll() is None:
            # SIGINT is PostgreSQL's fast shutdown: clients cut off, no checkpoint wait.
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL as the superuser, statement by statement; the rows come back unaligned, one
        per line, `|` between fields."""
        result = subprocess.run(
            [str(self.bin / "psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"]
            + ["-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database, "-f", "-"],
            input=sql,
            check=False,
            capture_output=True,
            text=True,
        )
        if result.returncode:
            raise RuntimeError(f"psql failed: {result.stderr.strip()}\nSQL: {sql[:300]}")
        return result.stdout

    def refresh(self) -> None:
        """Rewrite `world` without the dead rows earlier /updates runs left: each framework
        starts on the same compact table (TFB gives each a fresh database), not on the bloat
        of the one measured before it."""
        self.psql("VACUUM FULL ANALYZE world", DATABASE)

    def reset_statements(self) -> None:
        self.psql("SELECT pg_stat_statements_reset()", DATABASE)

    def statement_calls(self) -> dict[str, tuple[int, int]]:
        """(calls, rows) per normalised statement on `hello_world` since the last reset
        (upper-cased, whitespace collapsed), for counting an app's reads and writes."""
        rows = self.psql(
            "SELECT regexp_replace(s.query, '\\s+', ' ', 'g'), s.calls, s.rows FROM pg_stat_statements s "
            "JOIN pg_database d ON d.oid = s.dbid "
            f"WHERE d.datname = '{DATABASE}'",
            DATABASE,
        )
        counts: dict[str, tuple[int, int]] = {}
        for line in rows.splitlines():
            query, calls, affected = line.rsplit("|", 2)
            key = query.strip().upper()
            before = counts.get(key, (0, 0))
            counts[key] = (before[0] + int(calls), before[1] + int(affected))
        return counts

    def world(self) -> dict[int, int]:
        """id -> randomNumber of every `world` row."""
        rows = self.psql("SELECT id, randomnumber FROM world", DATABASE)
        return {int(a): int(b) for a, b in (line.split("|") for line in rows.splitlines())}


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    # A cluster to try the apps by hand: prints the DSN and runs until SIGINT or SIGTERM (set
    # here: a background job of a non-interactive shell would ignore SIGINT), then removes it.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        with Postgres.start() as db:
            print(f"TFB_DSN={db.dsn}", flush=True)
            while True:
                signal.pause()
    except KeyboardInterrupt:
        pass
