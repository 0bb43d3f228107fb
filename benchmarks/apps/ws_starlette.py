"""WebSocket echo on Starlette (served by uvicorn and by Granian in benchmarks/ws_echo.py)."""

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    async for message in websocket.iter_text():
        await websocket.send_text(message)


app = Starlette(routes=[WebSocketRoute("/ws", echo)])
