"""Faults over real sockets against `cello serve` (both parsers): slow and vanishing clients,
floods, too many connections, shutdown under load, a worker killed under load.

The app (tests/apps/faults.py) sets short timeouts so that this stays fast; nothing asserts
tight timings. After every fault the server must still answer a fresh request, and what the
fault left behind (file descriptors, generators, upload handlers) must be released.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.artifacts import ROOT
from support.http import Reader, connect, exchange, get
from support.ports import free_port
from support.servers import RunningServer, start_server
from support.variants import PARSERS
from support.websocket import OP_CLOSE, OP_TEXT, close_payload, encode_frame

APP = "tests/apps/faults.py"
LIMITED = "tests/apps/faults.py:limited"
WORKERS = "tests/apps/workers.py"


@pytest.fixture(params=PARSERS)
def server(request: pytest.FixtureRequest, serve_app: Callable[..., RunningServer]) -> RunningServer:
    return serve_app(APP, request.param)


# -- helpers ----------------------------------------------------------------------------


def eventually(check: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s")
        time.sleep(0.05)


def fresh_ok(url: str) -> None:
    """The server answers a new connection (the check after every fault)."""
    (r,), closed = exchange(url, get("/", extra="Connection: close\r\n"))
    assert (r.status, r.json(), closed) == (200, {"ok": True}, True)


def stats(url: str) -> dict[str, Any]:
    (r,), _ = exchange(url, get("/stats", extra="Connection: close\r\n"))
    data: dict[str, Any] = r.json()
    return data


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def settled_fds(pid: int) -> int:
    """The descriptor count once connections of earlier tests are gone."""
    last = open_fds(pid)
    for _ in range(60):
        time.sleep(0.1)
        now = open_fds(pid)
        if now == last:
            return now
        last = now
    return last


def fds_back_to(pid: int, baseline: int) -> None:
    eventually(lambda: open_fds(pid) <= baseline, what=f"open fds back to {baseline} (now {open_fds(pid)})")


def reset(sock: socket.socket) -> None:
    """Close with a TCP reset, as a crashing client or a dropped network does."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def readable(sock: socket.socket, timeout: float = 0.0) -> bool:
    import select

    return bool(select.select([sock], [], [], timeout)[0])


@pytest.fixture
def linux() -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("reads /proc")


# -- slow clients -----------------------------------------------------------------------


def test_slowloris_head_is_cut_off(server: RunningServer) -> None:
    with connect(server.url) as sock:
        reader = Reader(sock)
        started = time.monotonic()
        # One byte every 0.1 s: each in time for any per-byte timer, the head never in time.
        for byte in b"GET / HTTP/1.1\r\nHost: a\r\nX-Slow: " + b"z" * 200:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
            if readable(sock, 0.1):
                break
        r = reader.response()
        assert r.status == 408
        assert reader.at_eof()
        assert time.monotonic() - started < 8  # request_head_timeout is 1 s
    fresh_ok(server.url)


@pytest.mark.parametrize("path", ["/echo", "/upload"])
def test_stalled_body_gets_408(server: RunningServer, path: str) -> None:
    with connect(server.url) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n".encode() + b"b" * 10)
        for _ in range(3):  # a few more bytes, then nothing
            time.sleep(0.2)
            sock.sendall(b"b")
        reader = Reader(sock)
        r = reader.response()
        assert r.status == 408
        assert r.header("connection") == "close"
        assert reader.at_eof()
    eventually(lambda: stats(server.url)["uploads_open"] == 0, what="upload handler finished")
    fresh_ok(server.url)


def _post_at_pace(url: str, path: str, length: int, piece: bytes, gap: float, limit: float) -> tuple[Any, float]:
    """POST a body of ``length`` bytes, ``piece`` every ``gap`` seconds, until the server
    answers or ``limit`` seconds pass; the response and when it came."""
    with connect(url) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: a\r\nContent-Length: {length}\r\n\r\n".encode())
        started = time.monotonic()
        sent = 0
        while sent < length and time.monotonic() - started < limit and not readable(sock, gap):
            try:
                sock.sendall(piece[: length - sent])
            except OSError:
                break  # answered and closed
            sent += len(piece)
        reader = Reader(sock)
        r = reader.response()
        elapsed = time.monotonic() - started
        if r.status == 408:
            assert reader.at_eof()
        return r, elapsed


