"""WebSocket routes for the WebSocket tests (served by `cello serve` in a subprocess)."""

from __future__ import annotations

import asyncio
from typing import Any

from cello import App, Blueprint, HTTPException, Request, Response, WebSocket, WebSocketDisconnect

app = App(ws_allowed_origins=["https://good.example"])

# What handlers saw, for the tests to read over HTTP (GET /stats).
STATS: dict[str, Any] = {"closed": [], "sync_received": [], "sent_slow": 0}


@app.get("/stats")
def stats(request: Request) -> dict[str, Any]:
    return STATS


@app.get("/plain")
def plain(request: Request) -> str:
    return "plain"


# -- the seed's example and API.md's styles, unchanged --------------------------------------


@app.websocket("/ws/chat")
async def chat(ws):  # type: ignore[no-untyped-def]
    while True:
        message = await ws.receive()
        await ws.send(f"Echo: {message}")


@app.websocket("/ws/{room}")
async def room_chat(ws):  # type: ignore[no-untyped-def]
    async for message in ws:  # str for text frames, bytes for binary
        await ws.send(f"Echo: {message}")  # str -> text frame, bytes -> binary frame


@app.websocket("/ws/sync-echo")
def sync_echo(ws):  # type: ignore[no-untyped-def]
    while True:
        msg = ws.recv()
        if msg is None:
            break
        if msg.is_text():
            ws.send_text(msg.text)
        else:
            ws.send_binary(msg.binary)


# -- echo and friends ----------------------------------------------------------------------


@app.websocket("/echo")
async def echo(ws: WebSocket) -> None:
    async for message in ws:
        await ws.send(message)


@app.websocket("/echo-json")
async def echo_json(ws: WebSocket) -> None:
    while True:
        data = await ws.receive_json()
        await ws.send_json({"got": data})


@app.websocket("/info/{name}/{id:int}")
async def info(ws: WebSocket) -> None:
    await ws.send_json(
        {
            "params": ws.params,
            "query": dict(ws.query),
            "agent": ws.headers.get("user-agent"),
            "path": ws.path,
        }
    )
    await ws.close()


@app.websocket("/record-close")
async def record_close(ws: WebSocket) -> None:
    try:
        while True:
            await ws.receive()
    except WebSocketDisconnect as exc:
        STATS["closed"].append([exc.code, exc.reason])
        raise


@app.websocket("/sync-record")
def sync_record(ws):  # type: ignore[no-untyped-def]
    """Records every message it received, once the client has closed."""
    received = [message.data for message in ws]
    STATS["sync_received"].append(received)


@app.websocket("/close/{code:int}")
async def close_with(ws: WebSocket) -> None:
    await ws.accept()
    await ws.close(ws.params["code"], ws.query.get("reason", ""))


@app.websocket("/error-after-accept")
async def error_after_accept(ws: WebSocket) -> None:
    await ws.send("about to fail")
    raise ValueError("boom")


@app.websocket("/error-before-accept")
async def error_before_accept(ws: WebSocket) -> None:
    raise ValueError("boom")


@app.websocket("/refuse")
async def refuse(ws: WebSocket) -> None:
    await ws.close()  # before accepting: the handshake gets 403


@app.websocket("/http-error")
async def http_error(ws: WebSocket) -> None:
    raise HTTPException(401, "who are you?")


# What the runner does when a handler ends without closing (cello.websocket.run_handler).


@app.websocket("/return-before-accept")
async def return_before_accept(ws: WebSocket) -> None:
    return  # never accepted: the handshake gets 403


@app.websocket("/sync-return-before-accept")
def sync_return_before_accept(ws):  # type: ignore[no-untyped-def]
    return


@app.websocket("/return-after-accept")
async def return_after_accept(ws: WebSocket) -> None:
    await ws.send("accepted")  # then returns without closing: 1000


@app.websocket("/http-error-after-accept/{status:int}")
async def http_error_after_accept(ws: WebSocket) -> None:
    await ws.send("accepted")
    raise HTTPException(ws.params["status"])  # 1011 for a 5xx, else 1008


@app.websocket("/flood")
async def flood(ws: WebSocket) -> None:
    """Sends 64 KiB messages as fast as the client lets it (the client never reads)."""
    chunk = b"x" * 65536
    await ws.accept()
    for _ in range(2000):
        await ws.send(chunk)
        STATS["sent_slow"] += 1


# -- subprotocols --------------------------------------------------------------------------


@app.websocket("/subprotocol", subprotocols=["chat.v2", "chat.v1"])
async def subprotocol(ws: WebSocket) -> None:
    await ws.send("accepted")  # implicitly, with the first client-offered protocol the route lists
    await ws.send(ws.subprotocol or "none")


@app.websocket("/subprotocol-explicit")
async def subprotocol_explicit(ws: WebSocket) -> None:
    offered = ws.subprotocols
    await ws.accept(subprotocol=offered[-1] if offered else None, headers={"x-chosen": "yes"})
    await ws.send(",".join(offered))


# -- guards and hooks ----------------------------------------------------------------------


def deny(request: Request) -> bool:
    return False


def needs_token(request: Request) -> bool:
    if request.query.get("token") != "secret":
        return False
    request.state.user = "ada"
    return True


@app.websocket("/guarded", guards=[deny])
async def guarded(ws: WebSocket) -> None:
    await ws.send("should not get here")


@app.websocket("/token", guards=[needs_token])
async def token(ws: WebSocket) -> None:
    await ws.send(f"hello {ws.state.user}")


secure = Blueprint("/secure", name="secure")


@secure.before_request
def check_header(request: Request) -> Response | None:
    if request.headers.get("x-api-key") != "k":
        return Response.json({"error": "no key", "status": 401}, status=401)
    return None


@secure.websocket("/echo")
async def secure_echo(ws: WebSocket) -> None:
    async for message in ws:
        await ws.send(message)


app.register_blueprint(secure)

# Nested blueprints with a path parameter.
api = Blueprint("/api")
rooms = Blueprint("/rooms/{room}", name="rooms")


@rooms.websocket("/live")
async def live(ws: WebSocket) -> None:
    await ws.send(f"room {ws.params['room']}")
    async for message in ws:
        await ws.send(f"{ws.params['room']}: {message}")


@rooms.get("/info")
def room_info(request: Request) -> dict[str, str]:
    return {"room": request.params["room"]}


api.register_blueprint(rooms)
app.register_blueprint(api)


# -- a broadcast room (what examples/chat.py does) -----------------------------------------

members: set[WebSocket] = set()


@app.websocket("/broadcast")
async def broadcast(ws: WebSocket) -> None:
    members.add(ws)
    try:
        async for message in ws:
            await asyncio.gather(*(m.send(message) for m in list(members)), return_exceptions=True)
    finally:
        members.discard(ws)


# -- one path, both kinds ------------------------------------------------------------------


@app.get("/both")
def both_http(request: Request) -> str:
    return "http"


@app.websocket("/both")
async def both_ws(ws: WebSocket) -> None:
    await ws.send("websocket")
