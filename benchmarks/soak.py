"""Soak: rounds of mixed operations over many connections, with random aborts.

Operations: plain requests, echoed bodies, streamed and multipart uploads, large responses,
SSE streams, WebSocket echoes (when this Cello has WebSocket support), and clients that vanish
mid-head, mid-body, mid-response, mid-SSE and mid-WebSocket. After each round every client
connection is closed, and the server's RSS, open file descriptors (/proc/<pid>/fd) and live
asyncio tasks (from the soak app's own debug endpoint) are reported next to the errors.

    .venv/bin/python benchmarks/soak.py                      # 3 rounds x 10,000 ops, 200 connections
    .venv/bin/python benchmarks/soak.py --ops 500 --connections 50 --http h11

tests/test_soak.py runs a short version and checks the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# The tests' support package: one free_port and one WebSocket frame encoder for both.
sys.path.insert(0, str(ROOT / "tests"))

from support.ports import free_port  # noqa: E402
from support.websocket import OP_CLOSE, OP_TEXT, close_payload, encode_frame  # noqa: E402

APP = "benchmarks/apps/soak_app.py"
OP_TIMEOUT = 30.0


# -- the server -------------------------------------------------------------------------


class SoakServer:
    """`cello serve` of the soak app in a subprocess."""

    def __init__(self, http: str = "httptools", log: Path | None = None) -> None:
        self.port = free_port()
        self.log = log or ROOT / "build" / "soak" / f"server-{self.port}.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        argv = [
            sys.executable,
            "-m",
            "cello",
            "serve",
            APP,
            "--port",
            str(self.port),
            "--http",
            http,
            "--no-logs",
            "--out",
            str(ROOT / "build" / "soak" / "none"),
        ]
        with self.log.open("wb") as sink:
            self.process = subprocess.Popen(
                argv, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"}
            )
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"soak server exited:\n{self.log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("soak server did not start") from None
                time.sleep(0.05)

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return -1

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


# -- a small HTTP/WebSocket client on asyncio streams -------------------------------------


class Unexpected(Exception):
    pass


@dataclass
class Conn:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    @classmethod
    async def open(cls, port: int) -> Conn:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        return cls(reader, writer)

    def close(self) -> None:
        self.writer.close()

    def abort(self, reset: bool) -> None:
        if reset:
            sock = self.writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort() if reset else self.writer.close()

    async def request(self, data: bytes) -> tuple[int, dict[str, str], bytes]:
        self.writer.write(data)
        await self.writer.drain()
        return await self.response()

    async def response(self) -> tuple[int, dict[str, str], bytes]:
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if status < 200 or status in (204, 304):
            return status, headers, b""
        if headers.get("transfer-encoding") == "chunked":
            body = bytearray()
            while True:
                size = int((await self.reader.readuntil(b"\r\n"))[:-2].split(b";")[0], 16)
                if size == 0:
                    await self.reader.readuntil(b"\r\n")
                    break
                body += (await self.reader.readexactly(size + 2))[:-2]
            return status, headers, bytes(body)
        if "content-length" in headers:
            return status, headers, await self.reader.readexactly(int(headers["content-length"]))
        return status, headers, await self.reader.read()


def _request(method: str, path: str, body: bytes = b"", headers: str = "") -> bytes:
    length = f"Content-Length: {len(body)}\r\n" if body or method == "POST" else ""
    return f"{method} {path} HTTP/1.1\r\nHost: soak\r\n{headers}{length}\r\n".encode() + body


async def _ws_read(conn: Conn) -> tuple[int, bytes]:
    first, second = await conn.reader.readexactly(2)
    size = second & 0x7F
    if size == 126:
        size = struct.unpack("!H", await conn.reader.readexactly(2))[0]
    elif size == 127:
        size = struct.unpack("!Q", await conn.reader.readexactly(8))[0]
    return first & 0x0F, await conn.reader.readexactly(size)


async def _ws_handshake(conn: Conn) -> None:
    key = base64.b64encode(os.urandom(16)).decode()
    conn.writer.write(
        f"GET /ws HTTP/1.1\r\nHost: soak\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    await conn.writer.drain()
    head = await conn.reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        raise Unexpected(f"WebSocket handshake answered {head[:40]!r}")


# -- operations -----------------------------------------------------------------------------
# Each takes the worker's keep-alive connection (or opens its own) and returns whether that
# connection can be used again.


@dataclass
class Context:
    port: int
    rng: random.Random
    remaining: int
    websocket: bool
    errors: Counter[str] = field(default_factory=Counter)
    done: Counter[str] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)

    def take(self) -> bool:
        if self.remaining <= 0:
            return False
        self.remaining -= 1
        return True


def _expect(condition: bool, what: str) -> None:
    if not condition:
        raise Unexpected(what)


async def op_get(ctx: Context, conn: Conn) -> bool:
    n = ctx.rng.randrange(1_000_000)
    status, _, body = await conn.request(_request("GET", f"/n/{n}"))
    _expect((status, body) == (200, str(n).encode()), f"GET /n: {status} {body[:60]!r}")
    return True


async def op_echo(ctx: Context, conn: Conn) -> bool:
    payload = os.urandom(ctx.rng.randrange(1, 8192))
    status, _, body = await conn.request(_request("POST", "/echo", payload))
    _expect((status, body) == (200, payload), f"POST /echo: {status}")
    return True


async def op_big(ctx: Context, conn: Conn) -> bool:
    status, _, body = await conn.request(_request("GET", "/big"))
    _expect(status == 200 and len(body) == 256 * 1024, f"GET /big: {status} {len(body)}")
    return True


async def op_upload(ctx: Context, conn: Conn) -> bool:
    size = ctx.rng.randrange(1, 512 * 1024)
    status, _, body = await conn.request(_request("POST", "/upload", b"u" * size))
    _expect(status == 200 and orjson.loads(body) == {"size": size}, f"POST /upload: {status} {body[:60]!r}")
    return True


async def op_form(ctx: Context, conn: Conn) -> bool:
    content = os.urandom(ctx.rng.randrange(1, 64 * 1024))
    body = (
        b'--SoAk\r\nContent-Disposition: form-data; name="f"; filename="f.bin"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n" + content + b"\r\n--SoAk--\r\n"
    )
    data = _request("POST", "/form", body, "Content-Type: multipart/form-data; boundary=SoAk\r\n")
    status, _, answer = await conn.request(data)
    _expect(
        status == 200 and orjson.loads(answer) == {"sizes": [len(content)]}, f"POST /form: {status} {answer[:80]!r}"
    )
    return True


async def op_sse(ctx: Context, conn: Conn) -> bool:
    status, headers, body = await conn.request(_request("GET", "/sse?5"))
    _expect(status == 200 and headers.get("content-type", "").startswith("text/event-stream"), f"SSE: {status}")
    _expect(b"data: event 4" in body, f"SSE body: {body[-80:]!r}")
    return True


async def op_ws(ctx: Context, conn: Conn) -> bool:
    own = await Conn.open(ctx.port)
    try:
        await _ws_handshake(own)
        for i in range(3):
            message = f"soak {i} {ctx.rng.random()}".encode()
            own.writer.write(encode_frame(OP_TEXT, message))
            opcode, payload = await _ws_read(own)
            _expect((opcode, payload) == (1, message), f"WebSocket echo: {opcode} {payload[:40]!r}")
        own.writer.write(encode_frame(OP_CLOSE, close_payload(1000)))
        opcode, _ = await _ws_read(own)
        _expect(opcode == 8, f"WebSocket close answered with opcode {opcode}")
        _expect(await own.reader.read() == b"", "data after the WebSocket close")
    finally:
        own.close()
    return True


async def op_abort_head(ctx: Context, conn: Conn) -> bool:
    own = await Conn.open(ctx.port)
    own.writer.write(b"GET /n/1 HTTP/1.1\r\nHost: soak\r\nX-Cut: ab")
    await own.writer.drain()
    own.abort(ctx.rng.random() < 0.5)
    return True


async def op_abort_body(ctx: Context, conn: Conn) -> bool:
    own = await Conn.open(ctx.port)
    path = ctx.rng.choice(["/upload", "/echo"])
    own.writer.write(_request("POST", path, b"")[:-2] + b"Content-Length: 2000000\r\n\r\n" + b"x" * 100_000)
    await own.writer.drain()
    own.abort(ctx.rng.random() < 0.5)
    return True


async def op_abort_response(ctx: Context, conn: Conn) -> bool:
    own = await Conn.open(ctx.port)
    own.writer.write(_request("GET", "/big"))
    await own.writer.drain()
    await own.reader.readexactly(1000)
    own.abort(ctx.rng.random() < 0.5)
    return True


async def op_abort_sse(ctx: Context, conn: Conn) -> bool:
    own = await Conn.open(ctx.port)
    own.writer.write(_request("GET", "/sse?100000"))
    await own.writer.drain()
    await own.reader.readuntil(b"event 1")
    own.abort(ctx.rng.random() < 0.5)
    return True


async def op_abort_ws(ctx: Context, conn: Conn) -> bool:
    own = await Conn.open(ctx.port)
    await _ws_handshake(own)
    own.writer.write(encode_frame(OP_TEXT, b"hello"))
    await _ws_read(own)
    own.writer.write(encode_frame(OP_TEXT, b"cut short")[:4])
    await own.writer.drain()
    own.abort(ctx.rng.random() < 0.5)
    return True


async def op_abort_keepalive(ctx: Context, conn: Conn) -> bool:
    """The worker's own connection vanishes while a request is in flight."""
    conn.writer.write(_request("GET", "/big"))
    await conn.writer.drain()
    conn.abort(True)
    return False


