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


# Renderings of header fields, and of lists of a few fields, seen before. Fields are keyed by
# their own tuple, held as an object: compiled code would otherwise unpack a tuple[str, str] into
# a C struct and build a new tuple to look it up. A list is cached once all its fields are known;
# one whose last field is not (what an after-hook appends: a request id, a cookie, new on every
# response) is not even looked up, and a field met in such a list is kept only one time in
# _ADMIT_EVERY: a field sent again and again gets in soon enough, one made for each response
# rarely costs an entry. Full caches are emptied, not frozen: what came first must not crowd out
# for good what an app sends again and again (content type, Vary, CORS).
_SINGLE: Final[dict[object, bytes]] = {}
_FEW: Final[dict[tuple[tuple[str, str], ...], bytes]] = {}
_SINGLE_LIMIT: Final = 256
_FEW_LIMIT: Final = 1024
_ADMIT_EVERY: Final = 8


class _Misses:
    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


_misses: Final = _Misses()


def render_headers(headers: list[tuple[str, str]]) -> bytes:
    count = len(headers)
    fields = cast(list[object], headers)
    if count == 1:  # most responses: their content type alone
        return _field(fields[0])
    if count == 0:
        return b""
    last = fields[count - 1]
    rendered = _SINGLE.get(last)
    if rendered is None:
        rendered = _render(last)
        misses = _misses
        misses.count += 1
        if misses.count >= _ADMIT_EVERY:
            misses.count = 0
            _remember(last, rendered)
        if count == 2:  # a content type and the new field: one concatenation, no list
            return _field(fields[0]) + rendered
        parts = [_field(field) for field in fields[: count - 1]]
        parts.append(rendered)
        return b"".join(parts)
    if count > 4:
        return b"".join([_field(field) for field in fields])
    key = tuple(headers)
    joined = _FEW.get(key)
    if joined is None:
        parts = []
        known = True
        for field in fields:
            part = _SINGLE.get(field)
            if part is None:
                known = False
                part = _render(field)
                _remember(field, part)
            parts.append(part)
        joined = b"".join(parts)
        if known:
            # Every field was sent before: a list likely to come again.
            if len(_FEW) >= _FEW_LIMIT:
                _FEW.clear()
            _FEW[key] = joined
    return joined


def _field(field: object) -> bytes:
    rendered = _SINGLE.get(field)
    if rendered is None:
        rendered = _render(field)
        _remember(field, rendered)
    return rendered


def _render(field: object) -> bytes:
    name, value = cast(tuple[str, str], field)
    return f"{name}: {value}\r\n".encode("latin-1")


def _remember(field: object, rendered: bytes) -> None:
    if len(_SINGLE) >= _SINGLE_LIMIT:
        _SINGLE.clear()
    _SINGLE[field] = rendered


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
