"""The app benchmarks/soak.py runs against: plain, upload, SSE and WebSocket endpoints, and a
debug-only stats endpoint of its own (the framework has none) reporting live asyncio tasks and
generators, so the soak can see that aborted operations leave nothing behind."""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import AsyncIterator
from typing import Any

from cello import App, Request, Response, SseEvent, SseStream

app = App(max_body_size=8 * 1024 * 1024, sse_keepalive=5.0, keep_alive_timeout=5.0)

LIVE = {"sse": 0, "ws": 0, "uploads": 0}


@app.get("/")
def index(request: Request) -> dict[str, bool]:
    return {"ok": True}


@app.get("/n/{n:int}")
def number(request: Request) -> str:
    return str(request.params["n"])


@app.get("/big")
def big(request: Request) -> Response:
    return Response(b"b" * (256 * 1024))


@app.post("/echo")
async def echo(request: Request) -> Response:
    return Response(request.body())


@app.post("/upload", stream=True)
async def upload(request: Request) -> dict[str, int]:
    LIVE["uploads"] += 1
    try:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
        return {"size": size}
    finally:
        LIVE["uploads"] -= 1


@app.post("/form")
async def form(request: Request) -> dict[str, Any]:
    files = await request.files()
    return {"sizes": [len(await f.read()) for f in files]}


@app.get("/sse")
def sse(request: Request) -> SseStream:
    count = int(request.query_string or "5")

    async def events() -> AsyncIterator[SseEvent]:
        LIVE["sse"] += 1
        try:
            for i in range(count):
                yield SseEvent(f"event {i}", id=str(i))
                await asyncio.sleep(0.002)
        finally:
            LIVE["sse"] -= 1

    return SseStream(events())


try:  # WebSocket, where this Cello has it
    from cello.websocket import WebSocket

    @app.websocket("/ws")
    async def ws_echo(ws: WebSocket) -> None:
        LIVE["ws"] += 1
        try:
            await ws.accept()
            async for message in ws:
                await ws.send(message)
        finally:
            LIVE["ws"] -= 1

    WEBSOCKET = True
except ImportError:  # pragma: no cover
    WEBSOCKET = False


@app.get("/_soak/stats")
def stats(request: Request) -> dict[str, Any]:
    gc.collect()
    return {
        "pid": os.getpid(),
        "tasks": len(asyncio.all_tasks()),
        "live": LIVE,
        "websocket": WEBSOCKET,
    }
