"""A chat-room fan-out on Cello (benchmarks/fanout.py).

Every WebSocket client of /ws/{room} receives each message POSTed to /publish/{room}, on
whichever worker it landed: the channels broker comes from ``--channels URL`` or
``CELLO_CHANNELS`` (``redis://...`` to share rooms between workers).
"""

import os

from cello import App, Request, Response, WebSocket

# The benchmark opens 1,000 subscribers, and they may all land on one worker: more than
# the default limit of 1,000 connections per process.
app = App(max_connections=4096)


@app.websocket("/ws/{room}")
async def room(ws: WebSocket) -> None:
    await ws.join(f"room:{ws.params['room']}")
    # The first message tells the client it is in the room, and which worker serves it.
    await ws.send(f"hello {os.getpid()}")
    async for _ in ws:  # nothing to read: wait until the client leaves
        pass


@app.post("/publish/{room}")
async def publish(request: Request) -> Response:
    await app.channels.publish(f"room:{request.params['room']}", request.text())
    return Response.no_content()
