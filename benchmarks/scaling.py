"""Scaling figures: workers, latency at a fixed request rate, memory per idle connection.

    .venv/bin/python benchmarks/scaling.py [--sections workers latency memory]
                                           [--seconds 5] [--runs 3] [--peer KEY]

workers  req/s of `cello serve --workers 2` against `--workers 1` (GET / by default). With
         two workers on a 2-core machine the server needs both CPUs, so neither the server
         nor wrk is pinned here and wrk takes cycles from the workers: the figure
         understates what a second core gives when the load comes from elsewhere.
latency  latency percentiles (p50/p90/p99/p99.9/max) at fixed offered loads (--rates) for
         Cello and the best peer, server pinned to CPU 0 and the client to CPU 1. wrk2 is
         used if installed; otherwise (Debian has no wrk2 package) a paced client in this
         file: uvloop, N keep-alive connections, each sending on a fixed schedule; a request
         sent late because its connection was still waiting for a slow answer is measured
         from its scheduled time (no coordinated omission), one sent on time from its send.
memory   RSS per idle keep-alive connection: 2,000 connections each make one request and
         stay open; (RSS after - RSS before) / 2000, summed over the server's processes.
         Measured for `cello serve` and the best peer.

The best peer is --peer (a server key of run.py, see `run.py --list`), else the fastest
peer on GET / in benchmarks/results/run.json (written by run.py), else found by a
one-second probe of every peer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    PEERS_VENV,
    ROOT,
    Server,
    ensure_apt_tool,
    machine_facts,
    pinned,
    rounds,
    run_wrk,
    table,
    tree_rss_kib,
    wrk_figure,
)
from run import (  # noqa: E402
    ENDPOINTS,
    RESULTS,
    ROUTE_PATHS,
    TARGETS,
    Endpoint,
    Target,
    build_cello,
    install_peers,
)
from support.ports import free_port  # noqa: E402

CELLO = next(t for t in TARGETS if t.key == "cello")
IDLE_CONNECTIONS = 2000


def server_for(
    target: Target, attr: str, cpu: int | None = 0, extra: list[str] | None = None, env: dict[str, str] | None = None
) -> Server:
    argv, cwd = target.command(attr)
    return Server(target.name, [*argv, *(extra or [])], cwd=cwd, cpu=cpu, env=env or {})


def endpoint(key: str) -> Endpoint:
    return next(e for e in ENDPOINTS if e.key == key)


# -- the best peer --------------------------------------------------------------------------


def best_peer(args: argparse.Namespace, wrk: str) -> Target:
    peers = [t for t in TARGETS if t.kind == "peer"]
    if args.peer:
        return next(t for t in peers if t.key == args.peer)
    if RESULTS.exists():
        saved = json.loads(RESULTS.read_text())
        scores = {
            k.split("|")[0]: v["rps"]
            for k, v in saved["medians"].items()
            if k.endswith("|hello") and saved["kinds"].get(k.split("|")[0]) == "peer"
        }
        if scores:
            key = max(scores, key=scores.__getitem__)
            print(f"best peer from {RESULTS.relative_to(ROOT)}: {key}")
            return next(t for t in peers if t.key == key)
    print("probing the peers on GET / (1 s each) to find the best one...", flush=True)
    install_peers(sorted({p for t in peers for p in t.needs}))
    scores = {}
    for target in peers:
        server = server_for(target, "app")
        port = free_port()
        try:
            server.start(port, timeout=30)
        except RuntimeError as exc:
            print(f"!! {exc}")
            continue
        try:
            run_wrk(wrk, f"http://127.0.0.1:{port}/", 1)
            scores[target.key] = run_wrk(wrk, f"http://127.0.0.1:{port}/", 1).rps
        finally:
            server.stop()
    key = max(scores, key=scores.__getitem__)
    print(f"best peer: {key} ({scores[key]:,.0f} req/s)")
    return next(t for t in peers if t.key == key)


# -- workers --------------------------------------------------------------------------------


def workers_section(args: argparse.Namespace, wrk: str) -> str:
    chosen = [endpoint(k) for k in args.endpoints]
    results: dict[tuple[int, str], list[float]] = {}
    counts = (1, 2)
    servers = [server_for(CELLO, "app", cpu=None, extra=["--workers", str(workers)]) for workers in counts]

    def measure(run: int, server: Server, port: int) -> None:
        workers = counts[servers.index(server)]
        for ep in chosen:
            url = f"http://127.0.0.1:{port}{ep.path}"
            options = {"connections": args.connections, "script": args.scripts.get(ep.key), "cpu": None}
            rps = wrk_figure(wrk, url, args.seconds, 1.0, threads=args.wrk_threads, **options).rps
            results.setdefault((workers, ep.key), []).append(rps)
            print(f"run {run + 1}/{args.runs}  workers={workers}  {ep.key:10} {rps:10,.0f} req/s", flush=True)

    rounds(servers, args.runs, measure, rotate=True, timeout=30)
    rows = []
    for ep in chosen:
        one, two = (statistics.median(results[(w, ep.key)]) for w in (1, 2))
        rows.append([ep.label, f"{one:,.0f}", f"{two:,.0f}", f"{two / one:.2f}"])
    note = (
        f"Not pinned: the server and wrk (-t{args.wrk_threads} -c{args.connections}) share all "
        f"{os.cpu_count()} CPUs, so wrk competes with the workers for the cores."
    )
    return (
        "### cello serve --workers 2 vs 1\n\n"
        + note
        + "\n\n"
        + table(["endpoint", "1 worker req/s", "2 workers req/s", "2 vs 1"], rows)
        + "\n"
    )


# -- latency at a fixed rate ----------------------------------------------------------------


def paced_client(
    host: str,
    port: int,
    method: str,
    paths: list[str],
    body: bytes,
    rate: float,
    connections: int,
    seconds: float,
    warmup: float,
) -> dict[str, float]:
    """Send ``rate`` req/s over ``connections`` keep-alive connections; latencies in ms."""
    import httptools
    import uvloop

    heads = []
    for path in paths:
        head = f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        if body:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        heads.append((head + "\r\n").encode() + body)

    class Client(asyncio.Protocol):
        def __init__(self) -> None:
            self.parser = httptools.HttpResponseParser(self)
            self.waiter: asyncio.Future[int] | None = None
            self.status = 0

        def data_received(self, data: bytes) -> None:
            self.parser.feed_data(data)

        def on_message_complete(self) -> None:
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_result(self.parser.get_status_code())

        def connection_lost(self, exc: Exception | None) -> None:
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_exception(ConnectionError("connection closed"))

    latencies: list[float] = []
    errors = 0

    clock = time.perf_counter  # uvloop's loop.time() has millisecond resolution

    async def one_connection(index: int, start: float, end: float, measure_from: float) -> None:
        nonlocal errors
        loop = asyncio.get_running_loop()
        transport, client = await loop.create_connection(Client, host, port)
        interval = connections / rate
        n = 0
        try:
            while True:
                scheduled = start + (n + index / connections) * interval
                if scheduled >= end:
                    return
                delay = scheduled - clock()
                if delay > 0:
                    # On time: measure from the actual send, so the client's timer slack (libuv
                    # timers tick in ms) is not charged to the server.
                    await asyncio.sleep(delay)
                    scheduled = clock()
                # Late (still waiting for a slow answer): measure from the schedule, as wrk2 does.
                client.waiter = loop.create_future()
                transport.write(heads[(n * connections + index) % len(heads)])
                try:
                    status = await client.waiter
                except ConnectionError:
                    errors += 1
                    return
                if scheduled >= measure_from:
                    latencies.append((clock() - scheduled) * 1000.0)
                    if status != 200:
                        errors += 1
                n += 1
        finally:
            transport.close()

    async def main() -> float:
        start = clock() + 0.2
        measure_from = start + warmup
        end = measure_from + seconds
        await asyncio.gather(*(one_connection(i, start, end, measure_from) for i in range(connections)))
        return clock() - measure_from

    elapsed = uvloop.run(main())
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] if latencies else float("nan")

    return {
        "sent": len(latencies) / max(elapsed, 1e-9),
        "p50": pct(50),
        "p90": pct(90),
        "p99": pct(99),
        "p99.9": pct(99.9),
        "max": latencies[-1] if latencies else float("nan"),
        "errors": errors,
    }


def run_paced(port: int, ep: Endpoint, rate: float, args: argparse.Namespace) -> dict[str, float]:
    """The paced client in a subprocess pinned to CPU 1, with uvloop/httptools from Cello's venv."""
    paths = ROUTE_PATHS if ep.key == "routes100" else [ep.path]
    spec = {
        "port": port,
        "method": ep.method,
        "paths": paths,
        "body": (ep.body or b"").decode(),
        "rate": rate,
        "connections": args.latency_connections,
        "seconds": args.seconds,
        "warmup": 1.0,
    }
    python = str(ROOT / ".venv" / "bin" / "python")
    done = subprocess.run(pinned(1, [python, __file__, "--_paced", json.dumps(spec)]), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"paced client failed: {done.stderr.strip()[-500:]}")
    stats: dict[str, float] = json.loads(done.stdout)
    return stats


