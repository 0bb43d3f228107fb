"""request.after_response for the background-work tests: what the work did is recorded per
key (one key per test: the servers are shared by the session) and read back at /events."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from cello import App, Request, Response, SseEvent, SseStream

app = App(sse_keepalive=5.0)

EVENTS: dict[str, list[Any]] = {}


def record(key: str, *what: Any) -> None:
    EVENTS.setdefault(key, []).append([*what, time.time()])


def on_loop_thread() -> bool:
    # Every server variant runs its event loop in the main thread.
    return threading.current_thread() is threading.main_thread()


def sync_work(key: str, name: str, *args: Any, **kwargs: Any) -> None:
    record(key, "sync", name, list(args), kwargs, on_loop_thread())


async def async_work(key: str, name: str, delay: float = 0.0) -> None:
    await asyncio.sleep(delay)
    record(key, "async", name, [], {}, on_loop_thread())


def explode(key: str) -> None:
    record(key, "explode")
    raise RuntimeError(f"the mail server is down ({key})")


@app.get("/events/{key}")
def events(request: Request) -> Any:
    return {"events": EVENTS.get(request.params["key"], [])}


@app.get("/slow/{key}")
def slow(request: Request) -> Any:
    key = request.params["key"]
    record(key, "handler")
    request.after_response(async_work, key, "slow", delay=1.0)
    return {"answered": time.time()}


@app.post("/orders/{key}")
async def orders(request: Request) -> Any:
    key = request.params["key"]
    request.after_response(sync_work, key, "first", 1, 2, mail="a@example.com")
    request.after_response(async_work, key, "second")
    request.after_response(sync_work, key, "third")
    return {"ok": True}


@app.post("/fail/{key}")
def fail(request: Request) -> Any:
    key = request.params["key"]
    request.after_response(explode, key)
    request.after_response(sync_work, key, "after the failure")
    return {"ok": True}


@app.get("/stream/{key}")
def stream(request: Request) -> Response:
    key = request.params["key"]

    async def chunks() -> AsyncIterator[bytes]:
        try:
            for i in range(3):
                await asyncio.sleep(0.05)
                record(key, "chunk", i)
                yield f"chunk {i}\n".encode()
        finally:
            record(key, "stream over")

    request.after_response(sync_work, key, "after the stream")
    return Response.stream(chunks(), content_type="text/plain")


@app.get("/sse/{key}")
def sse(request: Request) -> SseStream:
    key = request.params["key"]

    async def forever() -> AsyncIterator[SseEvent]:
        i = 0
        while True:
            yield SseEvent(f"event {i}")
            i += 1
            await asyncio.sleep(0.05)

    request.after_response(async_work, key, "after the client left")
    return SseStream(forever())


@app.post("/sleep")
def sleep(request: Request) -> Any:
    """Work that sleeps ``seconds`` (in a thread with ``sync=1``), then writes ``path``."""
    seconds = float(request.query["seconds"])
    path = Path(request.query["path"])

    def in_thread() -> None:
        time.sleep(seconds)
        path.write_text("done")

    async def on_loop() -> None:
        await asyncio.sleep(seconds)
        path.write_text("done")

    request.after_response(in_thread if request.query.get("sync") else on_loop)
    return {"sleeping": seconds}


def audit_handshake(request: Request) -> bool:
    request.after_response(sync_work, request.params["key"], "after the handshake")
    return True


@app.websocket("/ws/{key}", guards=[audit_handshake])
async def ws(ws: Any) -> None:
    await ws.send("hello")
    await ws.receive()
