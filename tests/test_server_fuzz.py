"""Generated requests over real sockets, on both parsers: valid, mutated, truncated and
oversized heads and bodies, alone or pipelined. Whatever arrives, the server answers with
well-formed responses or closes, never hangs, and serves the next connection.

(tests/test_server_parsers.py fuzzes the parser adapters without sockets; tests/fuzz/ has a
coverage-guided target for atheris.)
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.http import RawResponse, Reader, connect, exchange, get
from support.servers import running_server
from support.variants import PARSERS

from cello import App, Request

app = App(max_body_size=4096)


@app.get("/")
def index(request: Request) -> dict[str, bool]:
    return {"ok": True}


@app.post("/echo")
def echo(request: Request) -> bytes:
    return request.body()


@app.post("/stream", stream=True)
async def stream(request: Request) -> dict[str, int]:
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
    return {"size": size}


@pytest.fixture(scope="module", params=PARSERS)
def url(request: pytest.FixtureRequest) -> Iterator[str]:
    settings_ = {
        "request_head_timeout": 0.3,
        "body_idle_timeout": 0.3,
        "keep_alive_timeout": 0.3,
        "max_request_line": 512,
        "max_header_size": 1024,
        "max_header_count": 20,
    }
    with running_server(app, request.param, **settings_) as base:
        yield base


# -- strategies ---------------------------------------------------------------------------

TOKEN = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-!#$%&'*+.^_`|~", min_size=1, max_size=12
)
JUNK = st.binary(min_size=0, max_size=12)


def _encoded(text: str) -> bytes:
    return text.encode("latin-1")


# No HEAD: its responses cannot be framed without knowing which request each one answers.
methods = st.one_of(
    st.sampled_from([b"GET", b"POST", b"PUT", b"OPTIONS", b"DELETE"]),
    TOKEN.filter(lambda m: m != "HEAD").map(_encoded),
    JUNK.filter(lambda m: m != b"HEAD"),
)
targets = st.one_of(
    st.sampled_from([b"/", b"/echo", b"/stream", b"/missing?x=1", b"*", b"http://a/echo", b"/%2F%00"]),
    JUNK.map(lambda b: b"/" + b),
)
versions = st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.1 ", b"http/1.1", b"HTTP/1"])
values = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=20).map(_encoded),
    JUNK,
)
framing_fields = st.sampled_from(
    [
        (b"Content-Length", b"5"),
        (b"Content-Length", b"0"),
        (b"Content-Length", b"-1"),
        (b"Content-Length", b"99999999999999999999"),
        (b"Content-Length", b"5, 5"),
        (b"Content-Length", b" 7"),
        (b"Transfer-Encoding", b"chunked"),
        (b"Transfer-Encoding", b"gzip, chunked"),
        (b"Transfer-Encoding", b"identity"),
        (b"Connection", b"close"),
        (b"Connection", b"keep-alive, upgrade"),
        (b"Expect", b"100-continue"),
        (b"Upgrade", b"websocket"),
        (b"Host", b""),
    ]
)
fields = st.lists(st.one_of(st.tuples(TOKEN.map(_encoded), values), framing_fields), max_size=6)


def chunked(body: bytes, sizes: list[int]) -> bytes:
    out = b""
    rest = body
    for size in sizes:
        piece, rest = rest[:size], rest[size:]
        if piece:
            out += b"%x\r\n%s\r\n" % (len(piece), piece)
    if rest:
        out += b"%x\r\n%s\r\n" % (len(rest), rest)
    return out + b"0\r\n\r\n"


@st.composite
def messages(draw: Any) -> bytes:
    method = draw(methods)
    target = draw(targets)
    version = draw(versions)
    head_fields = [(b"Host", b"test"), *draw(fields)]
    body = draw(st.binary(max_size=300))
    framing = draw(st.sampled_from(["length", "chunked", "none", "raw"]))
    if framing == "length":
        head_fields.append((b"Content-Length", b"%d" % len(body)))
        payload = body
    elif framing == "chunked":
        head_fields.append((b"Transfer-Encoding", b"chunked"))
        payload = chunked(body, draw(st.lists(st.integers(1, 64), max_size=4)))
    elif framing == "raw":
        payload = body
    else:
        payload = b""
    separator = draw(st.sampled_from([b"\r\n", b"\r\n", b"\r\n", b"\n", b"\r"]))
    lines = [method + b" " + target + b" " + version] + [name + b": " + value for name, value in head_fields]
    return bytes(separator.join(lines) + separator + separator + payload)


@st.composite
def inputs(draw: Any) -> tuple[bytes, bool]:
    """A few messages, then perhaps mutated, truncated or blown up; and whether to half-close."""
    data = b"".join(draw(st.lists(messages(), min_size=1, max_size=3)))
    mutation = draw(st.sampled_from(["none", "none", "flip", "insert", "truncate", "oversize"]))
    if data and mutation == "flip":
        at = draw(st.integers(0, len(data) - 1))
        data = data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1 :]
    elif mutation == "insert":
        at = draw(st.integers(0, len(data)))
        data = (
            data[:at] + draw(st.sampled_from([b"\r\n", b"\n", b"\x00", b" ", b":", b"\r\n\r\n", b"\xff"])) + data[at:]
        )
    elif mutation == "truncate":
        data = data[: draw(st.integers(0, len(data)))]
    elif mutation == "oversize":
        at = data.find(b"\r\n")
        blob = draw(st.sampled_from([b"a" * 600, b"X-Big: " + b"b" * 1200 + b"\r\n", b"X: y\r\n" * 30]))
        data = data[: at + 2] + blob + data[at + 2 :] if at >= 0 else data + blob
    half_close = draw(st.sampled_from([True, True, True, False]))
    return data, half_close


# -- the property -----------------------------------------------------------------------


def read_all(sock: socket.socket) -> list[RawResponse]:
    """Every response until the server closes; each must be complete and well-formed."""
    reader = Reader(sock)
    responses = []
    while not reader.at_eof():
        response = reader.response()
        assert 100 <= response.status <= 599
        if response.status >= 400:
            assert response.header("content-type") == "application/json", response
        responses.append(response)
        if response.header("connection") == "close":
            assert reader.at_eof(), "data after a response that closes the connection"
            break
    return responses


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=inputs())
def test_any_input_gets_answers_or_a_close_and_the_server_goes_on(url: str, case: tuple[bytes, bool]) -> None:
    data, half_close = case
    with connect(url) as sock:
        sock.settimeout(5.0)  # a hang fails the test
        try:
            sock.sendall(data)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # refused before everything was sent
        responses = read_all(sock)
    assert len([r for r in responses if r.status >= 200]) <= data.count(b"\n") + 1
    (r,), _ = exchange(url, get("/", extra="Connection: close\r\n"))
    assert r.status == 200
