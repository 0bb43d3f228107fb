"""The app of the fault tests (tests/test_faults.py): short timeouts, a small connection limit,
and endpoints that hang, stream, fail or report on the process."""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

from cello import App, Request, Response, SseEvent, SseStream

SETTINGS: dict[str, Any] = dict(
    keep_alive_timeout=0.5,
    request_head_timeout=1.0,
    body_idle_timeout=1.0,
    graceful_timeout=3.0,
    handler_timeout=2.5,
    max_body_size=4 * 1024 * 1024,
    server_header=None,
)

app = App(**SETTINGS)
# Connection limit tests: few connections, and idle ones are kept long enough to count.
limited = App(**{**SETTINGS, "max_connections": 5, "keep_alive_timeout": 10.0})

# Live generators and handlers, so tests can see that aborted ones were cleaned up.
STATS = {"sse_open": 0, "sse_closed": 0, "ws_open": 0, "uploads_open": 0}


@app.on_startup
def started() -> None:
    print("STARTUP HOOK", flush=True)


@app.on_shutdown
async def stopped() -> None:
    print(f"SHUTDOWN HOOK sse_open={STATS['sse_open']}", flush=True)


@app.get("/")
@limited.get("/")
def index(request: Request) -> dict[str, Any]:
    return {"ok": True}


@app.get("/n/{n:int}")
def number(request: Request) -> str:
    return str(request.params["n"])


def _kilobytes(n: int) -> Response:
    return Response(f"{n} ".ljust(4096, "k"))


# A few KiB per answer, inline on the loop or as a task: the pipelined flood tests.
@app.get("/kb/{n:int}")
def kb(request: Request) -> Response:
    return _kilobytes(request.params["n"])


@app.get("/kb-async/{n:int}")
async def kb_async(request: Request) -> Response:
    return _kilobytes(request.params["n"])


@app.get("/pid")
def pid(request: Request) -> str:
    return str(os.getpid())


@app.get("/stats")
def stats(request: Request) -> dict[str, Any]:
    gc.collect()
    return {
        **STATS,
        "fds": len(os.listdir("/proc/self/fd")) if sys.platform == "linux" else -1,
        "tasks": len(asyncio.all_tasks()),
    }


@app.get("/slow")
async def slow(request: Request) -> str:
    await asyncio.sleep(float(request.query_string or "0.5"))
    return "done"


@app.get("/hang")
async def hang(request: Request) -> str:
    await asyncio.sleep(60)
    return "never"


@app.get("/hang-threaded", threaded=True)
def hang_threaded(request: Request) -> str:
    time.sleep(4.0)
    return "too late"


@app.get("/boom")
def boom(request: Request) -> str:
    raise ValueError("secret-detail-7f3a in /srv/app/config.py")


@app.get("/boom-async")
async def boom_async(request: Request) -> str:
    raise KeyError("secret-detail-7f3a")


@app.get("/header")
def header(request: Request) -> Any:
    # Reflects query parameters into a header, each way a handler can give one: the checks
    # must refuse a forged header, a control character or a name that is not a token.
    name, value = request.query.get("name", "x-echo"), request.query.get("v", "")
    way = request.query.get("way", "set_header")
    if way == "init":
        return Response("ok", headers={name: value})
    if way == "tuple":
        return ("ok", 200, {name: value})
    if way == "mapping":
        response = Response("ok")
        response.headers[name] = value
        return response
    return Response("ok").set_header(name, value)


@app.get("/cookie")
def cookie(request: Request) -> Response:
    query = request.query
    return Response("ok").set_cookie(
        query.get("name", "s"), query.get("v", ""), path=query.get("path", "/"), domain=query.get("domain")
    )


@app.get("/go")
def go(request: Request) -> Response:
    return Response.redirect(request.query.get("to", "/"), permanent="permanent" in request.query)


@app.get("/big")
def big(request: Request) -> Response:
    return Response(b"x" * (1024 * 1024))


@app.get("/stream")
def stream(request: Request) -> Response:
    count = int(request.query_string or "2000")

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(count):
            yield b"y" * 1024
            await asyncio.sleep(0)

    return Response.stream(chunks())


@app.get("/drip")
def drip(request: Request) -> Response:
    """A response streamed slowly, that ends by itself: N chunks 0.1 s apart."""
    count = int(request.query_string or "5")

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(count):
            await asyncio.sleep(0.1)
            yield b"drop %d\n" % i

    return Response.stream(chunks())


@app.post("/echo")
def echo(request: Request) -> Response:
    return Response(request.body())


@app.post("/upload", stream=True)
async def upload(request: Request) -> dict[str, int]:
    STATS["uploads_open"] += 1
    try:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
        return {"size": size}
    finally:
        STATS["uploads_open"] -= 1


@app.post("/upload-later", stream=True)
async def upload_later(request: Request) -> dict[str, int]:
    """Reads its body only after a while (longer than body_idle_timeout)."""
    await asyncio.sleep(1.5)
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
    return {"size": size}


@app.post("/form")
async def form(request: Request) -> dict[str, Any]:
    files = await request.files()
    return {"files": [len(await f.read()) for f in files]}


@app.get("/sse")
def sse(request: Request) -> SseStream:
    async def events() -> AsyncIterator[SseEvent]:
        STATS["sse_open"] += 1
        try:
            i = 0
            while True:
                yield SseEvent(f"tick {i}", id=str(i))
                i += 1
                await asyncio.sleep(0.05)
        finally:
            STATS["sse_open"] -= 1
            STATS["sse_closed"] += 1

    return SseStream(events())


try:  # WebSocket routes, where this Cello has them
    from cello.websocket import WebSocket

    @app.websocket("/ws")
    async def ws_echo(ws: WebSocket) -> None:
        STATS["ws_open"] += 1
        try:
            await ws.accept()
            async for message in ws:
                await ws.send(message)
        finally:
            STATS["ws_open"] -= 1

except ImportError:  # pragma: no cover - before WebSocket support
    pass


failing = App()


@failing.on_startup
async def cannot_start() -> None:
    raise RuntimeError("database unreachable at db:5432")


@failing.get("/")
def never(request: Request) -> str:
    return "unreachable"
