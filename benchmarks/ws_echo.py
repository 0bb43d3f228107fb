"""WebSocket echo throughput: Cello vs uvicorn+Starlette vs Granian+Starlette vs `websockets`.

    .venv/bin/python benchmarks/ws_echo.py [--seconds 5] [--runs 3] [--size 64] [--only NAME ...]

uvicorn runs twice: with ``--ws websockets-sansio`` (what its default, ``auto``, picks; the
baseline of the ratios) and with ``--ws websockets`` (the legacy implementation on the
`websockets` library's asyncio protocol, deprecated by uvicorn).

Each server echoes text messages on /ws. The client (this process, pinned to CPU 1, on
uvloop) is a lean raw-frame client: the masked frame is built once, every connection keeps
exactly one message in flight (sequential round trips), so each reply is one frame of known
size and is counted by its bytes. Two loads: 1 connection, and 50 concurrent connections.
The servers run one after the other on CPU 0, interleaved within each run; each figure is
the median of ``--runs`` runs after a one-second warm-up on fresh connections. The last
column is the server's CPU time per message (from /proc): unlike messages/s, it hardly
moves when other processes share the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import ROOT, Server, ensure_peers, machine_facts, rounds, table, uvicorn_argv  # noqa: E402
from support.websocket import OP_TEXT, encode_frame  # noqa: E402

PEERS = ["uvicorn", "starlette", "websockets", "granian", "uvloop", "httptools"]
LOADS = {"1 connection": 1, "50 connections": 50}


def servers(peer_python: str) -> list[Server]:
    cello = str(ROOT / ".venv" / "bin" / "cello")
    apps = HERE / "apps"
    return [
        Server(
            "cello serve (httptools)",
            [
                cello,
                "serve",
                "benchmarks/apps/ws_cello.py",
                "--port",
                "{port}",
                "--no-logs",
                "--out",
                str(HERE / "build" / "none"),
            ],
        ),
        Server(
            "uvicorn + starlette (websockets-sansio)",
            uvicorn_argv(peer_python, "ws_starlette:app", "--ws", "websockets-sansio"),
            cwd=apps,
        ),
        Server(
            "uvicorn + starlette (websockets, legacy)",
            uvicorn_argv(peer_python, "ws_starlette:app", "--ws", "websockets"),
            cwd=apps,
            env={"PYTHONWARNINGS": "ignore"},
        ),
        Server(
            "granian + starlette",
            [
                peer_python,
                "-m",
                "granian",
                "--interface",
                "asgi",
                "--host",
                "127.0.0.1",
                "--port",
                "{port}",
                "--workers",
                "1",
                "--loop",
                "uvloop",
                "--log-level",
                "warning",
                "ws_starlette:app",
            ],
            cwd=apps,
        ),
        Server("websockets (asyncio server, uvloop)", [peer_python, "ws_websockets.py", "{port}"], cwd=apps),
    ]


class EchoClient(asyncio.Protocol):
    """One connection: handshake, then send the next message whenever the echo arrives.

    With one message in flight, every reply is exactly one unmasked frame of known size, so
    replies are counted by their bytes (the first one is checked whole). No server pings
    within a run: connections live for ``seconds + 1`` (< the 20 s ping interval).
    """

    def __init__(self, frame: bytes, reply: bytes, opened: asyncio.Future[None]) -> None:
        self.frame = frame
        self.reply = reply
        self.reply_size = len(reply)
        self.opened = opened
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.handshaken = False
        self.checked = False
        self.pending = 0
        self.count = 0
        self.running = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        key = base64.b64encode(os.urandom(16))
        transport.write(  # type: ignore[attr-defined]
            b"GET /ws HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )

    def data_received(self, data: bytes) -> None:
        if not self.checked:
            self._start(data)
            return
        got = self.pending + len(data)
        if got >= self.reply_size:
            got -= self.reply_size
            self.count += 1
            if self.running:
                self.transport.write(self.frame)  # type: ignore[union-attr]
        self.pending = got

    def _start(self, data: bytes) -> None:
        buf = self.buffer + data
        if not self.handshaken:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buffer = buf
                return
            if not buf.startswith(b"HTTP/1.1 101"):
                self.opened.set_exception(RuntimeError(f"handshake refused: {buf[:80]!r}"))
                return
            self.handshaken = True
            buf = buf[end + 4 :]
            self.transport.write(self.frame)  # type: ignore[union-attr]
        if len(buf) < self.reply_size:
            self.buffer = buf
            return
        if buf[: self.reply_size] != self.reply:
            self.opened.set_exception(RuntimeError(f"unexpected reply {buf[:80]!r}"))
            return
        self.checked = True
        self.buffer = b""
        self.pending = len(buf) - self.reply_size
        self.count += 1
        self.transport.write(self.frame)  # type: ignore[union-attr]
        self.opened.set_result(None)


def process_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and its child processes (Granian serves from a child)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


async def measure_echo(port: int, pid: int, connections: int, seconds: float, payload: bytes) -> tuple[float, float]:
    """(messages/s, server CPU microseconds per message)."""
    loop = asyncio.get_running_loop()
    frame = encode_frame(OP_TEXT, payload)
    reply = encode_frame(OP_TEXT, payload, mask=False)
    clients: list[EchoClient] = []
    for _ in range(connections):
        opened: asyncio.Future[None] = loop.create_future()
        _, client = await loop.create_connection(
            lambda opened=opened: EchoClient(frame, reply, opened), "127.0.0.1", port
        )
        clients.append(client)
        await opened
    await asyncio.sleep(1.0)  # warm-up
    start_counts = sum(c.count for c in clients)
    start_cpu = process_cpu(pid)
    started = time.perf_counter()
    await asyncio.sleep(seconds)
    done = sum(c.count for c in clients) - start_counts
    elapsed = time.perf_counter() - started
    cpu = process_cpu(pid) - start_cpu
    for client in clients:
        client.running = False
        if client.transport is not None:
            client.transport.close()
    await asyncio.sleep(0.2)
    return done / elapsed, cpu / max(done, 1) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--size", type=int, default=64, help="message size in bytes (< 126)")
    parser.add_argument("--only", nargs="*", help="substrings of server names to run")
    args = parser.parse_args()

    import uvloop

    peer_python = str(ensure_peers(PEERS))
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})  # the client; servers are pinned to CPU 0
    payload = (b"cello-ws-bench " * 16)[: args.size]
    all_servers = [s for s in servers(peer_python) if not args.only or any(o in s.name for o in args.only)]
    results: dict[tuple[str, str], list[float]] = {}
    cpu: dict[tuple[str, str], list[float]] = {}

    def measure(run: int, server: Server, port: int) -> None:
        assert server.process is not None
        for label, connections in LOADS.items():
            rate, us = uvloop.run(measure_echo(port, server.process.pid, connections, args.seconds, payload))
            results.setdefault((server.name, label), []).append(rate)
            cpu.setdefault((server.name, label), []).append(us)
            print(f"run {run + 1} {server.name:40} {label:16} {rate:10.0f} msg/s {us:6.1f} us CPU/msg", flush=True)

    rounds(all_servers, args.runs, measure)

    baseline = next((s.name for s in all_servers if s.name.startswith("uvicorn")), all_servers[0].name)  # sansio
    rows = []
    for label in LOADS:
        base = statistics.median(results[(baseline, label)])
        for server in all_servers:
            rate = statistics.median(results[(server.name, label)])
            us = statistics.median(cpu[(server.name, label)])
            rows.append([label, server.name, f"{rate:,.0f}", f"{rate / base:.2f}x", f"{us:.1f}"])
    print()
    print(
        f"Machine: {machine_facts()}; {args.size}-byte text messages, echo round trips, one in flight per "
        f"connection; {args.seconds:g}s per figure, median of {args.runs} runs; server on CPU 0, client on CPU 1"
    )
    print(table(["load", "server", "messages/s", "vs uvicorn+starlette (sansio)", "server CPU µs/msg"], rows))


if __name__ == "__main__":
    main()