@pytest.mark.parametrize("path", ["/echo", "/upload"])
def test_trickled_body_gets_408(server: RunningServer, path: str) -> None:
    # A byte every 0.2 s: each in time for body_idle_timeout (1 s), the body far below
    # min_body_rate (1 KiB/s), so the connection cannot be held by trickling.
    r, elapsed = _post_at_pace(server.url, path, 1000, b"b", 0.2, limit=10)
    assert (r.status, r.json(), r.header("connection")) == (408, {"error": "Request Timeout", "status": 408}, "close")
    assert elapsed < 6  # due after about 1 s
    eventually(lambda: stats(server.url)["uploads_open"] == 0, what="upload handler finished")
    fresh_ok(server.url)


@pytest.mark.parametrize("path", ["/echo", "/upload"])
def test_body_at_a_steady_pace_is_not_cut_off(server: RunningServer, path: str) -> None:
    # 2 KiB every 0.05 s (about 40 KiB/s) for 2 s: longer than body_idle_timeout (1 s), so no
    # total body deadline of that size could allow it; min_body_rate does.
    length = 80 * 1024
    r, elapsed = _post_at_pace(server.url, path, length, b"u" * 2048, 0.05, limit=30)
    assert r.status == 200
    assert elapsed > 1.0
    assert r.body == b"u" * length if path == "/echo" else r.json() == {"size": length}


@pytest.mark.parametrize("http", PARSERS)
def test_min_body_rate_is_a_serve_flag(http: str, serve_app: Callable[..., RunningServer]) -> None:
    # The same steady body, with a minimum rate above its pace: cut off once the head start is over.
    server = serve_app(APP, http, "interpreted", "--min-body-rate", str(400 * 1024))
    r, elapsed = _post_at_pace(server.url, "/upload", 80 * 1024, b"u" * 2048, 0.05, limit=30)
    assert (r.status, r.json()) == (408, {"error": "Request Timeout", "status": 408})
    assert 0.9 < elapsed < 6


def test_body_clock_waits_for_100_continue(server: RunningServer) -> None:
    # The handler reads its body after 1.5 s (body_idle_timeout is 1 s); the client waits for
    # "100 Continue", which goes out then, and sends the body only after it.
    with connect(server.url) as sock:
        sock.sendall(b"POST /upload-later HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n")
        reader = Reader(sock)
        assert reader.read_until(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"0123456789")
        r = reader.response()
        assert (r.status, r.json()) == (200, {"size": 10})


def test_idle_keep_alive_connection_closed(server: RunningServer) -> None:
    with connect(server.url) as sock:
        sock.sendall(get("/"))
        reader = Reader(sock)
        assert reader.response().status == 200
        started = time.monotonic()
        assert reader.at_eof()  # keep_alive_timeout is 0.5 s
        assert time.monotonic() - started < 5
    fresh_ok(server.url)


def test_head_begun_in_the_read_of_the_previous_request_gets_the_head_timeout(server: RunningServer) -> None:
    # The first response makes the connection idle in the middle of a read that goes on into
    # the next head; that head must not be cut off by the keep-alive timeout (a pipelined
    # flood hit this when the client's sends stalled for a moment).
    with connect(server.url) as sock:
        sock.sendall(b"GET /n/1 HTTP/1.1\r\nHost: a\r\n\r\nGET /n/2 HTTP/1.1\r\n")
        reader = Reader(sock)
        first = reader.response()
        time.sleep(0.75)  # past keep_alive_timeout (0.5 s), within request_head_timeout (1.0 s)
        sock.sendall(b"Host: a\r\n\r\n")
        second = reader.response()
    assert (first.status, first.body) == (200, b"1")
    assert (second.status, second.body) == (200, b"2")


def test_empty_lines_after_a_request_keep_the_keep_alive_timeout(server: RunningServer) -> None:
    # Empty lines between requests start no head (RFC 9112 2.2): the connection is idle.
    with connect(server.url) as sock:
        sock.sendall(get("/") + b"\r\n\r\n")
        reader = Reader(sock)
        assert reader.response().status == 200
        started = time.monotonic()
        assert reader.at_eof()
        assert time.monotonic() - started < 0.95  # keep-alive (0.5 s), not the head timeout


# -- clients that vanish ----------------------------------------------------------------


@pytest.mark.parametrize("rst", [False, True], ids=["close", "reset"])
def test_abort_mid_head(server: RunningServer, linux: None, rst: bool) -> None:
    pid = server.process.pid
    baseline = settled_fds(pid)
    for _ in range(20):
        sock = connect(server.url)
        sock.sendall(b"GET /n/1 HTTP/1.1\r\nHost: a\r\nX-Partial: abc")
        reset(sock) if rst else sock.close()
    fds_back_to(pid, baseline)
    fresh_ok(server.url)


