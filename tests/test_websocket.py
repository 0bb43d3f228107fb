"""WebSocket over the network: `cello serve tests/apps/ws.py`, both parsers x both routers.

Clients: the `websockets` library (a real client) and support.websocket.RawWebSocket (raw frames, for
what a real client would never send).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import websockets
from support.servers import RunningServer
from support.websocket import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    Closed,
    RawWebSocket,
    close_payload,
    encode_frame,
    frame_head,
)
from websockets.exceptions import ConnectionClosed, InvalidStatus

# What the ASGI server and not Cello owns: these run on `cello serve`'s variants only.
FRAMING = pytest.mark.native_only(
    reason="raw framing and protocol errors: the ASGI server's WebSocket parser and limits answer them"
)
CLOSING = pytest.mark.native_only(
    reason="the closing handshake's timing and ping/pong: the ASGI server's protocol machinery"
)
HANDSHAKE = pytest.mark.native_only(reason="handshake validation: the ASGI server's, before the app sees a scope")
CAPACITY = pytest.mark.native_only(reason="flow control and capacity: the server's buffers, not the app's")


APP = "tests/apps/ws.py"


@pytest.fixture
def server(serve_app: Callable[..., RunningServer], variant: tuple[str, str]) -> RunningServer:
    return serve_app(APP, *variant)


def ws_url(server: RunningServer, path: str) -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


def stats(server: RunningServer) -> dict[str, Any]:
    return httpx.get(server.url + "/stats", timeout=5).json()  # type: ignore[no-any-return]


def wait_for(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


@pytest.fixture
def raw(server: RunningServer) -> Iterator[Callable[..., RawWebSocket]]:
    opened: list[RawWebSocket] = []

    def connect(path: str, headers: dict[str, str] | None = None, **kw: Any) -> RawWebSocket:
        ws = RawWebSocket.connect(server.port, path, headers, **kw)
        opened.append(ws)
        return ws

    yield connect
    for ws in opened:
        ws.sock.close()


# -- messages ------------------------------------------------------------------------------


async def test_echo_text_and_binary(server: RunningServer) -> None:
    async with websockets.connect(ws_url(server, "/echo")) as ws:
        await ws.send("héllo wörld ✓")
        assert await ws.recv() == "héllo wörld ✓"
        await ws.send(b"\x00\xffbinary")
        assert await ws.recv() == b"\x00\xffbinary"
        for size in (0, 125, 126, 65535, 65536, 500_000):
            payload = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
            await ws.send(payload)
            assert await ws.recv() == payload
        await ws.send("t" * 70_000)
        assert await ws.recv() == "t" * 70_000


async def test_fragmented_messages_are_reassembled(server: RunningServer) -> None:
    async with websockets.connect(ws_url(server, "/echo")) as ws:
        await ws.send(["frag", "men", "ted ✓"])  # websockets sends a list as fragments
        assert await ws.recv() == "fragmented ✓"
        await ws.send([b"\x01", b"\x02" * 70_000, b"\x03"])
        assert await ws.recv() == b"\x01" + b"\x02" * 70_000 + b"\x03"


@FRAMING
def test_raw_fragments_with_a_ping_between(raw: Callable[..., RawWebSocket]) -> None:
    ws = raw("/echo")
    assert ws.status == 101
    ws.send_frame(OP_TEXT, b"Hel", fin=False)
    ws.send_frame(OP_PING, b"mid")  # control frames may come between fragments
    # A multi-byte character split across two frames.
    ws.send_frame(OP_CONT, "lo ✓".encode()[:4], fin=False)
    ws.send_frame(OP_CONT, "lo ✓".encode()[4:] + b" world", fin=True)
    assert ws.recv_frame() == (True, OP_PONG, b"mid")
    assert ws.recv_message() == (OP_TEXT, "Hello ✓ world".encode())


@FRAMING
def test_frames_sent_with_the_handshake(server: RunningServer) -> None:
    # A client that does not wait for the 101: its frames arrive with the request head.
    extra = encode_frame(OP_TEXT, b"early") + encode_frame(OP_BINARY, b"bird")
    with RawWebSocket.connect(server.port, "/echo", extra=extra) as ws:
        assert ws.status == 101
        assert ws.recv_message() == (OP_TEXT, b"early")
        assert ws.recv_message() == (OP_BINARY, b"bird")


@FRAMING
def test_many_frames_in_one_write(raw: Callable[..., RawWebSocket]) -> None:
    ws = raw("/echo")
    ws.send_raw(b"".join(encode_frame(OP_TEXT, f"m{i}".encode()) for i in range(200)))
    assert [ws.recv_message()[1] for _ in range(200)] == [f"m{i}".encode() for i in range(200)]


async def test_json(server: RunningServer) -> None:
    async with websockets.connect(ws_url(server, "/echo-json")) as ws:
        await ws.send(json.dumps({"a": [1, 2]}))
        assert json.loads(await ws.recv()) == {"got": {"a": [1, 2]}}
        await ws.send(b'{"b": true}')  # binary JSON is accepted too
        assert json.loads(await ws.recv()) == {"got": {"b": True}}


async def test_seed_chat_example(server: RunningServer) -> None:
    async with websockets.connect(ws_url(server, "/ws/chat")) as ws:
        await ws.send("hello")
        assert await ws.recv() == "Echo: hello"
        await ws.send("again")
        assert await ws.recv() == "Echo: again"
    # The example loops forever: the client's close ends it (WebSocketDisconnect).


async def test_api_async_iteration_example(server: RunningServer) -> None:
    async with websockets.connect(ws_url(server, "/ws/lobby")) as ws:
        await ws.send("hi")
        assert await ws.recv() == "Echo: hi"
        await ws.send(b"raw")
        assert await ws.recv() == "Echo: b'raw'"


async def test_sync_handler_echo(server: RunningServer) -> None:
    async with websockets.connect(ws_url(server, "/ws/sync-echo")) as ws:
        for i in range(20):
            await ws.send(f"text {i}")
            assert await ws.recv() == f"text {i}"
        await ws.send(b"\x00bin")
        assert await ws.recv() == b"\x00bin"


async def test_params_query_headers(server: RunningServer) -> None:
    url = ws_url(server, "/info/caf%C3%A9/42?x=1&y=2")
    async with websockets.connect(url, user_agent_header="cello-test") as ws:
        info = json.loads(await ws.recv())
        assert info == {
            "params": {"name": "café", "id": 42},
            "query": {"x": "1", "y": "2"},
            "agent": "cello-test",
            "path": "/info/café/42",
        }
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000


# -- closing -------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "reason"), [(1000, ""), (1001, "bye"), (4001, "custom ✓")])
async def test_client_close_code_reaches_the_handler(server: RunningServer, code: int, reason: str) -> None:
    before = len(stats(server)["closed"])
    async with websockets.connect(ws_url(server, "/record-close")) as ws:
        await ws.close(code, reason)
        assert ws.close_code == code  # the server echoed the code
    assert wait_for(lambda: len(stats(server)["closed"]) > before)
    assert [code, reason] in stats(server)["closed"]


def test_client_close_without_code(raw: Callable[..., RawWebSocket], server: RunningServer) -> None:
    ws = raw("/record-close")
    ws.send_frame(OP_CLOSE, b"")
    # The answer carries no code either, and the server closes TCP first.
    assert ws.recv_frame() == (True, OP_CLOSE, b"")
    assert ws.at_eof()
    assert wait_for(lambda: [1005, ""] in stats(server)["closed"])


@FRAMING
def test_close_between_fragments_is_a_normal_close(raw: Callable[..., RawWebSocket], server: RunningServer) -> None:
    # RFC 6455 5.4: control frames, close included, may come between a message's fragments.
    ws = raw("/record-close")
    ws.send_frame(OP_TEXT, b"never ", fin=False)
    ws.send_frame(OP_CONT, b"finished", fin=False)
    ws.send_close(4321, "mid-message")
    assert ws.recv_close() == (4321, "mid-message")  # echoed, not 1002
    assert ws.at_eof()
    assert wait_for(lambda: [4321, "mid-message"] in stats(server)["closed"])


@FRAMING
def test_close_between_fragments_ends_a_sync_handler(raw: Callable[..., RawWebSocket], server: RunningServer) -> None:
    before = len(stats(server)["sync_received"])
    ws = raw("/sync-record")
    ws.send_frame(OP_TEXT, b"whole")
    ws.send_frame(OP_BINARY, b"unfin", fin=False)
    ws.send_close(1000, "bye")
    assert ws.recv_close() == (1000, "bye")
    assert ws.at_eof()
    # The handler's loop ended normally; the unfinished message was dropped.
    assert wait_for(lambda: len(stats(server)["sync_received"]) > before)
    assert ["whole"] in stats(server)["sync_received"]


@pytest.mark.parametrize(("code", "reason"), [(1000, ""), (1008, "policy"), (4000, "app-defined")])
async def test_server_close_code_reaches_the_client(server: RunningServer, code: int, reason: str) -> None:
    async with websockets.connect(ws_url(server, f"/close/{code}?reason={reason}")) as ws:
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert (ws.close_code, ws.close_reason) == (code, reason)


@CLOSING
def test_server_waits_for_the_close_answer(raw: Callable[..., RawWebSocket]) -> None:
    ws = raw("/close/4000?reason=r")
    assert ws.recv_close() == (4000, "r")
    assert not ws.at_eof(timeout=0.3)  # the server waits for our close frame...
    ws.send_close(4000)
    assert ws.at_eof()  # ...then closes TCP


def test_handler_error_after_accept_is_1011(raw: Callable[..., RawWebSocket]) -> None:
    ws = raw("/error-after-accept")
    assert ws.recv_message() == (OP_TEXT, b"about to fail")
    assert ws.recv_close()[0] == 1011


@FRAMING
def test_unmasked_client_frame_is_1002(raw: Callable[..., RawWebSocket]) -> None:
    ws = raw("/echo")
    ws.send_frame(OP_TEXT, b"not masked", mask=False)
    assert ws.recv_close()[0] == 1002
    assert ws.at_eof()


@pytest.mark.parametrize(
    "frame",
    [
        encode_frame(0x3, b"reserved opcode"),
        encode_frame(OP_TEXT, b"rsv1 without an extension", rsv1=True),
        encode_frame(OP_CONT, b"continuation of nothing"),
        encode_frame(OP_PING, b"fragmented ping", fin=False),
        encode_frame(OP_CLOSE, b"\x03"),  # a one-byte close payload
        encode_frame(OP_CLOSE, close_payload(1005)),  # a code that must never be sent
    ],
    ids=["opcode", "rsv1", "cont", "ping-fragment", "close-1-byte", "close-1005"],
)
@FRAMING
def test_protocol_errors_are_1002(raw: Callable[..., RawWebSocket], frame: bytes) -> None:
    ws = raw("/echo")
    ws.send_raw(frame)
    assert ws.recv_close()[0] == 1002
    assert ws.at_eof()


@FRAMING
def test_invalid_utf8_is_1007(raw: Callable[..., RawWebSocket]) -> None:
    ws = raw("/echo")
    ws.send_frame(OP_TEXT, b"ok \xff\xfe not utf-8")
    assert ws.recv_close()[0] == 1007
    assert ws.at_eof()


@FRAMING
def test_invalid_utf8_across_fragments_is_1007(raw: Callable[..., RawWebSocket]) -> None:
    ws = raw("/echo")
    ws.send_frame(OP_TEXT, "✓".encode()[:2], fin=False)
    ws.send_frame(OP_CONT, b"\x00", fin=True)  # not the continuation byte the first frame needs
    assert ws.recv_close()[0] == 1007


@FRAMING
def test_oversized_message_is_1009(raw: Callable[..., RawWebSocket]) -> None:
    ws = raw("/echo")
    ws.send_frame(OP_BINARY, b"x" * (1024 * 1024))  # exactly the limit: fine
    assert ws.recv_message() == (OP_BINARY, b"x" * (1024 * 1024))
    ws.send_frame(OP_BINARY, b"x" * (1024 * 1024 + 1))
    assert ws.recv_close()[0] == 1009
    assert ws.at_eof()


@FRAMING
def test_oversized_fragmented_message_is_1009(raw: Callable[..., RawWebSocket]) -> None:
    ws = raw("/echo")
    ws.send_frame(OP_TEXT, b"a" * 60_000, fin=False)
    closed = False
    for _ in range(30):  # 1.8 MB in total: refused as soon as the sum passes 1 MiB
        try:
            ws.send_frame(OP_CONT, b"a" * 60_000, fin=False)
        except (BrokenPipeError, ConnectionResetError):
            closed = True
            break
    if not closed:
        assert ws.recv_close()[0] == 1009


@pytest.mark.parametrize("path", ["/echo", "/ws/sync-echo"])
@FRAMING
def test_fragments_per_message_are_limited(raw: Callable[..., RawWebSocket], path: str) -> None:
    ws = raw(path)
    # ws_max_fragments (1024 by default) frames, empty ones included: one message.
    fragments = [b"a", b""] * 511
    ws.send_raw(
        encode_frame(OP_TEXT, b"", fin=False)
        + b"".join(encode_frame(OP_CONT, fragment, fin=False) for fragment in fragments)
        + encode_frame(OP_CONT, b"!")
    )
    assert ws.recv_message() == (OP_TEXT, b"a" * 511 + b"!")
    # One more is refused on arrival, before the message ends.
    ws.send_raw(encode_frame(OP_BINARY, b"", fin=False) + encode_frame(OP_CONT, b"", fin=False) * 1024)
    assert ws.recv_close() == (1009, "message in more than 1024 fragments")
    assert ws.at_eof()


@FRAMING
def test_oversized_declared_frame_is_refused_while_arriving(raw: Callable[..., RawWebSocket]) -> None:
    # A frame that declares 1 GiB: the server refuses once 1 MiB has arrived, not at the end.
    ws = raw("/echo")
    head = frame_head(OP_BINARY, 1 << 30) + b"mask"
    ws.send_raw(head)
    try:
        for _ in range(40):
            ws.send_raw(b"\x00" * 65536)
    except (BrokenPipeError, ConnectionResetError):
        return
    assert ws.recv_close()[0] == 1009


# -- ping / pong ---------------------------------------------------------------------------


@CLOSING
def test_ping_is_answered_with_pong(raw: Callable[..., RawWebSocket]) -> None:
    ws = raw("/echo")
    ws.send_frame(OP_PING, b"are you there")
    assert ws.recv_frame() == (True, OP_PONG, b"are you there")
    ws.send_frame(OP_PONG, b"unsolicited")  # ignored
    ws.send_frame(OP_TEXT, b"still open")
    assert ws.recv_message() == (OP_TEXT, b"still open")


@CLOSING
async def test_websockets_client_ping(server: RunningServer) -> None:
    async with websockets.connect(ws_url(server, "/echo")) as ws:
        latency = await asyncio.wait_for(await ws.ping(), 5)
        assert latency >= 0


# -- the handshake: routing, guards, hooks, origins, subprotocols ---------------------------


def test_plain_get_on_a_websocket_route_is_426(server: RunningServer) -> None:
    response = httpx.get(server.url + "/echo")
    assert response.status_code == 426
    assert response.headers["upgrade"] == "websocket"
    assert response.json()["status"] == 426


@pytest.mark.parametrize(("path", "status"), [("/nope", 404), ("/plain", 405), ("/stats", 405)])
def test_websocket_request_to_http_routes(raw: Callable[..., RawWebSocket], path: str, status: int) -> None:
    ws = raw(path)
    assert ws.status == status
    assert json.loads(ws.body)["status"] == status
    if status == 405:
        assert "GET" in ws.headers["allow"]
    assert ws.at_eof()


def test_http_route_still_works(server: RunningServer) -> None:
    assert httpx.get(server.url + "/plain").text == "plain"
    assert httpx.get(server.url + "/api/rooms/blue/info").json() == {"room": "blue"}


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Sec-WebSocket-Version": "8"}, 426),
        ({"Sec-WebSocket-Key": "too-short"}, 400),
        ({"Sec-WebSocket-Key": None}, 400),
    ],
    ids=["version", "bad-key", "no-key"],
)
@HANDSHAKE
def test_bad_handshakes(raw: Callable[..., RawWebSocket], headers: dict[str, str], status: int) -> None:
    ws = raw("/echo", headers)
    assert ws.status == status
    if status == 426:
        assert ws.headers["sec-websocket-version"] == "13"


@HANDSHAKE
def test_accept_token(raw: Callable[..., RawWebSocket], server: RunningServer) -> None:
    # RFC 6455 section 1.3's example.
    from support.websocket import handshake_request

    request = handshake_request("/echo", key="dGhlIHNhbXBsZSBub25jZQ==")
    with RawWebSocket.connect(server.port, "/echo", request=request) as ws:
        assert ws.status == 101
        assert ws.headers["sec-websocket-accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        assert ws.headers["upgrade"].lower() == "websocket"
        assert ws.headers["connection"].lower() == "upgrade"


async def test_guard_denies_with_403(server: RunningServer) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with websockets.connect(ws_url(server, "/guarded")):
            pass
    assert refused.value.response.status_code == 403
    assert json.loads(refused.value.response.body) == {"error": "Forbidden", "status": 403}


async def test_guard_allows_and_sets_state(server: RunningServer) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with websockets.connect(ws_url(server, "/token")):
            pass
    assert refused.value.response.status_code == 403
    async with websockets.connect(ws_url(server, "/token?token=secret")) as ws:
        assert await ws.recv() == "hello ada"


async def test_blueprint_before_hook_denies(server: RunningServer) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with websockets.connect(ws_url(server, "/secure/echo")):
            pass
    assert refused.value.response.status_code == 401
    async with websockets.connect(ws_url(server, "/secure/echo"), additional_headers={"X-Api-Key": "k"}) as ws:
        await ws.send("in")
        assert await ws.recv() == "in"


async def test_nested_blueprint_with_path_param(server: RunningServer) -> None:
    async with websockets.connect(ws_url(server, "/api/rooms/blue/live")) as ws:
        assert await ws.recv() == "room blue"
        await ws.send("hi")
        assert await ws.recv() == "blue: hi"


@pytest.mark.parametrize(("path", "status"), [("/refuse", 403), ("/error-before-accept", 500), ("/http-error", 401)])
def test_handler_refusals_are_http_responses(raw: Callable[..., RawWebSocket], path: str, status: int) -> None:
    ws = raw(path)
    assert ws.status == status
    assert json.loads(ws.body)["status"] == status
    assert ws.at_eof()


@pytest.mark.parametrize("path", ["/return-before-accept", "/sync-return-before-accept"])
def test_handler_returning_without_accepting_is_refused_with_403(raw: Callable[..., RawWebSocket], path: str) -> None:
    ws = raw(path)
    assert ws.status == 403
    assert json.loads(ws.body) == {"error": "Forbidden", "status": 403}
    assert ws.at_eof()


@pytest.mark.parametrize(
    ("path", "code"),
    [("/return-after-accept", 1000), ("/http-error-after-accept/403", 1008), ("/http-error-after-accept/503", 1011)],
)
def test_handler_end_after_accept_closes_with(raw: Callable[..., RawWebSocket], path: str, code: int) -> None:
    ws = raw(path)
    assert ws.recv_message() == (OP_TEXT, b"accepted")
    assert ws.recv_close()[0] == code


async def test_origin_allowed_or_refused(server: RunningServer) -> None:
    async with websockets.connect(ws_url(server, "/echo"), origin="https://good.example") as ws:  # type: ignore[arg-type]
        await ws.send("ok")
        assert await ws.recv() == "ok"
    with pytest.raises(InvalidStatus) as refused:
        async with websockets.connect(ws_url(server, "/echo"), origin="https://evil.example"):  # type: ignore[arg-type]
            pass
    assert refused.value.response.status_code == 403


async def test_subprotocol_negotiated_from_the_route(server: RunningServer) -> None:
    async with websockets.connect(ws_url(server, "/subprotocol"), subprotocols=["chat.v1", "chat.v2"]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "chat.v2"  # the server's preference wins
        assert await ws.recv() == "accepted"
        assert await ws.recv() == "chat.v2"
    async with websockets.connect(ws_url(server, "/subprotocol"), subprotocols=["chat.v1"]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "chat.v1"
    async with websockets.connect(ws_url(server, "/subprotocol")) as ws:
        assert ws.subprotocol is None
        assert await ws.recv() == "accepted"
        assert await ws.recv() == "none"


def test_subprotocol_chosen_by_the_handler(raw: Callable[..., RawWebSocket]) -> None:
    ws = raw("/subprotocol-explicit", {"Sec-WebSocket-Protocol": "a, b"})
    assert ws.status == 101
    assert ws.headers["sec-websocket-protocol"] == "b"
    assert ws.headers["x-chosen"] == "yes"
    assert ws.recv_message() == (OP_TEXT, b"a,b")


# -- flow control and concurrency -----------------------------------------------------------


@CAPACITY
def test_slow_reader_does_not_make_the_server_buffer(raw: Callable[..., RawWebSocket], server: RunningServer) -> None:
    ws = raw("/flood")
    ws.sock.setsockopt(__import__("socket").SOL_SOCKET, __import__("socket").SO_RCVBUF, 65536)
    start = stats(server)["sent_slow"]
    time.sleep(1.0)
    sent = stats(server)["sent_slow"] - start
    # 2,000 messages of 64 KiB are waiting; only what the socket buffers hold went out.
    assert sent < 200, sent
    # Reading lets the handler continue.
    for _ in range(300):
        assert ws.recv_message()[0] == OP_BINARY
    assert stats(server)["sent_slow"] - start > sent


async def test_broadcast_between_clients(server: RunningServer) -> None:
    async with (
        websockets.connect(ws_url(server, "/broadcast")) as a,
        websockets.connect(ws_url(server, "/broadcast")) as b,
    ):
        await asyncio.sleep(0.1)  # both are members
        await a.send("from a")
        assert await b.recv() == "from a"
        assert await a.recv() == "from a"


@CAPACITY
async def test_many_concurrent_connections(server: RunningServer) -> None:
    async def one(i: int) -> None:
        async with websockets.connect(ws_url(server, "/echo"), ping_interval=None) as ws:
            for j in range(3):
                await ws.send(f"{i}:{j}")
                assert await ws.recv() == f"{i}:{j}"

    await asyncio.gather(*(one(i) for i in range(500)))


@CLOSING
def test_connection_reset_by_client_is_harmless(server: RunningServer) -> None:
    import socket

    for _ in range(20):
        ws = RawWebSocket.connect(server.port, "/echo")
        ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        ws.sock.close()  # RST
    assert httpx.get(server.url + "/plain").text == "plain"


@CLOSING
def test_closed_connection_sends_nothing_more(raw: Callable[..., RawWebSocket]) -> None:
    ws = raw("/echo")
    ws.send_close(1000)
    assert ws.recv_frame() == (True, OP_CLOSE, close_payload(1000))
    try:
        ws.send_frame(OP_TEXT, b"after close")
    except (BrokenPipeError, ConnectionResetError):
        pass
    with pytest.raises((Closed, ConnectionResetError)):
        ws.recv_frame()


async def test_one_path_with_http_and_websocket_routes(server: RunningServer) -> None:
    assert httpx.get(server.url + "/both").text == "http"
    async with websockets.connect(ws_url(server, "/both")) as ws:
        assert await ws.recv() == "websocket"
