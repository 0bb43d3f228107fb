"""A chat room over WebSocket: every message goes to everyone in the room, on every worker.

Run it with `cello serve examples/chat.py` and open http://127.0.0.1:8000/ in two tabs.

- `GET /` is the page: plain HTML and JavaScript with the browser's `WebSocket`.
- `/ws?name=ada` is the room. The server sends JSON events: `{"type": "message", "name",
  "text"}`, and `join` / `leave` with the `name`.

The room is a channel (docs/channels.md): each connection joins it, and what anyone says is
published to it. Nothing about the room lives in this process, so it works the same with
`cello serve examples/chat.py --workers 4 --channels redis://127.0.0.1:6379/0` (several
processes, or several machines, sharing one Redis); with the default `memory://` broker each
worker would be a room of its own. For the same reason there is no count of people online: a
count kept in a module global would only count this worker's connections.

A client that reads slowly never holds up the others: its messages wait in its own bounded
queue, and when that is full the oldest are dropped (`channel_max_queue`, 1000 by default).
"""

from __future__ import annotations

import secrets

from cello import App, Request, Response, WebSocket

app = App()

ROOM = "chat:lobby"  # the channel every connection joins
MAX_TEXT = 2000  # characters kept of one message


@app.websocket("/ws")
async def chat(ws: WebSocket) -> None:
    # A random guest name: a counter would start at 1 in every worker.
    name = (ws.query.get("name") or "").strip()[:40] or f"guest-{secrets.token_hex(2)}"
    await ws.join(ROOM)  # accepts the connection; from now on the room's messages reach it
    await app.channels.publish(ROOM, {"type": "join", "name": name})
    try:
        async for message in ws:
            if isinstance(message, str) and message.strip():
                await app.channels.publish(ROOM, {"type": "message", "name": name, "text": message[:MAX_TEXT]})
    finally:
        # The client is gone, so this reaches the others; returning leaves the room.
        await app.channels.publish(ROOM, {"type": "leave", "name": name})


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
<p>You are <b id="me"></b> &middot; <span id="status">connecting</span></p>
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
