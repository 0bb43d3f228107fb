"""Request limits, at and past each edge, on both parsers; refusals close the connection."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from support.fakeapp import FakeApp
from support.http import Reader, connect, exchange, get
from support.servers import running_server
from support.variants import PARSERS

from cello.response import Response
from cello.server.config import ServerConfig

DEFAULTS = ServerConfig()
LINE = DEFAULTS.max_request_line
HEADERS = DEFAULTS.max_header_size
COUNT = DEFAULTS.max_header_count


def make_app() -> FakeApp:
    app = FakeApp()
    app.route("POST", "/small", max_body_size=10)(lambda r: Response(r.body()))
    app.route("POST", "/small-stream", stream_body=True, max_body_size=10)(lambda r: Response(b"streamed"))
    app.route("POST", "/echo")(lambda r: Response(r.body()))
    return app


@pytest.fixture(scope="module", params=PARSERS)
def url(request: pytest.FixtureRequest) -> Iterator[str]:
    with running_server(make_app(), request.param) as base:
        yield base


def request_line_of(length: int) -> bytes:
    """A GET whose request line (without CRLF) is ``length`` bytes."""
    target = "/" + "a" * (length - len("GET  HTTP/1.1") - 1)
    return f"GET {target} HTTP/1.1\r\nHost: a\r\n\r\n".encode()


def head_with_header_bytes(size: int, extra: bytes = b"") -> bytes:
    """A head whose fields measure ``size`` bytes (sum of name + value + 4, Host included)."""
    host = len("Host") + len("a") + 4
    filler = size - host - len("X-Fill") - 4
    assert filler >= 0
    return b"GET / HTTP/1.1\r\nHost: a\r\nX-Fill: " + b"f" * filler + b"\r\n" + extra + b"\r\n"


def head_with_fields(count: int) -> bytes:
    fields = b"".join(b"X-F%d: v\r\n" % i for i in range(count - 1))
    return b"GET / HTTP/1.1\r\nHost: a\r\n" + fields + b"\r\n"


def test_helpers_measure_right() -> None:
    line = request_line_of(LINE)
    assert len(line.split(b"\r\n")[0]) == LINE
    head = head_with_header_bytes(HEADERS)
    fields = head.split(b"\r\n")[1:-2]
    assert sum(len(f) + 2 for f in fields) == HEADERS


def _status(url: str, data: bytes) -> tuple[int, bool]:
    (r,), closed = exchange(url, data)
    return r.status, closed


def test_request_line_at_limit(url: str) -> None:
    (r,), _ = exchange(url, request_line_of(LINE) + get("/", extra="Connection: close\r\n"))
    assert r.status == 404


def test_request_line_past_limit(url: str) -> None:
    assert _status(url, request_line_of(LINE + 1)) == (414, True)


def test_request_line_unfinished_past_limit_refused_at_once(url: str) -> None:
    # Never ends: the server must not wait for the CRLF.
    with connect(url) as sock:
        sock.sendall(b"GET /" + b"a" * (LINE + 100))
        reader = Reader(sock)
        assert reader.response().status == 414
        assert reader.at_eof()


def test_header_block_at_limit(url: str) -> None:
    (r,), _ = exchange(url, head_with_header_bytes(HEADERS) + get("/", extra="Connection: close\r\n"))
    assert r.status == 404


def test_header_block_past_limit(url: str) -> None:
    assert _status(url, head_with_header_bytes(HEADERS + 1)) == (431, True)


def test_header_field_never_ending_refused(url: str) -> None:
    with connect(url) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nX-Long: ")
        for _ in range(10):
            try:
                sock.sendall(b"v" * 8192)
            except OSError:
                break  # refused before everything was sent
        reader = Reader(sock)
        assert reader.response().status == 431
        assert reader.at_eof()


def test_header_count_at_limit(url: str) -> None:
    (r,), _ = exchange(url, head_with_fields(COUNT) + get("/", extra="Connection: close\r\n"))
    assert r.status == 404


def test_header_count_past_limit(url: str) -> None:
    assert _status(url, head_with_fields(COUNT + 1)) == (431, True)


def test_body_at_limit(url: str) -> None:
    data = b"POST /small HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\nConnection: close\r\n\r\n0123456789"
    (r,), _ = exchange(url, data)
    assert (r.status, r.body) == (200, b"0123456789")


def test_body_past_limit_refused_before_reading(url: str) -> None:
    # Only the head is sent: the answer must not wait for the body.
    with connect(url) as sock:
        sock.sendall(b"POST /small HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n")
        reader = Reader(sock)
        r = reader.response()
        assert r.status == 413
        assert r.json() == {"error": "Payload Too Large: body exceeds max_body_size (10 bytes)", "status": 413}
        assert reader.at_eof()


def test_streamed_body_past_declared_limit_refused_before_handler(url: str) -> None:
    with connect(url) as sock:
        sock.sendall(b"POST /small-stream HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n")
        reader = Reader(sock)
        assert reader.response().status == 413
        assert reader.at_eof()


def test_chunked_body_at_limit(url: str) -> None:
    data = b"POST /small HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\n01234\r\n5\r\n56789\r\n0\r\n\r\n"
    (r,), _ = exchange(url, data)
    assert (r.status, r.body) == (200, b"0123456789")


def test_chunked_body_past_limit(url: str) -> None:
    data = (
        b"POST /small HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n01234\r\n6\r\n56789X\r\n0\r\n\r\n"
    )
    assert _status(url, data) == (413, True)


def test_chunked_body_past_limit_before_end(url: str) -> None:
    # The refusal comes as soon as the count passes the limit, not at the end of the body.
    with connect(url) as sock:
        sock.sendall(b"POST /small HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n20\r\n" + b"x" * 32)
        reader = Reader(sock)
        assert reader.response().status == 413
        assert reader.at_eof()


@pytest.mark.parametrize("http", PARSERS)
def test_limits_are_configurable(http: str) -> None:
    settings: dict[str, Any] = {"max_request_line": 100, "max_header_size": 200, "max_header_count": 5}
    with running_server(make_app(), http, **settings) as base:
        assert _status(base, request_line_of(101)) == (414, True)
        (r,), _ = exchange(base, request_line_of(100)[:-2] + b"Connection: close\r\n\r\n")
        assert r.status == 404
        assert _status(base, head_with_header_bytes(201)) == (431, True)
        assert _status(base, head_with_fields(6)) == (431, True)
        (r,), _ = exchange(base, head_with_fields(5)[:-2] + b"Connection: close\r\n\r\n")
        assert r.status == 431  # the Connection field is the sixth
        (r,), _ = exchange(base, head_with_fields(4)[:-2] + b"Connection: close\r\n\r\n")
        assert r.status == 404


def test_min_body_rate_default_and_validation() -> None:
    from cello.config import Config

    assert ServerConfig.from_settings(Config()).min_body_rate == Config().min_body_rate == 1024
    assert ServerConfig(min_body_rate=0).min_body_rate == 0  # 0 turns the minimum off
    with pytest.raises(ValueError, match="min_body_rate"):
        ServerConfig(min_body_rate=-1)


@pytest.mark.parametrize("http", PARSERS)
@pytest.mark.parametrize("rate", [0, 1024])
def test_min_body_rate_zero_leaves_only_the_idle_timeout(http: str, rate: int) -> None:
    # 20 bytes, one every 0.1 s: each within body_idle_timeout (0.5 s), 2 s in all.
    with running_server(make_app(), http, body_idle_timeout=0.5, min_body_rate=rate) as base:
        head = b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 20\r\nConnection: close\r\n\r\n"
        with connect(base) as sock:
            sock.sendall(head)
            for _ in range(20):
                time.sleep(0.1)
                try:
                    sock.sendall(b"x")
                except OSError:
                    break  # answered 408 and closed
            r = Reader(sock).response()
    if rate == 0:
        assert (r.status, r.body) == (200, b"x" * 20)
    else:
        assert (r.status, r.json()) == (408, {"error": "Request Timeout", "status": 408})
