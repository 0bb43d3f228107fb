"""Malformed requests: the same status from both parsers, then the connection closes.

Each shape runs twice per parser: against the parser adapter alone (sans I/O, fed whole and
byte by byte) and against a real server over a raw socket, read until EOF. Then hostile
clients that never end a line of a chunked body, and what Host means to request.host/url.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.fakeapp import FakeApp
from support.http import Reader, connect, exchange, get
from support.servers import RunningServer
from support.variants import PARSERS

from cello.response import Response
from cello.server.config import ServerConfig
from cello.server.http.head import HeadValidator
from cello.server.http.parsers import create_parser

H = b"Host: a\r\n"
GET = b"GET / HTTP/1.1\r\n" + H
POST = b"POST / HTTP/1.1\r\n" + H
CHUNKED = POST + b"Transfer-Encoding: chunked\r\n\r\n"
# The start of a TLS 1.2 ClientHello (record header, handshake header, version, random): no LF.
TLS_CLIENT_HELLO = bytes.fromhex("1603010200010001fc0303") + b"\x11" * 32 + b"\x00"

# (id, request bytes, status)
SHAPES: list[tuple[str, bytes, int]] = [
    (
        "cl-and-te",
        POST + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    (
        "te-and-cl",
        POST + b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
        400,
    ),
    ("cl-differing", POST + b"Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400),
    ("cl-repeated-same", POST + b"Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400),
    ("cl-list", POST + b"Content-Length: 5, 5\r\n\r\nabcde", 400),
    ("cl-non-numeric", POST + b"Content-Length: abc\r\n\r\n", 400),
    ("cl-negative", POST + b"Content-Length: -1\r\n\r\n", 400),
    ("cl-plus", POST + b"Content-Length: +1\r\n\r\na", 400),
    ("cl-empty", POST + b"Content-Length: \r\n\r\n", 400),
    ("cl-hex", POST + b"Content-Length: 0x3\r\n\r\nabc", 400),
    ("cl-huge", POST + b"Content-Length: 99999999999999999999999\r\n\r\n", 400),
    ("te-gzip", POST + b"Transfer-Encoding: gzip\r\n\r\n", 400),
    ("te-gzip-chunked", POST + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 400),
    ("te-chunked-gzip", POST + b"Transfer-Encoding: chunked, gzip\r\n\r\n", 400),
    (
        "te-twice",
        POST + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    ("te-identity", POST + b"Transfer-Encoding: identity\r\n\r\n", 400),
    ("te-xchunked", POST + b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 400),
    ("te-http10", b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("obs-fold-sp", GET + b"X-A: b\r\n c\r\n\r\n", 400),
    ("obs-fold-ht", GET + b"X-A: b\r\n\tc\r\n\r\n", 400),
    ("bare-lf", b"GET / HTTP/1.1\nHost: a\n\n", 400),
    ("bare-lf-request-line", b"GET / HTTP/1.1\nHost: a\r\n\r\n", 400),
    ("bare-lf-field", b"GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n", 400),
    ("bare-lf-end", b"GET / HTTP/1.1\r\nHost: a\n\r\n", 400),
    ("bare-cr", b"GET / HTTP/1.1\r\nHost: a\rX: y\r\n\r\n", 400),
    ("ctl-in-value", GET + b"X-A: b\x01c\r\n\r\n", 400),
    ("esc-in-value", GET + b"X-A: \x1b[31m\r\n\r\n", 400),
    ("del-in-value", GET + b"X-A: b\x7fc\r\n\r\n", 400),
    ("nul-in-value", GET + b"X-A: b\x00c\r\n\r\n", 400),
    ("nul-in-name", GET + b"X\x00A: b\r\n\r\n", 400),
    ("nul-in-target", b"GET /a\x00b HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("nul-in-method", b"G\x00T / HTTP/1.1\r\n" + H + b"\r\n", 400),
    (
        "nul-in-body-line",
        CHUNKED + b"3\x00\r\nabc\r\n0\r\n\r\n",
        400,
    ),
    ("space-before-colon", GET + b"X-A : b\r\n\r\n", 400),
    ("empty-field-name", GET + b": b\r\n\r\n", 400),
    ("field-without-colon", GET + b"XYZ\r\n\r\n", 400),
    ("non-ascii-name", GET + b"X\xc3\xa9: v\r\n\r\n", 400),
    (
        "chunk-size-not-hex",
        CHUNKED + b"zz\r\nabc\r\n0\r\n\r\n",
        400,
    ),
    (
        "chunk-size-negative",
        CHUNKED + b"-3\r\nabc\r\n0\r\n\r\n",
        400,
    ),
    ("chunk-size-0x", CHUNKED + b"0x3\r\nabc\r\n0\r\n\r\n", 400),
    ("chunk-size-empty", CHUNKED + b"\r\nabc\r\n0\r\n\r\n", 400),
    (
        "chunk-size-overflow",
        CHUNKED + b"ffffffffffffffffff\r\nabc\r\n0\r\n\r\n",
        400,
    ),
    (
        "chunk-data-too-long",
        CHUNKED + b"3\r\nabcX\r\n0\r\n\r\n",
        400,
    ),
    ("chunk-lf-only", CHUNKED + b"3\nabc\n0\n\n", 400),
    ("http-2.0", b"GET / HTTP/2.0\r\n" + H + b"\r\n", 400),
    ("http-3.0", b"GET / HTTP/3.0\r\n" + H + b"\r\n", 400),
    ("http-1.2", b"GET / HTTP/1.2\r\n" + H + b"\r\n", 400),
    ("http-0.9-version", b"GET / HTTP/0.9\r\n" + H + b"\r\n", 400),
    ("http-0.9-no-version", b"GET /\r\n" + H + b"\r\n", 400),
    ("http-1", b"GET / HTTP/1\r\n" + H + b"\r\n", 400),
    ("http-1.10", b"GET / HTTP/1.10\r\n" + H + b"\r\n", 400),
    ("http-lowercase", b"GET / http/1.1\r\n" + H + b"\r\n", 400),
    ("h2-preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400),
    ("method-bad-token", b"G(T / HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("method-lowercase", b"get / HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("method-unknown", b"FOO / HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("method-leading-space", b" GET / HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("method-tab", b"GET\t/ HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("target-not-origin-form", b"GET a:b HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("target-query-only", b"GET ?x HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("chunk-ext-empty", CHUNKED + b"2;\r\nab\r\n0\r\n\r\n", 400),
    ("chunk-size-space", CHUNKED + b"2 \r\nab\r\n0\r\n\r\n", 400),
    (
        "trailer-bare-lf",
        CHUNKED + b"2\r\nab\r\n0\r\nX: 1\n\r\n",
        400,
    ),
    ("space-in-target", b"GET /a b HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("tab-in-target", b"GET /a\tb HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("ctl-in-target", b"GET /\x01 HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("del-in-target", b"GET /a\x7fb HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("utf8-in-target", b"GET /\xc3\xa9 HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("trailing-space-request-line", b"GET / HTTP/1.1 \r\n" + H + b"\r\n", 400),
    ("missing-host", b"GET / HTTP/1.1\r\n\r\n", 400),
    ("two-hosts", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    ("expect-unknown", POST + b"Expect: teapot\r\nContent-Length: 1\r\n\r\na", 417),
    # Runs of spaces in the request line (llhttp takes them; uvicorn, gunicorn... refuse them).
    ("two-spaces-after-method", b"GET  / HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("two-spaces-after-target", b"GET /  HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("spaces-in-request-line", b"GET  /  HTTP/1.1\r\n" + H + b"\r\n", 400),
    # Two faults: the request line's comes first, a head's rules before its body's framing.
    ("spaces-and-too-many-fields", b"GET  / HTTP/1.1\r\n" + H + b"X: 1\r\n" * 101 + b"\r\n", 400),
    ("spaces-and-endless-field", b"GET  / HTTP/1.1\r\nX: " + b"a" * 40_000, 400),
    (
        "expect-unknown-and-trailer-20k",
        CHUNKED[:-2] + b"Expect: teapot\r\n\r\n0\r\nX: " + b"a" * 20_000 + b"\r\n\r\n",
        417,
    ),
    (
        "bad-authority-and-chunk-extension-64k",
        CHUNKED.replace(b"POST /", b"POST http://u@a/") + b"1;" + b"e" * 65_536,
        400,
    ),
    # Not HTTP at all: a TLS ClientHello refused at its first byte, not when a line ends.
    ("tls-client-hello", TLS_CLIENT_HELLO, 400),
    ("method-junk-unfinished", b"\x80\x81", 400),
    # Chunked framing: bounded, and the fields that frame a message are refused in a trailer.
    ("trailer-content-length", CHUNKED + b"0\r\nContent-Length: 5\r\n\r\n", 400),
    ("trailer-transfer-encoding", CHUNKED + b"0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    ("trailer-20k", CHUNKED + b"0\r\nX-T: " + b"a" * 20_000 + b"\r\n\r\n", 431),
    ("trailer-many-fields", CHUNKED + b"0\r\n" + b"X-T: 1\r\n" * 101 + b"\r\n", 431),
    ("trailer-endless", CHUNKED + b"0\r\nX-T: " + b"a" * 40_000, 431),
    ("chunk-extension-64k", CHUNKED + b"1;a=" + b"b" * 65_536 + b"\r\nx\r\n0\r\n\r\n", 400),
    ("chunk-extension-endless", CHUNKED + b"1;a=" + b"b" * 40_000, 400),
    ("chunk-size-22-digits", CHUNKED + b"0" * 21 + b"1\r\nx\r\n0\r\n\r\n", 400),
    ("chunk-size-17-digits", CHUNKED + b"0" * 16 + b"1\r\nx\r\n0\r\n\r\n", 400),
    ("chunk-size-endless-zeros", CHUNKED + b"0" * 40_000, 400),
    # Host (RFC 9110 7.2: uri-host [":" port]); an absolute-form target's authority too.
    ("host-space", b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
    ("host-slash", b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400),
    ("host-userinfo", b"GET / HTTP/1.1\r\nHost: user@a\r\n\r\n", 400),
    ("host-bad-port", b"GET / HTTP/1.1\r\nHost: a:80x\r\n\r\n", 400),
    ("host-two-ports", b"GET / HTTP/1.1\r\nHost: a:1:2\r\n\r\n", 400),
    ("host-non-ascii", b"GET / HTTP/1.1\r\nHost: caf\xc3\xa9.example\r\n\r\n", 400),
    ("host-bad-percent", b"GET / HTTP/1.1\r\nHost: a%zz\r\n\r\n", 400),
    ("host-unclosed-ipv6", b"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400),
    ("absolute-form-empty-host", b"GET http:///x HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("absolute-form-userinfo", b"GET http://u@b/x HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("absolute-form-bad-port", b"GET http://b:x/ HTTP/1.1\r\n" + H + b"\r\n", 400),
]

# Accepted by both (RFC-sanctioned leniencies); each must give a normal response.
ACCEPTED: list[tuple[str, bytes]] = [
    ("leading-crlf", b"\r\n" + get("/")),
    ("no-ows", b"GET / HTTP/1.1\r\nHost:a\r\n\r\n"),
    ("tab-ows", b"GET / HTTP/1.1\r\nHost:\ta\t\r\n\r\n"),
    ("tab-in-value", b"GET / HTTP/1.1\r\n" + H + b"X-A: b\tc\r\n\r\n"),
    ("obs-text-in-value", b"GET / HTTP/1.1\r\n" + H + b"X-A: b\xe9c\r\n\r\n"),
    ("http-1.0-no-host", b"GET / HTTP/1.0\r\n\r\n"),
    ("te-mixed-case", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: Chunked\r\n\r\n0\r\n\r\n"),
    ("cl-leading-zeros", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 003\r\n\r\nabc"),
    ("chunk-extension", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\n\r\n"),
    (
        "chunk-trailer",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n",
    ),
    ("absolute-form", b"GET http://a/?x=1 HTTP/1.1\r\n" + H + b"\r\n"),
    ("chunk-size-16-digits", CHUNKED + b"0" * 15 + b"1\r\nx\r\n0\r\n\r\n"),
    ("chunk-extension-4k", CHUNKED + b"1;a=" + b"b" * 4092 + b"\r\nx\r\n0\r\n\r\n"),
    ("chunk-extension-quoted", CHUNKED + b'1;a="b c"\r\nx\r\n0;z\r\n\r\n'),
    ("trailer-16k", CHUNKED + b"0\r\nX-T: " + b"a" * (16 * 1024 - 7) + b"\r\n\r\n"),
    ("trailer-host", CHUNKED + b"0\r\nHost: b\r\n\r\n"),
    ("host-empty", b"GET / HTTP/1.1\r\nHost:\r\n\r\n"),
    ("host-port", b"GET / HTTP/1.1\r\nHost: a.example:8080\r\n\r\n"),
    ("host-ipv4", b"GET / HTTP/1.1\r\nHost: 127.0.0.1:80\r\n\r\n"),
    ("host-ipv6", b"GET / HTTP/1.1\r\nHost: [::1]:8000\r\n\r\n"),
    ("host-reg-name", b"GET / HTTP/1.1\r\nHost: a_b~c!$&'()*+,;=%41\r\n\r\n"),
    ("host-empty-port", b"GET / HTTP/1.1\r\nHost: a:\r\n\r\n"),
    ("absolute-form-port", b"GET http://b:8080/ HTTP/1.1\r\n" + H + b"\r\n"),
    ("absolute-form-http10", b"GET http://b/ HTTP/1.0\r\n\r\n"),
]


class Recorder:
    """A ParserEvents sink that records what the adapter says."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def on_head(
        self, method: str, target: bytes, version: str, headers: list[tuple[bytes, bytes]], head: HeadValidator
    ) -> None:
        self.events.append(
            ("head", method, target, version, list(headers), head.keep_alive, head.chunked, head.content_length)
        )

    def on_body(self, data: bytes) -> None:
        if self.events and self.events[-1][0] == "body":
            self.events[-1] = ("body", self.events[-1][1] + data)
        else:
            self.events.append(("body", data))

    def on_end(self) -> None:
        self.events.append(("end",))

    def on_error(self, status: int, reason: str) -> None:
        self.events.append(("error", status))

    def on_upgrade(self, data: bytes) -> None:
        self.events.append(("upgrade", data))


