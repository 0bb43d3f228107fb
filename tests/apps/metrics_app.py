"""The app of the metrics tests (tests/test_metrics.py): route templates, a slow route, an
SSE stream and a WebSocket, with ``app.enable_metrics()``."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

from cello import App, Request, Response, SseStream, WebSocket

app = App()
# Bounds the tests can tell apart: a fast request, a 0.3 s one, nothing slower.
app.enable_metrics(buckets=[0.1, 1.0, 10.0])
# Enabled after the metrics, compression still runs before their after-hook: the bytes counted
# are the bytes sent.
app.enable_compression()


@app.get("/users/{id:int}")
def user(request: Request) -> dict[str, Any]:
    return {"id": request.params["id"]}


@app.post("/echo")
def echo(request: Request) -> Response:
    return Response(request.body_bytes, content_type="application/octet-stream")


@app.get("/slow")
async def slow(request: Request) -> str:
    await asyncio.sleep(float(request.query.get("seconds") or "0.3"))
    return "slow"


@app.get("/events")
def events(request: Request) -> SseStream:
    async def ticks() -> AsyncIterator[str]:
        i = 0
        while True:
            yield f"tick {i}"
            i += 1
            await asyncio.sleep(0.1)

    return SseStream(ticks())


@app.websocket("/ws")
async def ws(websocket: WebSocket) -> None:
    async for message in websocket:
        await websocket.send(message)


@app.get("/big")
def big(request: Request) -> str:
    return "a" * 5000


@app.get("/pid")
def pid(request: Request) -> str:
    return str(os.getpid())