UPLOAD_HEAD = "POST {path} HTTP/1.1\r\nHost: a\r\nContent-Type: {type}\r\nContent-Length: 2000000\r\n\r\n"
MULTIPART = "multipart/form-data; boundary=XyZ"


@pytest.mark.parametrize(
    "path,content_type,start",
    [
        ("/echo", "application/octet-stream", b""),
        ("/upload", "application/octet-stream", b""),
        ("/form", MULTIPART, b'--XyZ\r\nContent-Disposition: form-data; name="f"; filename="a.bin"\r\n\r\n'),
    ],
    ids=["buffered", "streamed", "multipart"],
)
@pytest.mark.parametrize("rst", [False, True], ids=["close", "reset"])
def test_abort_mid_body(
    server: RunningServer, linux: None, path: str, content_type: str, start: bytes, rst: bool
) -> None:
    pid = server.process.pid
    baseline = settled_fds(pid)
    for _ in range(5):
        sock = connect(server.url)
        sock.sendall(UPLOAD_HEAD.format(path=path, type=content_type).encode() + start + b"u" * 300_000)
        time.sleep(0.05)
        reset(sock) if rst else sock.close()
    fds_back_to(pid, baseline)
    eventually(lambda: stats(server.url)["uploads_open"] == 0, what="upload handlers finished")
    fresh_ok(server.url)


@pytest.mark.parametrize("path", ["/big", "/stream"])
@pytest.mark.parametrize("rst", [False, True], ids=["close", "reset"])
def test_abort_mid_response(server: RunningServer, linux: None, path: str, rst: bool) -> None:
    pid = server.process.pid
    baseline = settled_fds(pid)
    tasks = stats(server.url)["tasks"]
    for _ in range(5):
        sock = connect(server.url)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(get(path))
        assert sock.recv(1000).startswith(b"HTTP/1.1 200")
        reset(sock) if rst else sock.close()
    fds_back_to(pid, baseline)
    eventually(lambda: stats(server.url)["tasks"] <= tasks, what="response tasks finished")
    fresh_ok(server.url)


@pytest.mark.parametrize("rst", [False, True], ids=["close", "reset"])
def test_abort_mid_sse(server: RunningServer, linux: None, rst: bool) -> None:
    pid = server.process.pid
    baseline = settled_fds(pid)
    closed_before = stats(server.url)["sse_closed"]
    for _ in range(5):
        sock = connect(server.url)
        sock.sendall(get("/sse"))
        Reader(sock).read_until(b"tick 1")
        reset(sock) if rst else sock.close()
    eventually(lambda: stats(server.url)["sse_open"] == 0, what="event generators closed")
    assert stats(server.url)["sse_closed"] == closed_before + 5
    fds_back_to(pid, baseline)
    fresh_ok(server.url)