def parse(http: str, data: bytes, bytewise: bool = False, **settings: Any) -> list[tuple[Any, ...]]:
    recorder = Recorder()
    parser = create_parser(http, recorder, ServerConfig(http=http, **settings))
    if bytewise:
        for i in range(len(data)):
            parser.feed(data[i : i + 1])
    else:
        parser.feed(data)
    return recorder.events


def _statuses(events: list[tuple[Any, ...]]) -> list[int]:
    return [e[1] for e in events if e[0] == "error"]


@pytest.mark.parametrize("bytewise", [False, True], ids=["whole", "bytewise"])
@pytest.mark.parametrize("http", PARSERS)
@pytest.mark.parametrize("name,data,status", SHAPES, ids=[s[0] for s in SHAPES])
def test_parser_refuses(name: str, data: bytes, status: int, http: str, bytewise: bool) -> None:
    events = parse(http, data, bytewise)
    assert _statuses(events) == [status], events
    assert ("end",) not in events


@pytest.mark.parametrize("name,data", ACCEPTED, ids=[s[0] for s in ACCEPTED])
def test_parsers_agree_on_accepted(name: str, data: bytes) -> None:
    results = {http: parse(http, data) for http in PARSERS}
    bytewise = {http: parse(http, data, True) for http in PARSERS}
    assert results["httptools"] == results["h11"]
    assert bytewise["httptools"] == results["h11"] == bytewise["h11"]
    assert results["h11"][-1] == ("end",)
    assert not _statuses(results["h11"])