def latency_section(args: argparse.Namespace, peer: Target) -> str:
    ep = endpoint(args.latency_endpoint)
    targets = [CELLO, peer]
    results: dict[tuple[str, float], list[dict[str, float]]] = {}
    servers = [server_for(target, ep.app) for target in targets]

    def measure(run: int, server: Server, port: int) -> None:
        target = targets[servers.index(server)]
        for rate in args.rates:
            stats = run_paced(port, ep, rate, args)
            results.setdefault((target.key, rate), []).append(stats)
            print(
                f"run {run + 1}/{args.runs}  {target.name:34} {rate:>8,.0f}/s  sent {stats['sent']:8,.0f}/s "
                f"p50 {stats['p50']:.2f}  p99 {stats['p99']:.2f}  p99.9 {stats['p99.9']:.2f} ms",
                flush=True,
            )

    rounds(servers, args.runs, measure, rotate=True, timeout=30)
    rows = []
    for rate in args.rates:
        for target in targets:
            runs = results[(target.key, rate)]
            med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            rows.append(
                [
                    f"{rate:,.0f}",
                    target.name,
                    f"{med['sent']:,.0f}",
                    *(f"{med[k]:.2f}" for k in ("p50", "p90", "p99", "p99.9", "max")),
                    str(int(sum(r["errors"] for r in runs))),
                ]
            )
    tool = (
        "paced asyncio client (benchmarks/scaling.py; no wrk2 package on this system), "
        f"{args.latency_connections} connections"
    )
    return (
        f"### Latency at fixed offered load, {ep.label}\n\n{tool}; latency from the scheduled send time when a "
        "slow answer delayed the send (no coordinated omission); server on CPU 0, client on CPU 1; medians over runs.\n\n"
        + table(
            ["offered req/s", "server", "achieved req/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms", "errors"],
            rows,
        )
        + "\n"
    )


