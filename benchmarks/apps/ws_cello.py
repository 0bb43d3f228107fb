"""WebSocket echo on Cello (benchmarks/ws_echo.py)."""

from cello import App, WebSocket

app = App()


@app.websocket("/ws")
async def echo(ws: WebSocket) -> None:
    async for message in ws:
        await ws.send(message)
