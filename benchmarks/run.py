"""The full HTTP comparison: Cello against the Python peers and a raw uvloop+httptools ceiling.

    .venv/bin/python benchmarks/run.py [--seconds 5] [--runs 3] [--only NAME ...]
                                       [--endpoints NAME ...] [--write]

Installs the peers into benchmarks/.venv-peers (a peer that fails to install or start is
reported and shown as n/a), builds the Cello apps' routers, then measures every server on
every endpoint with wrk: the server pinned to CPU 0, wrk to CPU 1, servers interleaved
within each run (order rotated from run to run), each figure the median of --runs runs,
each measured after a warm-up on a freshly started server.

Endpoints (the same behaviour in every app, benchmarks/apps/*):
  hello      GET /             small JSON
  user       GET /users/{id}   int path parameter echoed in JSON
  echo       POST /echo        1 KiB JSON body parsed and returned
  big        GET /big          ~20 KB JSON document serialised per request
  routes100  GET /rN/items/{id} on a 100-route app, cycling over its last 10 routes
  order      POST /orders      typed: an order with 10 line items validated into models (201)
  typed      GET /items/{id}?limit=10&q=abc   typed: int path parameter + 2 query parameters
  untyped    GET /items-untyped/{id}?...       Cello only: the typed GET validated by hand
  fortunes   GET /fortunes     TechEmpower's fortunes page: 12 rows in memory + 1 per request,
                               sorted, rendered by the same Jinja2 template (escaped HTML)

The typed endpoints are served by Cello, Litestar (msgspec) and FastAPI (pydantic v2) (and
the limit server); the other peers show n/a. Under the typed table, Cello's typed GET is
divided by its untyped one, measured in the same run.

Prints a markdown table per endpoint (req/s, p99, ratio to the best peer and to the limit
server) with the machine facts and peer versions; --write also writes docs/benchmarks.md.
--list shows the server and endpoint names for --only and --endpoints (--only cello
selects the four Cello variants, --only starlette both Starlette servers).
"""

from __future__ import annotations

import argparse
import http.client
import json
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent / "apps"))

from bench_data import BIG, ECHO_BODY, HELLO, ITEM, ITEM_QUERY, ORDER, ORDER_SUMMARY, route_paths  # noqa: E402
from common import (  # noqa: E402
    HERE,
    PEERS_VENV,
    ROOT,
    TFB_END,
    TFB_START,
    Server,
    WrkResult,
    ensure_apt_tool,
    ensure_peers,
    granian_argv,
    machine_facts,
    median_result,
    table,
    uvicorn_argv,
    wrk_figure,
)
from fortunes import expected_html  # noqa: E402
from support.ports import free_port  # noqa: E402

APPS = HERE / "apps"
RESULTS = HERE / "results" / "run.json"
DOCS = ROOT / "docs" / "benchmarks.md"
CELLO_VENV = ROOT / ".venv" / "bin"

# Installed one by one into the peers venv, so that one failure takes only its servers out.
PEER_PACKAGES = [
    "uvicorn",
    "httptools",
    "uvloop",
    "granian",
    "starlette",
    "fastapi",
    "falcon",
    "blacksheep",
    "litestar",
    "sanic",
    # Every peer renders the fortunes page with the same Jinja2 template as Cello.
    "jinja2",
]

# What some peers serialise or validate with, reported with the versions.
SERIALISERS = {"fastapi": ["pydantic", "pydantic-core"], "litestar": ["msgspec"], "sanic": ["ujson"]}


# -- endpoints ------------------------------------------------------------------------------


@dataclass
class Endpoint:
    key: str
    label: str
    app: str  # the app object: "app" or "app100"
    method: str
    path: str
    expected: object
    lua: str | None = None
    body: bytes | None = None
    status: int = 200
    # The servers whose app has this endpoint, as names for --only ("cello" is every Cello
    # server); empty: every server.
    served_by: tuple[str, ...] = ()
    # Another endpoint each Cello figure is divided by, under the table (typed ÷ untyped).
    versus: str | None = None


def _named(key: str, name: str) -> bool:
    """Whether ``name`` (as given to --only or --endpoints) names ``key``: "cello" names "cello-h11"."""
    return key == name or key.startswith(name + "-")


