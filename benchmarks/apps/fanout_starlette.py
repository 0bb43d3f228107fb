"""A chat-room fan-out on Starlette + broadcaster (benchmarks/fanout.py), as broadcaster's
README writes it: every WebSocket client of /ws/{room} receives each message POSTed to
/publish/{room}; the broker is Redis at ``$BROADCAST_URL``, shared by uvicorn's workers."""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from broadcaster import Broadcast
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

broadcast = Broadcast(os.environ.get("BROADCAST_URL", "redis://127.0.0.1:6379/0"))


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    await broadcast.connect()
    try:
        yield
    finally:
        await broadcast.disconnect()


async def room(websocket: WebSocket) -> None:
    await websocket.accept()
    channel = f"room:{websocket.path_params['room']}"

    async def receiver() -> None:
        async for _ in websocket.iter_text():  # nothing to read: wait until the client leaves
            pass
        tasks.cancel_scope.cancel()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(receiver)
        async with broadcast.subscribe(channel=channel) as subscriber:
            # The first message tells the client it is in the room, and which worker serves it.
            await websocket.send_text(f"hello {os.getpid()}")
            async for event in subscriber:  # type: ignore[union-attr]
                await websocket.send_text(event.message)


async def publish(request: Request) -> Response:
    message = (await request.body()).decode()
    await broadcast.publish(channel=f"room:{request.path_params['room']}", message=message)
    return Response(status_code=204)


app = Starlette(
    routes=[WebSocketRoute("/ws/{room}", room), Route("/publish/{room}", publish, methods=["POST"])],
    lifespan=lifespan,
)
