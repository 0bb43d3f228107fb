"""The WebSocket driver and its asyncio glue without a socket: bytes in, events and bytes out.

WsDriver is driven with frames built by support.websocket; WebSocketConnection with a fake transport and
a fake HTTP owner, its timers with explicit clock values.
"""

from __future__ import annotations

import asyncio
import zlib
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.websocket import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    close_payload,
    deflate,
    encode_frame,
    frames,
)
from websockets.extensions.permessage_deflate import PerMessageDeflate

from cello.config import Config
from cello.request import Request
from cello.response import Response, WebSocketUpgrade
from cello.server.config import ServerConfig
from cello.server.http.protocol import ServerState
from cello.server.websocket.connection import WebSocketConnection
from cello.server.websocket.driver import WsDriver, frame
from cello.server.websocket.handshake import accept_token, check_handshake, negotiate_deflate


class Sink:
    """DriverEvents that records everything (and that a failure is reported once)."""

    def __init__(self) -> None:
        self.written = b""
        self.messages: list[str | bytes] = []
        self.pongs = 0
        self.closed: tuple[int, str] | None = None
        self.failed: tuple[int, str] | None = None

    def write(self, data: bytes) -> None:
        self.written += data

    def on_message(self, data: str | bytes) -> None:
        self.messages.append(data)

    def on_pong(self) -> None:
        self.pongs += 1

    def on_close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)

    def on_failure(self, code: int, reason: str) -> None:
        assert self.failed is None, "failure reported twice"
        self.failed = (int(code), reason)

    def sent_frames(self) -> list[tuple[bool, int, bytes]]:
        return list(frames(self.written))


def driver(
    max_size: int = 1 << 20, extensions: list[Any] | None = None, max_fragments: int = 1024
) -> tuple[WsDriver, Sink]:
    sink = Sink()
    return WsDriver(sink, max_size, max_fragments, extensions or []), sink


def fragmented(opcode: int, fragments: list[bytes], between: bytes = b"") -> bytes:
    """One message in these fragments (at least one), ``between`` after each but the last."""
    last = len(fragments) - 1
    return b"".join(
        encode_frame(OP_CONT if i else opcode, fragment, fin=i == last) + (between if i < last else b"")
        for i, fragment in enumerate(fragments)
    )


# -- WsDriver ------------------------------------------------------------------------------


def test_messages_whole_and_byte_by_byte() -> None:
    d, sink = driver()
    data = encode_frame(OP_TEXT, "héllo".encode()) + encode_frame(OP_BINARY, b"\x00\x01" * 100)
    d.receive(data)
    for byte in range(len(data)):
        d.receive(data[byte : byte + 1])
    assert sink.messages == ["héllo", b"\x00\x01" * 100] * 2
    assert sink.written == b""


def test_fragments_are_joined_and_control_frames_interleave() -> None:
    d, sink = driver()
    d.receive(
        encode_frame(OP_BINARY, b"ab", fin=False)
        + encode_frame(OP_PING, b"p")
        + encode_frame(OP_CONT, b"cd", fin=False)
        + encode_frame(OP_CONT, b"ef")
    )
    assert sink.messages == [b"abcdef"]
    assert sink.sent_frames() == [(True, OP_PONG, b"p")]


def test_pong_is_reported() -> None:
    d, sink = driver()
    d.receive(encode_frame(OP_PONG, b"x"))
    assert sink.pongs == 1


def test_peer_close_is_answered_with_its_code() -> None:
    d, sink = driver()
    d.receive(encode_frame(OP_CLOSE, close_payload(4001, "bye")))
    assert sink.closed == (4001, "bye")
    assert sink.sent_frames() == [(True, OP_CLOSE, close_payload(4001, "bye"))]
    assert d.done
    d.receive(encode_frame(OP_TEXT, b"after"))  # ignored
    assert sink.messages == []


def test_close_between_fragments_is_a_close() -> None:
    # RFC 6455 5.4 lets control frames come between fragments; websockets alone answers 1002.
    d, sink = driver()
    d.receive(encode_frame(OP_TEXT, b"unfin", fin=False) + encode_frame(OP_CONT, b"ished", fin=False))
    d.receive(encode_frame(OP_CLOSE, close_payload(4001, "bye")))
    assert sink.closed == (4001, "bye") and sink.failed is None
    assert sink.sent_frames() == [(True, OP_CLOSE, close_payload(4001, "bye"))]
    assert sink.messages == [] and d.done


