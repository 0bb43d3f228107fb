"""The same WebSocket routes through the ASGI adapter, driven by cello.testing's client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import ws as ws_app  # tests/apps/ws.py

from cello import App, WebSocket, WebSocketMessage
from cello.testing import TestClient, WebSocketDenied
from cello.websocket import WebSocketDisconnect


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(ws_app.app) as client:
        yield client


def test_echo(client: TestClient) -> None:
    with client.websocket_connect("/echo") as ws:
        ws.send_text("hi ✓")
        assert ws.receive_text() == "hi ✓"
        ws.send_bytes(b"\x00\x01")
        assert ws.receive_bytes() == b"\x00\x01"


def test_json(client: TestClient) -> None:
    with client.websocket_connect("/echo-json") as ws:
        ws.send_json({"a": 1})
        assert ws.receive_json() == {"got": {"a": 1}}
        ws.send_json([1], mode="binary")
        assert ws.receive_json() == {"got": [1]}


def test_seed_chat_and_sync_echo(client: TestClient) -> None:
    with client.websocket_connect("/ws/chat") as ws:
        ws.send_text("hello")
        assert ws.receive_text() == "Echo: hello"
    with client.websocket_connect("/ws/sync-echo") as ws:
        ws.send_text("sync")
        assert ws.receive_text() == "sync"
        ws.send_bytes(b"b")
        assert ws.receive_bytes() == b"b"


def test_params_and_query(client: TestClient) -> None:
    with client.websocket_connect("/info/caf%C3%A9/7?x=1", headers={"User-Agent": "tc"}) as ws:
        assert ws.receive_json() == {
            "params": {"name": "café", "id": 7},
            "query": {"x": "1"},
            "agent": "tc",
            "path": "/info/café/7",
        }
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive()
        assert closed.value.code == 1000


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/guarded", {}, 403),
        ("/token", {}, 403),
        ("/secure/echo", {}, 401),
        ("/nope", {}, 404),
        ("/plain", {}, 405),
        ("/refuse", {}, 403),
        ("/error-before-accept", {}, 500),
        ("/http-error", {}, 401),
        ("/return-before-accept", {}, 403),
        ("/sync-return-before-accept", {}, 403),
        ("/echo", {"Origin": "https://evil.example"}, 403),
    ],
)
def test_refusals(client: TestClient, path: str, headers: dict[str, str], status: int) -> None:
    with pytest.raises(WebSocketDenied) as denied:
        client.websocket_connect(path, headers=headers)
    assert denied.value.status_code == status
    assert denied.value.json()["status"] == status


def test_guard_and_hook_allow(client: TestClient) -> None:
    with client.websocket_connect("/token?token=secret") as ws:
        assert ws.receive_text() == "hello ada"
    with client.websocket_connect("/secure/echo", headers={"X-Api-Key": "k"}) as ws:
        ws.send_text("in")
        assert ws.receive_text() == "in"


def test_plain_get_is_426(client: TestClient) -> None:
    response = client.get("/echo")
    assert response.status_code == 426 and response.headers["upgrade"] == "websocket"


def test_subprotocols(client: TestClient) -> None:
    with client.websocket_connect("/subprotocol", subprotocols=["chat.v1", "chat.v2"]) as ws:
        assert ws.subprotocol == "chat.v2"
        assert ws.receive_text() == "accepted"
        assert ws.receive_text() == "chat.v2"
    with client.websocket_connect("/subprotocol-explicit", subprotocols=["a", "b"]) as ws:
        assert ws.subprotocol == "b" and ws.accept_headers["x-chosen"] == "yes"


def test_close_codes(client: TestClient) -> None:
    with client.websocket_connect("/close/4000?reason=bye") as ws:
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive()
        assert (closed.value.code, closed.value.reason) == (4000, "bye")
    with client.websocket_connect("/error-after-accept") as ws:
        assert ws.receive_text() == "about to fail"
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive()
        assert closed.value.code == 1011
    before = len(ws_app.STATS["closed"])
    with client.websocket_connect("/record-close") as ws:
        ws.close(4002, "client says bye")
    assert ws_app.STATS["closed"][before:] == [[4002, "client says bye"]]


@pytest.mark.parametrize(
    ("path", "code"),
    [("/return-after-accept", 1000), ("/http-error-after-accept/403", 1008), ("/http-error-after-accept/503", 1011)],
)
def test_handler_end_after_accept_closes_with(client: TestClient, path: str, code: int) -> None:
    with client.websocket_connect(path) as ws:
        assert ws.receive_text() == "accepted"
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive()
        assert closed.value.code == code


def test_blueprint_path_params(client: TestClient) -> None:
    with client.websocket_connect("/api/rooms/red/live") as ws:
        assert ws.receive_text() == "room red"
        ws.send_text("x")
        assert ws.receive_text() == "red: x"


def test_message_object_and_sync_facade() -> None:
    app = App()

    @app.websocket("/sync")
    def sync(ws):  # type: ignore[no-untyped-def]
        ws.accept()
        for message in ws:
            if message.is_text() and message.text == "close":
                ws.send(WebSocketMessage.close(4005, "asked"))
            elif message.is_text():
                ws.send(WebSocketMessage.text(message.text.upper()))
            else:
                ws.send(WebSocketMessage.binary(message.binary[::-1]))

    @app.websocket("/async")
    async def handler(ws: WebSocket) -> None:
        message = await ws.receive_message()
        await ws.send(message)
        await ws.close(4006)
        assert await ws.receive_message() == WebSocketMessage.close(4006, "")

    with TestClient(app) as client:
        with client.websocket_connect("/sync") as ws:
            ws.send_text("abc")
            assert ws.receive_text() == "ABC"
            ws.send_bytes(b"123")
            assert ws.receive_bytes() == b"321"
            ws.send_text("close")
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive()
            assert closed.value.code == 4005
        with client.websocket_connect("/async") as ws:
            ws.send_text("m")
            assert ws.receive_text() == "m"
            with pytest.raises(WebSocketDisconnect):
                ws.receive()


def test_websocket_message() -> None:
    text = WebSocketMessage.text("hi")
    assert text.text == "hi" and text.binary is None and text.data == "hi"
    assert text.msg_type == "text" and text.is_text() and not text.is_binary() and not text.is_close()
    binary = WebSocketMessage.binary(b"\x00")
    assert binary.binary == b"\x00" and binary.text is None and binary.is_binary()
    close = WebSocketMessage.close(1001, "away")
    assert close.is_close() and close.data is None and (close.code, close.reason) == (1001, "away")
    assert WebSocketMessage("text", "x") == WebSocketMessage.text("x") != WebSocketMessage.binary(b"x")
    assert repr(text) == "WebSocketMessage.text('hi')"
    assert WebSocketMessage.text('{"a": 1}').json() == {"a": 1}
    with pytest.raises(TypeError):
        WebSocketMessage("text", b"bytes")
    with pytest.raises(ValueError):
        WebSocketMessage("ping", "x")


def test_lifecycle_debug_logging(caplog: pytest.LogCaptureFixture) -> None:
    app = App()

    @app.websocket("/log")
    async def echo(ws: WebSocket) -> None:
        async for message in ws:
            await ws.send(message)

    with caplog.at_level("DEBUG", logger="cello.websocket"), TestClient(app) as client:
        with client.websocket_connect("/log") as ws:
            ws.send_text("hello")
            assert ws.receive_text() == "hello"
            ws.send_bytes(b"\x00" * 10)
            assert ws.receive_bytes() == b"\x00" * 10
            ws.close(4000)
    lines = [r.getMessage() for r in caplog.records if r.name == "cello.websocket"]
    assert lines == [
        "connect /log from 127.0.0.1:50000",
        "message received: text, 5 chars",
        "message sent: text, 5 chars",
        "message received: binary, 10 bytes",
        "message sent: binary, 10 bytes",
        "disconnect /log from 127.0.0.1:50000: code 4000",
    ]
