"""WebSocket lifecycle on dedicated servers: keep-alive pings, compression limits, close
timeouts, graceful shutdown (1001) and the memory held by idle connections."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import socket
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
import websockets
from support.servers import RunningServer, start_server
from support.websocket import OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_TEXT, RawWebSocket, deflate, encode_frame
from websockets.exceptions import ConnectionClosed

TUNED = "tests/apps/ws_tuned.py"
APP = "tests/apps/ws.py"


@pytest.fixture(params=["httptools", "h11"])
def tuned(request: pytest.FixtureRequest, serve_app: Callable[..., RunningServer]) -> RunningServer:
    return serve_app(TUNED, request.param, "interpreted")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


# -- keep-alive pings ----------------------------------------------------------------------


def test_silent_peer_is_pinged_then_closed_with_1011(tuned: RunningServer) -> None:
    with RawWebSocket.connect(tuned.port, "/echo") as ws:
        started = time.monotonic()
        pings = 0
        while True:
            fin, opcode, payload = ws.recv_frame()
            if opcode == OP_PING:
                pings += 1  # never answered
            elif opcode == OP_CLOSE:
                break
        elapsed = time.monotonic() - started
        assert pings >= 1
        assert int.from_bytes(payload[:2], "big") == 1011
        assert 0.5 <= elapsed < 3.0, elapsed
        assert ws.at_eof()


async def test_peer_that_answers_pings_stays_connected(tuned: RunningServer) -> None:
    async with websockets.connect(f"ws://127.0.0.1:{tuned.port}/echo", ping_interval=None) as ws:
        await asyncio.sleep(1.5)  # several server pings, answered by the client library
        await ws.send("still here")
        assert await ws.recv() == "still here"


def test_close_handshake_timeout(tuned: RunningServer) -> None:
    with RawWebSocket.connect(tuned.port, "/close") as ws:
        assert ws.recv_close() == (4000, "done")
        started = time.monotonic()
        assert ws.at_eof(timeout=5)  # we never answer: the server gives up after 1 s
        assert 0.8 <= time.monotonic() - started < 3.0


# -- permessage-deflate --------------------------------------------------------------------


async def test_compressed_echo(tuned: RunningServer) -> None:
    async with websockets.connect(f"ws://127.0.0.1:{tuned.port}/echo", compression="deflate") as ws:
        assert "permessage-deflate" in (ws.response.headers.get("sec-websocket-extensions") or "")
        for message in ["a" * 10_000, b"\x00" * 100_000, "short", ["frag", "mented"]]:
            await ws.send(message)
            expected = "fragmented" if isinstance(message, list) else message
            assert await ws.recv() == expected


def test_compression_not_negotiated_unless_offered(tuned: RunningServer) -> None:
    with RawWebSocket.connect(tuned.port, "/echo") as ws:
        assert "sec-websocket-extensions" not in ws.headers
        ws.send_frame(OP_TEXT, b"plain")
        assert ws.recv_message() == (OP_TEXT, b"plain")


def test_compression_bomb_is_1009_without_inflating_it(tuned: RunningServer) -> None:
    # Built before connecting: this raw client does not answer the tuned app's pings.
    bomb = deflate(b"\x00" * (200 * 1024 * 1024))  # 200 MiB of zeros in ~200 KiB
    assert len(bomb) < 250 * 1024
    headers = {"Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits"}
    with RawWebSocket.connect(tuned.port, "/echo", headers) as ws:
        assert ws.headers["sec-websocket-extensions"].startswith("permessage-deflate")
        small = deflate(b"ok" * 10)
        ws.send_frame(OP_TEXT, small, rsv1=True)
        opcode, payload = ws.recv_message()  # compressed too
        assert (opcode, zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff")) == (OP_TEXT, b"ok" * 10)
        before = rss_kib(tuned.process.pid)
        ws.send_frame(OP_BINARY, bomb, rsv1=True)
        assert ws.recv_close()[0] == 1009
        grown = rss_kib(tuned.process.pid) - before
        assert grown < 20 * 1024, f"server RSS grew by {grown} KiB"


# -- fragment floods ------------------------------------------------------------------------

FLOOD_FRAGMENTS = 1_000_000


@pytest.mark.parametrize("http", ["httptools", "h11"])
@pytest.mark.parametrize("path", ["/echo", "/ws/sync-echo"])
def test_fragment_flood_is_refused_at_once(serve_app: Callable[..., RunningServer], http: str, path: str) -> None:
    # One message in a million 1-byte fragments (7 MB on the wire, 1 MB of payload: within
    # ws_max_message_size) once kept the worker busy for seconds and grew it by 10-130 MiB.
    server = serve_app(APP, http, "interpreted")
    pid = server.process.pid
    flood_data = encode_frame(OP_BINARY, b"x", fin=False) + encode_frame(OP_CONT, b"x", fin=False) * FLOOD_FRAGMENTS
    with RawWebSocket.connect(server.port, "/echo") as other, RawWebSocket.connect(server.port, path) as flood:
        other.send_frame(OP_TEXT, b"warm up")
        assert other.recv_message() == (OP_TEXT, b"warm up")
        before = rss_kib(pid)
        peak = before
        latencies: list[float] = []
        errors: list[BaseException] = []

        def watch() -> None:  # another client's echo and the server's memory, meanwhile
            nonlocal peak
            try:
                for _ in range(50):
                    started = time.monotonic()
                    other.send_frame(OP_TEXT, b"still there?")
                    assert other.recv_message() == (OP_TEXT, b"still there?")
                    latencies.append(time.monotonic() - started)
                    peak = max(peak, rss_kib(pid))
                    time.sleep(0.01)
            except BaseException as exc:  # noqa: BLE001 - reported by the test below
                errors.append(exc)

        def send() -> None:
            try:
                flood.send_raw(flood_data)
            except OSError:
                pass  # the server closed, or we shut the socket down

        watcher = threading.Thread(target=watch)
        sender = threading.Thread(target=send)
        watcher.start()
        started = time.monotonic()
        sender.start()
        try:
            assert flood.recv_close() == (1009, "message in more than 1024 fragments")
            elapsed = time.monotonic() - started
        finally:
            flood.sock.shutdown(socket.SHUT_RDWR)  # ends a send still blocked
            sender.join(10)
            watcher.join(10)
    print(
        f"\nfragment flood ({http}, {path}): closed after {elapsed * 1000:.0f} ms, other client's echo "
        f"<= {max(latencies) * 1000:.0f} ms ({len(latencies)} echoes), server RSS +{peak - before} KiB"
    )
    assert not errors, errors
    assert elapsed < 1.5, f"closed after {elapsed:.2f} s"
    assert latencies and max(latencies) < 1.5, f"the other client waited up to {max(latencies):.2f} s"
    assert peak - before < 4 * 1024, f"server RSS grew by {peak - before} KiB"


# -- graceful shutdown ---------------------------------------------------------------------


@pytest.mark.parametrize("http", ["httptools", "h11"])
async def test_shutdown_closes_open_connections_with_1001(http: str) -> None:
    server = start_server(APP, http, "interpreted")
    try:
        base = f"ws://127.0.0.1:{server.port}"
        clients = [await websockets.connect(f"{base}/echo") for _ in range(5)]
        clients.append(await websockets.connect(f"{base}/ws/sync-echo"))
        clients.append(await websockets.connect(f"{base}/ws/chat"))
        for ws in clients:
            await ws.send("hi")
            await ws.recv()
        server.process.send_signal(signal.SIGINT)
        for ws in clients:
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)
            assert ws.close_code == 1001
            assert ws.close_reason == "server shutting down"
        exit_code = await asyncio.get_running_loop().run_in_executor(None, server.process.wait, 15)
        assert exit_code == 0, server.output()
    finally:
        server.stop()


# -- memory --------------------------------------------------------------------------------

IDLE_CONNECTIONS = 2000
MEMORY_BOUND_MIB = 100


async def _open_raw(port: int, path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    return reader, writer


async def test_idle_connections_memory() -> None:
    # (max_connections, 1000 by default, counts WebSocket connections too)
    server = start_server(APP, "httptools", "interpreted", "--max-connections", "5000")
    try:
        pid = server.process.pid
        # Warm up (imports, first handshake, thread pools) before the baseline.
        reader, writer = await _open_raw(server.port, "/echo")
        writer.close()
        await asyncio.sleep(0.5)
        before = rss_kib(pid)
        connections = []
        for _ in range(0, IDLE_CONNECTIONS, 250):
            connections += await asyncio.gather(*(_open_raw(server.port, "/echo") for _ in range(250)))
        await asyncio.sleep(1.0)
        after = rss_kib(pid)
        # Still alive and served: one echo on the first and the last.
        for reader, writer in (connections[0], connections[-1]):
            writer.write(encode_frame(OP_TEXT, b"alive"))
            frame = await asyncio.wait_for(reader.readexactly(7), 5)
            assert frame == b"\x81\x05alive"
        grown_mib = (after - before) / 1024
        print(
            f"\n{IDLE_CONNECTIONS} idle WebSocket connections: server RSS +{grown_mib:.1f} MiB "
            f"({(after - before) * 1024 / IDLE_CONNECTIONS / 1024:.1f} KiB each)"
        )
        assert grown_mib < MEMORY_BOUND_MIB
        for _, writer in connections:
            writer.close()
    finally:
        server.stop()
