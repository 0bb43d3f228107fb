"""A chat room over WebSocket: every message goes to everyone connected.

Run it with `cello serve examples/chat.py` and open http://127.0.0.1:8000/ in two tabs.

- `GET /` is the page: plain HTML and JavaScript with the browser's `WebSocket`.
- `/ws?name=ada` is the room. The server sends JSON events: `{"type": "message", "name",
  "text"}`, and `join` / `leave` with the number of people `online`.

Each connection has its own outbox drained by its own task, so a client that reads slowly
never holds up the others: once its outbox is full it is closed with 1008.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from cello import App, Request, Response, WebSocket, WebSocketDisconnect

app = App()

OUTBOX_SIZE = 100  # events queued for one client before it is dropped as too slow
MAX_TEXT = 2000  # characters kept of one message

room: dict[WebSocket, asyncio.Queue[dict[str, Any]]] = {}
guests = itertools.count(1)


def broadcast(event: dict[str, Any]) -> None:
    for ws, outbox in list(room.items()):
        try:
            outbox.put_nowait(event)
        except asyncio.QueueFull:
            room.pop(ws, None)
            asyncio.ensure_future(ws.close(1008, "too slow"))


async def deliver(ws: WebSocket, outbox: asyncio.Queue[dict[str, Any]]) -> None:
    """Send this client's events in order; sending waits while it reads slowly."""
    try:
        while True:
            await ws.send_json(await outbox.get())
    except WebSocketDisconnect:
        pass


@app.websocket("/ws")
async def chat(ws: WebSocket) -> None:
    name = (ws.query.get("name") or "").strip()[:40] or f"guest-{next(guests)}"
    await ws.accept()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue(OUTBOX_SIZE)
    room[ws] = outbox
    sender = asyncio.ensure_future(deliver(ws, outbox))
    broadcast({"type": "join", "name": name, "online": len(room)})
    try:
        async for message in ws:
            if isinstance(message, str) and message.strip():
                broadcast({"type": "message", "name": name, "text": message[:MAX_TEXT]})
    finally:
        room.pop(ws, None)
        sender.cancel()
        broadcast({"type": "leave", "name": name, "online": len(room)})


PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Cello chat</title>
<style>
  body { font: 16px system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; }
  #messages { list-style: none; padding: 0; height: 20rem; overflow-y: auto; border: 1px solid #ccc; }
  #messages li { padding: .2rem .5rem; }
  #messages li.info { color: #777; font-style: italic; }
  form { display: flex; gap: .5rem; margin-top: .5rem; }
  #text { flex: 1; }
</style>
</head>
<body>
<h1>Cello chat</h1>
<p>You are <b id="me"></b> &middot; <span id="status">connecting</span> &middot; <span id="online">0</span> online</p>
<ul id="messages"></ul>
<form id="form"><input id="text" autocomplete="off" placeholder="Say something" autofocus><button>Send</button></form>
<script>
const params = new URLSearchParams(location.search);
const name = params.get("name") || "guest-" + Math.random().toString(36).slice(2, 6);
document.getElementById("me").textContent = name;
const scheme = location.protocol === "https:" ? "wss" : "ws";
const ws = new WebSocket(`${scheme}://${location.host}/ws?name=${encodeURIComponent(name)}`);
const status = document.getElementById("status");
const list = document.getElementById("messages");

function show(text, info) {
  const item = document.createElement("li");
  item.textContent = text;  // never innerHTML: messages are other people's text
  if (info) item.className = "info";
  list.append(item);
  list.scrollTop = list.scrollHeight;
}

ws.onopen = () => { status.textContent = "connected"; };
ws.onclose = (event) => { status.textContent = `disconnected (${event.code})`; };
ws.onmessage = (event) => {
  const data = JSON.parse(event.data);
  if (data.type === "message") {
    show(`${data.name}: ${data.text}`, false);
  } else {
    document.getElementById("online").textContent = data.online;
    show(`${data.name} ${data.type === "join" ? "joined" : "left"}`, true);
  }
};
document.getElementById("form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = document.getElementById("text");
  if (input.value.trim() && ws.readyState === WebSocket.OPEN) ws.send(input.value);
  input.value = "";
});
</script>
</body>
</html>
"""


@app.get("/")
def index(request: Request) -> Response:
    return Response.html(PAGE)


if __name__ == "__main__":
    app.run()
