"""Security defaults over the network (`cello serve`, both parsers): no internals in error
responses outside debug mode, the Server header under the App's control, no header injection
through values a handler reflects."""

from __future__ import annotations

from typing import Callable

import pytest
from apputil import RunningServer
from serverutil import PARSERS, Reader, connect, exchange, get

FAULTS = "tests/apps/faults.py"  # App(server_header=None, ...)
BASIC = "tests/apps/basic.py"  # App() with the defaults

LEAKS = [b"secret-detail", b"Traceback", b"ValueError", b"KeyError", b"/srv/app", b".py"]


@pytest.fixture(params=PARSERS)
def faults(request: pytest.FixtureRequest, serve_app: Callable[..., RunningServer]) -> RunningServer:
    return serve_app(FAULTS, request.param)


@pytest.mark.parametrize("path", ["/boom", "/boom-async"])
def test_handler_errors_reveal_nothing(faults: RunningServer, path: str) -> None:
    (r,), _ = exchange(faults.url, get(path, extra="Connection: close\r\n"))
    assert r.status == 500
    assert r.json() == {"error": "Internal Server Error", "status": 500}
    raw = r.raw_head + r.body
    for leak in LEAKS:
        assert leak not in raw
    # ...while the log has the whole story for the operator.
    assert "secret-detail-7f3a" in faults.output()


def test_handler_timeout_is_a_json_503_and_the_connection_survives(faults: RunningServer) -> None:
    # Both at once (the timeout is 2.5 s): an async handler, and a threaded one.
    connections = [connect(faults.url) for _ in range(2)]
    try:
        for sock, path in zip(connections, ("/hang", "/hang-threaded")):
            sock.sendall(get(path) + get("/", extra="Connection: close\r\n"))
        for sock in connections:
            reader = Reader(sock)
            timed_out, after = reader.response(), reader.response()
            assert timed_out.status == 503
            assert timed_out.json() == {"error": "Service Unavailable: the handler took longer than 2.5s", "status": 503}
            assert after.status == 200
    finally:
        for sock in connections:
            sock.close()


@pytest.mark.parametrize(
    "data",
    [
        get("/", extra="Connection: close\r\n"),  # a handler's response
        get("/nowhere", extra="Connection: close\r\n"),  # the router's 404
        b"GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n",  # the parser's 400
        b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999\r\n\r\n",  # the server's 413
    ],
    ids=["handler", "404", "400", "413"],
)
def test_server_header_omitted_when_none(faults: RunningServer, data: bytes) -> None:
    (r,), _ = exchange(faults.url, data)
    assert r.header("server") is None, r.raw_head


def test_server_header_by_default(serve_app: Callable[..., RunningServer]) -> None:
    server = serve_app(BASIC)
    (r,), _ = exchange(server.url, get("/nowhere", extra="Connection: close\r\n"))
    assert r.header_all("server") == ["cello"]


@pytest.mark.parametrize(
    "path",
    [
        "/header?v=a%0D%0ASet-Cookie:%20session=forged",
        "/header?v=a%0ASet-Cookie:%20session=forged",
        "/header?v=a%0D%0A%0D%0A<html>forged",
        "/header?v=a%00b",
        "/go?to=/home%0D%0ASet-Cookie:%20session=forged",
        "/go?to=/home%0D%0A%0D%0A<html>forged",
    ],
)
def test_reflected_values_cannot_inject_headers(faults: RunningServer, path: str) -> None:
    (r,), closed = exchange(faults.url, get(path, extra="Connection: close\r\n"))
    assert r.status == 500
    assert r.header("set-cookie") is None
    assert r.header("location") is None
    assert b"forged" not in r.raw_head + r.body
    assert closed


def test_reflected_safe_values_pass(faults: RunningServer) -> None:
    (r,), _ = exchange(faults.url, get("/header?v=plain%20value", extra="Connection: close\r\n"))
    assert (r.status, r.header("x-echo")) == (200, "plain value")
    (r,), _ = exchange(faults.url, get("/go?to=/home", extra="Connection: close\r\n"))
    assert (r.status, r.header("location")) == (307, "/home")


def test_content_type_cannot_inject_headers() -> None:
    from cello import Response

    with pytest.raises(ValueError):
        Response(b"x", content_type="text/plain\r\nSet-Cookie: a=1")
    with pytest.raises(ValueError):
        Response.binary(b"x", "image/png\nX-Forged: 1")
