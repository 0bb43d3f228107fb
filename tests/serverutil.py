"""Helpers for tests that need a real server: start one, talk raw HTTP to it.

    with running_server(app, http="h11") as url:          # url = "http://127.0.0.1:PORT"
        status, headers, body = request(url, b"GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")

``running_server`` runs ``cello.server.Server`` in a background thread on a free port and
stops it gracefully on exit. ``running_server_process`` runs ``serve()`` in a subprocess
(for signal tests). Raw-socket helpers read responses by their framing, so tests can check
exactly what went over the wire.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from cello.errors import body_too_large
from cello.server import Server, ServerConfig, bind_socket

PARSERS = ("httptools", "h11")
TIMEOUT = 10.0


# -- running a server -------------------------------------------------------------------


@contextlib.contextmanager
def running_server(app: Any, http: str = "httptools", **settings: Any) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 (free port) in a thread; yields the base URL."""
    settings.setdefault("announce", False)
    config = ServerConfig(http=http, **settings)
    sock = bind_socket("127.0.0.1", 0)
    server = Server(app, config)
    ready = threading.Event()
    urls: list[str] = []
    result: list[int] = []

    def on_ready(url: str) -> None:
        urls.append(url)
        ready.set()

    def target() -> None:
        result.append(server.run(sock, on_ready=on_ready, handle_signals=False))
        ready.set()

    thread = threading.Thread(target=target, name="cello-test-server", daemon=True)
    thread.start()
    if not ready.wait(TIMEOUT) or not urls:
        raise RuntimeError("test server did not start")
    try:
        yield urls[0]
    finally:
        server.shutdown()
        thread.join(TIMEOUT + config.graceful_timeout)
        if thread.is_alive():
            server.force_exit()
            thread.join(TIMEOUT)


@contextlib.contextmanager
def running_server_process(code: str, **env: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Run ``code`` (a Python program that calls serve() with on_ready printing ``READY <url>``)
    in a subprocess; yields the process and the URL. The process is killed on exit if alive."""
    environment = dict(os.environ, **env)
    environment["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )
    try:
        url = ""
        deadline = time.monotonic() + TIMEOUT * 3
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            if line.startswith("READY "):
                url = line.split()[1]
                break
        if not url:
            proc.kill()
            out, err = proc.communicate(timeout=TIMEOUT)
            raise RuntimeError(f"server process did not start:\n{out}\n{err}")
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=TIMEOUT)


# -- a stand-in application (the server's contract only: resolve + endpoints) -----------


Handler = Callable[[Any], Any]


@dataclass
class Endpoint:
    handler: Handler
    stream_body: bool = False
    max_body_size: int = 1024 * 1024

    @property
    def body_too_large(self) -> str:
        return body_too_large(self.max_body_size)

    def __call__(self, request: Any) -> Any:
        return self.handler(request)


@dataclass
class FakeApp:
    """Routes ``(method, path) -> Endpoint``; anything else answers 404 (JSON)."""

    routes: dict[tuple[str, str], Endpoint] = field(default_factory=dict)
    max_body_size: int = 1024 * 1024

    def route(
        self, method: str, path: str, *, stream_body: bool = False, max_body_size: int | None = None
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            size = self.max_body_size if max_body_size is None else max_body_size
            self.routes[(method, path)] = Endpoint(handler, stream_body, size)
            return handler

        return register

    def resolve(self, request: Any) -> Endpoint:
        endpoint = self.routes.get((request.method, request.raw_path))
        if endpoint is None and request.method == "HEAD":
            endpoint = self.routes.get(("GET", request.raw_path))
        if endpoint is None:
            return Endpoint(_not_found, False, self.max_body_size)
        return endpoint


def _not_found(request: Any) -> Any:
    from cello.response import Response

    return Response({"error": f"Not Found: {request.method} {request.raw_path}", "status": 404}, 404)


# -- raw HTTP ---------------------------------------------------------------------------


def address(url: str) -> tuple[str, int]:
    host, port = url.rsplit("//", 1)[1].rsplit(":", 1)
    return host.strip("[]"), int(port)


def connect(url: str) -> socket.socket:
    sock = socket.create_connection(address(url), timeout=TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


@dataclass
class RawResponse:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    raw_head: bytes = b""

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return values[-1] if values else None

    def header_all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self) -> Any:
        import json

        return json.loads(self.body)


class Reader:
    """Reads HTTP responses off a socket by their framing."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""
        self.eof = False

    def _fill(self) -> bool:
        if self.eof:
            return False
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.buffer += data
        return True

    def read_until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            if not self._fill():
                raise EOFError(f"connection closed before {marker!r}; got {self.buffer!r}")
        index = self.buffer.index(marker) + len(marker)
        data, self.buffer = self.buffer[:index], self.buffer[index:]
        return data

    def read_exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            if not self._fill():
                raise EOFError(f"connection closed after {len(self.buffer)} of {size} bytes")
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def read_to_eof(self) -> bytes:
        while self._fill():
            pass
        data, self.buffer = self.buffer, b""
        return data

    def at_eof(self) -> bool:
        """True when the server closed the connection (nothing more to read)."""
        if self.buffer:
            return False
        return not self._fill()

    def response(self, head_request: bool = False) -> RawResponse:
        raw_head = self.read_until(b"\r\n\r\n")
        lines = raw_head[:-4].decode("latin-1").split("\r\n")
        version, status, *reason = lines[0].split(" ", 2)
        assert version == "HTTP/1.1", lines[0]
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.append((name, value.strip()))
        response = RawResponse(int(status), reason[0] if reason else "", headers, b"", raw_head)
        code = int(status)
        if head_request or code < 200 or code in (204, 304):
            return response
        length = response.header("content-length")
        if response.header("transfer-encoding") == "chunked":
            response.body = self._chunked()
        elif length is not None:
            response.body = self.read_exactly(int(length))
        else:
            response.body = self.read_to_eof()
        return response

    def _chunked(self) -> bytes:
        body = b""
        while True:
            size = int(self.read_until(b"\r\n")[:-2].split(b";")[0], 16)
            if size == 0:
                self.read_until(b"\r\n")
                return body
            body += self.read_exactly(size)
            assert self.read_exactly(2) == b"\r\n"


def exchange(url: str, data: bytes, count: int = 1, head_request: bool = False) -> tuple[list[RawResponse], bool]:
    """Send ``data`` on a new connection, read ``count`` responses; also whether the server
    then closed the connection (checked by reading until EOF, so only use it when it will)."""
    with connect(url) as sock:
        sock.sendall(data)
        reader = Reader(sock)
        responses = [reader.response(head_request) for _ in range(count)]
        closed = reader.at_eof()
        return responses, closed


def exchange_open(url: str, data: bytes, count: int = 1) -> tuple[list[RawResponse], socket.socket, Reader]:
    """Like exchange, but leaves the connection open (caller closes the socket)."""
    sock = connect(url)
    sock.sendall(data)
    reader = Reader(sock)
    return [reader.response() for _ in range(count)], sock, reader


def get(path: str = "/", host: str = "test", extra: str = "", version: str = "1.1") -> bytes:
    return f"GET {path} HTTP/{version}\r\nHost: {host}\r\n{extra}\r\n".encode("latin-1")