def wrk2_latency_section(args: argparse.Namespace, peer: Target, wrk2: str) -> str:
    ep = endpoint(args.latency_endpoint)
    rows = []
    for target in (CELLO, peer):
        server = server_for(target, ep.app)
        port = free_port()
        server.start(port, timeout=30)
        try:
            for rate in args.rates:
                argv = [
                    wrk2,
                    "-t1",
                    f"-c{args.latency_connections}",
                    f"-d{max(1, round(args.seconds))}s",
                    f"-R{int(rate)}",
                    "--latency",
                    f"http://127.0.0.1:{port}{ep.path}",
                ]
                if args.scripts.get(ep.key):
                    argv[1:1] = ["-s", args.scripts[ep.key]]
                out = subprocess.run(pinned(1, argv), capture_output=True, text=True, check=True).stdout
                rows.append([f"{rate:,.0f}", target.name, *_wrk2_percentiles(out)])
        finally:
            server.stop()
    return (
        f"### Latency at fixed offered load (wrk2), {ep.label}\n\n"
        + table(["offered req/s", "server", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms"], rows)
        + "\n"
    )


def _wrk2_percentiles(out: str) -> list[str]:
    import re

    units = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    found = []
    for p in ("50.000", "90.000", "99.000", "99.900"):
        match = re.search(rf"{re.escape(p)}%\s+([\d.]+)(us|ms|s)", out)
        found.append(f"{float(match.group(1)) * units[match.group(2)]:.2f}" if match else "?")
    return found


# -- memory per idle connection -------------------------------------------------------------


async def _open_idle(port: int, count: int) -> tuple[list[tuple[asyncio.StreamReader, asyncio.StreamWriter]], int]:
    request = f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    gate = asyncio.Semaphore(100)
    opened: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    failed = 0

    async def one() -> None:
        nonlocal failed
        async with gate:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                if not head.startswith(b"HTTP/1.1 200"):
                    raise ConnectionError(head.split(b"\r\n", 1)[0].decode(errors="replace"))
                length = next(
                    (
                        int(line.split(b":", 1)[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                await reader.readexactly(length)
                opened.append((reader, writer))
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                failed += 1

    await asyncio.gather(*(one() for _ in range(count)))
    return opened, failed


def idle_memory(target: Target, count: int) -> tuple[float, int, int, float]:
    """(KiB per idle connection, connections still open after the second reading, failures,
    seconds taken to open them)."""
    # Lift the servers' own connection caps above ``count``: Cello's max_connections (1000 by
    # default), Granian's backpressure (= backlog, 1024). uvicorn and Sanic have none by default.
    room = str(2 * count)
    extra = ["--backpressure", room, "--backlog", room] if target.key.endswith("-granian") else []
    env = {"CELLO_BENCH_MAX_CONNECTIONS": room} if target.kind == "cello" else {}
    server = server_for(target, "app", extra=extra, env=env)
    port = free_port()
    server.start(port, timeout=30)
    try:
        assert server.process is not None
        pid = server.process.pid

        async def measure() -> tuple[float, int, int, float]:
            warm, _ = await _open_idle(port, 50)  # load every code path once
            for _, writer in warm:
                writer.close()
            await asyncio.sleep(1.0)
            before = tree_rss_kib(pid)
            started = time.monotonic()
            opened, failed = await _open_idle(port, count)
            took = time.monotonic() - started
            await asyncio.sleep(0.5)
            after = tree_rss_kib(pid)
            await asyncio.sleep(0)  # let pending EOFs from the server arrive
            alive = sum(1 for reader, writer in opened if not reader.at_eof() and not writer.is_closing())
            for _, writer in opened:
                writer.close()
            return (after - before) / max(1, len(opened)), alive, failed, took

        return asyncio.run(measure())
    finally:
        server.stop()


def memory_section(args: argparse.Namespace, peer: Target) -> str:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < IDLE_CONNECTIONS + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4 * IDLE_CONNECTIONS), hard))
    rows = []
    for target in (CELLO, peer):
        per, alive, failed, took = idle_memory(target, IDLE_CONNECTIONS)
        print(
            f"{target.name:34} {per:6.1f} KiB per idle connection ({alive} open, {failed} failed, "
            f"opened in {took:.1f} s)",
            flush=True,
        )
        rows.append([target.name, f"{per:.1f}", str(alive), str(failed), f"{took:.1f}"])
    return (
        f"### Memory per idle keep-alive connection\n\n{IDLE_CONNECTIONS} connections, one request each then idle; "
        "RSS delta of the server's processes / connections. Connection caps lifted for this figure: "
        "Cello `max_connections`, Granian `--backpressure`/`--backlog`.\n\n"
        "A connection the server closed before the reading (keep-alive timeout) is not counted as open.\n\n"
        + table(["server", "KiB per connection", "still open", "failed", "s to open"], rows)
        + "\n"
    )


# -- main -----------------------------------------------------------------------------------


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--_paced":
        spec = json.loads(sys.argv[2])
        print(
            json.dumps(
                paced_client(
                    "127.0.0.1",
                    spec["port"],
                    spec["method"],
                    spec["paths"],
                    spec["body"].encode(),
                    spec["rate"],
                    spec["connections"],
                    spec["seconds"],
                    spec["warmup"],
                )
            )
        )
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--sections", nargs="+", choices=["workers", "latency", "memory"], default=["workers", "latency", "memory"]
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (workers section)")
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument(
        "--endpoints",
        nargs="+",
        default=["hello"],
        choices=[e.key for e in ENDPOINTS],
        help="endpoints of the workers section",
    )
    parser.add_argument("--rates", nargs="+", type=float, default=[2000.0, 5000.0], help="offered req/s")
    parser.add_argument("--latency-endpoint", default="hello", choices=[e.key for e in ENDPOINTS])
    parser.add_argument("--latency-connections", type=int, default=32)
    parser.add_argument("--peer", choices=[t.key for t in TARGETS if t.kind == "peer"])
    args = parser.parse_args()
    command = "python benchmarks/scaling.py" + ("" if len(sys.argv) < 2 else " " + " ".join(sys.argv[1:]))

    wrk = ensure_apt_tool("wrk")
    used = {e.app for e in ENDPOINTS if e.key in args.endpoints or e.key == args.latency_endpoint}
    if build_cello(sorted(used)):
        raise SystemExit("cello build failed")
    import tempfile

    with tempfile.TemporaryDirectory(prefix="cello-scaling-") as tmp:
        args.scripts = {}
        for ep in ENDPOINTS:
            if ep.lua:
                path = Path(tmp) / f"{ep.key}.lua"
                path.write_text(ep.lua)
                args.scripts[ep.key] = str(path)
        peer = best_peer(args, wrk) if {"latency", "memory"} & set(args.sections) else None
        if peer is not None and not (PEERS_VENV / "bin" / "python").exists():
            install_peers(peer.needs)
        parts = []
        if "workers" in args.sections:
            parts.append(workers_section(args, wrk))
        if "latency" in args.sections and peer is not None:
            wrk2 = shutil.which("wrk2")
            parts.append(wrk2_latency_section(args, peer, wrk2) if wrk2 else latency_section(args, peer))
        if "memory" in args.sections and peer is not None:
            parts.append(memory_section(args, peer))
    print()
    print("\n".join(parts))
    print(f"Machine: {machine_facts()}; {args.seconds:g} s per figure, median of {args.runs} run(s)")
    print(f"Command: `{command}`")


if __name__ == "__main__":
    main()