def _json_post(payload: object) -> tuple[str, bytes]:
    """wrk's script for a JSON POST of ``payload`` (to the URL given on wrk's command line), and the body."""
    text = json.dumps(payload, separators=(",", ":"))
    lua = f"""
wrk.method = "POST"
wrk.body = [==[{text}]==]
wrk.headers["Content-Type"] = "application/json"
"""
    return lua, text.encode()


ROUTE_PATHS = route_paths()
ROUTES_LUA = (
    "local paths = {" + ", ".join(f'"{p}"' for p in ROUTE_PATHS) + "}\n"
    "local n = 0\n"
    "request = function()\n"
    "  n = n + 1\n"
    '  return wrk.format("GET", paths[(n % #paths) + 1])\n'
    "end\n"
)

TYPED_APPS = ("cello", "litestar", "fastapi", "limit")

ENDPOINTS = [
    Endpoint("hello", "GET /", "app", "GET", "/", HELLO),
    Endpoint("user", "GET /users/{id}", "app", "GET", "/users/42", {"id": 42, "name": "user"}),
    Endpoint("echo", "POST /echo (1 KiB JSON)", "app", "POST", "/echo", ECHO_BODY, *_json_post(ECHO_BODY)),
    Endpoint("big", "GET /big (~20 KB JSON)", "app", "GET", "/big", BIG),
    Endpoint(
        "routes100",
        "100 routes: GET /rN/items/{id}, last 10 routes",
        "app100",
        "GET",
        "/r99/items/7",
        {"route": 99, "id": 7},
        ROUTES_LUA,
    ),
    Endpoint(
        "order",
        "POST /orders (typed: an order with 10 line items validated, a summary returned)",
        "app",
        "POST",
        "/orders",
        ORDER_SUMMARY,
        *_json_post(ORDER),
        status=201,
        served_by=TYPED_APPS,
    ),
    Endpoint(
        "typed",
        "GET /items/{id}?limit=10&q=abc (typed: int path parameter, int and str query parameters)",
        "app",
        "GET",
        f"/items/42?{ITEM_QUERY}",
        ITEM,
        served_by=TYPED_APPS,
        versus="untyped",
    ),
    Endpoint(
        "untyped",
        "GET /items-untyped/{id}?limit=10&q=abc (Cello: the typed GET validated by hand)",
        "app",
        "GET",
        f"/items-untyped/42?{ITEM_QUERY}",
        ITEM,
        served_by=("cello",),
    ),
    Endpoint(
        "fortunes",
        "GET /fortunes (TechEmpower's fortunes: 13 rows sorted and rendered by one Jinja2 template, escaped)",
        "app",
        "GET",
        "/fortunes",
        expected_html(),
    ),
]


# -- servers --------------------------------------------------------------------------------


@dataclass
class Target:
    key: str
    name: str
    kind: str  # "cello", "peer" or "limit"
    needs: list[str]  # peer packages it needs
    command: Callable[[str], tuple[list[str], Path]]  # app attribute -> (argv, cwd)
    env: dict[str, str] = field(default_factory=dict)
    root: Path = ROOT  # the checkout whose Cello a "cello" target runs


def _peer_bin(name: str) -> str:
    return str(PEERS_VENV / "bin" / name)


def _cello_target(
    key: str, name: str, compiled: bool, http: str, env: dict[str, str] | None = None, root: Path = ROOT
) -> Target:
    """``cello serve`` of benchmarks/apps/cello_app.py; ``root`` is a checkout with its own .venv
    (another checkout is how --baseline measures an older Cello in the same run)."""

    def command(attr: str) -> tuple[list[str], Path]:
        out = _build_root(root) / (f"run-{attr}" if compiled else "run-none")
        argv = [
            str(root / ".venv" / "bin" / "cello"),
            "serve",
            f"benchmarks/apps/cello_app.py:{attr}",
            "--out",
            str(out),
            "--port",
            "{port}",
            "--no-logs",
            "--http",
            http,
        ]
        return ([*argv, "--require-compiled"] if compiled else argv), root

    return Target(key, name, "cello", [], command, env or {}, root)


def _build_root(root: Path) -> Path:
    return root / "benchmarks" / "build"