Op = Callable[[Context, Conn], Awaitable[bool]]
OPERATIONS: list[tuple[str, Op, int, bool]] = [  # name, function, weight, needs WebSocket
    ("get", op_get, 40, False),
    ("echo", op_echo, 10, False),
    ("big", op_big, 5, False),
    ("upload", op_upload, 6, False),
    ("form", op_form, 4, False),
    ("sse", op_sse, 8, False),
    ("ws", op_ws, 8, True),
    ("abort-head", op_abort_head, 3, False),
    ("abort-body", op_abort_body, 3, False),
    ("abort-response", op_abort_response, 3, False),
    ("abort-sse", op_abort_sse, 3, False),
    ("abort-ws", op_abort_ws, 3, True),
    ("abort-keepalive", op_abort_keepalive, 4, False),
]


async def _worker(ctx: Context) -> None:
    ops = [(name, fn, weight) for name, fn, weight, ws in OPERATIONS if ctx.websocket or not ws]
    names = [name for name, _, _ in ops]
    functions = {name: fn for name, fn, _ in ops}
    weights = [weight for _, _, weight in ops]
    conn: Conn | None = None
    while ctx.take():
        name = ctx.rng.choices(names, weights)[0]
        keep = True
        try:
            if conn is None:
                conn = await Conn.open(ctx.port)
            keep = await asyncio.wait_for(functions[name](ctx, conn), OP_TIMEOUT)
            ctx.done[name] += 1
        except Exception as exc:  # noqa: BLE001 - every failure is counted and reported
            ctx.errors[name] += 1
            if len(ctx.samples) < 10:
                ctx.samples.append(f"{name}: {type(exc).__name__}: {exc}")
            keep = False
        if conn is not None and (not keep or ctx.rng.random() < 0.03):
            conn.close()
            conn = None
    if conn is not None:
        conn.close()


