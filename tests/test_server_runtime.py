"""Running the server: start-up, port taken, timeouts, graceful shutdown, signals, workers."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from support.fakeapp import FakeApp
from support.http import TIMEOUT, Reader, connect, exchange, get
from support.ports import free_port
from support.servers import running_server, running_server_process
from support.variants import PARSERS

from cello.response import Response
from cello.server import Server, ServerConfig, bind_socket, serve

TESTS = str(Path(__file__).parent)


def slow_app(started: threading.Event | None = None) -> FakeApp:
    app = FakeApp()

    @app.route("GET", "/slow")
    async def slow(request: Any) -> Response:
        if started is not None:
            started.set()
        await asyncio.sleep(float(request.query_string or "0.5"))
        return Response("done")

    app.route("GET", "/")(lambda r: Response({"ok": True}))
    return app


# -- start-up and binding ---------------------------------------------------------------


def test_port_taken_gives_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        code = serve(slow_app(), "127.0.0.1", port, ServerConfig(announce=False))
    finally:
        holder.close()
    assert code != 0
    err = capsys.readouterr().err
    assert err == f"error: cannot bind 127.0.0.1:{port}: address already in use\n"


def test_startup_line_and_on_ready(capsys: pytest.CaptureFixture[str]) -> None:
    sock = bind_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = Server(slow_app(), ServerConfig(http="h11"))
    seen: list[str] = []

    def on_ready(url: str) -> None:
        seen.append(url)
        server.shutdown()

    assert server.run(sock, on_ready=on_ready, handle_signals=False) == 0
    assert seen == [f"http://127.0.0.1:{port}"]
    assert f"Cello serving on http://127.0.0.1:{port} (parser: h11)" in capsys.readouterr().out


def test_unknown_parser_refused() -> None:
    with pytest.raises(ValueError, match="unknown http parser"):
        ServerConfig(http="nope")


def test_config_from_settings() -> None:
    class Settings:
        max_header_count = 7
        server_header = None
        unrelated = 1

    config = ServerConfig.from_settings(Settings(), http="h11", workers=None)
    assert (config.max_header_count, config.server_header, config.http) == (7, None, "h11")
    assert config.workers == 1


# -- timeouts ---------------------------------------------------------------------------


@pytest.mark.parametrize("http", PARSERS)
def test_idle_keep_alive_connection_closed(http: str) -> None:
    with running_server(slow_app(), http, keep_alive_timeout=0.2) as url:
        with connect(url) as sock:
            sock.sendall(get("/"))
            reader = Reader(sock)
            assert reader.response().status == 200
            assert reader.at_eof()  # closed by the server, without a response


@pytest.mark.parametrize("http", PARSERS)
def test_head_timeout_is_total_not_per_byte(http: str) -> None:
    with running_server(slow_app(), http, request_head_timeout=0.3) as url:
        with connect(url) as sock:
            reader = Reader(sock)
            # Trickle a head: each byte is in time, the whole is not.
            for byte in b"GET / HTTP/1.1\r\nHost: a\r\nX-Slow: 123456789012345678901234567890":
                try:
                    sock.sendall(bytes([byte]))
                except OSError:
                    break
                time.sleep(0.05)
                if reader.buffer or _readable(sock):
                    break
            r = reader.response()
            assert r.status == 408
            assert reader.at_eof()


def _readable(sock: socket.socket) -> bool:
    import select

    return bool(select.select([sock], [], [], 0)[0])


@pytest.mark.parametrize("http", PARSERS)
def test_body_idle_timeout(http: str) -> None:
    app = FakeApp()
    app.route("POST", "/")(lambda r: Response(r.body()))
    with running_server(app, http, body_idle_timeout=0.2) as url:
        with connect(url) as sock:
            sock.sendall(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
            reader = Reader(sock)
            assert reader.response().status == 408
            assert reader.at_eof()


@pytest.mark.parametrize("http", PARSERS)
def test_body_idle_timeout_streamed_body(http: str) -> None:
    app = FakeApp()

    @app.route("POST", "/", stream_body=True)
    async def consume(request: Any) -> Response:
        from cello.errors import HTTPException

        try:
            async for _ in request.stream():
                pass
        except HTTPException as exc:
            return Response({"error": exc.detail, "status": exc.status}, exc.status)
        return Response("complete")

    with running_server(app, http, body_idle_timeout=0.2) as url:
        for sent in (b"", b"abc"):
            with connect(url) as sock:
                sock.sendall(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n" + sent)
                reader = Reader(sock)
                r = reader.response()
                assert r.status == 408
                assert r.header("connection") == "close"
                assert reader.at_eof()


def test_fresh_connection_without_request_closed() -> None:
    with running_server(slow_app(), request_head_timeout=0.2) as url:
        with connect(url) as sock:
            assert Reader(sock).at_eof()


# -- graceful shutdown ------------------------------------------------------------------


@pytest.mark.parametrize("http", PARSERS)
def test_graceful_shutdown_lets_in_flight_request_finish(http: str) -> None:
    started = threading.Event()
    sock = bind_socket("127.0.0.1", 0)
    server = Server(slow_app(started), ServerConfig(http=http, announce=False))
    urls: list[str] = []
    ready = threading.Event()
    codes: list[int] = []

    def on_ready(url: str) -> None:
        urls.append(url)
        ready.set()

    thread = threading.Thread(
        target=lambda: codes.append(server.run(sock, on_ready=on_ready, handle_signals=False)), daemon=True
    )
    thread.start()
    assert ready.wait(TIMEOUT)
    url = urls[0]
    idle = connect(url)
    idle.sendall(get("/"))
    idle_reader = Reader(idle)
    assert idle_reader.response().status == 200
    busy = connect(url)
    busy.sendall(get("/slow?0.5"))
    assert started.wait(TIMEOUT)
    server.shutdown()
    # The idle keep-alive connection is closed at once...
    assert idle_reader.at_eof()
    # ...the in-flight request completes, told that the connection closes.
    busy_reader = Reader(busy)
    r = busy_reader.response()
    assert (r.status, r.body) == (200, b"done")
    assert r.header("connection") == "close"
    assert busy_reader.at_eof()
    thread.join(TIMEOUT)
    assert codes == [0]
    # No longer accepting.
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=1).close()
    idle.close()
    busy.close()


def test_graceful_timeout_bounds_the_wait() -> None:
    started = threading.Event()
    sock = bind_socket("127.0.0.1", 0)
    server = Server(slow_app(started), ServerConfig(announce=False, graceful_timeout=0.2))
    ready = threading.Event()
    urls: list[str] = []
    codes: list[int] = []

    def on_ready(url: str) -> None:
        urls.append(url)
        ready.set()

    thread = threading.Thread(
        target=lambda: codes.append(server.run(sock, on_ready=on_ready, handle_signals=False)), daemon=True
    )
    thread.start()
    assert ready.wait(TIMEOUT)
    busy = connect(urls[0])
    busy.sendall(get("/slow?30"))
    assert started.wait(TIMEOUT)
    server.shutdown()
    thread.join(TIMEOUT)
    assert not thread.is_alive()
    assert codes == [0]
    assert Reader(busy).read_to_eof() == b""  # aborted without a response
    busy.close()


PROGRAM = textwrap.dedent(
    """
    import asyncio, sys
    sys.path.insert(0, {tests!r})
    from support.fakeapp import FakeApp
    from cello.response import Response
    from cello.server import ServerConfig, serve

    app = FakeApp()

    @app.route("GET", "/slow")
    async def slow(request):
        print("SLOW", flush=True)
        await asyncio.sleep(float(request.query_string or "0.5"))
        return Response("done")

    @app.route("GET", "/pid")
    def pid(request):
        import os
        return Response(str(os.getpid()))

    config = ServerConfig(http={http!r}, workers={workers}, announce=False, graceful_timeout={graceful})
    code = serve(app, "127.0.0.1", 0 if {workers} == 1 else {port}, config,
                 on_ready=lambda url: print("READY", url, flush=True))
    print("EXIT", code, flush=True)
    sys.exit(code)
    """
)


def program(http: str = "httptools", workers: int = 1, port: int = 0, graceful: float = 10.0) -> str:
    return PROGRAM.format(tests=TESTS, http=http, workers=workers, port=port, graceful=graceful)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_graceful_shutdown_in_subprocess(signum: int) -> None:
    with running_server_process(program()) as (proc, url):
        with connect(url) as sock:
            sock.sendall(get("/slow?0.5"))
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "SLOW"
            proc.send_signal(signum)
            r = Reader(sock).response()
            assert (r.status, r.body) == (200, b"done")
            assert r.header("connection") == "close"
        out, _ = proc.communicate(timeout=TIMEOUT)
        assert "EXIT 0" in out
        assert proc.returncode == 0


def test_second_signal_forces_exit() -> None:
    with running_server_process(program()) as (proc, url):
        with connect(url) as sock:
            sock.sendall(get("/slow?60"))
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "SLOW"
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.2)
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=TIMEOUT)
            assert "EXIT 1" in out
            assert proc.returncode == 1


# -- workers ----------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork") or not hasattr(socket, "SO_REUSEPORT"), reason="needs fork")
def test_workers_serve_restart_and_stop() -> None:
    port = free_port()
    with running_server_process(program(workers=2, port=port)) as (proc, url):
        pids = set()
        for _ in range(40):
            (r,), _ = exchange(url, get("/pid", extra="Connection: close\r\n"))
            pids.add(int(r.body))
        assert 1 <= len(pids) <= 2
        victim = next(iter(pids))
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + TIMEOUT
        replaced = False
        while time.monotonic() < deadline and not replaced:
            try:
                (r,), _ = exchange(url, get("/pid", extra="Connection: close\r\n"))
                replaced = int(r.body) not in pids
            except (OSError, EOFError):
                pass  # a connection the killed worker had accepted
            time.sleep(0.02)
        assert replaced, "a killed worker was not replaced"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=TIMEOUT * 2)
        assert "EXIT 0" in out, err
        # The port is free again.
        bind_socket("127.0.0.1", port).close()


def test_workers_port_taken() -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        proc = subprocess.run(
            [sys.executable, "-c", program(workers=2, port=port)],
            capture_output=True,
            text=True,
            timeout=TIMEOUT * 3,
        )
    finally:
        holder.close()
    assert proc.returncode == 1
    assert f"error: cannot bind 127.0.0.1:{port}: address already in use" in proc.stderr
