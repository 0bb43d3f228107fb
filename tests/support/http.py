"""A raw HTTP client for tests: bytes out, responses read back by their framing.

    (response,), closed = exchange(url, get("/", extra="Connection: close\\r\\n"))

Tests send exactly the bytes they mean (malformed ones too) and check exactly what went
over the wire: the head as written, the body as framed, and whether the server closed.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

TIMEOUT = 10.0


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
