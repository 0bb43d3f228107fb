"""Security defaults over the network (`cello serve`, both parsers): no internals in error
responses outside debug mode, the Server header under the App's control, no header injection
through values a handler reflects."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from importlib.util import find_spec

import pytest
from support.http import RawResponse, Reader, connect, exchange, get
from support.servers import RunningServer
from support.variants import ASGI_SERVERS, PARSERS

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
            assert timed_out.json() == {
                "error": "Service Unavailable: the handler took longer than 2.5s",
                "status": 503,
            }
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
    assert (r.status, r.header("location")) == (302, "/home")
    (r,), _ = exchange(faults.url, get("/go?to=/home&permanent", extra="Connection: close\r\n"))
    assert (r.status, r.header("location")) == (301, "/home")


@pytest.fixture(params=[*PARSERS, *ASGI_SERVERS])
def any_server(request: pytest.FixtureRequest, serve_app: Callable[..., RunningServer]) -> RunningServer:
    """tests/apps/faults.py under `cello serve` (both parsers) and under each ASGI server."""
    if request.param in ASGI_SERVERS and find_spec(request.param) is None:
        pytest.skip(f"{request.param} is in the test extra")
    return serve_app(FAULTS, request.param)


def _refused(server: RunningServer, target: str, logged: str) -> RawResponse:
    """A handler gave a header (or cookie) that cannot go out: a bare 500, and the log says why."""
    (r,), _ = exchange(server.url, get(target, extra="Connection: close\r\n"))
    assert r.status == 500, r.raw_head
    assert r.json() == {"error": "Internal Server Error", "status": 500}
    assert r.header("set-cookie") is None
    deadline = time.monotonic() + 5
    while logged not in server.output() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert logged in server.output()
    return r


@pytest.mark.parametrize("way", ["set_header", "init", "tuple", "mapping"])
@pytest.mark.parametrize(
    ("encoded", "char"), [("%0B", "\\x0b"), ("%0C", "\\x0c"), ("%7F", "\\x7f"), ("%1B", "\\x1b"), ("%E2%82%AC", "€")]
)
def test_control_characters_in_header_values_are_a_500(
    any_server: RunningServer, way: str, encoded: str, char: str
) -> None:
    # The request parsers refuse these bytes; a handler cannot send them either.
    name = f"x-{uuid.uuid4().hex[:12]}"
    _refused(
        any_server, f"/header?way={way}&name={name}&v=a{encoded}b", f"invalid character '{char}' in header '{name}'"
    )


@pytest.mark.parametrize("way", ["set_header", "init", "tuple", "mapping"])
@pytest.mark.parametrize(("encoded", "char"), [("%40", "@"), ("%28", "("), ("%C3%A9", "é"), ("%20", " ")])
def test_header_name_must_be_a_token(any_server: RunningServer, way: str, encoded: str, char: str) -> None:
    marker = uuid.uuid4().hex[:12]
    _refused(any_server, f"/header?way={way}&name=x{encoded}{marker}&v=1", f"invalid header name 'x{char}{marker}'")


@pytest.mark.parametrize("way", ["set_header", "init", "tuple", "mapping"])
def test_tab_and_latin1_in_header_values_pass(any_server: RunningServer, way: str) -> None:
    (r,), _ = exchange(any_server.url, get(f"/header?way={way}&v=a%09caf%C3%A9", extra="Connection: close\r\n"))
    assert (r.status, r.header("x-echo")) == (200, "a\tcaf\xe9")


@pytest.mark.parametrize(
    ("query", "logged"),
    [
        ("name=a%3B%20Domain%3Devil.example{m}", "invalid cookie name 'a; Domain=evil.example{m}'"),
        (
            "name=s&path=/{m}%3B%20Domain%3Devil.example",
            "invalid character ';' in cookie path '/{m}; Domain=evil.example'",
        ),
        ("name=s&domain={m}.example%0B", "invalid character '\\x0b' in cookie domain '{m}.example\\x0b'"),
    ],
)
def test_cookie_name_and_attributes_cannot_forge_attributes(any_server: RunningServer, query: str, logged: str) -> None:
    marker = uuid.uuid4().hex[:12]
    _refused(any_server, "/cookie?" + query.format(m=marker), logged.format(m=marker))


def test_cookie_values_are_encoded(any_server: RunningServer) -> None:
    (r,), _ = exchange(any_server.url, get("/cookie?v=a%3B%20Domain%3Devil.example", extra="Connection: close\r\n"))
    assert (r.status, r.header_all("set-cookie")) == (200, ["s=a%3B%20Domain%3Devil.example; Path=/; SameSite=Lax"])


def test_content_type_cannot_inject_headers() -> None:
    from cello import Response

    with pytest.raises(ValueError):
        Response(b"x", content_type="text/plain\r\nSet-Cookie: a=1")
    with pytest.raises(ValueError):
        Response.binary(b"x", "image/png\nX-Forged: 1")