def baseline_target(root: Path) -> Target:
    """Cello as built in another checkout (e.g. `git worktree add ../base main~3` + `make venv` there)."""
    if not (root / ".venv" / "bin" / "cello").exists():
        raise SystemExit(f"--baseline {root}: no .venv/bin/cello there (run `make venv` in that checkout)")
    revision = (
        subprocess.run(
            ["git", "-C", str(root), "describe", "--always", "--dirty"], capture_output=True, text=True
        ).stdout.strip()
        or root.name
    )
    return _cello_target("cello-baseline", f"Cello at {revision} (compiled, httptools)", True, "httptools", root=root)


def _uvicorn_target(framework: str, title: str) -> Target:
    def command(attr: str) -> tuple[list[str], Path]:
        return uvicorn_argv(_peer_bin("python"), f"{framework}_app:{attr}"), APPS

    return Target(
        f"{framework}-uvicorn",
        f"{title} + uvicorn",
        "peer",
        [framework, "uvicorn", "httptools", "uvloop", "jinja2"],
        command,
    )


def _granian_target(framework: str, title: str) -> Target:
    def command(attr: str) -> tuple[list[str], Path]:
        return granian_argv(_peer_bin("python"), f"{framework}_app:{attr}"), APPS

    return Target(
        f"{framework}-granian", f"{title} + Granian", "peer", [framework, "granian", "uvloop", "jinja2"], command
    )


def _sanic_command(attr: str) -> tuple[list[str], Path]:
    return [
        _peer_bin("sanic"),
        f"sanic_app:{attr}",
        "--single-process",
        "--no-access-logs",
        "--no-motd",
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
    ], APPS


def _limit_command(attr: str) -> tuple[list[str], Path]:
    return [str(CELLO_VENV / "python"), str(APPS / "limit_server.py"), "{port}"], ROOT


FRAMEWORKS = [
    ("starlette", "Starlette"),
    ("fastapi", "FastAPI"),
    ("falcon", "Falcon"),
    ("blacksheep", "BlackSheep"),
    ("litestar", "Litestar"),
]

TARGETS = [
    _cello_target("cello", "Cello (compiled, httptools)", True, "httptools"),
    _cello_target("cello-interpreted", "Cello (interpreted, httptools)", False, "httptools"),
    _cello_target("cello-h11", "Cello (compiled, h11)", True, "h11"),
    # The same server modules interpreted (what installs without a C compiler).
    _cello_target(
        "cello-pure", "Cello (compiled router, pure-Python server)", True, "httptools", {"CELLO_PURE_PYTHON": "1"}
    ),
    *[t for fw, title in FRAMEWORKS for t in (_uvicorn_target(fw, title), _granian_target(fw, title))],
    Target("sanic", "Sanic (single process)", "peer", ["sanic", "uvloop", "jinja2"], _sanic_command),
    Target("limit", "limit: raw uvloop + httptools", "limit", [], _limit_command),
]


Named = TypeVar("Named", Target, Endpoint)


def select(names: list[str] | None, items: list[Named], what: str) -> list[Named]:
    """The items named (a name also selects the keys it prefixes: "cello" -> "cello-h11")."""
    if not names:
        return list(items)
    chosen = [item for item in items if any(_named(item.key, n) for n in names)]
    unknown = [n for n in names if not any(_named(i.key, n) for i in items)]
    if unknown:
        raise SystemExit(f"unknown {what}: {', '.join(unknown)} (known: {', '.join(i.key for i in items)})")
    return chosen


def serves(target: Target, endpoint: Endpoint) -> bool:
    """Whether ``target``'s app has ``endpoint`` (the others show n/a for it)."""
    return not endpoint.served_by or any(_named(target.key, name) for name in endpoint.served_by)


# -- setup ----------------------------------------------------------------------------------


def install_peers(packages: list[str]) -> dict[str, str]:
    """Install each package; returns {package: why it failed}."""
    failed: dict[str, str] = {}
    for package in packages:
        try:
            ensure_peers([package])
        except (subprocess.CalledProcessError, OSError) as exc:
            failed[package] = f"pip install {package} failed ({exc})"
            print(f"!! {failed[package]}; continuing without it", flush=True)
    return failed


