"""Route dispatch benchmark: ns per lookup, build time and build memory.

    .venv/bin/python benchmarks/dispatch.py [--quick]

Routers compared on the same realistic REST route mix and the same lookups:
  compiled     the generated module compiled by mypyc (cello build)
  generated    the same generated module as plain Python
  interpreted  cello.routing's plan interpreter (dev mode)
  falcon       falcon.routing.CompiledRouter (find + method map lookup)
  starlette    starlette.routing: Route.matches over the route list, as Router does
Falcon and Starlette are installed into benchmarks/.venv-peers (created on first run);
a peer that cannot be installed is skipped with a message.

Times are medians over interleaved rounds (every router once per round), so drift of
the machine hits all routers alike. Build time and peak memory are measured on a fresh
process per build (peak RSS of the mypyc subprocess tree via RUSAGE_CHILDREN).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import venv
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT / "benchmarks" / ".venv-peers"
PEER_PACKAGES = ["falcon", "starlette"]

Lookup = Callable[[], object]


# -- the route mix --------------------------------------------------------------------------

RESOURCES = ["users", "orders", "products", "invoices", "teams", "projects", "tickets", "events", "files", "tags"]


def route_mix(count: int) -> list[tuple[str, str]]:
    """``count`` (method, pattern) pairs: per resource a CRUD + nested REST set."""
    routes: list[tuple[str, str]] = []
    index = 0
    while len(routes) < count:
        name = RESOURCES[index % len(RESOURCES)] + ("" if index < len(RESOURCES) else str(index))
        base = f"/api/v1/{name}"
        routes += [
            ("GET", base),
            ("POST", base),
            ("GET", base + "/search"),
            ("GET", base + "/{id:int}"),
            ("PUT", base + "/{id:int}"),
            ("DELETE", base + "/{id:int}"),
            ("GET", base + "/{id:int}/comments"),
            ("POST", base + "/{id:int}/comments"),
            ("GET", base + "/{id:int}/comments/{comment_id:int}"),
            ("GET", base + "/{id:int}/attachments/{name}"),
        ]
        index += 1
    return routes[:count]


def concrete(pattern: str, rng: random.Random) -> str:
    path = pattern.replace("{comment_id:int}", str(rng.randint(1, 9999)))
    path = path.replace("{id:int}", str(rng.randint(1, 999999)))
    return path.replace("{name}", rng.choice(["report.pdf", "photo.jpg", "notes.txt"]))


def lookups(routes: list[tuple[str, str]], count: int, seed: int = 7) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        method, pattern = rng.choice(routes)
        out.append((method, concrete(pattern, rng)))
    return out


# -- peers ----------------------------------------------------------------------------------


def ensure_peers() -> list[str]:
    """Make falcon and starlette importable; the names of those that are."""
    if not (PEERS / "bin" / "python").exists():
        print(f"creating {PEERS} with {', '.join(PEER_PACKAGES)} ...", file=sys.stderr)
        venv.EnvBuilder(with_pip=True).create(PEERS)
    python = str(PEERS / "bin" / "python")
    for package in PEER_PACKAGES:
        check = subprocess.run([python, "-c", f"import {package}"], capture_output=True)
        if check.returncode != 0:
            subprocess.run([python, "-m", "pip", "install", "-q", package], capture_output=True)
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True
    ).stdout.strip()
    if site and site not in sys.path:
        # Appended: this venv's packages win; only the peers come from there.
        sys.path.append(site)
    available = []
    for package in PEER_PACKAGES:
        try:
            __import__(package)
            available.append(package)
        except ImportError as exc:
            print(f"skipping {package}: not installable here ({exc})", file=sys.stderr)
    return available


class _FalconResource:
    def on_get(self, req: object, resp: object, **params: object) -> None: ...
    def on_post(self, req: object, resp: object, **params: object) -> None: ...
    def on_put(self, req: object, resp: object, **params: object) -> None: ...
    def on_delete(self, req: object, resp: object, **params: object) -> None: ...


def falcon_lookup(routes: list[tuple[str, str]], probes: list[tuple[str, str]]) -> Lookup:
    from falcon.routing import CompiledRouter

    router = CompiledRouter()
    for pattern in dict.fromkeys(pattern for _, pattern in routes):
        router.add_route(pattern, _FalconResource())
    router.find("/")  # compiles the router

    find = router.find

    def run() -> object:
        last = None
        for method, path in probes:
            found = find(path)
            if found is not None:
                last = found[1].get(method)
        return last

    return run


def starlette_lookup(routes: list[tuple[str, str]], probes: list[tuple[str, str]]) -> Lookup:
    from starlette.routing import Match, Route

    async def endpoint(request: object) -> None: ...

    methods: dict[str, list[str]] = {}
    for method, pattern in routes:
        methods.setdefault(pattern, []).append(method)
    table = [Route(pattern, endpoint, methods=ms) for pattern, ms in methods.items()]
    scopes = [{"type": "http", "method": m, "path": p, "root_path": ""} for m, p in probes]
    full = Match.FULL
    partial_match = Match.PARTIAL

    def run() -> object:
        last = None
        for scope in scopes:
            partial = None
            for route in table:
                match, child = route.matches(scope)
                if match is full:
                    last = child
                    break
                if match is partial_match and partial is None:
                    partial = child
            else:
                last = partial
        return last

    return run


# -- cello ----------------------------------------------------------------------------------


def cello_table(routes: list[tuple[str, str]]) -> tuple[list[object], str]:
    from cello.routing import RouteTable

    table = RouteTable()
    for method, pattern in routes:
        table.add(method, pattern, None, "bench.py:1")
    return list(table.routes()), table.fingerprint("bench")


def dispatch_lookup(dispatch: Callable[[str, str], object], probes: list[tuple[str, str]]) -> Lookup:
    def run() -> object:
        last = None
        for method, path in probes:
            last = dispatch(method, path)
        return last

    return run


def build_cello(sizes: list[int], work: Path) -> dict[int, dict[str, Callable[[str, str], object]]]:
    """Per size: the interpreted, generated-.py and compiled dispatch functions."""
    from cello.codegen.compile import compile_modules
    from cello.codegen.generate import generate_source, module_name
    from cello.routing import InterpretedRouter, build_plan
    from cello.routing.loader import load_compiled

    sources: list[Path] = []
    meta: list[tuple[int, str, int]] = []
    routers: dict[int, dict[str, Callable[[str, str], object]]] = {}
    for size in sizes:
        routes, fingerprint = cello_table(route_mix(size))
        py = work / f"{module_name(fingerprint)}.py"
        py.write_text(generate_source(routes, fingerprint), "utf-8")  # type: ignore[arg-type]
        sources.append(py)
        meta.append((size, fingerprint, len(routes)))
        routers[size] = {"interpreted": InterpretedRouter(build_plan(routes)).dispatch}  # type: ignore[arg-type]
    started = time.perf_counter()
    compiled = compile_modules(sources, work / "so")
    print(f"compiled {len(sources)} modules in one batch: {time.perf_counter() - started:.1f} s", file=sys.stderr)
    for (size, fingerprint, count), py, so in zip(meta, sources, compiled):
        for label, path in (("generated", py), ("compiled", so)):
            result = load_compiled(path, fingerprint, count)
            if result.dispatch is None:
                raise SystemExit(f"cannot load {path}: {result.reason}")
            routers[size][label] = result.dispatch
    return routers


# -- measuring ------------------------------------------------------------------------------


def measure(runs: dict[str, Lookup], count: int, rounds: int) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for run in runs.values():
        run()  # warm-up: caches, lazy compilation
    for _ in range(rounds):
        for name, run in runs.items():
            started = time.perf_counter_ns()
            run()
            samples[name].append((time.perf_counter_ns() - started) / count)
    return {name: statistics.median(values) for name, values in samples.items()}


def build_one(size: int) -> None:
    """Child mode: generate and compile one table; print wall time and peak RSS as JSON."""
    from cello.codegen.compile import compile_module
    from cello.codegen.generate import generate_source, module_name

    routes, fingerprint = cello_table(route_mix(size))
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        py = Path(tmp) / f"{module_name(fingerprint)}.py"
        py.write_text(generate_source(routes, fingerprint), "utf-8")  # type: ignore[arg-type]
        generated = time.perf_counter() - started
        compile_module(py, Path(tmp))
        total = time.perf_counter() - started
        lines = py.read_text("utf-8").count("\n")
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(
        json.dumps({"size": size, "generate_s": generated, "total_s": total, "peak_mb": peak_kb / 1024, "lines": lines})
    )


def build_costs(sizes: list[int]) -> list[dict[str, float]]:
    out = []
    for size in sizes:
        result = subprocess.run(
            [sys.executable, __file__, "--build-one", str(size)], capture_output=True, text=True, check=True
        )
        out.append(json.loads(result.stdout.strip().splitlines()[-1]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer rounds, no build-cost runs")
    parser.add_argument("--rounds", type=int, default=0)
    parser.add_argument("--build-one", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build_one:
        build_one(args.build_one)
        return
    sizes = [10, 100, 1000]
    rounds = args.rounds or (7 if args.quick else 25)
    count = 2000
    peers = ensure_peers()
    with tempfile.TemporaryDirectory() as tmp:
        cello = build_cello(sizes, Path(tmp))
        table: dict[int, dict[str, float]] = {}
        for size in sizes:
            routes = route_mix(size)
            probes = lookups(routes, count)
            runs: dict[str, Lookup] = {name: dispatch_lookup(fn, probes) for name, fn in cello[size].items()}
            if "falcon" in peers:
                runs["falcon"] = falcon_lookup(routes, probes)
            if "starlette" in peers:
                runs["starlette"] = starlette_lookup(routes, probes)
            table[size] = measure(runs, count, rounds)
    names = ["compiled", "generated", "interpreted", "falcon", "starlette"]
    print(f"ns per lookup (median of {rounds} interleaved rounds of {count} lookups)\n")
    print("| routes | " + " | ".join(names) + " | falcon / compiled | falcon / interpreted |")
    print("|---:|" + "---:|" * (len(names) + 2))
    for size, row in table.items():
        cells = [f"{row[n]:.0f}" if n in row else "-" for n in names]
        ratios = ["-", "-"]
        if "falcon" in row:
            ratios = [f"{row['falcon'] / row['compiled']:.2f}x", f"{row['falcon'] / row['interpreted']:.2f}x"]
        print(f"| {size} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    if not args.quick:
        print("\nbuild (generate + mypyc, fresh process each)\n")
        print("| routes | generated lines | generate s | build s | peak MB |")
        print("|---:|---:|---:|---:|---:|")
        for cost in build_costs([100, 1000]):
            print(
                f"| {cost['size']:.0f} | {cost['lines']:.0f} | {cost['generate_s']:.2f} | "
                f"{cost['total_s']:.1f} | {cost['peak_mb']:.0f} |"
            )


if __name__ == "__main__":
    main()
