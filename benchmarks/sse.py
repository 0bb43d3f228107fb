"""SSE throughput and memory: Cello vs Starlette + sse-starlette (uvicorn), one run.

    .venv/bin/python benchmarks/sse.py [--runs 3]

events/s to 1 client (20,000 events) and to 100 concurrent clients (2,000 events each),
read by a lean asyncio client pinned to CPU 1 (server on CPU 0) that only counts event
terminators; then the server's RSS with 1,000 open idle streams.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    STREAM_PEERS,
    Server,
    ensure_peers,
    machine_facts,
    proc_status_mib,
    rounds,
    stream_servers,
    table,
)

CLIENT = r"""
import asyncio, sys, time
port, clients, events, mode = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]

async def stream(path, want):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n".encode())
    seen = 0
    tail = b""
    while seen < want:
        chunk = await reader.read(262144)
        if not chunk:
            break
        data = tail + chunk
        seen += data.count(b"event: tick")
        tail = data[-16:]
        seen -= tail.count(b"event: tick")
    return writer, seen

async def main():
    if mode == "rate":
        started = time.perf_counter()
        results = await asyncio.gather(*(stream(f"/sse?n={events}", events) for _ in range(clients)))
        elapsed = time.perf_counter() - started
        total = sum(seen for _, seen in results)
        print(total / elapsed)
    else:
        results = []
        for start in range(0, clients, 100):
            results += await asyncio.gather(*(stream("/sse-idle", 0) for _ in range(min(100, clients - start))))
        print("open", flush=True)
        sys.stdin.readline()

asyncio.run(main())
"""


def client(port: int, clients: int, events: int, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["taskset", "-c", "1", sys.executable, "-c", CLIENT, str(port), str(clients), str(events), mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    servers = stream_servers(str(ensure_peers(STREAM_PEERS)), "starlette + sse-starlette (uvicorn)")
    one: dict[str, list[float]] = {s.name: [] for s in servers}
    hundred: dict[str, list[float]] = {s.name: [] for s in servers}
    memory: dict[str, float] = {}

    def measure(run: int, server: Server, port: int) -> None:
        assert server.process is not None
        for clients, events, bucket in ((1, 20000, one), (100, 2000, hundred)):
            out = client(port, clients, events, "rate").communicate(timeout=300)[0]
            bucket[server.name].append(float(out.strip()))
        if run == 0:
            base = proc_status_mib(server.process.pid, "VmRSS")
            idle = client(port, 1000, 0, "idle")
            assert idle.stdout is not None and idle.stdin is not None
            idle.stdout.readline()
            time.sleep(0.5)
            memory[server.name] = proc_status_mib(server.process.pid, "VmRSS") - base
            idle.stdin.write("\n")
            idle.stdin.flush()
            idle.wait(30)
        print(
            f"run {run + 1} {server.name}: 1 client {one[server.name][-1]:,.0f} ev/s, "
            f"100 clients {hundred[server.name][-1]:,.0f} ev/s",
            flush=True,
        )

    rounds(servers, args.runs, measure)
    base_name = servers[1].name
    rows = []
    for server in servers:
        m1, m100 = statistics.median(one[server.name]), statistics.median(hundred[server.name])
        rows.append(
            [
                server.name,
                f"{m1:,.0f}",
                f"{m100:,.0f}",
                f"{m100 / statistics.median(hundred[base_name]):.2f}x",
                f"{memory[server.name]:.1f}",
            ]
        )
    print()
    print(f"Machine: {machine_facts()}; median of {args.runs} runs; server CPU 0, client CPU 1")
    print(
        table(
            [
                "server",
                "events/s, 1 client",
                "events/s, 100 clients",
                "100 clients vs starlette",
                "RSS added by 1,000 idle streams (MiB)",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