def test_our_close_then_the_answer() -> None:
    d, sink = driver()
    assert list(frames(d.close(1000, "done"))) == [(True, OP_CLOSE, close_payload(1000, "done"))]
    assert not d.open and not d.done
    d.receive(encode_frame(OP_TEXT, b"late"))  # reported; the connection drops it
    d.receive(encode_frame(OP_CLOSE, close_payload(1000)))
    assert sink.messages == ["late"] and sink.closed == (1000, "")
    assert d.done and sink.written == b""


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (encode_frame(OP_TEXT, b"x", mask=False), 1002),
        (encode_frame(0x3, b"x"), 1002),
        (encode_frame(OP_TEXT, b"\xff"), 1007),
        (encode_frame(OP_CLOSE, close_payload(1000) + b"\xff"), 1007),
    ],
)
def test_failures_send_a_close_frame(data: bytes, code: int) -> None:
    d, sink = driver()
    d.receive(data)
    assert sink.failed is not None and sink.failed[0] == code
    assert [(op, payload[:2]) for _, op, payload in sink.sent_frames()] == [(OP_CLOSE, code.to_bytes(2, "big"))]
    assert d.done


def test_size_limit_counts_utf8_bytes_as_they_arrive() -> None:
    d, sink = driver(max_size=1000)
    d.receive(encode_frame(OP_TEXT, "é".encode() * 500))  # 1000 bytes: fine
    assert sink.messages == ["é" * 500]
    d.receive(encode_frame(OP_TEXT, "é".encode() * 300, fin=False))
    assert sink.failed is None
    # The next fragment's first bytes pass the limit: refused before the frame is complete.
    d.receive(encode_frame(OP_CONT, b"a" * 2000)[:500])  # 8 header bytes, 492 of payload
    assert sink.failed == (1009, "message too big")


@given(
    message=st.one_of(st.binary(max_size=100), st.text(max_size=40)),
    cuts=st.lists(st.integers(0, 200), max_size=15),
    pings=st.booleans(),
)
def test_messages_in_up_to_max_fragments_are_joined(message: str | bytes, cuts: list[int], pings: bool) -> None:
    d, sink = driver(max_fragments=16)
    data = message.encode() if isinstance(message, str) else message
    # 1 to 16 fragments, empty ones included; UTF-8 characters may be cut across them.
    bounds = [0, *sorted(min(cut, len(data)) for cut in cuts), len(data)]
    fragments = [data[start:end] for start, end in pairwise(bounds)]
    ping = encode_frame(OP_PING, b"p") if pings else b""
    d.receive(fragmented(OP_TEXT if isinstance(message, str) else OP_BINARY, fragments, ping))
    assert sink.messages == [message]
    assert sink.failed is None
    assert sink.sent_frames() == [(True, OP_PONG, b"p")] * (len(fragments) - 1 if pings else 0)


@given(extra=st.integers(1, 50), empty=st.booleans())
def test_one_fragment_over_the_limit_stops_the_parser(extra: int, empty: bool) -> None:
    d, sink = driver(max_fragments=8)
    fragments = [b"" if empty else b"x"] * (8 + extra)
    # Whatever follows in the same read is not parsed: the ping after the message gets no pong.
    d.receive(fragmented(OP_BINARY, fragments) + encode_frame(OP_PING, b"p"))
    assert sink.failed == (1009, "message in more than 8 fragments")
    assert sink.sent_frames() == [(True, OP_CLOSE, close_payload(1009, "message in more than 8 fragments"))]
    assert sink.messages == [] and d.done


def test_frames_sent() -> None:
    d, _ = driver()
    for size in (0, 125, 126, 65535, 65536):
        assert list(frames(d.message(b"b" * size))) == [(True, OP_BINARY, b"b" * size)]
    assert list(frames(d.message("✓"))) == [(True, OP_TEXT, "✓".encode())]
    assert frame(OP_TEXT, b"hi") == b"\x81\x02hi"


