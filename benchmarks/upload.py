"""Upload throughput and memory: a 100 MB multipart upload, Cello vs Starlette (uvicorn).

    .venv/bin/python benchmarks/upload.py [--runs 3] [--mb 100]

The client (CPU 1) sends a pre-built multipart body over a raw socket in 1 MiB writes;
the server (CPU 0) parses it into a spooled temporary file and answers with its size.
MB/s is body size over the time to the response; peak RSS is the server's VmHWM growth.
"""

from __future__ import annotations

import argparse
import socket
import statistics
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


def upload(port: int, size: int) -> float:
    head = b'--B\r\nContent-Disposition: form-data; name="f"; filename="big.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'
    tail = b"\r\n--B--\r\n"
    block = b"\xab" * (1 << 20)
    request = (
        f"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=B\r\n"
        f"Content-Length: {len(head) + size + len(tail)}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        started = time.perf_counter()
        sock.sendall(request + head)
        for _ in range(size // len(block)):
            sock.sendall(block)
        sock.sendall(tail)
        reply = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
        elapsed = time.perf_counter() - started
    if f'"size":{size}'.encode() not in reply.replace(b" ", b""):
        raise RuntimeError(f"unexpected reply: {reply[-200:]!r}")
    return size / elapsed / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--mb", type=int, default=100)
    args = parser.parse_args()
    size = args.mb * (1 << 20)
    servers = stream_servers(str(ensure_peers(STREAM_PEERS)), "starlette (uvicorn)")
    speed: dict[str, list[float]] = {s.name: [] for s in servers}
    growth: dict[str, list[float]] = {s.name: [] for s in servers}

    def measure(run: int, server: Server, port: int) -> None:
        assert server.process is not None
        before = proc_status_mib(server.process.pid, "VmHWM")
        speed[server.name].append(upload(port, size))
        growth[server.name].append(proc_status_mib(server.process.pid, "VmHWM") - before)
        print(f"run {run + 1} {server.name}: {speed[server.name][-1]:.0f} MB/s", flush=True)

    rounds(servers, args.runs, measure)
    base = statistics.median(speed[servers[1].name])
    rows = [
        [
            s.name,
            f"{statistics.median(speed[s.name]):.0f}",
            f"{statistics.median(speed[s.name]) / base:.2f}x",
            f"{max(growth[s.name]):.1f}",
        ]
        for s in servers
    ]
    print()
    print(
        f"Machine: {machine_facts()}; {args.mb} MiB upload, median of {args.runs} runs; the client is taskset to CPU 1"
    )
    print(table(["server", "MB/s", "vs starlette", "peak RSS growth (MiB)"], rows))


if __name__ == "__main__":
    main()
