"""A chat room on app.channels: every WebSocket client of a room gets what any of them sends,
and POST /rooms/{room} publishes into the room from plain HTTP. The same with ws.join (async
and sync handlers) and SseStream.from_channel under /live, /live-sync and /sse; GET /channels
lists the channels that still have subscribers."""

import asyncio
import json
from typing import Any

from cello import App, Request, SseStream, WebSocket
from cello.websocket import SyncWebSocket

app = App()


@app.websocket("/rooms/{room}")
async def room(ws: Any) -> None:
    await ws.accept()
    channel = f"room:{ws.params['room']}"
    async with app.channels.subscribe(channel) as messages:

        async def forward() -> None:
            async for message in messages:
                await ws.send_json({"channel": message.channel, "data": message.data})

        forwarding = asyncio.create_task(forward())
        try:
            # The first frame says the client is subscribed, so tests know when to publish.
            await ws.send_json({"joined": channel})
            async for text in ws:
                await app.channels.publish(channel, {"text": text})
        finally:
            forwarding.cancel()


@app.post("/rooms/{room}")
async def post(request: Request) -> dict[str, Any]:
    await app.channels.publish(f"room:{request.params['room']}", request.json())
    return {"published": True}


# -- ws.join / ws.leave and SseStream.from_channel (tests/test_channels_live.py) -------------


@app.websocket("/live/{room}")
async def live(ws: WebSocket) -> None:
    """Joins ``live:{room}``. A binary message is published as bytes; a text one is a JSON
    command: ``{"publish": value}``, ``{"leave": true}`` or ``{"join": true}``, acknowledged
    once done, so the client knows when the membership has changed."""
    channel = f"live:{ws.params['room']}"
    await ws.join(channel)
    await ws.join(channel)  # joined already: nothing changes, nothing arrives twice
    await ws.send_json({"joined": channel})
    async for message in ws:
        if isinstance(message, bytes):
            await app.channels.publish(channel, message)
            continue
        command = json.loads(message)
        if "publish" in command:
            await app.channels.publish(channel, command["publish"])
        elif "leave" in command:
            await ws.leave(channel)
            await ws.leave(channel)  # not joined any more: nothing happens
            await ws.send_json({"left": channel})
        elif "join" in command:
            await ws.join(channel)
            await ws.send_json({"joined": channel})


@app.websocket("/live-sync/{room}")
def live_sync(ws: SyncWebSocket) -> None:
    """The same room from a sync handler (no publishing: it has no event loop of its own)."""
    channel = f"live:{ws.params['room']}"
    ws.join(channel)
    ws.send_json({"joined": channel})
    for message in ws:
        if message.text == "leave":
            ws.leave(channel)
            ws.send_json({"left": channel})


# Per room, what lets a /live-idle handler end.
IDLE: dict[str, asyncio.Event] = {}


@app.websocket("/live-idle/{room}")
async def live_idle(ws: WebSocket) -> None:
    """Joins, then neither reads nor sends until POST /live-idle/{room}/release: only the
    forwarding of the channel's messages can find out that the client has gone."""
    room = ws.params["room"]
    released = IDLE.setdefault(room, asyncio.Event())
    await ws.join(f"live:{room}")
    await ws.send_json({"joined": f"live:{room}"})
    await released.wait()


@app.post("/live-idle/{room}/release")
def release_idle(request: Request) -> dict[str, Any]:
    IDLE.pop(request.params["room"], asyncio.Event()).set()
    return {"released": True}


@app.post("/live/{room}")
async def publish_live(request: Request) -> dict[str, Any]:
    """Publishes the body as it came: text/plain as a str, JSON as its value, else bytes."""
    kind = request.headers.get("content-type") or ""
    data: Any = request.body_bytes
    if kind.startswith("text/plain"):
        data = request.text()
    elif kind.startswith("application/json"):
        data = request.json()
    await app.channels.publish(f"live:{request.params['room']}", data)
    return {"published": True}


@app.get("/sse/{room}")
def sse(request: Request) -> SseStream:
    names = [f"live:{request.params['room']}", *(f"live:{room}" for room in request.query.get_all("also"))]
    return SseStream.from_channel(app.channels, *names)


@app.get("/channels")
def subscribed(request: Request) -> dict[str, Any]:
    """The channels with subscribers in this process , for the tests to check
    that nothing is left behind."""
    return {"channels": app.channels.subscribed_channels()}