def test_compressed_messages_both_ways() -> None:
    extension, header = negotiate_deflate(["x-unknown", "permessage-deflate; client_max_window_bits"])
    assert header == "permessage-deflate"
    d, sink = driver(extensions=[extension])
    d.receive(encode_frame(OP_TEXT, deflate(b"hello " * 100), rsv1=True))
    d.receive(encode_frame(OP_TEXT, b"uncompressed"))
    assert sink.messages == ["hello " * 100, "uncompressed"]
    sent = list(frames(d.message("z" * 1000)))
    assert len(sent) == 1 and len(sent[0][2]) < 100
    assert zlib.decompressobj(-15).decompress(sent[0][2] + b"\x00\x00\xff\xff") == b"z" * 1000


def test_deflate_output_is_bounded_per_message() -> None:
    extension, _ = negotiate_deflate(["permessage-deflate"])
    d, sink = driver(max_size=10_000, extensions=[extension])
    d.receive(encode_frame(OP_BINARY, deflate(b"\x00" * 10_000), rsv1=True))  # at the limit
    assert sink.messages == [b"\x00" * 10_000]
    d.receive(encode_frame(OP_BINARY, deflate(b"\x00" * 10_001), rsv1=True))
    assert sink.failed == (1009, "message too big")


def test_deflate_not_negotiated_without_an_offer() -> None:
    assert negotiate_deflate([]) == (None, "")
    assert negotiate_deflate(["permessage-deflate; server_max_window_bits=3"]) == (None, "")
    assert negotiate_deflate(["permessage-deflate; bogus"]) == (None, "")
    extension, _ = negotiate_deflate(["permessage-deflate"])
    assert isinstance(extension, PerMessageDeflate)