@pytest.fixture(scope="module", params=PARSERS)
def url(request: pytest.FixtureRequest) -> Any:
    app = FakeApp()
    app.route("GET", "/")(lambda r: Response({"ok": True}))
    app.route("POST", "/")(lambda r: Response(r.body()))
    app.route("GET", "/a")(lambda r: Response({"ok": True}))
    from support.servers import running_server

    with running_server(app, request.param) as base:
        yield base


@pytest.mark.parametrize("name,data,status", SHAPES, ids=[s[0] for s in SHAPES])
def test_server_refuses_and_closes(url: str, name: str, data: bytes, status: int) -> None:
    # A valid request after the bad one must never be answered.
    (response,), closed = exchange(url, data + get("/"))
    assert response.status == status
    assert response.header("content-type") == "application/json"
    assert response.header("connection") == "close"
    assert response.json()["status"] == status
    assert closed


@pytest.mark.parametrize("name,data", ACCEPTED, ids=[s[0] for s in ACCEPTED])
def test_server_accepts(url: str, name: str, data: bytes) -> None:
    # An HTTP/1.0 request without keep-alive is the last one on its connection.
    count = 1 if b"HTTP/1.0" in data else 2
    responses, closed = exchange(url, data + get("/", extra="Connection: close\r\n"), count)
    assert [r.status for r in responses] == [200] * count
    assert closed


