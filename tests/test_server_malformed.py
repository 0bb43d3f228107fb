"""Malformed requests: the same status from both parsers, then the connection closes.

Each shape runs twice per parser: against the parser adapter alone (sans I/O, fed whole and
byte by byte) and against a real server over a raw socket, read until EOF.
"""

from __future__ import annotations

from typing import Any

import pytest
from serverutil import PARSERS, FakeApp, exchange, get

from cello.response import Response
from cello.server.config import ServerConfig
from cello.server.head import HeadValidator
from cello.server.parsers import create_parser

H = b"Host: a\r\n"
CHUNKED = b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"

# (id, request bytes, status)
SHAPES: list[tuple[str, bytes, int]] = [
    ("cl-and-te", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("te-and-cl", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n", 400),
    ("cl-differing", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400),
    ("cl-repeated-same", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400),
    ("cl-list", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5, 5\r\n\r\nabcde", 400),
    ("cl-non-numeric", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: abc\r\n\r\n", 400),
    ("cl-negative", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: -1\r\n\r\n", 400),
    ("cl-plus", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: +1\r\n\r\na", 400),
    ("cl-empty", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: \r\n\r\n", 400),
    ("cl-hex", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 0x3\r\n\r\nabc", 400),
    ("cl-huge", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 99999999999999999999999\r\n\r\n", 400),
    ("te-gzip", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip\r\n\r\n", 400),
    ("te-gzip-chunked", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 400),
    ("te-chunked-gzip", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked, gzip\r\n\r\n", 400),
    ("te-twice", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("te-identity", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: identity\r\n\r\n", 400),
    ("te-xchunked", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 400),
    ("te-http10", b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("obs-fold-sp", b"GET / HTTP/1.1\r\n" + H + b"X-A: b\r\n c\r\n\r\n", 400),
    ("obs-fold-ht", b"GET / HTTP/1.1\r\n" + H + b"X-A: b\r\n\tc\r\n\r\n", 400),
    ("bare-lf", b"GET / HTTP/1.1\nHost: a\n\n", 400),
    ("bare-lf-request-line", b"GET / HTTP/1.1\nHost: a\r\n\r\n", 400),
    ("bare-lf-field", b"GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n", 400),
    ("bare-lf-end", b"GET / HTTP/1.1\r\nHost: a\n\r\n", 400),
    ("bare-cr", b"GET / HTTP/1.1\r\nHost: a\rX: y\r\n\r\n", 400),
    ("ctl-in-value", b"GET / HTTP/1.1\r\n" + H + b"X-A: b\x01c\r\n\r\n", 400),
    ("esc-in-value", b"GET / HTTP/1.1\r\n" + H + b"X-A: \x1b[31m\r\n\r\n", 400),
    ("del-in-value", b"GET / HTTP/1.1\r\n" + H + b"X-A: b\x7fc\r\n\r\n", 400),
    ("nul-in-value", b"GET / HTTP/1.1\r\n" + H + b"X-A: b\x00c\r\n\r\n", 400),
    ("nul-in-name", b"GET / HTTP/1.1\r\n" + H + b"X\x00A: b\r\n\r\n", 400),
    ("nul-in-target", b"GET /a\x00b HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("nul-in-method", b"G\x00T / HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("nul-in-body-line", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n3\x00\r\nabc\r\n0\r\n\r\n", 400),
    ("space-before-colon", b"GET / HTTP/1.1\r\n" + H + b"X-A : b\r\n\r\n", 400),
    ("empty-field-name", b"GET / HTTP/1.1\r\n" + H + b": b\r\n\r\n", 400),
    ("field-without-colon", b"GET / HTTP/1.1\r\n" + H + b"XYZ\r\n\r\n", 400),
    ("non-ascii-name", b"GET / HTTP/1.1\r\n" + H + b"X\xc3\xa9: v\r\n\r\n", 400),
    ("chunk-size-not-hex", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", 400),
    ("chunk-size-negative", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n-3\r\nabc\r\n0\r\n\r\n", 400),
    ("chunk-size-0x", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n", 400),
    ("chunk-size-empty", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n\r\nabc\r\n0\r\n\r\n", 400),
    ("chunk-size-overflow", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nabc\r\n0\r\n\r\n", 400),
    ("chunk-data-too-long", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n", 400),
    ("chunk-lf-only", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n3\nabc\n0\n\n", 400),
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
    ("chunk-ext-empty", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n2;\r\nab\r\n0\r\n\r\n", 400),
    ("chunk-size-space", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n2 \r\nab\r\n0\r\n\r\n", 400),
    ("trailer-bare-lf", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\nX: 1\n\r\n", 400),
    ("space-in-target", b"GET /a b HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("tab-in-target", b"GET /a\tb HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("ctl-in-target", b"GET /\x01 HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("del-in-target", b"GET /a\x7fb HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("utf8-in-target", b"GET /\xc3\xa9 HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("trailing-space-request-line", b"GET / HTTP/1.1 \r\n" + H + b"\r\n", 400),
    ("missing-host", b"GET / HTTP/1.1\r\n\r\n", 400),
    ("two-hosts", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    ("expect-unknown", b"POST / HTTP/1.1\r\n" + H + b"Expect: teapot\r\nContent-Length: 1\r\n\r\na", 417),
    # Runs of spaces in the request line (llhttp takes them; uvicorn, gunicorn... refuse them).
    ("two-spaces-after-method", b"GET  / HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("two-spaces-after-target", b"GET /  HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("spaces-in-request-line", b"GET  /  HTTP/1.1\r\n" + H + b"\r\n", 400),
    # Not HTTP at all: a TLS ClientHello refused at its first byte, not when a line ends.
    ("tls-client-hello", bytes.fromhex("1603010200010001fc0303") + bytes(range(32)) + b"\x00\x20", 400),
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
    ("chunk-trailer", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n"),
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

    def on_head(self, method: str, target: bytes, version: str, headers: list[tuple[bytes, bytes]], head: HeadValidator) -> None:
        self.events.append(("head", method, target, version, list(headers), head.keep_alive, head.chunked, head.content_length))

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
    from serverutil import running_server

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


def test_refusal_after_good_requests_keeps_order(url: str) -> None:
    data = get("/") + get("/a") + b"GET / HTTP/1.1\r\nHost: a\r\nX: \x01\r\n\r\n" + get("/")
    responses, closed = exchange(url, data, 3)
    assert [r.status for r in responses] == [200, 200, 400]
    assert responses[0].header("connection") is None
    assert closed
