"""A room whose WebSocket clients may fall behind: at most 5 messages wait for each
(channel_max_queue), and POST /flood/{n} publishes n numbered messages of 64 KiB at once."""

from cello import App, Request, WebSocket

app = App(channel_max_queue=5)
PADDING = "x" * 65536


@app.websocket("/ws")
async def room(ws: WebSocket) -> None:
    await ws.join("flood")
    await ws.send("joined")
    async for _ in ws:
        pass


@app.post("/flood/{n:int}")
async def flood(request: Request) -> dict[str, int]:
    n: int = request.params["n"]
    for seq in range(n):
        await app.channels.publish("flood", f"{seq} {PADDING}")
    return {"published": n}
