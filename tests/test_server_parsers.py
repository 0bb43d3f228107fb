"""The sans-I/O layer: parser adapters, head rules, chunk framing, response bytes."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.variants import PARSERS
from test_server_malformed import Recorder, parse

from cello.server.config import ServerConfig
from cello.server.http import wire
from cello.server.http.head import ChunkedFraming, HeadValidator, parse_raw_head, split_target
from cello.server.http.parsers import create_parser

# -- adapters: same events from both ------------------------------------------------------


def both(data: bytes) -> list[tuple[Any, ...]]:
    results = [parse(http, data) for http in PARSERS]
    assert results[0] == results[1], results
    return results[0]


def both_split(data: bytes, cuts: list[int]) -> list[list[tuple[Any, ...]]]:
    """Each parser's events for ``data`` fed in reads of the ``cuts`` sizes (then the rest);
    asserts that both parsers give the same."""
    results = []
    for http in PARSERS:
        recorder = Recorder()
        parser = create_parser(http, recorder, ServerConfig(http=http))
        pos = 0
        for cut in cuts:
            parser.feed(data[pos : pos + cut])
            pos += cut
        parser.feed(data[pos:])
        results.append(recorder.events)
    assert results[0] == results[1]
    return results


def test_simple_get_events() -> None:
    events = both(b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\nUser-Agent: t\r\n\r\n")
    assert events == [
        ("head", "GET", b"/a?b=1", "1.1", [(b"Host", b"x"), (b"User-Agent", b"t")], True, False, 0),
        ("end",),
    ]


def test_pipelined_messages_in_one_feed() -> None:
    data = (
        b"POST /1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
        b"POST /2 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nd\r\n0\r\n\r\n"
        b"GET /3 HTTP/1.0\r\n\r\n"
    )
    events = both(data)
    kinds = [e[0] for e in events]
    assert kinds == ["head", "body", "end", "head", "body", "end", "head", "end"]
    assert events[1] == ("body", b"abc") and events[4] == ("body", b"d")
    assert events[3][6] is True  # chunked
    assert events[6][5] is False  # HTTP/1.0 without keep-alive


def test_keep_alive_decisions() -> None:
    cases = {
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n": True,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n": False,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Close\r\n\r\n": False,
        b"GET / HTTP/1.0\r\n\r\n": False,
        b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n": True,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n": False,
        b"CONNECT x:443 HTTP/1.1\r\nHost: x\r\n\r\n": False,
    }
    for data, keep_alive in cases.items():
        events = both(data)
        assert events[0][5] is keep_alive, data


def test_nothing_read_after_an_upgrade_request() -> None:
    data = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: foo\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n"
    # Both stop at the upgrade and hand over what followed it (it belongs to the new protocol).
    for http in PARSERS:
        events = parse(http, data)
        assert [e[0] for e in events] == ["head", "end", "upgrade"], http
        assert events[2][1] == b"GET /2 HTTP/1.1\r\nHost: x\r\n\r\n"


def test_stop_drops_input() -> None:
    for http in PARSERS:
        recorder = Recorder()
        parser = create_parser(http, recorder, ServerConfig(http=http))
        parser.stop()
        parser.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert recorder.events == []


def test_refusal_is_final() -> None:
    for http in PARSERS:
        events = parse(http, b"GET / HTTP/1.1\r\n\r\n" + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert events == [("error", 400)]


# Valid requests, split anywhere: both parsers agree, whatever the split.
_token = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12).filter(
    lambda t: t.lower() not in ("host", "content-length", "transfer-encoding", "connection", "expect", "upgrade")
)
_value = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30).map(str.strip)
_path = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789/._~%-", max_size=30).map(lambda p: "/" + p)


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]))
    # Both versions, so that the httptools adapter's version shortcut is checked against h11
    # (a keep-alive HTTP/1.0 request, or nothing after it would be read).
    version = draw(st.sampled_from(["1.1", "1.0"]))
    head = f"{method} {draw(_path)} HTTP/{version}\r\nHost: h\r\n"
    if version == "1.0":
        head += "Connection: keep-alive\r\n"
    for name, value in draw(st.lists(st.tuples(_token, _value), max_size=6)):
        head += f"{name}: {value}\r\n"
    body = draw(st.binary(max_size=200))
    if version == "1.1" and draw(st.booleans()) and body:
        pieces = draw(st.lists(st.binary(min_size=1, max_size=50), max_size=4))
        framed = b"".join(b"%x\r\n%b\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
        return head.encode() + b"Transfer-Encoding: chunked\r\n\r\n" + framed
    return head.encode() + f"Content-Length: {len(body)}\r\n\r\n".encode() + body


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(requests(), min_size=1, max_size=3), st.lists(st.integers(min_value=1, max_value=40), max_size=20))
def test_parsers_agree_on_any_split(messages: list[bytes], cuts: list[int]) -> None:
    data = b"".join(messages)
    results = both_split(data, cuts)
    assert [e[0] for e in results[0]].count("end") == len(messages)
    versions = [e[3] for e in results[0] if e[0] == "head"]
    assert versions == [m.split(b"\r\n", 1)[0][-3:].decode() for m in messages]


# Requests on the edge of a rule both parsers must apply the same way (issue 15): each one
# accepted, and its neighbour one byte or one step over the limit refused.
_C = b"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
_KIB16 = 16 * 1024
EDGES: list[bytes] = [
    _C + b"0\r\nX-T: " + b"a" * (_KIB16 - 7) + b"\r\n\r\n",  # trailer section at the limit
    _C + b"0\r\nX-T: " + b"a" * (_KIB16 - 6) + b"\r\n\r\n",
    _C + b"0\r\nA: 1\r\nB: 2\r\n\r\n",
    _C + b"0\r\n" + b"X: 1\r\n" * 100 + b"\r\n",  # trailer field count at the limit
    _C + b"0\r\n" + b"X: 1\r\n" * 101 + b"\r\n",
    _C + b"0\r\nContent-Length: 1\r\n\r\n",
    _C + b"0\r\ntransfer-encoding: chunked\r\n\r\n",
    _C + b"1;e=" + b"v" * 4092 + b"\r\nx\r\n0\r\n\r\n",  # chunk-size line at 4096 bytes
    _C + b"1;e=" + b"v" * 4093 + b"\r\nx\r\n0\r\n\r\n",
    _C + b"0" * 15 + b"2\r\nxy\r\n0\r\n\r\n",  # 16 digits
    _C + b"0" * 16 + b"2\r\nxy\r\n0\r\n\r\n",
    _C + b"ffffffffffffffff\r\nxy",
    b"GET  /s HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET /s  HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET /s HTTP/1.1\r\nHost: h h\r\n\r\n",
    b"GET /s HTTP/1.1\r\nHost: [::1]:8\r\n\r\n",
    b"GET http://b:81/s HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET http://b:8x/s HTTP/1.1\r\nHost: h\r\n\r\n",
    bytes.fromhex("16030100f8010000f40303") + b"\x00" * 8,
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    st.lists(requests(), max_size=2),
    st.sampled_from(EDGES),
    st.lists(requests(), max_size=2),
    st.lists(st.integers(min_value=1, max_value=9000), max_size=8),
)
def test_parsers_agree_on_edges_anywhere(before: list[bytes], edge: bytes, after: list[bytes], cuts: list[int]) -> None:
    """An edge case pipelined after and before valid requests, the input split anywhere: both
    parsers give the same events (the httptools adapter finds the chunked framing and the
    request line in its input by itself, wherever a read starts or ends)."""
    data = b"".join(before) + edge + b"".join(after)
    results = both_split(data, cuts)
    # Whatever the split, the same answer as when fed whole (a refused body may come before
    # or after its head's event, as the head arrives alone or with it).
    whole = both(data)
    assert [e for e in results[0] if e[0] != "head"] == [e for e in whole if e[0] != "head"]


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.0\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\r\nGET / HTTP/1.0\r\nHost: x\r\n\r\n",
        b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n",
        b"POST / HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 16\r\n\r\nx HTTP/1.1\r\nabcd"
        b"GET /2 HTTP/1.0\r\n\r\n",
    ],
)
def test_version_is_the_request_lines_whatever_the_reads(data: bytes) -> None:
    """The httptools adapter reads the version off the input when it can (sparing httptools'
    per-request string formatting): every split of the input gives the versions h11 gives."""
    expected = [e[3] for e in parse("h11", data) if e[0] == "head"]
    assert expected
    for cut in range(len(data) + 1):
        recorder = Recorder()
        parser = create_parser("httptools", recorder, ServerConfig(http="httptools"))
        parser.feed(data[:cut])
        parser.feed(data[cut:])
        assert [e[3] for e in recorder.events if e[0] == "head"] == expected, cut


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(
        [
            b"GET / HTTP/1.1\r\nHost: a\r\nX: y\r\n\r\n",
            b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nab",
            b"POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n",
        ]
    ),
    st.integers(min_value=0, max_value=80),
    st.sampled_from([b"\x00", b"\n", b"\r", b" ", b"\t", b"\x01", b"\x7f", b":", b"\xff", b"0", b"-", b"z", b","]),
)
def test_parsers_agree_on_mutations(base: bytes, position: int, byte: bytes) -> None:
    """Insert one byte anywhere: both backends accept or both refuse (with the same status)."""
    position = min(position, len(base))
    # A complete request follows, so that a parser waiting for more input cannot pass for one
    # that accepted (when an error is seen within an unfinished line may differ).
    data = base[:position] + byte + base[position:] + b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n"
    results = [parse(http, data) for http in PARSERS]
    statuses = [[e[1] for e in r if e[0] == "error"] for r in results]
    assert statuses[0] == statuses[1], (data, results)
    if not statuses[0]:
        assert results[0] == results[1], (data, results)


# -- head rules ---------------------------------------------------------------------------


def validator(**settings: Any) -> HeadValidator:
    head = HeadValidator(ServerConfig(**settings))
    head.begin()
    return head


def test_validator_counts_canonical_bytes() -> None:
    head = validator(max_header_size=20)
    assert head.add_field(b"Host", b"abc")  # 4 + 3 + 4 = 11
    assert head.add_field(b"X", b"1234")  # 1 + 4 + 4 = 9 -> 20
    assert not head.add_field(b"Y", b"")
    assert head.status == 431


def test_validator_resets_between_requests() -> None:
    head = validator()
    head.add_field(b"Content-Length", b"5")
    head.add_field(b"Connection", b"close")
    head.add_field(b"Host", b"x")
    assert head.finish("POST", "1.1")
    assert (head.content_length, head.keep_alive) == (5, False)
    head.begin()
    head.add_field(b"Host", b"x")
    assert head.finish("GET", "1.1")
    assert (head.content_length, head.keep_alive, head.chunked) == (0, True, False)


@pytest.mark.parametrize(
    "fields,version,status",
    [
        ([], "1.1", 400),
        ([(b"Host", b"a"), (b"host", b"b")], "1.1", 400),
        ([], "1.0", 0),
        ([(b"Host", b"a")], "2.0", 400),
        ([(b"Host", b"a"), (b"Transfer-Encoding", b"chunked"), (b"Content-Length", b"1")], "1.1", 400),
        ([(b"Host", b"a"), (b"Transfer-Encoding", b"CHUNKED")], "1.1", 0),
        ([(b"Host", b"a"), (b"Content-Length", b"1, 1")], "1.1", 400),
        ([(b"Host", b"a"), (b"Expect", b"100-Continue")], "1.1", 0),
        ([(b"Host", b"a"), (b"Expect", b"other")], "1.1", 417),
    ],
)
def test_validator_rules(fields: list[tuple[bytes, bytes]], version: str, status: int) -> None:
    head = validator()
    ok = all(head.add_field(n, v) for n, v in fields) and head.finish("GET", version)
    assert (0 if ok else head.status) == status


def test_expect_continue_only_with_a_body() -> None:
    head = validator()
    head.add_field(b"Host", b"a")
    head.add_field(b"Expect", b"100-continue")
    head.finish("POST", "1.1")
    assert not head.expect_continue
    head.begin()
    head.add_field(b"Host", b"a")
    head.add_field(b"Expect", b"100-continue")
    head.add_field(b"Content-Length", b"3")
    head.finish("POST", "1.1")
    assert head.expect_continue


def test_parse_raw_head_fields() -> None:
    head = validator()
    fields = parse_raw_head(b"GET / HTTP/1.1\r\nHost:  a \r\nX-Y:\tb c\t\r\nZ:\r\n\r\n", head)
    assert fields == [(b"Host", b"a"), (b"X-Y", b"b c"), (b"Z", b"")]


@pytest.mark.parametrize(
    "target,path,query",
    [
        (b"/", "/", ""),
        (b"/a/b?x=1&y=2", "/a/b", "x=1&y=2"),
        (b"/a%20b?q=%2F", "/a%20b", "q=%2F"),
        (b"/p?", "/p", ""),
        (b"/p#frag", "/p", ""),
        (b"/p?q=1#frag", "/p", "q=1"),
        (b"http://host:80/x?y", "/x", "y"),
        (b"HTTPS://host", "/", ""),
        (b"*", "*", ""),
        (b"host:443", "host:443", ""),
    ],
)
def test_split_target(target: bytes, path: str, query: str) -> None:
    assert split_target(target) == (path, query)


# -- chunk framing ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body,ok",
    [
        (b"3\r\nabc\r\n0\r\n\r\n", True),
        (b"3;a=b\r\nabc\r\n0\r\nT: 1\r\n\r\n", True),
        (b"A\r\n0123456789\r\n0\r\n\r\n", True),
        (b"3 \r\nabc\r\n0\r\n\r\n", False),
        (b"3\nabc\r\n0\r\n\r\n", False),
        (b"3\r\nabcd\r\n0\r\n\r\n", False),
        (b"3\r\nabc\r\n0\r\nbad trailer\r\n\r\n", False),
        (b"10000000000000000\r\n", False),
        (b"g\r\n", False),
    ],
)
def test_chunked_framing(body: bytes, ok: bool) -> None:
    for step in (len(body), 1, 3):
        framing = ChunkedFraming(ServerConfig())
        result = all(framing.feed(body[i : i + step]) >= 0 for i in range(0, len(body), step))
        assert result is ok, (body, step, framing.error)
        if ok:
            assert framing.done


def test_chunked_framing_stops_at_message_end() -> None:
    framing = ChunkedFraming(ServerConfig())
    assert framing.feed(b"0\r\n\r\nGARBAGE\n\n") == 5
    assert framing.done


# -- response bytes -----------------------------------------------------------------------


def test_status_lines() -> None:
    assert wire.status_line(200) == b"HTTP/1.1 200 OK\r\n"
    assert wire.status_line(418) == b"HTTP/1.1 418 I'm a Teapot\r\n"
    assert wire.status_line(599) == b"HTTP/1.1 599 \r\n"


def test_content_length_lines() -> None:
    assert wire.content_length_line(0) == b"content-length: 0\r\n"
    assert wire.content_length_line(4095) == b"content-length: 4095\r\n"
    assert wire.content_length_line(123456) == b"content-length: 123456\r\n"


def test_head_tails() -> None:
    tails = wire.HeadTails("cello")
    tails.update(0.0)
    assert tails.keep_alive == b"date: Thu, 01 Jan 1970 00:00:00 GMT\r\nserver: cello\r\n\r\n"
    assert tails.close.endswith(b"connection: close\r\n\r\n")
    assert tails.keep_alive_10.endswith(b"connection: keep-alive\r\n\r\n")
    bare = wire.HeadTails(None)
    bare.update(0.0)
    assert b"server" not in bare.keep_alive


def test_render_error() -> None:
    tails = wire.HeadTails(None)
    tails.update(0.0)
    data = wire.render_error(404, "Not Found: GET /x", tails.close)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\n")
    assert body == b'{"error":"Not Found: GET /x","status":404}'
    assert b"content-length: %d" % len(body) in head


def test_framing_helpers() -> None:
    headers = [("content-type", "text/plain"), ("Content-Length", "5"), ("transfer-encoding", "x")]
    assert wire.without_framing(headers) == [("content-type", "text/plain")]
    assert wire.declared_length(headers) == 5
    assert wire.declared_length([("a", "b")]) == -1
    assert wire.chunk(b"hello") == b"5\r\nhello\r\n"
    assert wire.render_headers([("a", "1"), ("b", "2")]) == b"a: 1\r\nb: 2\r\n"
    assert wire.render_headers([]) == b""


def test_header_renderings_cached_stay_bounded_and_right() -> None:
    common = [("content-type", "application/json"), ("vary", "Origin")]
    assert wire.render_headers(common) == b"content-type: application/json\r\nvary: Origin\r\n"
    # A field unique to each response (a request id): rendered right, and the list it is in is
    # not kept, so that the caches stay small and keep what is sent again.
    for i in range(3 * wire._FEW_LIMIT):
        headers = [*common, ("x-request-id", f"{i:032x}")]
        assert wire.render_headers(headers) == wire.render_headers(common) + f"x-request-id: {i:032x}\r\n".encode()
    assert len(wire._FEW) < wire._FEW_LIMIT and len(wire._SINGLE) <= wire._SINGLE_LIMIT
    assert tuple(common) in wire._FEW
    many = [(f"h{i}", str(i)) for i in range(6)]
    assert wire.render_headers(many) == b"".join(b"h%d: %d\r\n" % (i, i) for i in range(6))


_FIELD_NAMES = st.sampled_from(["content-type", "vary", "x-request-id", "set-cookie", "etag", "a"])
_FIELD_VALUES = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12)


@given(st.lists(st.lists(st.tuples(_FIELD_NAMES, _FIELD_VALUES), max_size=6), max_size=20))
def test_header_renderings_are_the_fields_whatever_the_caches_hold(lists: list[list[tuple[str, str]]]) -> None:
    # Lists met twice, fields met in several lists, new fields last or in between: every path of
    # render_headers (cached list, cached fields, a new field) gives the same bytes.
    for headers in lists + lists:
        assert wire.render_headers(headers) == b"".join(f"{n}: {v}\r\n".encode() for n, v in headers)


@pytest.mark.parametrize("http", PARSERS)
def test_many_pipelined_messages_after_a_split_head_are_not_counted_as_one_head(http: str) -> None:
    # A head split across reads, then a read holding many whole requests and the start of
    # another: only the unfinished head counts against the head limit, not the whole read.
    recorder = Recorder()
    parser = create_parser(http, recorder, ServerConfig(http=http, max_request_line=100, max_header_size=200))
    request = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
    parser.feed(request[:20])
    parser.feed(request[20:] + request * 400 + request[:20])
    parser.feed(request[20:])
    assert [e[0] for e in recorder.events].count("end") == 402
    assert not [e for e in recorder.events if e[0] == "error"]
