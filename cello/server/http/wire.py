"""Response bytes: status lines, head rendering, error bodies, chunk framing. No I/O."""

from __future__ import annotations

import email.utils
from http import HTTPStatus
from typing import Final, cast

from cello.errors import error_body


def _status_line(status: int) -> bytes:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    return f"HTTP/1.1 {status} {phrase}\r\n".encode("latin-1")


# Every registered status, rendered once.
STATUS_LINES: Final = {int(s): _status_line(int(s)) for s in HTTPStatus}


def status_line(status: int) -> bytes:
    line = STATUS_LINES.get(status)
    if line is None:
        line = _status_line(status)
    return line


CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"
CHUNKED: Final = b"transfer-encoding: chunked\r\n"
LAST_CHUNK: Final = b"0\r\n\r\n"

# "content-length: N\r\n" for the small sizes most responses have.
LENGTH_LINES: Final = [b"content-length: %d\r\n" % n for n in range(4096)]


def content_length_line(length: int) -> bytes:
    if length < 4096:
        return LENGTH_LINES[length]
    return b"content-length: %d\r\n" % length


def has_body(status: int) -> bool:
    """1xx, 204 and 304 responses never carry a body, nor a Content-Length."""
    return status >= 200 and status != 204 and status != 304


def http_date(timestamp: float) -> bytes:
    return email.utils.formatdate(timestamp, usegmt=True).encode("ascii")


class HeadTails:
    """The end of every response head (Date, Server, Connection and the blank line), joined
    once per second instead of once per response."""

    __slots__ = ("server", "keep_alive", "keep_alive_10", "close", "second")

    def __init__(self, server_header: str | None) -> None:
        self.server = f"server: {server_header}\r\n".encode("latin-1") if server_header else b""
        self.keep_alive = b""
        self.keep_alive_10 = b""
        self.close = b""
        self.second = -1

    def update(self, timestamp: float) -> None:
        second = int(timestamp)
        if second == self.second:
            return
        self.second = second
        fixed = b"date: " + http_date(timestamp) + b"\r\n" + self.server
        self.keep_alive = fixed + b"\r\n"
        # HTTP/1.0 clients keep the connection only when told so.
        self.keep_alive_10 = fixed + b"connection: keep-alive\r\n\r\n"
        self.close = fixed + b"connection: close\r\n\r\n"


# Most responses carry one header (their content type): its rendering is reused.
# Keyed by the header's own tuple, held as an object: compiled code would otherwise unpack a
# tuple[str, str] into a C struct and build a new tuple to look it up.
_SINGLE: dict[object, bytes] = {}
_FEW: dict[tuple[tuple[str, str], ...], bytes] = {}


def render_headers(headers: list[tuple[str, str]]) -> bytes:
    if len(headers) == 1:
        field: object = cast(list[object], headers)[0]
        rendered = _SINGLE.get(field)
        if rendered is None:
            pair = headers[0]
            rendered = f"{pair[0]}: {pair[1]}\r\n".encode("latin-1")
            if len(_SINGLE) < 256:
                _SINGLE[field] = rendered
        return rendered
    if len(headers) <= 4:
        # A few headers, often the same from response to response (content type, Vary, CORS):
        # reuse their rendering until the cache is full.
        key = tuple(headers)
        rendered = _FEW.get(key)
        if rendered is None:
            rendered = "".join([f"{name}: {value}\r\n" for name, value in headers]).encode("latin-1")
            if len(_FEW) < 1024:
                _FEW[key] = rendered
        return rendered
    return "".join([f"{name}: {value}\r\n" for name, value in headers]).encode("latin-1")


def without_framing(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The headers minus Content-Length/Transfer-Encoding (for responses that have no body)."""
    return [(name, value) for name, value in headers if name.lower() not in ("content-length", "transfer-encoding")]


def declared_length(headers: list[tuple[str, str]]) -> int:
    """The Content-Length the application set (file responses), or -1."""
    for name, value in headers:
        if len(name) == 14 and name.lower() == "content-length":
            text = value.strip()
            if text.isdigit():
                return int(text)
    return -1


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


def render_error(status: int, message: str, tail: bytes, with_body: bool = True) -> bytes:
    """A complete JSON error response; ``tail`` is one of HeadTails' endings."""
    body = error_body(status, message)
    head = status_line(status) + b"content-type: application/json\r\n" + content_length_line(len(body)) + tail
    return head + body if with_body else head


def is_event_stream(headers: list[tuple[str, str]]) -> bool:
    for name, value in headers:
        if name.lower() == "content-type":
            return value.startswith("text/event-stream")
    return False
