"""HTTP/1.1 behaviour of the server, on both parser backends, over raw sockets."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from support.fakeapp import FakeApp
from support.http import Reader, connect, exchange, exchange_open, get
from support.servers import running_server
from support.variants import PARSERS

from cello.response import Response

EVENTS: dict[str, threading.Event] = {}


def _streamed(chunks: AsyncIterator[bytes], content_type: str = "text/plain", **headers: str) -> Response:
    response = Response(None, 200, headers or None, content_type)
    response.body_chunks = chunks
    return response


class Tracked:
    """An async iterator that records whether it was iterated and closed."""

    def __init__(self, key: str) -> None:
        self.key = key
        EVENTS[key + ":iterated"] = threading.Event()
        EVENTS[key + ":closed"] = threading.Event()

    def __aiter__(self) -> Tracked:
        return self

    async def __anext__(self) -> bytes:
        EVENTS[self.key + ":iterated"].set()
        raise StopAsyncIteration

    async def aclose(self) -> None:
        EVENTS[self.key + ":closed"].set()


def make_app() -> FakeApp:
    app = FakeApp()

    @app.route("GET", "/")
    def hello(request: Any) -> Response:
        return Response({"hello": "world"})

    @app.route("GET", "/info")
    def info(request: Any) -> Response:
        return Response(
            {
                "method": request.method,
                "raw_path": request.raw_path,
                "query": request.query_string,
                "version": request.http_version,
                "client": list(request.client) if request.client else None,
                "headers": [list(item) for item in request.headers.items()],
            }
        )

    @app.route("POST", "/echo")
    def echo(request: Any) -> Response:
        return Response(request.body(), 200, {"x-length": str(len(request.body()))}, "application/octet-stream")

    @app.route("POST", "/small", max_body_size=10)
    def small(request: Any) -> Response:
        return Response(request.body())

    @app.route("POST", "/stream-in", stream_body=True)
    async def stream_in(request: Any) -> Response:
        sizes = []
        async for data in request.stream():
            sizes.append(len(data))
        return Response({"total": sum(sizes)})

    @app.route("POST", "/stream-in-small", stream_body=True, max_body_size=10)
    async def stream_in_small(request: Any) -> Response:
        from cello.errors import HTTPException

        total = 0
        try:
            async for data in request.stream():
                total += len(data)
        except HTTPException as exc:
            return Response({"error": exc.detail, "status": exc.status}, exc.status)
        return Response({"total": total})

    @app.route("POST", "/ignore-body", stream_body=True)
    def ignore_body(request: Any) -> Response:
        return Response({"ignored": True})

    @app.route("GET", "/empty")
    def empty(request: Any) -> Response:
        return Response(None, 200)

    @app.route("GET", "/no-content")
    def no_content(request: Any) -> Response:
        return Response(None, 204)

    @app.route("GET", "/not-modified")
    def not_modified(request: Any) -> Response:
        return Response(None, 304, {"etag": '"x"'})

    @app.route("GET", "/boom")
    def boom(request: Any) -> Response:
        raise ValueError("boom")

    @app.route("GET", "/async-boom")
    async def async_boom(request: Any) -> Response:
        raise ValueError("boom")

    @app.route("GET", "/async")
    async def async_hello(request: Any) -> Response:
        await asyncio.sleep(0)
        return Response("async")

    @app.route("GET", "/slow")
    async def slow(request: Any) -> Response:
        await asyncio.sleep(float(request.query_string or "0.2"))
        return Response("slow")

    @app.route("GET", "/latin1")
    def bad_header(request: Any) -> Response:
        return Response("x", 200, {"x-bad": "\u2603"})

    @app.route("GET", "/stream")
    def stream(request: Any) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            for part in (b"one,", b"", b"two,", b"three"):
                await asyncio.sleep(0)
                yield part

        return _streamed(chunks())

    @app.route("GET", "/stream-sized")
    def stream_sized(request: Any) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"hello "
            yield b"world"

        return _streamed(chunks(), **{"content-length": "11"})

    @app.route("GET", "/stream-broken")
    def stream_broken(request: Any) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"partial"
            raise RuntimeError("generator failed")

        return _streamed(chunks())

    @app.route("GET", "/sse")
    def sse(request: Any) -> Response:
        key = request.query_string
        EVENTS[key + ":closed"] = threading.Event()
        EVENTS[key + ":first"] = threading.Event()

        async def events() -> AsyncIterator[bytes]:
            try:
                yield b"data: first\n\n"
                EVENTS[key + ":first"].set()
                while True:
                    await asyncio.sleep(3600)
                    yield b"data: never\n\n"
            finally:
                EVENTS[key + ":closed"].set()

        return _streamed(events(), "text/event-stream")

    @app.route("GET", "/head-stream")
    def head_stream(request: Any) -> Response:
        return _streamed(Tracked(request.query_string))

    return app


@pytest.fixture(scope="module", params=PARSERS)
def url(request: pytest.FixtureRequest) -> Iterator[str]:
    with running_server(make_app(), request.param) as base:
        yield base


def close_conn(path: str = "/") -> bytes:
    return get(path, extra="Connection: close\r\n")


# -- basics -----------------------------------------------------------------------------


def test_hello(url: str) -> None:
    (r,), closed = exchange(url, close_conn("/"))
    assert r.status == 200
    assert r.json() == {"hello": "world"}
    assert r.header("content-type") == "application/json"
    assert r.header("content-length") == str(len(r.body))
    assert r.header("server") == "cello"
    assert r.header(
        "date",
    ).endswith(" GMT")  # type: ignore[union-attr]
    assert r.header("connection") == "close"
    assert closed


def test_request_facts(url: str) -> None:
    data = b"GET /info?a=1&b=%20#frag HTTP/1.1\r\nHost: a\r\nX-Mixed-Case:  v  \r\nConnection: close\r\n\r\n"
    (r,), _ = exchange(url, data)
    info = r.json()
    assert info["method"] == "GET"
    assert info["raw_path"] == "/info"
    assert info["query"] == "a=1&b=%20"
    assert info["version"] == "1.1"
    assert info["client"][0] == "127.0.0.1"
    # Names as received, values without surrounding whitespace.
    assert ["X-Mixed-Case", "v"] in info["headers"]


def test_absolute_form_target(url: str) -> None:
    data = b"GET http://example.com/info?q=1 HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n"
    (r,), _ = exchange(url, data)
    assert r.json()["raw_path"] == "/info"
    assert r.json()["query"] == "q=1"


def test_not_found_is_json(url: str) -> None:
    (r,), _ = exchange(url, close_conn("/nope"))
    assert r.status == 404
    assert r.json() == {"error": "Not Found: GET /nope", "status": 404}


def test_server_header_can_be_disabled() -> None:
    with running_server(make_app(), server_header=None) as base:
        (r,), _ = exchange(base, close_conn("/"))
        assert r.header("server") is None
        assert r.header("date") is not None


def test_server_header_configurable() -> None:
    with running_server(make_app(), "h11", server_header="custom/1") as base:
        (r,), _ = exchange(base, close_conn("/"))
        assert r.header("server") == "custom/1"


# -- keep-alive -------------------------------------------------------------------------


def test_keep_alive_http11(url: str) -> None:
    responses, sock, reader = exchange_open(url, get("/"))
    with sock:
        assert responses[0].header("connection") is None
        for _ in range(3):
            sock.sendall(get("/async"))
            r = reader.response()
            assert r.status == 200 and r.body == b"async"
        sock.sendall(close_conn("/"))
        assert reader.response().header("connection") == "close"
        assert reader.at_eof()


def test_http10_closes_by_default(url: str) -> None:
    (r,), closed = exchange(url, get("/", version="1.0"))
    assert r.status == 200
    assert r.header("connection") == "close"
    assert closed


def test_http10_keep_alive(url: str) -> None:
    responses, sock, reader = exchange_open(url, get("/", version="1.0", extra="Connection: keep-alive\r\n"))
    with sock:
        assert responses[0].header("connection") == "keep-alive"
        sock.sendall(get("/", version="1.0"))
        assert reader.response().header("connection") == "close"
        assert reader.at_eof()


def test_connection_header_tokens(url: str) -> None:
    (r,), closed = exchange(url, get("/", extra="Connection: TE, Close\r\n"))
    assert r.header("connection") == "close"
    assert closed


# -- pipelining -------------------------------------------------------------------------


def test_pipelining_keeps_order(url: str) -> None:
    data = (
        get("/slow?0.2")
        + get("/")
        + b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
        + get("/async")
        + b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"
        + get("/boom")
        + get("/nope")
        + close_conn("/slow?0.05")
    )
    responses, closed = exchange(url, data, 8)
    assert [r.status for r in responses] == [200, 200, 200, 200, 200, 500, 404, 200]
    assert [r.body for r in responses[:5]] == [b"slow", b'{"hello":"world"}', b"hello", b"async", b"hi"]
    assert responses[-1].body == b"slow"
    assert closed


def test_pipelining_many_small_requests(url: str) -> None:
    data = get("/") * 200 + close_conn("/")
    responses, closed = exchange(url, data, 201)
    assert all(r.status == 200 for r in responses)
    assert closed


def test_large_pipelined_burst_then_partial_head(url: str) -> None:
    # More than a head's worth of bytes arrives with a head still unfinished: that head must
    # not be taken for an oversized one.
    burst = get("/") * 1500 + b"GET / HTTP/1.1\r\nHost: a\r\nX-Part: "
    with connect(url) as sock:
        sock.sendall(burst)
        reader = Reader(sock)
        for _ in range(1500):
            assert reader.response().status == 200
        sock.sendall(b"done\r\nConnection: close\r\n\r\n")
        assert reader.response().status == 200
        assert reader.at_eof()


def test_pipelined_request_split_across_sends(url: str) -> None:
    data = (
        get("/async") + b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n01234" + b"56789" + close_conn()
    )
    with connect(url) as sock:
        reader = Reader(sock)
        for i in range(0, len(data), 7):
            sock.sendall(data[i : i + 7])
            time.sleep(0.001)
        rs = [reader.response() for _ in range(3)]
        assert [r.body for r in rs[:2]] == [b"async", b"0123456789"]
        assert reader.at_eof()


# -- request bodies ---------------------------------------------------------------------


def test_content_length_body(url: str) -> None:
    body = bytes(range(256)) * 1000
    data = b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%b" % (len(body), body)
    (r,), _ = exchange(url, data)
    assert r.status == 200
    assert r.body == body


def test_chunked_body(url: str) -> None:
    data = (
        b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        b"5\r\nhello\r\n1;ext=1\r\n \r\na\r\n0123456789\r\n0\r\nX-Trailer: yes\r\n\r\n"
    )
    (r,), closed = exchange(url, data)
    assert r.body == b"hello 0123456789"
    assert closed


def test_chunked_body_byte_by_byte(url: str) -> None:
    data = b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    with connect(url) as sock:
        for i in range(len(data)):
            sock.sendall(data[i : i + 1])
        r = Reader(sock).response()
        assert r.body == b"abcde"


def test_empty_body_post(url: str) -> None:
    (r,), _ = exchange(url, b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    assert r.status == 200
    assert r.body == b""
    assert r.header("content-length") == "0"


def test_streamed_request_body(url: str) -> None:
    body = b"x" * 300_000
    head = b"POST /stream-in HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(body)
    with connect(url) as sock:
        sock.sendall(head)
        for i in range(0, len(body), 65536):
            sock.sendall(body[i : i + 65536])
        r = Reader(sock).response()
        assert r.json() == {"total": len(body)}
        # The connection is still usable.
        sock.sendall(close_conn())
        assert Reader(sock).response().status == 200


def test_streamed_chunked_request_body(url: str) -> None:
    chunks = b"".join(b"%x\r\n%b\r\n" % (len(c), c) for c in [b"a" * 1000] * 100) + b"0\r\n\r\n"
    data = b"POST /stream-in HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunks
    (r,), _ = exchange(url, data)
    assert r.json() == {"total": 100_000}


def test_streamed_body_over_limit_reaches_handler(url: str) -> None:
    data = b"POST /stream-in-small HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n"
    (r,), closed = exchange(url, data)
    assert r.status == 413
    assert closed


def test_stream_endpoint_answering_without_reading_closes(url: str) -> None:
    data = b"POST /ignore-body HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000
    with connect(url) as sock:
        sock.sendall(data)
        reader = Reader(sock)
        r = reader.response()
        assert r.json() == {"ignored": True}
        assert r.header("connection") == "close"
        assert reader.at_eof()


# -- 100-continue -----------------------------------------------------------------------


def test_expect_continue(url: str) -> None:
    with connect(url) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        reader = Reader(sock)
        interim = reader.response()
        assert interim.status == 100
        sock.sendall(b"hello")
        r = reader.response()
        assert (r.status, r.body) == (200, b"hello")


def test_expect_continue_refused_early(url: str) -> None:
    with connect(url) as sock:
        sock.sendall(b"POST /small HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n")
        reader = Reader(sock)
        r = reader.response()
        assert r.status == 413
        assert r.header("connection") == "close"
        assert reader.at_eof()


def test_expect_continue_for_streamed_body_on_first_read(url: str) -> None:
    with connect(url) as sock:
        sock.sendall(b"POST /stream-in HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
        reader = Reader(sock)
        assert reader.response().status == 100
        sock.sendall(b"abc")
        assert reader.response().json() == {"total": 3}


def test_expect_continue_not_sent_when_body_unwanted(url: str) -> None:
    data = b"POST /ignore-body HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"
    with connect(url) as sock:
        sock.sendall(data)
        reader = Reader(sock)
        r = reader.response()
        assert r.status == 200  # no 100 before it
        assert reader.at_eof()


def test_expect_continue_pipelined_after_slow_request(url: str) -> None:
    with connect(url) as sock:
        sock.sendall(
            get("/slow?0.2") + b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"
        )
        reader = Reader(sock)
        assert reader.response().body == b"slow"
        assert reader.response().status == 100
        sock.sendall(b"ok")
        assert reader.response().body == b"ok"


def test_expect_ignored_without_body(url: str) -> None:
    (r,), _ = exchange(url, get("/", extra="Expect: 100-continue\r\nConnection: close\r\n"))
    assert r.status == 200


# -- response shapes --------------------------------------------------------------------


def test_empty_response_has_content_length_zero(url: str) -> None:
    (r,), _ = exchange(url, close_conn("/empty"))
    assert r.status == 200
    assert r.header("content-length") == "0"
    assert r.body == b""


@pytest.mark.parametrize("path,status", [("/no-content", 204), ("/not-modified", 304)])
def test_no_body_statuses(url: str, path: str, status: int) -> None:
    responses, sock, reader = exchange_open(url, get(path) + close_conn("/"))
    with sock:
        r = responses[0]
        assert r.status == status
        assert r.header("content-length") is None
        assert r.header("transfer-encoding") is None
        # The next response follows the blank line at once: no body bytes in between.
        assert reader.response().json() == {"hello": "world"}


def test_head_has_get_headers_without_body(url: str) -> None:
    (get_response,), _ = exchange(url, close_conn("/"))
    data = b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n" + close_conn("/empty")
    with connect(url) as sock:
        sock.sendall(data)
        reader = Reader(sock)
        head = reader.response(head_request=True)
        assert head.status == 200
        assert head.header("content-length") == get_response.header("content-length")
        assert head.header("content-type") == "application/json"
        # The next response starts right after the head.
        nxt = reader.response()
        assert nxt.status == 200 and nxt.header("content-length") == "0"


def test_head_on_streaming_response_closes_generator(url: str) -> None:
    data = b"HEAD /head-stream?h1 HTTP/1.1\r\nHost: a\r\n\r\n" + close_conn("/")
    with connect(url) as sock:
        sock.sendall(data)
        reader = Reader(sock)
        head = reader.response(head_request=True)
        assert head.status == 200
        assert head.header("transfer-encoding") == "chunked"
        assert reader.response().status == 200
    assert EVENTS["h1:closed"].wait(5)
    assert not EVENTS["h1:iterated"].is_set()


def test_streaming_response_chunked(url: str) -> None:
    (r,), closed = exchange(url, close_conn("/stream"))
    assert r.header("transfer-encoding") == "chunked"
    assert r.header("content-length") is None
    assert r.body == b"one,two,three"
    assert closed


def test_streaming_response_keeps_alive(url: str) -> None:
    responses, closed = exchange(url, get("/stream") + close_conn("/"), 2)
    assert responses[0].body == b"one,two,three"
    assert responses[1].status == 200


def test_streaming_response_with_length(url: str) -> None:
    (r,), _ = exchange(url, close_conn("/stream-sized"))
    assert r.header("transfer-encoding") is None
    assert r.header("content-length") == "11"
    assert r.body == b"hello world"


def test_streaming_response_http10_is_close_delimited(url: str) -> None:
    with connect(url) as sock:
        sock.sendall(get("/stream", version="1.0", extra="Connection: keep-alive\r\n"))
        raw = Reader(sock).read_to_eof()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"transfer-encoding" not in head.lower()
    assert b"connection: close" in head.lower()
    assert body == b"one,two,three"


def test_broken_stream_aborts_connection(url: str) -> None:
    with connect(url) as sock:
        sock.sendall(get("/stream-broken"))
        raw = Reader(sock).read_to_eof()
    assert raw.startswith(b"HTTP/1.1 200 OK")
    assert not raw.endswith(b"0\r\n\r\n")  # never a clean end: the client must see the failure


def test_sse_chunks_flushed_and_generator_closed_on_disconnect(url: str) -> None:
    sock = connect(url)
    sock.sendall(get("/sse?s1"))
    reader = Reader(sock)
    r_head = reader.read_until(b"\r\n\r\n")
    assert b"text/event-stream" in r_head
    assert reader.read_until(b"data: first\n\n\r\n").endswith(b"data: first\n\n\r\n")
    assert EVENTS["s1:first"].wait(5)
    sock.close()
    assert EVENTS["s1:closed"].wait(5)


# -- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/boom", "/async-boom", "/latin1"])
def test_handler_exception_gives_500_and_connection_survives(url: str, path: str) -> None:
    responses, closed = exchange(url, get(path) + close_conn("/"), 2)
    assert responses[0].status == 500
    assert responses[0].json() == {"error": "Internal Server Error", "status": 500}
    assert responses[0].header("connection") is None
    assert responses[1].json() == {"hello": "world"}
    assert closed


def test_resolve_exception_gives_500() -> None:
    class Broken(FakeApp):
        def resolve(self, request: Any) -> Any:
            if request.raw_path == "/explode":
                raise RuntimeError("resolve failed")
            return super().resolve(request)

    app = Broken()
    app.route("GET", "/")(lambda r: Response({"ok": True}))
    for http in PARSERS:
        with running_server(app, http) as base:
            responses, _ = exchange(base, get("/explode") + close_conn("/"), 2)
            assert [r.status for r in responses] == [500, 200]


# -- client behaviour -------------------------------------------------------------------


def test_client_half_close_still_gets_responses(url: str) -> None:
    with connect(url) as sock:
        sock.sendall(get("/slow?0.1") + get("/"))
        sock.shutdown(socket.SHUT_WR)
        reader = Reader(sock)
        assert reader.response().body == b"slow"
        assert reader.response().status == 200
        assert reader.at_eof()


def test_client_disconnect_during_slow_request_does_not_break_server(url: str) -> None:
    sock = connect(url)
    sock.sendall(get("/slow?0.1"))
    sock.close()
    time.sleep(0.2)
    (r,), _ = exchange(url, close_conn("/"))
    assert r.status == 200


def test_many_connections(url: str) -> None:
    socks = [connect(url) for _ in range(20)]
    try:
        for s in socks:
            s.sendall(get("/async"))
        for s in socks:
            assert Reader(s).response().body == b"async"
    finally:
        for s in socks:
            s.close()


def test_large_response_body(url: str) -> None:
    app = FakeApp()
    big = b"z" * 3_000_000
    app.route("GET", "/big")(lambda r: Response(big, content_type="application/octet-stream"))
    with running_server(app) as base:
        with connect(base) as sock:
            sock.sendall(get("/big") + get("/big") + close_conn("/big"))
            time.sleep(0.2)  # let the server's writes back up (exercises write flow control)
            reader = Reader(sock)
            for _ in range(3):
                assert reader.response().body == big
            assert reader.at_eof()


def test_json_error_shape_for_parser_refusal(url: str) -> None:
    (r,), closed = exchange(url, b"GET / HTTP/1.1\r\n\r\n")
    assert json.loads(r.body)["status"] == 400
    assert closed
