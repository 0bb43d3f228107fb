"""WebSocket settings turned down for the lifecycle tests: fast pings, short close timeout,
compression on."""

from __future__ import annotations

from cello import App, WebSocket

app = App(ws_ping_interval=0.3, ws_ping_timeout=0.5, ws_close_timeout=1.0, ws_compression=True)


@app.websocket("/echo")
async def echo(ws: WebSocket) -> None:
    async for message in ws:
        await ws.send(message)


@app.websocket("/close")
async def close(ws: WebSocket) -> None:
    await ws.accept()
    await ws.close(4000, "done")