def test_tls_client_hello_refused_at_once(url: str) -> None:
    """Not when the head timeout ends: llhttp refuses the first byte, and so does h11's side."""
    with connect(url) as sock:
        sock.settimeout(3.0)
        sock.sendall(TLS_CLIENT_HELLO)
        reader = Reader(sock)
        assert reader.response().status == 400
        assert reader.at_eof()


def test_refusal_after_good_requests_keeps_order(url: str) -> None:
    data = get("/") + get("/a") + b"GET / HTTP/1.1\r\nHost: a\r\nX: \x01\r\n\r\n" + get("/")
    responses, closed = exchange(url, data, 3)
    assert [r.status for r in responses] == [200, 200, 400]
    assert responses[0].header("connection") is None
    assert closed


# -- hostile clients: a chunked body with a line that never ends --------------------------

MiB = 1024 * 1024
# (what starts the line, the byte it goes on with, the answer)
ENDLESS: dict[str, tuple[bytes, bytes, int]] = {
    "trailer": (CHUNKED + b"0\r\nX-T: ", b"a", 431),
    "chunk-extension": (CHUNKED + b"1;e=", b"v", 400),
    "chunk-size-zeros": (CHUNKED, b"0", 400),
}


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _endless(url: str, start: bytes, byte: bytes, result: dict[str, Any]) -> None:
    """Send ``start``, then ``byte`` for ever (up to 32 MiB), then read the answer."""
    began = time.monotonic()
    with connect(url) as sock:
        sock.settimeout(10.0)
        piece = byte * 65536
        try:
            sock.sendall(start)
            for _ in range(32 * MiB // len(piece)):
                sock.sendall(piece)
        except OSError:
            pass  # refused (closed) before the end, or no longer read
        try:
            response = Reader(sock).response()
            result["status"] = response.status
            result["json"] = response.json()
        except (OSError, EOFError) as exc:
            result["status"] = repr(exc)
    result["seconds"] = time.monotonic() - began


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
@pytest.mark.parametrize("shape", list(ENDLESS))
@pytest.mark.parametrize("http", PARSERS)
def test_endless_chunked_line_is_refused_at_once_in_bounded_memory(
    serve_app: Callable[..., RunningServer], http: str, shape: str
) -> None:
    """Default timeouts (body idle 30 s): the answer must come from the limit, not the timer;
    the server's memory stays flat and its other clients are answered meanwhile."""
    server = serve_app("tests/apps/basic.py", http)
    pid = server.process.pid
    (r,), _ = exchange(server.url, get("/", extra="Connection: close\r\n"))
    assert r.status == 200
    before = rss_kib(pid)
    start, byte, status = ENDLESS[shape]
    result: dict[str, Any] = {}
    attacker = threading.Thread(target=_endless, args=(server.url, start, byte, result), daemon=True)
    attacker.start()
    latencies = []
    while attacker.is_alive() or len(latencies) < 5:
        began = time.monotonic()
        (r,), _ = exchange(server.url, get("/", extra="Connection: close\r\n"))
        latencies.append(time.monotonic() - began)
        assert r.status == 200
        if len(latencies) >= 400:
            break  # bounded: the attacker's socket timeout ends it anyway
    attacker.join(30)
    grown = rss_kib(pid) - before
    assert result["status"] == status, result
    assert result["json"]["status"] == status
    assert result["seconds"] < 5.0, result  # not a 408 after the body timeout
    assert max(latencies) < 2.0, latencies  # (the worker stalled for up to 29 s before)
    assert grown < 8 * 1024, f"server grew by {grown} KiB"


# -- Host, and an absolute-form target's authority ----------------------------------------


def _info(url: str, head: bytes) -> Any:
    (r,), _ = exchange(url, head)
    return r


@pytest.mark.parametrize(
    "target,host,expected",
    [
        (b"/request-info?x=1", b"a.example:8080", ("a.example:8080", "http://a.example:8080/request-info?x=1")),
        (
            b"http://b.example:81/request-info?x=1",
            b"a.example",
            ("b.example:81", "http://b.example:81/request-info?x=1"),
        ),
        (b"http://[::1]:81/request-info", b"a.example", ("[::1]:81", "http://[::1]:81/request-info")),
        (b"/request-info", b"", ("localhost", "http://localhost/request-info")),
    ],
)
@pytest.mark.native_only(reason="the request target and Host as `cello serve`'s parsers read them off the wire")
def test_request_host_and_url(
    serve_app: Callable[..., RunningServer],
    variant: tuple[str, str],
    target: bytes,
    host: bytes,
    expected: tuple[str, str],
) -> None:
    """RFC 9112 3.2.2: an absolute-form target's authority wins over Host."""
    server = serve_app("tests/apps/basic.py", *variant)
    r = _info(server.url, b"GET " + target + b" HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n")
    assert r.status == 200
    assert (r.json()["host"], r.json()["url"]) == expected


BAD_HOSTS = [b"a b", b"evil.example/x", b"user@a.example", b"a:80x", b"a:1:2", b"caf\xc3\xa9.example", b"[::1", b"a%zz"]


@pytest.mark.parametrize("host", BAD_HOSTS)
@pytest.mark.native_only(reason="the server's HTTP parser refuses it before the app sees a scope")
def test_invalid_host_refused(serve_app: Callable[..., RunningServer], variant: tuple[str, str], host: bytes) -> None:
    server = serve_app("tests/apps/basic.py", *variant)
    r = _info(server.url, b"GET /request-info HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
    assert (r.status, r.json()) == (400, {"error": "Invalid Host header", "status": 400})
    assert r.header("connection") == "close"


@pytest.mark.parametrize("host", BAD_HOSTS)
def test_invalid_host_refused_under_asgi(host: bytes) -> None:
    """The same answer when an ASGI server (here TestClient) let the Host through."""
    from cello import App, Request
    from cello.testing import TestClient

    app = App()

    @app.get("/request-info")
    def info(request: Request) -> dict[str, str]:
        return {"host": request.host, "url": request.url}

    with TestClient(app) as client:
        r = client.get("/request-info", headers={"host": host})
        assert (r.status_code, r.json()) == (400, {"error": "Invalid Host header", "status": 400})
        assert (
            client.get("/request-info", headers={"host": "a.example:8080"}).json()["url"]
            == "http://a.example:8080/request-info"
        )
