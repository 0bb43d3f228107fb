"""A chat room on app.channels: every WebSocket client of a room gets what any of them sends,
and POST /rooms/{room} publishes into the room from plain HTTP."""

import asyncio
from typing import Any

from cello import App, Request

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
