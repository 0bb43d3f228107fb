"""ws.join / ws.leave and SseStream.from_channel: channels delivered to WebSocket and SSE
clients, over every server variant, and nothing left subscribed once the clients are gone.

The server side is tests/apps/channels_app.py; GET /channels there lists the channels that
still have subscribers (the memory:// broker's own table)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from typing import Any, cast

import httpx
import pytest
import websockets
from support.servers import RunningServer
from support.sse import Event, parse

from cello import App, ChannelError, SseStream, WebSocket
from cello.testing import TestClient

TIMEOUT = 5.0


def _room() -> str:
    return uuid.uuid4().hex[:8]


async def _recv(ws: Any) -> str | bytes:
    return cast("str | bytes", await asyncio.wait_for(ws.recv(), TIMEOUT))


async def _recv_json(ws: Any) -> Any:
    message = await _recv(ws)
    assert isinstance(message, str), message
    return json.loads(message)


async def _subscribed(http: httpx.AsyncClient) -> list[str]:
    response = await http.get("/channels")
    assert response.status_code == 200
    return cast("list[str]", response.json()["channels"])


async def _until_unsubscribed(http: httpx.AsyncClient, channel: str) -> None:
    """The server unsubscribes as the handler ends, a moment after the client has closed."""
    deadline = time.monotonic() + TIMEOUT
    while channel in await _subscribed(http):
        assert time.monotonic() < deadline, f"{channel} still has subscribers"
        await asyncio.sleep(0.02)


def _urls(server: RunningServer) -> tuple[str, str]:
    return server.url, server.url.replace("http://", "ws://")


# -- WebSocket: join, leave -------------------------------------------------------------------


def test_joined_websockets_get_what_another_handler_publishes_as_it_was_sent(
    serve_app: Callable[..., RunningServer], variant: tuple[str, str], broker_url: str
) -> None:
    base, ws_base = _urls(serve_app("tests/apps/channels_app.py", *variant, env={"CELLO_CHANNELS": broker_url}))
    room, other = _room(), _room()
    channel = f"live:{room}"

    async def scenario() -> None:
        async with httpx.AsyncClient(base_url=base) as http:
            async with (
                websockets.connect(f"{ws_base}/live/{room}") as ada,
                websockets.connect(f"{ws_base}/live/{room}") as bob,
                websockets.connect(f"{ws_base}/live/{other}") as elsewhere,
            ):
                for client in (ada, bob, elsewhere):
                    assert "joined" in await _recv_json(client)
                assert {channel, f"live:{other}"} <= set(await _subscribed(http))
                await ada.send(json.dumps({"publish": "hello"}))
                await ada.send(b"\x00\xff binary")
                values: list[Any] = [{"n": 1, "list": [1, "a"]}, [1, 2], 3.5, None, True]
                for value in values:
                    await ada.send(json.dumps({"publish": value}))
                for client in (ada, bob):
                    # Joined twice by the handler, yet every message arrives once, in order.
                    assert await _recv(client) == "hello"  # a str: a text frame
                    assert await _recv(client) == b"\x00\xff binary"  # bytes: a binary frame
                    assert [await _recv_json(client) for _ in values] == values  # JSON text
                # Another publisher, once ada's are through (two publishers' messages interleave).
                for n in range(50):
                    await bob.send(json.dumps({"publish": n}))
                for client in (ada, bob):
                    assert [await _recv_json(client) for _ in range(50)] == list(range(50))
                # The other room heard nothing: the next thing it gets is its own.
                await elsewhere.send(json.dumps({"publish": "mine"}))
                assert await _recv(elsewhere) == "mine"
            await _until_unsubscribed(http, channel)
            await _until_unsubscribed(http, f"live:{other}")

    asyncio.run(scenario())


def test_leave_stops_delivery_and_join_resumes_it(
    serve_app: Callable[..., RunningServer], variant: tuple[str, str], broker_url: str
) -> None:
    base, ws_base = _urls(serve_app("tests/apps/channels_app.py", *variant, env={"CELLO_CHANNELS": broker_url}))
    room = _room()
    channel = f"live:{room}"

    async def scenario() -> None:
        async with httpx.AsyncClient(base_url=base) as http:
            async with (
                websockets.connect(f"{ws_base}/live/{room}") as ada,
                websockets.connect(f"{ws_base}/live/{room}") as bob,
            ):
                for client in (ada, bob):
                    assert await _recv_json(client) == {"joined": channel}
                await ada.send(json.dumps({"leave": True}))
                assert await _recv_json(ada) == {"left": channel}
                await bob.send(json.dumps({"publish": "while ada is away"}))
                assert await _recv(bob) == "while ada is away"
                await ada.send(json.dumps({"join": True}))
                assert await _recv_json(ada) == {"joined": channel}
                await bob.send(json.dumps({"publish": "ada is back"}))
                # What was published while she was away never comes.
                assert await _recv(ada) == "ada is back"
                assert await _recv(bob) == "ada is back"
                # Both left: one by closing; the other one's leave leaves no subscriber.
                await bob.close()
                await ada.send(json.dumps({"leave": True}))
                assert await _recv_json(ada) == {"left": channel}
                await _until_unsubscribed(http, channel)

    asyncio.run(scenario())


def test_a_sync_handler_joins_and_leaves(
    serve_app: Callable[..., RunningServer], variant: tuple[str, str], broker_url: str
) -> None:
    base, ws_base = _urls(serve_app("tests/apps/channels_app.py", *variant, env={"CELLO_CHANNELS": broker_url}))
    room = _room()
    channel = f"live:{room}"

    async def scenario() -> None:
        async with httpx.AsyncClient(base_url=base) as http:
            async with (
                websockets.connect(f"{ws_base}/live-sync/{room}") as sync,
                websockets.connect(f"{ws_base}/live/{room}") as publisher,
            ):
                assert await _recv_json(sync) == {"joined": channel}
                assert await _recv_json(publisher) == {"joined": channel}
                await publisher.send(json.dumps({"publish": "text"}))
                await publisher.send(b"\x01bytes")
                await publisher.send(json.dumps({"publish": {"json": [1]}}))
                assert [await _recv(sync) for _ in range(2)] == ["text", b"\x01bytes"]
                assert await _recv_json(sync) == {"json": [1]}
                await sync.send("leave")
                assert await _recv_json(sync) == {"left": channel}
                await publisher.send(json.dumps({"publish": "after"}))
                assert await _recv(publisher) == "text"  # the publisher's own copies, in order
                assert await _recv(publisher) == b"\x01bytes"
                assert await _recv_json(publisher) == {"json": [1]}
                assert await _recv(publisher) == "after"
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(sync.recv(), 0.2)
            await _until_unsubscribed(http, channel)

    asyncio.run(scenario())


def test_forwarding_to_a_client_that_has_gone_ends_quietly(
    serve_app: Callable[..., RunningServer], variant: tuple[str, str], broker_url: str
) -> None:
    server = serve_app("tests/apps/channels_app.py", *variant, env={"CELLO_CHANNELS": broker_url})
    base, ws_base = _urls(server)
    room = _room()
    channel = f"live:{room}"
    logged_before = len(server.output())

    async def scenario() -> None:
        async with httpx.AsyncClient(base_url=base) as http:
            async with websockets.connect(f"{ws_base}/live-idle/{room}") as gone:
                assert await _recv_json(gone) == {"joined": channel}
            # The handler still runs and never reads; the next message cannot be sent, and
            # that ends the forwarding and the subscription, before the handler ends.
            await http.post(f"/live/{room}", content="to nobody", headers={"content-type": "text/plain"})
            await _until_unsubscribed(http, channel)
            assert (await http.post(f"/live-idle/{room}/release")).json() == {"released": True}

    asyncio.run(scenario())
    log = server.output()[logged_before:]  # the server is shared: this test's lines only
    assert "forwarding channel" not in log and "Traceback" not in log, log


# -- SSE: SseStream.from_channel --------------------------------------------------------------


class _EventReader:
    """Reads an SSE response as a browser would, event by event."""

    def __init__(self, response: httpx.Response) -> None:
        self._chunks = response.aiter_text()
        self._text = ""
        self._seen = 0

    async def until(self, predicate: Callable[[str], bool]) -> None:
        while not predicate(self._text):
            self._text += await asyncio.wait_for(anext(self._chunks), TIMEOUT)

    async def events(self, count: int) -> list[Event]:
        await self.until(lambda text: len(parse(text)[0]) >= self._seen + count)
        events = parse(self._text)[0][self._seen : self._seen + count]
        self._seen += count
        return events


def test_sse_from_channel_streams_the_messages_and_unsubscribes_on_disconnect(
    serve_app: Callable[..., RunningServer], variant: tuple[str, str], broker_url: str
) -> None:
    base, _ = _urls(serve_app("tests/apps/channels_app.py", *variant, env={"CELLO_CHANNELS": broker_url}))
    room, also = _room(), _room()

    async def scenario() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=TIMEOUT) as http:
            async with http.stream("GET", f"/sse/{room}", params={"also": also}) as response:
                assert response.status_code == 200
                assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
                reader = _EventReader(response)
                # Subscribed before this comment was written: nothing published from now is lost.
                await reader.until(lambda text: text.startswith(": subscribed\n\n"))
                assert {f"live:{room}", f"live:{also}"} <= set(await _subscribed(http))
                await http.post(f"/live/{room}", content="two\nlines", headers={"content-type": "text/plain"})
                await http.post(f"/live/{room}", json={"n": 1})
                await http.post(f"/live/{also}", json="a JSON string")
                await http.post(f"/live/{room}", content=b"caf\xc3\xa9 \xff")
                events = await reader.events(4)
                assert [(e.type, e.data) for e in events] == [
                    ("message", "two\nlines"),
                    ("message", '{"n":1}'),
                    ("message", "a JSON string"),  # a str, whether it came as JSON or text
                    ("message", "café \ufffd"),  # bytes as UTF-8, the undecodable replaced
                ]
            await _until_unsubscribed(http, f"live:{room}")
            await _until_unsubscribed(http, f"live:{also}")

    asyncio.run(scenario())


# -- in-process: what a handler sees --------------------------------------------------------


def test_join_errors_and_no_ops_in_a_handler() -> None:
    app = App()
    seen: list[Any] = []

    @app.websocket("/ws")
    async def handler(ws: WebSocket) -> None:
        await ws.leave("never joined")  # nothing to do
        try:
            await ws.join("")
        except ChannelError as exc:
            seen.append(str(exc))
        await ws.join("a")
        await ws.join("a")
        seen.append(app.channels._broker.channel_count())
        await ws.send("ready")
        async for _ in ws:
            pass

    with TestClient(app) as client, client.websocket_connect("/ws") as ws:
        # join accepted the handshake: the handler's first join came before any send.
        assert ws.receive_text() == "ready"
        ws.close()
        assert app.channels._broker.channel_count() == 0  # left as the handler ended
    assert seen == ["a channel is a non-empty str, not ''", 1]


def test_a_websocket_made_outside_an_apps_route_cannot_join() -> None:
    ws = WebSocket(cast(Any, None), cast(Any, None))
    with pytest.raises(RuntimeError, match="no channels to join"):
        asyncio.run(ws.join("room"))


def test_from_channel_wants_channel_names() -> None:
    with pytest.raises(ValueError, match="one or more non-empty channel names"):
        SseStream.from_channel(App().channels)
    with pytest.raises(ValueError, match="one or more non-empty channel names"):
        SseStream.from_channel(App().channels, "ok", "")


@pytest.mark.native_only(reason="how far a client may fall behind depends on the server's own buffers")
def test_a_websocket_that_reads_slowly_loses_the_oldest_messages_never_the_newest(
    serve_app: Callable[..., RunningServer], variant: tuple[str, str]
) -> None:
    server = serve_app("tests/apps/channels_flood.py", *variant)
    base, ws_base = _urls(server)
    logged_before = len(server.output())

    async def scenario() -> list[int]:
        async with (
            httpx.AsyncClient(base_url=base, timeout=30) as http,
            websockets.connect(f"{ws_base}/ws", max_size=None, max_queue=1) as slow,
        ):
            assert await _recv(slow) == "joined"
            # 19 MiB at once: more than the buffers between server and client hold, so the
            # connection's backlog fills. The publisher never waits for the client meanwhile.
            started = time.monotonic()
            response = await http.post("/flood/300")
            assert response.json() == {"published": 300}
            assert time.monotonic() - started < 10
            got: list[int] = []
            while not got or got[-1] != 299:
                got.append(int(cast(str, await _recv(slow)).split(" ", 1)[0]))
            return got

    got = asyncio.run(scenario())
    assert got == sorted(got) and len(set(got)) == len(got)  # in order, each once
    assert 5 <= len(got) < 300 and got[-5:] == [295, 296, 297, 298, 299]  # the newest all came
    assert "is 5 messages behind: dropping the oldest" in server.output()[logged_before:]
