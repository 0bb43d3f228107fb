"""TechEmpower's Framework Benchmarks test types on a real PostgreSQL: Cello and the Python field.

    .venv/bin/python benchmarks/tfb/run.py [--seconds 5] [--runs 3] [--only cello blacksheep]
                                           [--tests json fortunes] [--workers 1 2] [--write]

Sets everything up itself: wrk, a throwaway PostgreSQL cluster with TFB's `hello_world`
database (database.py), asyncpg in Cello's venv, the peers' venv (benchmarks/.venv-peers),
Cello's compiled routes (`cello build`). Then every app is checked against TFB's rules
(verify.py: shapes, headers, clamping, escaping, persistence, queries counted with
pg_stat_statements) and only the apps that pass are measured.

Test types, as TFB runs them: json and fortunes at 64 connections; plaintext pipelined 16
deep and the database tests at 256 connections; /queries and /updates with 20 rows,
/cached-queries with 100.

With one worker per framework the server runs on CPU 0, and wrk and PostgreSQL share CPU 1;
with two workers (`--workers 2`, both cores) nothing is pinned and everything shares the
machine. All servers are started at once and wait while the others are measured; each test
type is measured for every framework in turn (the order rotates from test to test and run to
run); each figure is the median of --runs runs, each after a warm-up.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from common import (  # noqa: E402
    PEERS_VENV,
    ROOT,
    TFB_END,
    TFB_START,
    Server,
    WrkResult,
    ensure_apt_tool,
    ensure_peers,
    machine_facts,
    median_result,
    table,
    wrk_figure,
)
from database import Postgres  # noqa: E402
from peers import PEERS, Peer  # noqa: E402
from support.ports import free_port  # noqa: E402
from verify import verify  # noqa: E402

CELLO_BIN = ROOT / ".venv" / "bin"
BUILD = ROOT / "benchmarks" / "build" / "tfb"
RESULTS = ROOT / "benchmarks" / "results" / "tfb.json"
DOCS = ROOT / "docs" / "benchmarks.md"
PIPELINE = HERE / "pipeline.lua"


# What the table's reader must know: what is the same in every app, and where the database
# (not the framework) sets the limit.
SHARED = """\
Every app runs the same SQL, TFB's rules and the same fortunes template with the same Jinja2
settings (benchmarks/tfb/rules.py), on asyncpg with the same pool of 16 connections per worker
(benchmarks/tfb/dbpool.py: asyncpg's own pool cost about 30 us of CPU per request in every app).
What differs is each framework's own code: server, routing, parameters, responses, JSON. With
one worker, queries and updates are bound by CPU 1, where PostgreSQL spends about 240 us
(queries) and 500-700 us (updates) per request beside wrk: every framework meets that limit,
and there their figures differ by this machine's noise more than by their code."""


@dataclass(frozen=True)
class Test:
    key: str
    path: str
    connections: int
    pipeline: int = 0  # requests sent at once per connection (0: one at a time)
    world: bool = False  # reads or writes `world`: measured on a table without dead rows

    @property
    def label(self) -> str:
        deep = f", pipelined {self.pipeline} deep" if self.pipeline else ""
        return f"{self.key}: GET {self.path} ({self.connections} connections{deep})"


TESTS = [
    Test("json", "/json", 64),
    Test("plaintext", "/plaintext", 256, pipeline=16),
    Test("db", "/db", 256, world=True),
    Test("queries", "/queries?queries=20", 256, world=True),
    Test("fortunes", "/fortunes", 64),
    Test("updates", "/updates?queries=20", 256, world=True),
    Test("cached", "/cached-queries?count=100", 256),
]


@dataclass
class Target:
    key: str
    name: str
    argv: Callable[[int], list[str]]  # workers -> command line ("{port}" filled in at start)
    cwd: Path
    is_cello: bool = False


def cello_target() -> Target:
    def argv(workers: int) -> list[str]:
        return [str(CELLO_BIN / "cello"), "serve", "benchmarks/tfb/cello_app.py", "--out", str(BUILD)] + [
            "--port", "{port}", "--no-logs", "--workers", str(workers), "--require-compiled"
        ]  # fmt: skip

    return Target("cello", "Cello (compiled, httptools)", argv, ROOT, is_cello=True)


def peer_target(peer: Peer) -> Target:
    def argv(workers: int) -> list[str]:
        return peer.argv(PEERS_VENV / "bin", workers)

    return Target(peer.key, peer.name, argv, peer.cwd)


def targets() -> list[Target]:
    return [cello_target(), *map(peer_target, PEERS)]


def prepare_cello(dsn: str) -> None:
    """asyncpg in Cello's venv (the app's one extra dependency) and the compiled routes."""
    python = str(CELLO_BIN / "python")
    if subprocess.run([python, "-c", "import asyncpg"], capture_output=True).returncode:
        subprocess.run([python, "-m", "pip", "install", "-q", "asyncpg"], check=True)
    subprocess.run(
        [str(CELLO_BIN / "cello"), "build", "benchmarks/tfb/cello_app.py", "--out", str(BUILD)],
        cwd=ROOT,
        env={**os.environ, "TFB_DSN": dsn},
        check=True,
        stdout=subprocess.DEVNULL,
    )


def server(target: Target, workers: int, dsn: str, logs: Path) -> Server:
    return Server(target.name, target.argv(workers), cwd=target.cwd, env={"TFB_DSN": dsn}, cpu=0 if workers == 1 else None,
                  log=logs / f"{target.key}-{workers}.log")  # fmt: skip


def check_all(chosen: list[Target], db: Postgres, logs: Path) -> dict[str, list[str]]:
    """TFB's rules for every app (one worker): key -> problems (empty: passed)."""
    problems: dict[str, list[str]] = {}
    for target in chosen:
        process = server(target, 1, db.dsn, logs)
        port = free_port()
        try:
            process.start(port, timeout=60)
        except RuntimeError as exc:
            problems[target.key] = [f"did not start: {exc}"]
            continue
        try:
            problems[target.key] = verify(port, db)
        finally:
            process.stop()
        verdict = "passed" if not problems[target.key] else f"FAILED: {'; '.join(problems[target.key][:5])}"
        print(f"verify  {target.name:32} {verdict}", flush=True)
    return problems


Results = dict[tuple[str, str], list[WrkResult]]


def measure(
    chosen: list[Target], tests: list[Test], workers: int, args: argparse.Namespace, wrk: str, db: Postgres, logs: Path
) -> Results:
    """Every server is started once and waits, idle, while the others are measured; each test
    type is measured for every framework in turn, the order rotating from one test and run to
    the next. A framework's figure and its rivals' are taken seconds apart, not minutes: this
    machine's speed drifts by tens of percent over minutes (shared cores), and comparing
    figures taken far apart measured the drift as much as the frameworks."""
    results: Results = {}
    cpu = 1 if workers == 1 else None
    running: list[tuple[Target, Server, int]] = []
    try:
        for target in chosen:
            process = server(target, workers, db.dsn, logs)
            port = free_port()
            try:
                process.start(port, timeout=60)
            except RuntimeError as exc:
                print(f"!! {exc}", flush=True)
                continue
            running.append((target, process, port))
        turn = 0
        for run in range(args.runs):
            for test in tests:
                shift = turn % len(running) if running else 0
                turn += 1
                for target, process, port in running[shift:] + running[:shift]:
                    if test.world:
                        db.refresh()
                    result = measure_one(wrk, f"http://127.0.0.1:{port}{test.path}", test, cpu, args)
                    if result is None:
                        print(f"!! {target.name} {test.key}: wrk failed; {process.stderr_tail()}", flush=True)
                        continue
                    results.setdefault((target.key, test.key), []).append(result)
                    errors = f"  ({result.errors} errors)" if result.errors else ""
                    print(
                        f"{workers}w run {run + 1}/{args.runs}  {target.name:32} {test.key:10} "
                        f"{result.rps:10,.0f} req/s  p99 {result.p99_ms:8.2f} ms{errors}",
                        flush=True,
                    )
    finally:
        for _, process, _ in running:
            process.stop()
    return results


def measure_one(wrk: str, url: str, test: Test, cpu: int | None, args: argparse.Namespace) -> WrkResult | None:
    options: dict[str, Any] = {"connections": test.connections, "cpu": cpu}
    if test.pipeline:
        options |= {"script": str(PIPELINE), "script_args": (str(test.pipeline),)}
    try:
        return wrk_figure(wrk, url, args.seconds, args.warmup, **options)
    except (subprocess.CalledProcessError, AttributeError):
        return None


def report(chosen: list[Target], tests: list[Test], workers: int, results: Results) -> str:
    """One table: a row per framework, a column per test type (req/s; the ratio to the best
    other framework under Cello's figure)."""
    medians = {key: median_result(found) for key, found in results.items()}
    header = ["framework", *[test.key for test in tests]]
    rows = []
    for target in chosen:
        row = [f"**{target.name}**" if target.is_cello else target.name]
        for test in tests:
            figure = medians.get((target.key, test.key))
            if figure is None:
                row.append("n/a")
                continue
            cell = f"{figure.rps:,.0f}"
            others = [
                medians[(t.key, test.key)].rps for t in chosen if t is not target and (t.key, test.key) in medians
            ]
            if target.is_cello and others:
                cell += f" ({figure.rps / max(others):.2f}x)"
            if figure.errors:
                cell += f" ({figure.errors} errors)"
            row.append(cell)
        rows.append(row)
    return table(header, rows)


def write_docs(section: str) -> None:
    """Replace the TFB section of docs/benchmarks.md (between its markers), or append it."""
    text = DOCS.read_text()
    block = f"{TFB_START}\n{section}\n{TFB_END}"
    if TFB_START in text and TFB_END in text:
        head, rest = text.split(TFB_START, 1)
        text = head + block + rest.split(TFB_END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    DOCS.write_text(text)
    print(f"wrote {DOCS.relative_to(ROOT)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per figure (whole seconds)")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure; the median is reported")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per test (0: none)")
    parser.add_argument(
        "--only", nargs="+", metavar="NAME", help="frameworks to run (cello, " + ", ".join(p.key for p in PEERS) + ")"
    )
    parser.add_argument("--tests", nargs="+", metavar="NAME", choices=[t.key for t in TESTS], help="test types to run")
    parser.add_argument("--workers", nargs="+", type=int, default=[1, 2], help="a table per worker count (1 2)")
    parser.add_argument(
        "--verify-only", action="store_true", help="check every app against TFB's rules, measure nothing"
    )
    parser.add_argument("--no-install", action="store_true", help="use benchmarks/.venv-peers as it is")
    parser.add_argument("--write", action="store_true", help="also write the tables into docs/benchmarks.md")
    args = parser.parse_args()  # fmt: skip
    chosen = [t for t in targets() if not args.only or t.key in args.only]
    tests = [t for t in TESTS if not args.tests or t.key in args.tests]
    command = "python benchmarks/tfb/run.py" + ("" if len(sys.argv) < 2 else " " + shlex.join(sys.argv[1:]))
    started = time.monotonic()

    wrk = ensure_apt_tool("wrk")
    peers = [p for p in PEERS if any(t.key == p.key for t in chosen)]
    if peers and not args.no_install:
        ensure_peers(sorted({package for peer in peers for package in peer.packages}))
    with Postgres.start(cpu=1) as db, tempfile.TemporaryDirectory(prefix="cello-tfb-") as tmp:
        prepare_cello(db.dsn)
        problems = check_all(chosen, db, Path(tmp))
        failed = {key: found for key, found in problems.items() if found}
        passed = [t for t in chosen if t.key not in failed]
        if args.verify_only:
            raise SystemExit(1 if failed else 0)
        tables = {workers: measure(passed, tests, workers, args, wrk, db, Path(tmp)) for workers in args.workers}

    parts = []
    for workers, results in tables.items():
        where = (
            "one worker per framework: the server on CPU 0, wrk and PostgreSQL on CPU 1"
            if workers == 1
            else f"{workers} workers per framework, nothing pinned (servers, PostgreSQL and wrk share both cores)"
        )
        parts.append(
            f"#### {where}\n\nreq/s, median of {args.runs} run(s); Cello's ratio is to the fastest other framework\n"
        )
        parts.append(report(passed, tests, workers, results) + "\n")
    parts.append("Test types:\n")
    parts += [f"- {test.label}" for test in tests]
    parts.append(f"\n{SHARED}")
    if failed:
        parts.append("\nFailed verification (not measured):\n")
        parts += [f"- {key}: {'; '.join(found[:3])}" for key, found in failed.items()]
    parts.append(f"\nMachine: {machine_facts()}; wrk -t1, {args.seconds:g} s after a {args.warmup:g} s warm-up.")
    parts.append(f"\nCommand: `{command}`\n")
    body = "\n".join(parts)
    print()
    print(body)
    print(f"(took {(time.monotonic() - started) / 60:.1f} min)")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({
        "command": command,
        "medians": {f"{w}|{t}|{e}": median_result(r).rps for w, found in tables.items() for (t, e), r in found.items()},
    }, indent=1))  # fmt: skip
    if args.write:
        write_docs("### TechEmpower test types on PostgreSQL (benchmarks/tfb)\n\n" + body)
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