def test_handshake_checks() -> None:
    def check(**headers: str) -> int:
        base = {"sec-websocket-version": "13", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ=="}
        base.update(headers)
        return check_handshake(Request("GET", "/", headers={k: v for k, v in base.items() if v})).status

    assert check() == 0
    assert check(**{"sec-websocket-version": "12"}) == 426
    assert check(**{"sec-websocket-key": ""}) == 400
    assert check(**{"sec-websocket-key": "bm90IDE2IGJ5dGVz"}) == 400
    assert accept_token(b"dGhlIHNhbXBsZSBub25jZQ==") == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


# -- WebSocketConnection, with a fake transport ---------------------------------------------


class FakeTransport:
    def __init__(self) -> None:
        self.written = b""
        self.reading = False  # the HTTP side paused it after the handshake request
        self.protocol: Any = None
        self.eof = False
        self.closed = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.written += data

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof = True

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = self.closed = True

    def take(self) -> list[tuple[bool, int, bytes]]:
        head, sep, rest = self.written.partition(b"\r\n\r\n")
        if head.startswith(b"HTTP/1.1 101"):
            self.written = rest
        found = list(frames(self.written))
        self.written = b""
        return found


class FakeOwner:
    def __init__(self, leftover: bytes = b"") -> None:
        self.leftover = leftover
        self.upgraded_calls = 0
        self.denial: Response | None = None

    def upgraded(self) -> bytes:
        self.upgraded_calls += 1
        return self.leftover

    def denied(self, response: Response) -> None:
        self.denial = response


HANDSHAKE = {"sec-websocket-version": "13", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ=="}


async def make(
    leftover: bytes = b"", **settings: Any
) -> tuple[WebSocketConnection, FakeTransport, FakeOwner, ServerState]:
    loop = asyncio.get_running_loop()
    state = ServerState(object(), ServerConfig(**settings), loop)  # type: ignore[arg-type]
    transport, owner = FakeTransport(), FakeOwner(leftover)
    request = Request("GET", "/ws", headers=HANDSHAKE)

    async def run(session: Any) -> None:
        pass

    connection = WebSocketConnection(state, transport, owner, check_handshake(request), WebSocketUpgrade(run))  # type: ignore[arg-type]
    return connection, transport, owner, state


async def test_accept_writes_101_and_takes_over() -> None:
    ws, transport, owner, state = await make(leftover=encode_frame(OP_TEXT, b"early"))
    assert await ws.accept("chat", [("x-extra", "1")])
    head = transport.written.split(b"\r\n\r\n")[0].decode()
    assert head.startswith("HTTP/1.1 101 Switching Protocols")
    assert "sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head
    assert "sec-websocket-protocol: chat" in head and "x-extra: 1" in head
    assert transport.protocol is ws and owner.upgraded_calls == 1 and ws in state.connections
    assert transport.reading
    assert await ws.receive() == "early"


async def test_deny_before_accept() -> None:
    ws, transport, owner, _ = await make()
    refusal = Response("no", 403)
    await ws.deny(refusal)
    assert owner.denial is refusal and transport.written == b""
    assert await ws.receive() == 1006
    with pytest.raises(RuntimeError):
        await ws.accept(None, [])


async def test_reading_pauses_when_messages_pile_up() -> None:
    ws, transport, _, _ = await make(ws_max_queue=4)
    await ws.accept(None, [])
    for i in range(4):
        ws.data_received(encode_frame(OP_TEXT, b"m%d" % i))
    assert not transport.reading
    assert await ws.receive() == "m0"
    assert not transport.reading  # 3 left: above half
    assert await ws.receive() == "m1"
    assert transport.reading


async def test_send_waits_while_the_transport_is_full() -> None:
    ws, transport, _, _ = await make()
    await ws.accept(None, [])
    transport.take()
    ws.pause_writing()
    assert not transport.reading  # no pongs are buffered for a peer that does not read
    sending = asyncio.ensure_future(ws.send("x"))
    await asyncio.sleep(0.01)
    assert not sending.done()
    assert transport.take() == [(True, OP_TEXT, b"x")]  # written, then waiting
    ws.resume_writing()
    assert await sending is True
    assert transport.reading


async def test_pings_and_the_pong_deadline() -> None:
    ws, transport, _, state = await make(ws_ping_interval=20.0, ws_ping_timeout=5.0)
    await ws.accept(None, [])
    transport.take()
    now = state.now
    ws.check_timeout(now + 19.9)
    assert transport.take() == []
    ws.check_timeout(now + 20.0)
    assert transport.take() == [(True, OP_PING, b"cello")]
    state.now = now + 20.0
    ws.data_received(encode_frame(OP_PONG, b"cello"))
    ws.check_timeout(now + 26.0)  # answered: no timeout, next ping 20 s after the pong
    assert transport.take() == []
    state.now = now + 30.0
    ws.data_received(encode_frame(OP_PONG, b"late, unsolicited"))
    ws.check_timeout(now + 40.1)
    assert transport.take() == [(True, OP_PING, b"cello")]
    ws.check_timeout(now + 45.2)
    assert transport.take() == [(True, OP_CLOSE, close_payload(1011, "keepalive ping timeout"))]
    assert transport.eof and await ws.receive() == 1011


async def test_close_timeout_aborts() -> None:
    ws, transport, _, state = await make(ws_close_timeout=10.0)
    await ws.accept(None, [])
    transport.take()
    await ws.close(1000, "")
    assert transport.take() == [(True, OP_CLOSE, close_payload(1000))]
    assert await ws.receive() == 1000
    assert await ws.send("late") is False
    ws.check_timeout(state.now + 9.9)
    assert not transport.closed
    ws.check_timeout(state.now + 10.0)
    assert transport.aborted


async def test_close_answered_closes_tcp() -> None:
    ws, transport, _, _ = await make()
    await ws.accept(None, [])
    await ws.close(4000, "x")
    ws.data_received(encode_frame(OP_TEXT, b"late") + encode_frame(OP_CLOSE, close_payload(4000)))
    assert transport.closed and not transport.aborted
    assert await ws.receive() == 4000  # "late" was dropped


async def test_shutdown_closes_with_1001() -> None:
    ws, transport, _, _ = await make()
    await ws.accept(None, [])
    transport.take()
    receiving = asyncio.ensure_future(ws.receive())
    await asyncio.sleep(0)
    ws.shutdown()
    assert await receiving == 1001
    assert transport.take() == [(True, OP_CLOSE, close_payload(1001, "server shutting down"))]


async def test_messages_before_the_peer_close_are_delivered() -> None:
    ws, transport, _, _ = await make()
    await ws.accept(None, [])
    ws.data_received(encode_frame(OP_TEXT, b"last words") + encode_frame(OP_CLOSE, close_payload(1000)))
    assert transport.closed
    assert await ws.receive() == "last words"
    assert await ws.receive() == 1000
    assert ws.close_code == 1000


async def test_fragment_limit_is_the_apps_setting() -> None:
    settings = ServerConfig.from_settings(Config(ws_max_fragments=2))
    assert (settings.ws_max_fragments, ServerConfig().ws_max_fragments) == (2, Config().ws_max_fragments)
    with pytest.raises(ValueError, match="ws_max_fragments"):
        ServerConfig(ws_max_fragments=0)
    ws, transport, _, _ = await make(ws_max_fragments=2)
    await ws.accept(None, [])
    transport.take()
    ws.data_received(fragmented(OP_TEXT, [b"a", b"b"]))
    assert await ws.receive() == "ab"
    ws.data_received(fragmented(OP_TEXT, [b"a", b"b", b"c"]))
    assert await ws.receive() == 1009
    assert transport.take() == [(True, OP_CLOSE, close_payload(1009, "message in more than 2 fragments"))]
    assert transport.eof  # lingering: draining input before closing


async def test_connection_lost() -> None:
    ws, transport, _, state = await make()
    await ws.accept(None, [])
    receiving = asyncio.ensure_future(ws.receive())
    await asyncio.sleep(0)
    ws.connection_lost(None)
    assert await receiving == 1006
    assert await ws.send("x") is False
    assert ws not in state.connections


async def test_one_receiver_at_a_time() -> None:
    ws, _, _, _ = await make()
    await ws.accept(None, [])
    first = asyncio.ensure_future(ws.receive())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError):
        await ws.receive()
    ws.data_received(encode_frame(OP_TEXT, b"a"))
    assert await first == "a"


def test_end_of_input_ends_the_protocol_without_a_report() -> None:
    d, sink = driver()
    d.receive(encode_frame(OP_TEXT, b"unfin", fin=False))
    d.end()
    assert d.done and not d.open
    d.receive(encode_frame(OP_CONT, b"ished"))  # ignored
    assert (sink.messages, sink.closed, sink.failed, sink.written) == ([], None, None, b"")


async def test_peer_half_close_ends_the_connection() -> None:
    ws, transport, _, _ = await make()
    await ws.accept(None, [])
    transport.take()
    ws.eof_received()
    assert await ws.receive() == 1006
    assert await ws.send("x") is False
    await ws.close(1000, "")  # nothing to close any more
    assert transport.take() == []


async def started(run: Any) -> tuple[WebSocketConnection, FakeTransport, FakeOwner]:
    """A connection whose handler task runs ``run`` (the application's runner)."""
    loop = asyncio.get_running_loop()
    state = ServerState(object(), ServerConfig(), loop)  # type: ignore[arg-type]
    transport, owner = FakeTransport(), FakeOwner()
    request = Request("GET", "/ws", headers=HANDSHAKE)
    connection = WebSocketConnection(state, transport, owner, check_handshake(request), WebSocketUpgrade(run))  # type: ignore[arg-type]
    connection.start()
    for _ in range(5):
        await asyncio.sleep(0)
    return connection, transport, owner


async def test_close_before_accept_is_the_runners_to_decide() -> None:
    async def run(session: Any) -> None:
        with pytest.raises(RuntimeError):
            await session.close(1000, "")
        await session.deny(Response("no", 403))

    _, _, owner = await started(run)
    assert owner.denial is not None and owner.denial.status == 403


@pytest.mark.parametrize("raises", [False, True])
async def test_a_runner_that_leaves_the_handshake_unanswered_gets_500(raises: bool) -> None:
    async def run(session: Any) -> None:
        if raises:
            raise ValueError("broken runner")

    ws, _, owner = await started(run)
    assert owner.denial is not None and owner.denial.status == 500
    assert ws.close_code == 1006


@pytest.mark.parametrize("raises", [False, True])
async def test_a_runner_that_leaves_the_connection_open_gets_1011(raises: bool) -> None:
    async def run(session: Any) -> None:
        assert await session.accept(None, [])
        if raises:
            raise ValueError("broken runner")

    ws, transport, _ = await started(run)
    assert transport.take() == [(True, OP_CLOSE, close_payload(1011))]
    assert ws.close_code == 1011