WS_HANDSHAKE = (
    b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


@pytest.mark.parametrize("rst", [False, True], ids=["close", "reset"])
def test_abort_mid_websocket(server: RunningServer, linux: None, rst: bool) -> None:
    pid = server.process.pid
    baseline = settled_fds(pid)
    handshake = WS_HANDSHAKE
    with connect(server.url) as probe:
        probe.sendall(handshake)
        head = Reader(probe).read_until(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        pytest.skip(f"no WebSocket support in this build: {head.splitlines()[0]!r}")
    for _ in range(5):
        sock = connect(server.url)
        sock.sendall(handshake + encode_frame(OP_TEXT, b"hello"))
        reader = Reader(sock)
        reader.read_until(b"\r\n\r\n")
        reader.read_until(b"hello")
        sock.sendall(encode_frame(OP_TEXT, b"partial")[:5])  # a frame cut short
        reset(sock) if rst else sock.close()
    eventually(lambda: stats(server.url)["ws_open"] == 0, what="WebSocket handlers finished")
    fds_back_to(pid, baseline)
    fresh_ok(server.url)


# -- floods and limits ------------------------------------------------------------------


@pytest.mark.parametrize("http", PARSERS)
def test_pipelined_flood_answered_in_order_with_bounded_memory(
    http: str, serve_app: Callable[..., RunningServer], linux: None
) -> None:
    # Order and memory are under test, not timeouts: on a loaded machine the client's sends
    # can stall for over a second once the server resumes reading (TCP's window reopening),
    # which the fault app's 1 s head timeout would rightly answer with 408.
    server = serve_app(APP, http, "interpreted", "--request-head-timeout", "10", "--keep-alive-timeout", "10")
    count = 10_000
    pid = server.process.pid
    before = rss_kib(pid)
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_kib(pid))
            time.sleep(0.02)

    data = b"".join(b"GET /n/%d HTTP/1.1\r\nHost: a\r\n\r\n" % i for i in range(count))
    with connect(server.url) as sock:
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        sender = threading.Thread(target=sock.sendall, args=(data,), daemon=True)
        sender.start()
        # Not reading for a moment: the server must stop reading instead of queueing the flood.
        time.sleep(0.5)
        reader = Reader(sock)
        for i in range(count):
            r = reader.response()
            assert (r.status, r.body) == (200, b"%d" % i)
        sender.join(10)
        done.set()
        sampler.join(5)
    growth = peak[0] - before
    # Unbounded parsing would hold 10,000 Request objects; bounded, a few hundred at a time.
    assert growth < 20 * 1024, f"RSS grew by {growth} KiB during the flood"
    fresh_ok(server.url)


@pytest.mark.parametrize("http", PARSERS)
@pytest.mark.parametrize("path", ["/kb", "/kb-async"], ids=["sync", "async"])
def test_pipelined_flood_never_read_keeps_memory_bounded(
    http: str, path: str, serve_app: Callable[..., RunningServer], linux: None
) -> None:
    """A client pipelines requests for a few KiB each and does not read the answers: the
    server stops reading instead of writing answers into an ever-growing buffer (a sync
    handler answers inside the read), other clients are served meanwhile, and the answers
    arrive complete and in order once the client reads."""
    # Long timeouts, as above: the flood's connection must not be cut while the test reads.
    server = serve_app(APP, http, "interpreted", "--request-head-timeout", "10", "--keep-alive-timeout", "10")
    pid = server.process.pid
    before = rss_kib(pid)
    peak = before
    slowest = 0.0
    pad = "X-Pad: " + "p" * 1000 + "\r\n"  # fewer answers to read back per MiB sent
    batch_size = 100

    def batch(first: int) -> bytes:
        return "".join(
            f"GET {path}/{i} HTTP/1.1\r\nHost: a\r\n{pad}\r\n" for i in range(first, first + batch_size)
        ).encode()

    sock = connect(server.url)
    try:
        sock.setblocking(False)
        batches, pending, sent = 1, batch(0), 0
        started = last_probe = time.monotonic()
        while time.monotonic() - started < 3.0:
            try:
                count = sock.send(pending)
            except BlockingIOError:
                time.sleep(0.02)
                count = 0
            sent += count
            pending = pending[count:]
            if not pending:
                pending = batch(batches * batch_size)
                batches += 1
            peak = max(peak, rss_kib(pid))
            if time.monotonic() - last_probe > 0.5:
                probe = time.monotonic()
                fresh_ok(server.url)
                last_probe = time.monotonic()
                slowest = max(slowest, last_probe - probe)
        growth = peak - before
        assert growth < 30 * 1024, f"RSS grew by {growth} KiB while {sent >> 20} MiB of requests were sent"
        assert slowest < 3.0, f"another client waited {slowest:.1f}s"
        # Now read: the rest of the last batch goes out as the server takes it.
        sock.setblocking(True)
        sender = threading.Thread(target=sock.sendall, args=(pending,), daemon=True)
        sender.start()
        reader = Reader(sock)
        for i in range(batches * batch_size):
            r = reader.response()
            assert (r.status, len(r.body), r.body.split(b" ")[0]) == (200, 4096, b"%d" % i)
        sender.join(10)
    finally:
        sock.close()
    fresh_ok(server.url)


@pytest.mark.parametrize("http", PARSERS)
def test_pipelined_flood_is_parsed_a_slice_at_a_time(http: str) -> None:
    """In process, to look inside: requests parsed ahead of their turn and unparsed input
    both stay bounded while the handler is slow and the client floods."""
    from support.fakeapp import FakeApp

    from cello.response import Response
    from cello.server import Server, ServerConfig, bind_socket

    app = FakeApp()

    @app.route("GET", "/")
    async def slowish(request: Any) -> Response:
        await asyncio.sleep(0)
        return Response(b"r")

    server = Server(app, ServerConfig(http=http, announce=False))
    sock = bind_socket("127.0.0.1", 0)
    urls: list[str] = []
    ready = threading.Event()

    def on_ready(url: str) -> None:
        urls.append(url)
        ready.set()

    thread = threading.Thread(
        target=server.run, args=(sock,), kwargs={"on_ready": on_ready, "handle_signals": False}, daemon=True
    )
    thread.start()
    assert ready.wait(10)
    count = 20_000
    queued = held = 0
    try:
        with connect(urls[0]) as client:
            sender = threading.Thread(target=client.sendall, args=(get("/") * count,), daemon=True)
            sender.start()
            reader = Reader(client)
            for i in range(count):
                if i % 50 == 0:
                    state: Any = server._state
                    for connection in list(state.connections):
                        queued = max(queued, len(connection._st.pipeline))
                        held = max(held, len(connection._held))
                assert reader.response().body == b"r"
            sender.join(10)
    finally:
        server.shutdown()
        thread.join(10)
    request_size = len(get("/"))
    assert 0 < queued <= 16 * 1024 // request_size + 1, queued
    assert held <= 64 * 1024 + 256 * 1024, held


@pytest.mark.parametrize("http", PARSERS)
def test_connections_beyond_max_connections_get_503(serve_app: Callable[..., RunningServer], http: str) -> None:
    server = serve_app(LIMITED, http)
    url = server.url
    held: list[socket.socket] = []

    def at_limit() -> bool:
        # Earlier connections may still be closing: fill up to the limit, whatever it takes.
        sock = connect(url)
        sock.sendall(get("/"))
        r = Reader(sock).response()
        if r.status == 200:
            held.append(sock)
            return len(held) >= 5
        sock.close()
        return False

    try:
        eventually(at_limit, what="5 open connections")
        with connect(url) as extra:
            extra.sendall(get("/"))
            reader = Reader(extra)
            r = reader.response()
            assert r.status == 503
            assert r.json() == {"error": "Service Unavailable: too many connections", "status": 503}
            assert r.header("connection") == "close"
            assert reader.at_eof()
        # The held connections are still served.
        held[0].sendall(get("/"))
        assert Reader(held[0]).response().status == 200
    finally:
        for sock in held:
            sock.close()

    def served() -> bool:
        (r,), _ = exchange(url, get("/", extra="Connection: close\r\n"))
        return r.status == 200

    eventually(served, what="a connection served once the others closed")


# -- start-up and shutdown --------------------------------------------------------------


def _serve_argv(app_ref: str, port: int, http: str = "httptools", *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "cello",
        "serve",
        app_ref,
        "--port",
        str(port),
        "--http",
        http,
        "--out",
        str(ROOT / "build" / "tests" / "none"),
        *extra,
    ]


def test_failing_startup_hook_exits_with_a_clear_message() -> None:
    proc = subprocess.run(
        _serve_argv("tests/apps/faults.py:failing", free_port()),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "error: startup failed: RuntimeError: database unreachable at db:5432" in proc.stderr


@pytest.fixture
def own_server(request: pytest.FixtureRequest) -> Iterator[Callable[..., RunningServer]]:
    """Servers a test stops itself (killed at the end if still running)."""
    started: list[RunningServer] = []

    def start(http: str = "httptools", *extra: str, app: str = APP) -> RunningServer:
        server = start_server(app, http, "interpreted", *extra)
        started.append(server)
        return server

    yield start
    for server in started:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()


@pytest.mark.parametrize("http", PARSERS)
def test_shutdown_with_requests_and_streams_open(own_server: Callable[..., RunningServer], http: str) -> None:
    server = own_server(http)
    url = server.url
    idle = connect(url)
    idle.sendall(get("/"))
    idle_reader = Reader(idle)
    assert idle_reader.response().status == 200
    events = connect(url)
    events.sendall(get("/sse"))
    events_reader = Reader(events)
    events_reader.read_until(b"tick 0")
    busy = connect(url)
    busy.sendall(get("/slow?1.0"))
    stuck = connect(url)  # a client that never reads a long response: left for the grace period
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.sendall(get("/stream?1000000"))
    ws = connect(url)
    ws.sendall(WS_HANDSHAKE)
    ws_reader = Reader(ws)
    ws_open = ws_reader.read_until(b"\r\n\r\n").startswith(b"HTTP/1.1 101")
    time.sleep(0.3)
    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    try:
        assert idle_reader.at_eof()  # idle keep-alive: closed at once
        if ws_open:  # a WebSocket is closed with 1001 (going away)
            head = ws_reader.read_exactly(2)
            payload = ws_reader.read_exactly(head[1] & 0x7F)
            assert (head[0] & 0x0F, payload[:2]) == (8, struct.pack("!H", 1001))
            ws.sendall(encode_frame(OP_CLOSE, close_payload(1001)))  # the client's half
            assert ws_reader.at_eof()
        # The event stream ends cleanly (last chunk), then the connection closes.
        events_reader.read_until(b"0\r\n\r\n")
        assert events_reader.at_eof()
        # The in-flight request finishes, told that the connection closes.
        busy_reader = Reader(busy)
        r = busy_reader.response()
        assert (r.status, r.body, r.header("connection")) == (200, b"done", "close")
        assert busy_reader.at_eof()
        # No longer accepting.
        time.sleep(0.1)
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
        # The stuck response is cut after graceful_timeout (3 s); the exit is clean.
        assert server.process.wait(30) == 0
        assert time.monotonic() - started < 15
    finally:
        for sock in (idle, events, busy, stuck, ws):
            sock.close()
    log = server.output()
    assert "STARTUP HOOK" in log
    assert "SHUTDOWN HOOK sse_open=0" in log
    assert "closing 1 connection(s) still busy" in log


@pytest.mark.parametrize("http", PARSERS)
def test_shutdown_closes_keep_alive_connections_once_their_streams_end(
    own_server: Callable[..., RunningServer], http: str
) -> None:
    """Streams that began before the signal said keep-alive; once they end (an SSE stream
    ended by the shutdown, a stream ending by itself), their connections close at once, not
    at the keep-alive timeout, and the server exits."""
    server = own_server(http, "--keep-alive-timeout", "30", "--graceful-timeout", "30")
    events = connect(server.url)
    events.sendall(get("/sse"))
    events_reader = Reader(events)
    events_reader.read_until(b"tick 0")
    drip = connect(server.url)
    drip.sendall(get("/drip?10"))
    drip_reader = Reader(drip)
    head = drip_reader.read_until(b"\r\n\r\n")
    assert b"connection: close" not in head.lower()
    started = time.monotonic()
    server.process.send_signal(signal.SIGINT)
    try:
        events_reader.read_until(b"0\r\n\r\n")
        assert events_reader.at_eof()
        body = drip_reader.read_until(b"0\r\n\r\n")
        assert body.count(b"drop ") == 10
        assert drip_reader.at_eof()
        assert server.process.wait(10) == 0
        assert time.monotonic() - started < 8  # the stream takes 1 s; keep-alive is 30 s
    finally:
        events.close()
        drip.close()
    assert "still busy" not in server.output()


def test_second_signal_forces_exit(own_server: Callable[..., RunningServer]) -> None:
    server = own_server()
    stuck = connect(server.url)
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.sendall(get("/stream?1000000"))
    time.sleep(0.3)
    server.process.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    assert server.process.poll() is None  # waiting for the stuck response (grace: 3 s)
    started = time.monotonic()
    server.process.send_signal(signal.SIGINT)
    assert server.process.wait(10) == 1
    assert time.monotonic() - started < 2.5
    stuck.close()


# -- workers ----------------------------------------------------------------------------


def _children(pid: int) -> set[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return {int(p) for p in text.split()}


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="needs SO_REUSEPORT")
def test_worker_killed_under_load(own_server: Callable[..., RunningServer], linux: None) -> None:
    server = own_server("httptools", "--workers", "2")
    url = server.url
    supervisor = server.process.pid
    workers = _children(supervisor)
    assert len(workers) == 2
    time.sleep(1.2)  # past the supervisor's crash-loop window: a death now is restarted at once
    victim = min(workers)
    survivor = max(workers)
    stop = threading.Event()
    lock = threading.Lock()
    served: dict[int, int] = {}  # worker pid -> requests answered on its connections
    lost: dict[int, int] = {}  # worker pid -> requests sent on its connections and not answered
    unattributed = [0]  # connections that failed before their first answer

    def client() -> None:
        while not stop.is_set():
            try:
                sock = connect(url)
            except OSError:
                with lock:
                    unattributed[0] += 1
                continue
            pid = 0
            with sock:
                reader = Reader(sock)
                for _ in range(20):
                    try:
                        sock.sendall(get("/pid"))
                        r = reader.response()
                    except (OSError, EOFError):
                        with lock:
                            if pid:
                                lost[pid] = lost.get(pid, 0) + 1
                            else:
                                unattributed[0] += 1
                        break
                    pid = int(r.body)
                    with lock:
                        served[pid] = served.get(pid, 0) + 1
                    if stop.is_set():
                        break

    threads = [threading.Thread(target=client, daemon=True) for _ in range(6)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    killed_at = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    forked = served_by_new = 0.0
    deadline = killed_at + 10
    while time.monotonic() < deadline and not (forked and served_by_new):
        new = _children(supervisor) - workers
        if new and not forked:
            forked = time.monotonic() - killed_at
        with lock:
            if not served_by_new and any(pid not in workers for pid in served):
                served_by_new = time.monotonic() - killed_at
        time.sleep(0.005)
    time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join(15)
    print(
        f"\nSIGKILL figures: replacement forked after {forked:.3f}s, serving after {served_by_new:.3f}s; "
        f"served {served}; lost {lost}; failed before a first answer {unattributed[0]}"
    )
    assert forked and forked < 2.0, "the dead worker was not replaced within 2 s"
    assert served_by_new, "the replacement never served"
    assert lost.get(survivor, 0) == 0, "requests lost on the surviving worker"
    assert served.get(survivor, 0) > 0
    assert set(lost) <= {victim}
    fresh_ok(url)
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(30) == 0


def _workers_of(supervisor: int, count: int = 2) -> set[int]:
    """The supervisor's workers once there are ``count`` of them."""
    found: set[int] = set()

    def check() -> bool:
        found.clear()
        found.update(_children(supervisor))
        return len(found) == count

    eventually(check, timeout=15, what=f"{count} workers")
    return set(found)


def _served_by_new_worker(url: str, old: set[int]) -> bool:
    try:
        (r,), _ = exchange(url, get("/pid", extra="Connection: close\r\n"))
    except (OSError, EOFError):
        return False
    return r.status == 200 and int(r.body) not in old


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="needs SO_REUSEPORT")
def test_stopped_worker_is_replaced(own_server: Callable[..., RunningServer], linux: None) -> None:
    server = own_server("httptools", "--workers", "2", "--worker-timeout", "2", app=WORKERS)
    supervisor = server.process.pid
    workers = _workers_of(supervisor)
    # Stopped before its first heartbeat, a worker would get the start-up allowance (60 s)
    # instead: wait for the supervisor's line saying every worker has beaten once (each worker
    # logs a "Cello serving on" line of its own, without the worker count, before that).
    eventually(lambda: "workers: 2)" in server.output(), timeout=30, what="every worker started")
    victim = min(workers)
    os.kill(victim, signal.SIGSTOP)
    stopped = time.monotonic()
    eventually(lambda: victim not in _children(supervisor), timeout=15, what="the stopped worker killed")
    elapsed = time.monotonic() - stopped
    assert 1.0 < elapsed < 12, elapsed  # after the 2 s heartbeat timeout, not before
    eventually(lambda: _served_by_new_worker(server.url, workers), timeout=15, what="a new worker serving")
    assert len(_workers_of(supervisor)) == 2
    assert f"worker {victim} did not answer its heartbeat" in server.output()
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(30) == 0


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="needs SO_REUSEPORT")
def test_worker_blocked_by_a_handler_is_replaced(own_server: Callable[..., RunningServer], linux: None) -> None:
    server = own_server("h11", "--workers", "2", "--worker-timeout", "2", app=WORKERS)
    supervisor = server.process.pid
    workers = _workers_of(supervisor)
    with connect(server.url) as sock:
        sock.sendall(get("/block"))
        started = time.monotonic()
        # The worker is killed: its connection ends without a response.
        assert Reader(sock).read_to_eof() == b""
        assert time.monotonic() - started < 15
    eventually(lambda: len(workers - _children(supervisor)) == 1, what="the blocked worker reaped")
    (victim,) = workers - _children(supervisor)
    assert f"worker {victim} did not answer its heartbeat" in server.output()
    assert "its event loop is blocked" in server.output()
    eventually(lambda: _served_by_new_worker(server.url, workers), timeout=15, what="a new worker serving")
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(30) == 0


def test_failing_startup_hook_stops_the_workers() -> None:
    started = time.monotonic()
    proc = subprocess.run(
        _serve_argv("tests/apps/faults.py:failing", free_port(), "httptools", "--workers", "2"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 3, proc.stderr
    assert 1 <= proc.stderr.count("error: startup failed: RuntimeError: database unreachable") <= 2
    assert "could not start (its start-up hooks failed); stopping" in proc.stderr
    assert time.monotonic() - started < 30


def test_workers_dying_at_start_give_up() -> None:
    proc = subprocess.run(
        _serve_argv(f"{WORKERS}:crashing", free_port(), "httptools", "--workers", "2"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.count("exited (status 1)") == 5
    assert "starting another in 0.1s" in proc.stderr and "starting another in 0.8s" in proc.stderr
    assert "workers died right after starting 5 times in a row: giving up" in proc.stderr


# -- the handler timeout, in process ----------------------------------------------------


def test_handler_timeout_semantics() -> None:
    from cello import App, HTTPException
    from cello.testing import TestClient

    app = App(handler_timeout=0.2)
    seen: list[str] = []

    @app.get("/own-timeout")
    async def own_timeout(request: Any) -> str:
        raise asyncio.TimeoutError()  # the handler's own, not the server's: a plain 500

    @app.get("/slow")
    async def slow(request: Any) -> str:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        return "late"

    @app.get("/quick")
    async def quick(request: Any) -> str:
        await asyncio.sleep(0.01)
        return "quick"

    @app.get("/sync")
    def sync_handler(request: Any) -> str:
        time.sleep(0.3)  # inline on the loop: cannot be interrupted, so it is not
        return "sync"

    @app.error_handler(503)
    def unavailable(request: Any, exc: HTTPException) -> Any:
        return {"custom": exc.detail}, 503

    with TestClient(app) as client:
        assert client.get("/own-timeout").status_code == 500
        r = client.get("/slow")
        assert (r.status_code, r.json()) == (503, {"custom": "Service Unavailable: the handler took longer than 0.2s"})
        assert seen == ["cancelled"]
        assert client.get("/quick").text == "quick"
        assert client.get("/sync").text == "sync"


# -- command-line settings --------------------------------------------------------------


def test_cli_flags_override_app_settings(own_server: Callable[..., RunningServer]) -> None:
    server = own_server("h11", "--handler-timeout", "0.3", "--max-connections", "2", "--keep-alive-timeout", "30")
    (r,), _ = exchange(server.url, get("/hang", extra="Connection: close\r\n"))
    assert r.json()["error"] == "Service Unavailable: the handler took longer than 0.3s"
    first, second = connect(server.url), connect(server.url)
    try:
        for sock in (first, second):
            sock.sendall(get("/"))
            assert Reader(sock).response().status == 200
        (r,), closed = exchange(server.url, get("/"))
        assert (r.status, closed) == (503, True)
    finally:
        first.close()
        second.close()


# -- --reload ---------------------------------------------------------------------------


def test_reload_restarts_on_source_changes(tmp_path: Path, linux: None) -> None:
    source = tmp_path / "reloaded.py"
    template = "from cello import App\napp = App()\n\n@app.get('/')\ndef index(request):\n    return {!r}\n"
    source.write_text(template.format("v1"))
    port = free_port()
    proc = subprocess.Popen(
        _serve_argv(str(source), port, "httptools", "--reload"),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"

    def answers(text: str) -> Callable[[], bool]:
        def check() -> bool:
            try:
                (r,), _ = exchange(url, get("/", extra="Connection: close\r\n"))
            except (OSError, EOFError):
                return False
            return r.body == text.encode()

        return check

    try:
        eventually(answers("v1"), timeout=30, what="first start")
        source.write_text(template.format("v2"))
        eventually(answers("v2"), timeout=30, what="restart after a change")
        source.write_text("this is not Python\n")  # a broken edit: reported, then fixed
        time.sleep(3)
        source.write_text(template.format("v3"))
        eventually(answers("v3"), timeout=30, what="restart after a broken edit was fixed")
        children = _children(proc.pid)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out
        assert "changed; restarting" in out
        for child in children:  # the server went with the reloader
            assert not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]
    finally:
        if proc.poll() is None:
            for child in _children(proc.pid):
                os.kill(child, signal.SIGKILL)
            proc.kill()
            proc.communicate()


def test_reload_ignores_a_build_in_progress_and_restarts_once_it_is_done(tmp_path: Path, linux: None) -> None:
    (tmp_path / "hello.py").write_text((ROOT / "examples" / "hello.py").read_text())
    port = free_port()
    log = tmp_path / "serve.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cello", "serve", "hello.py", "--port", str(port), "--reload"],
            cwd=tmp_path,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        eventually(lambda: "router: interpreted" in log.read_text(), timeout=30, what="first start")
        # The build writes a generated .py (and mypyc's tree) long before its manifest.
        build = subprocess.run(
            [sys.executable, "-m", "cello", "build", "hello.py"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert build.returncode == 0, build.stdout + build.stderr
        eventually(lambda: "router: compiled" in log.read_text(), timeout=30, what="restart on the finished build")
        time.sleep(2.5)  # past the watcher's debounce: no further restart comes
        (r,), _ = exchange(f"http://127.0.0.1:{port}", get("/users/1", extra="Connection: close\r\n"))
        assert r.json() == {"id": 1, "name": "Ada"}
        restarts = [line for line in log.read_text().splitlines() if "changed; restarting" in line]
        assert len(restarts) == 1 and "manifest.json changed" in restarts[0], restarts
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