async def _run_ops(port: int, ops: int, connections: int, seed: int, websocket: bool) -> Context:
    ctx = Context(port, random.Random(seed), ops, websocket)
    await asyncio.gather(*(_worker(ctx) for _ in range(connections)))
    await asyncio.sleep(0.05)  # let the closes go out
    return ctx


# -- rounds -----------------------------------------------------------------------------------


@dataclass
class RoundResult:
    round: int
    ops: int
    errors: int
    aborts: int
    rss_kib: int
    fds: int
    tasks: int
    live: dict[str, int]
    seconds: float
    samples: list[str]


def _stats(port: int) -> dict[str, Any]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /_soak/stats HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return dict(orjson.loads(data.split(b"\r\n\r\n", 1)[1]))


def _settle(server: SoakServer, fds: int, tasks: int, timeout: float = 20.0) -> tuple[int, dict[str, Any]]:
    """Wait until the server is back to ``fds``/``tasks`` with nothing live (or the timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        stats = _stats(server.port)
        now = server.fds()
        quiet = stats["tasks"] <= tasks and not any(stats["live"].values())
        if (now <= fds and quiet) or time.monotonic() > deadline:
            return now, stats
        time.sleep(0.1)


def soak(
    rounds: int = 3,
    ops: int = 10_000,
    connections: int = 200,
    http: str = "httptools",
    seed: int = 1,
    report: Callable[[str], None] | None = print,
) -> tuple[list[RoundResult], dict[str, int], int]:
    """Run the soak; (per-round results, the baseline, the server's exit status)."""
    server = SoakServer(http)
    try:
        websocket = bool(_stats(server.port)["websocket"])
        # Warm up (imports, pools, first-use allocations), then take the baseline.
        asyncio.run(_run_ops(server.port, min(ops, 300), min(connections, 50), seed - 1, websocket))
        time.sleep(0.3)
        stats = _stats(server.port)
        baseline = {"fds": server.fds(), "tasks": stats["tasks"], "rss_kib": server.rss_kib()}
        fds, _ = _settle(server, baseline["fds"], baseline["tasks"], timeout=5.0)
        baseline["fds"] = min(baseline["fds"], fds)
        if report:
            report(
                f"server pid {server.pid}, parser {http}, WebSocket {'on' if websocket else 'off (not available)'}; "
                f"baseline: {baseline['rss_kib'] / 1024:.1f} MiB RSS, {baseline['fds']} fds, {baseline['tasks']} tasks"
            )
        results = []
        for number in range(1, rounds + 1):
            started = time.monotonic()
            ctx = asyncio.run(_run_ops(server.port, ops, connections, seed + number, websocket))
            elapsed = time.monotonic() - started
            fds, stats = _settle(server, baseline["fds"], baseline["tasks"])
            result = RoundResult(
                number,
                sum(ctx.done.values()) + sum(ctx.errors.values()),
                sum(ctx.errors.values()),
                sum(v for k, v in ctx.done.items() if k.startswith("abort")),
                server.rss_kib(),
                fds,
                int(stats["tasks"]),
                dict(stats["live"]),
                elapsed,
                ctx.samples,
            )
            results.append(result)
            if report:
                report(
                    f"round {number}: {result.ops} ops in {elapsed:.1f}s, {result.errors} errors"
                    + (f" ({'; '.join(ctx.samples[:3])})" if ctx.samples else "")
                )
    finally:
        code = server.stop()
    return results, baseline, code


def table(results: list[RoundResult], baseline: dict[str, int]) -> str:
    rows = [
        "| round | ops | unexpected errors | aborts | RSS (MiB) | open fds | asyncio tasks | seconds |",
        "|---|---|---|---|---|---|---|---|",
        f"| baseline | | | | {baseline['rss_kib'] / 1024:.1f} | {baseline['fds']} | {baseline['tasks']} | |",
    ]
    for r in results:
        rows.append(
            f"| {r.round} | {r.ops} | {r.errors} | {r.aborts} | {r.rss_kib / 1024:.1f} | {r.fds} | {r.tasks} | {r.seconds:.1f} |"
        )
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ops", type=int, default=10_000, help="operations per round")
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--http", choices=("httptools", "h11"), default="httptools")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    results, baseline, code = soak(args.rounds, args.ops, args.connections, args.http, args.seed)
    print()
    print(table(results, baseline))
    print(f"\nserver exit status after SIGTERM: {code}")
    bad = any(r.errors for r in results) or code != 0
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