def build_cello(attrs: list[str], root: Path = ROOT) -> dict[str, str]:
    """``cello build`` each app object in checkout ``root`` (skipped when current); {attr: error}."""
    failed: dict[str, str] = {}
    cello = str(root / ".venv" / "bin" / "cello")
    for attr in attrs:
        ref, out = f"benchmarks/apps/cello_app.py:{attr}", str(_build_root(root) / f"run-{attr}")
        current = subprocess.run([cello, "build", ref, "--out", out, "--check"], cwd=root, capture_output=True)
        if current.returncode == 0:
            continue
        print(f"cello build {ref} --out {out} (in {root})", flush=True)
        done = subprocess.run([cello, "build", ref, "--out", out], cwd=root, capture_output=True, text=True)
        if done.returncode != 0:
            failed[attr] = "cello build failed: " + " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
            print(f"!! {failed[attr]}", flush=True)
    return failed


def versions(packages: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    code = (
        "import importlib.metadata as m, json, sys\nout = {}\nfor p in sys.argv[1:]:\n"
        "    try: out[p] = m.version(p)\n    except m.PackageNotFoundError: pass\nprint(json.dumps(out))"
    )
    for python, names in (
        (CELLO_VENV / "python", ["cello-framework", "uvloop", "httptools", "h11", "orjson", "msgspec"]),
        (PEERS_VENV / "bin" / "python", packages),
    ):
        try:
            done = subprocess.run([str(python), "-c", code, *names], capture_output=True, text=True, check=True)
        except (subprocess.CalledProcessError, OSError):
            continue
        for name, version in json.loads(done.stdout).items():
            if python.parent == CELLO_VENV:
                name = "Cello" if name == "cello-framework" else f"{name} (Cello's venv)"
            found[name] = version
    return found


def wrk_version(wrk: str) -> str:
    done = subprocess.run([wrk, "-v"], capture_output=True, text=True)
    return ((done.stdout or done.stderr).strip().splitlines() or ["wrk"])[0].split(" [")[0]


# -- measuring ------------------------------------------------------------------------------


def check(port: int, endpoint: Endpoint, body_too: bool = True) -> str | None:
    """None when the server answers ``endpoint`` as expected (its status and expected JSON body;
    without ``body_too``, a 200: the limit server's one answer), else what is wrong."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Content-Type": "application/json"} if endpoint.body else {}
        conn.request(endpoint.method, endpoint.path, body=endpoint.body, headers=headers)
        response = conn.getresponse()
        raw = response.read()
    except OSError as exc:
        return f"{endpoint.method} {endpoint.path}: {exc}"
    finally:
        conn.close()
    if response.status != (endpoint.status if body_too else 200):
        return f"{endpoint.method} {endpoint.path} answered {response.status}: {raw[:120]!r}"
    if not body_too:
        return None
    if isinstance(endpoint.expected, str):
        # An HTML page: the very text every app renders from the one template.
        if raw.decode("utf-8", "replace") != endpoint.expected:
            return f"{endpoint.method} {endpoint.path} answered another page: {raw[:120]!r}"
        return None
    try:
        body = json.loads(raw)
    except ValueError:
        return f"{endpoint.method} {endpoint.path} answered non-JSON: {raw[:120]!r}"
    if body != endpoint.expected:
        return f"{endpoint.method} {endpoint.path} answered an unexpected body: {raw[:120]!r}"
    return None


@dataclass
class Outcome:
    results: dict[tuple[str, str], list[WrkResult]]
    failures: dict[tuple[str, str], str]  # (target, endpoint) -> why n/a


def measure(
    targets: list[Target],
    endpoints: list[Endpoint],
    args: argparse.Namespace,
    wrk: str,
    unavailable: dict[tuple[str, str], str],
    scripts: dict[str, str],
    logs: Path,
) -> Outcome:
    """Every (target, endpoint) pair not already in ``unavailable``, interleaved and repeated."""
    outcome = Outcome({}, dict(unavailable))
    groups = [(attr, [e for e in endpoints if e.app == attr]) for attr in ("app", "app100")]
    for run in range(args.runs):
        shift = run % len(targets)
        order = targets[shift:] + targets[:shift]
        for attr, group in groups:
            for target in order:
                todo = [e for e in group if serves(target, e) and (target.key, e.key) not in outcome.failures]
                if not todo:
                    continue
                argv, cwd = target.command(attr)
                server = Server(target.name, argv, cwd=cwd, env=target.env, log=logs / f"{target.key}-{attr}.log")
                port = free_port()
                try:
                    server.start(port, timeout=30)
                except RuntimeError as exc:
                    print(f"!! {exc}; continuing without it", flush=True)
                    for endpoint in todo:
                        outcome.failures[(target.key, endpoint.key)] = f"did not start: {exc}"
                    continue
                try:
                    for endpoint in todo:
                        wrong = check(port, endpoint, body_too=target.kind != "limit")
                        if wrong is not None:
                            print(f"!! {target.name}: {wrong}; skipping {endpoint.key}", flush=True)
                            outcome.failures[(target.key, endpoint.key)] = wrong
                            continue
                        url = f"http://127.0.0.1:{port}{endpoint.path}"
                        script = scripts.get(endpoint.key)
                        try:
                            result = wrk_figure(
                                wrk, url, args.seconds, args.warmup, connections=args.connections, script=script
                            )
                        except (subprocess.CalledProcessError, AttributeError) as exc:
                            why = f"wrk failed: {exc}; server: {server.stderr_tail()}"
                            print(f"!! {target.name} {endpoint.key}: {why}", flush=True)
                            outcome.failures[(target.key, endpoint.key)] = why
                            continue
                        outcome.results.setdefault((target.key, endpoint.key), []).append(result)
                        note = f"  ({result.errors} errors)" if result.errors else ""
                        print(
                            f"run {run + 1}/{args.runs}  {target.name:34} {endpoint.key:10} "
                            f"{result.rps:10,.0f} req/s  p99 {result.p99_ms:7.2f} ms{note}",
                            flush=True,
                        )
                finally:
                    server.stop()
    return outcome


# -- reporting ------------------------------------------------------------------------------


def endpoint_table(endpoint: Endpoint, targets: list[Target], outcome: Outcome) -> str:
    medians = {
        t.key: median_result(outcome.results[(t.key, endpoint.key)])
        for t in targets
        if (t.key, endpoint.key) in outcome.results
    }
    peers = [(medians[t.key].rps, t) for t in targets if t.kind == "peer" and t.key in medians]
    best = max(peers, key=lambda p: p[0]) if peers else None
    limit = next((medians[t.key].rps for t in targets if t.kind == "limit" and t.key in medians), None)

    def ratio(value: float, base: float | None) -> str:
        return f"{value / base:.2f}" if base else "–"

    ordered = sorted(targets, key=lambda t: -medians[t.key].rps if t.key in medians else 0.0)
    rows = []
    for target in ordered:
        name = target.name if target.kind != "cello" else f"**{target.name}**"
        if target is (best[1] if best else None):
            name += " (best peer)"
        med = medians.get(target.key)
        if med is None:
            rows.append([name, "n/a", "n/a", "–", "–"])
            continue
        if med.errors:
            name += f" ({med.errors} errors)"
        rows.append(
            [
                name,
                f"{med.rps:,.0f}",
                f"{med.p99_ms:.2f}",
                ratio(med.rps, best[0] if best else None),
                ratio(med.rps, limit),
            ]
        )
    return table(["server", "req/s", "p99 ms", "× best peer", "× limit"], rows)


def endpoint_notes(endpoint: Endpoint, targets: list[Target], outcome: Outcome) -> list[str]:
    """The lines under an endpoint's table: the servers whose app has no such endpoint, and each
    Cello figure divided by the same server's figure on ``endpoint.versus``."""
    notes = []
    absent = [t.name for t in targets if not serves(t, endpoint)]
    if absent:
        notes.append(f"No such endpoint in the app of: {', '.join(absent)} (n/a).")
    if endpoint.versus is not None:
        ratios = []
        for target in (t for t in targets if t.kind == "cello"):
            ours, base = (outcome.results.get((target.key, key)) for key in (endpoint.key, endpoint.versus))
            if ours and base:
                ratios.append(f"{target.name} {median_result(ours).rps / median_result(base).rps:.2f}")
        if ratios:
            notes.append(f"{endpoint.key} ÷ {endpoint.versus} (req/s, same server, same run): {'; '.join(ratios)}.")
    return notes


def report(
    targets: list[Target],
    endpoints: list[Endpoint],
    outcome: Outcome,
    facts: list[str],
    command: str,
    args: argparse.Namespace,
) -> str:
    parts = []
    for endpoint in endpoints:
        parts.append(f"### {endpoint.label}\n\n{endpoint_table(endpoint, targets, outcome)}\n")
        parts += [f"{note}\n" for note in endpoint_notes(endpoint, targets, outcome)]
    names = {t.key: t.name for t in targets}
    if outcome.failures:
        parts.append("**n/a** (did not install, start or answer as expected):\n")
        seen: dict[str, list[str]] = {}
        for (target_key, endpoint_key), why in outcome.failures.items():
            seen.setdefault(f"{names[target_key]}: {why[:300]}", []).append(endpoint_key)
        parts += [f"- {why} ({', '.join(eps)})" for why, eps in seen.items()]
        parts.append("")
    parts.append("Machine and software:\n")
    parts += [f"- {fact}" for fact in facts]
    parts.append(
        f"- wrk -t1 -c{args.connections} -d{args.seconds:g}s after a {args.warmup:g} s warm-up, "
        f"median of {args.runs} run(s); server on CPU 0, wrk on CPU 1"
    )
    parts.append(f"\nCommand: `{command}`\n")
    return "\n".join(parts)


DOC_INTRO = """# Benchmarks

How Cello compares with the Python web frameworks people pick for speed, on one machine,
measured by `benchmarks/run.py`. Treat the numbers as relative: they depend on the CPU,
the kernel and the Python build, and only the ratios carry over to other machines.

## Method

- **Same work everywhere.** Every framework serves the same endpoints with the same
  behaviour (`benchmarks/apps/`, one file per framework, written the way its documentation
  shows, with its default JSON encoder): a small JSON hello, an `int` path parameter echoed
  in JSON, a 1 KiB JSON body parsed and sent back, a ~20 KB JSON document serialised per
  request, and a 100-route app hit on its last 10 routes. Each server's answers are checked
  before it is measured.
- **Typed handlers.** Where a framework validates typed inputs (Cello, Litestar with msgspec,
  FastAPI with pydantic v2; the other peers show n/a), its app also has a POST of an order
  (a customer and 10 line items, ~1 KB) validated into models with constraints and answered
  201 with a summary computed from them, and a GET with an `int` path parameter and two
  query parameters (a bounded `int`, an optional `str`). Cello also serves that GET with a
  handler that reads and checks the query by hand, to show what typed binding costs.
- **Servers.** Cello with its compiled router (`cello build`) and the httptools parser,
  with the interpreted router, with the pure-Python h11 parser, and with its server modules
  interpreted (`CELLO_PURE_PYTHON=1`: what installs without a C compiler; every other Cello
  row runs the server compiled by mypyc at install time); Starlette, FastAPI,
  Falcon (ASGI), BlackSheep and Litestar each on uvicorn (httptools, uvloop, no access log)
  and on Granian (ASGI, one worker, uvloop); Sanic in single-process mode; and a *limit*
  server: a raw uvloop + httptools `asyncio.Protocol` that answers every request with a
  canned response, without routing or serialisation, the ceiling for a Python server on
  this stack. One process per server, no access logs.
- **Pinning.** The server runs on CPU 0 and wrk (one thread, 64 connections) on CPU 1
  (`taskset`), so the load generator never takes cycles from the server.
- **Interleaving and medians.** Each run starts every server in turn (the order rotates
  from run to run), warms it up, then measures each endpoint; a figure is the median of
  the runs, so slow drift of the machine hits every server alike.
- **Columns.** *× best peer* divides by the fastest non-Cello server on that endpoint,
  *× limit* by the limit server (which answers a 27-byte hello whatever is asked, so its
  ratio is a ceiling, not a like-for-like comparison, on the larger endpoints).

Regenerate this page with:

```console
$ .venv/bin/python benchmarks/run.py --write
```

Quicker partial runs: `--seconds 1 --runs 1`, `--only cello starlette limit`,
`--endpoints hello routes100`. Scaling over workers, latency at a fixed request rate and
memory per idle connection are measured by `benchmarks/scaling.py`; see
`benchmarks/README.md` for every benchmark script.

## Results
"""


def write_docs(body: str) -> None:
    """The page, keeping the section benchmarks/tfb/run.py writes (between its markers)."""
    kept = ""
    if DOCS.exists():
        text = DOCS.read_text()
        start, end = text.find(TFB_START), text.find(TFB_END)
        if 0 <= start < end:
            kept = "\n" + text[start : end + len(TFB_END)] + "\n"
    DOCS.write_text(DOC_INTRO + "\n" + body + kept)
    print(f"wrote {DOCS.relative_to(ROOT)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per figure (whole seconds)")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure; the median is reported")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per endpoint (0: none)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--only", nargs="+", metavar="NAME", help="servers to run (see --list)")
    parser.add_argument("--endpoints", nargs="+", metavar="NAME", help="endpoints to run (see --list)")
    parser.add_argument("--no-install", action="store_true", help="use benchmarks/.venv-peers as it is")
    parser.add_argument("--write", action="store_true", help="also write docs/benchmarks.md")
    parser.add_argument("--list", action="store_true", help="list server and endpoint names")
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="DIR",
        help="also run the Cello of another checkout with its own .venv (server cello-baseline)",
    )
    args = parser.parse_args()
    if args.list:
        for target in TARGETS:
            print(f"server    {target.key:22} {target.name}")
        for endpoint in ENDPOINTS:
            print(f"endpoint  {endpoint.key:22} {endpoint.label}")
        return
    targets = select(args.only, TARGETS, "server")
    if args.baseline is not None:
        targets.insert(1, baseline_target(args.baseline.resolve()))
    endpoints = select(args.endpoints, ENDPOINTS, "endpoint")
    command = "python benchmarks/run.py" + ("" if len(sys.argv) < 2 else " " + shlex.join(sys.argv[1:]))
    started = time.monotonic()

    wrk = ensure_apt_tool("wrk")
    packages = sorted({p for t in targets for p in t.needs}, key=PEER_PACKAGES.index)
    install_failed: dict[str, str] = {}
    if packages and not args.no_install:
        install_failed = install_peers(packages)
    elif packages and not (PEERS_VENV / "bin" / "python").exists():
        install_failed = dict.fromkeys(packages, f"--no-install and no {PEERS_VENV}")
    unavailable: dict[tuple[str, str], str] = {}
    for target in targets:
        for package in (p for p in target.needs if p in install_failed):
            for endpoint in (e for e in endpoints if serves(target, e)):
                unavailable.setdefault((target.key, endpoint.key), install_failed[package])
    compiled = [t for t in targets if t.kind == "cello" and t.key != "cello-interpreted"]
    for root in sorted({t.root for t in compiled}):
        build_failed = build_cello(sorted({e.app for e in endpoints}), root)
        for target in (t for t in compiled if t.root == root):
            for endpoint in (e for e in endpoints if e.app in build_failed and serves(target, e)):
                unavailable.setdefault((target.key, endpoint.key), build_failed[endpoint.app])

    with tempfile.TemporaryDirectory(prefix="cello-bench-") as tmp:
        scripts: dict[str, str] = {}
        for endpoint in endpoints:
            if endpoint.lua:
                path = Path(tmp) / f"{endpoint.key}.lua"
                path.write_text(endpoint.lua)
                scripts[endpoint.key] = str(path)
        outcome = measure(targets, endpoints, args, wrk, unavailable, scripts, Path(tmp))

    cello_version = subprocess.run([str(CELLO_VENV / "cello"), "--version"], capture_output=True, text=True)
    facts = [machine_facts(), wrk_version(wrk), cello_version.stdout.strip()]
    extras = [extra for p in packages for extra in SERIALISERS.get(p, [])]
    facts += [f"{name} {version}" for name, version in versions([*packages, *extras]).items()]
    body = report(targets, endpoints, outcome, facts, command, args)
    elapsed = time.monotonic() - started
    print()
    print(body)
    print(f"(took {elapsed / 60:.1f} min)")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "command": command,
                "medians": {
                    f"{t}|{e}": {"rps": median_result(r).rps, "p99_ms": median_result(r).p99_ms}
                    for (t, e), r in outcome.results.items()
                },
                "kinds": {t.key: t.kind for t in targets},
            },
            indent=1,
        )
    )
    if args.write:
        write_docs(body)


if __name__ == "__main__":
    main()
