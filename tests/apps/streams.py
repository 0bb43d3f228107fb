"""SSE, streaming responses and static files for the stream tests."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from cello import App, Request, Response, SseEvent, SseStream

# Room for the thousand-stream test plus its stats client (the default limit is 1000).
app = App(sse_keepalive=0.2, max_connections=1100)

STATS = {"open": 0, "finally": 0, "produced": 0}

# The seed's example, unchanged but for the sleep (1 s there).
SLEEP = 0.01


@app.get("/events")
async def events(request):
    async def stream():
        for i in range(100):
            yield {"event": "update", "data": f"tick {i}"}
            await asyncio.sleep(SLEEP)

    return SseStream(stream())


@app.get("/sse/forever")
async def forever(request: Request) -> SseStream:
    async def stream():  # type: ignore[no-untyped-def]
        STATS["open"] += 1
        try:
            i = 0
            while True:
                yield SseEvent(f"event {i}", id=i)
                i += 1
                await asyncio.sleep(0.05)
        finally:
            STATS["open"] -= 1
            STATS["finally"] += 1

    return SseStream(stream())


@app.get("/sse/slow")
def slow(request: Request) -> SseStream:
    async def stream():  # type: ignore[no-untyped-def]
        yield "first"
        await asyncio.sleep(1.0)
        yield "second"

    return SseStream(stream())


@app.get("/sse/sync")
def sync_events(request: Request) -> SseStream:
    def stream():  # type: ignore[no-untyped-def]
        for i in range(3):
            time.sleep(0.01)
            yield {"data": {"n": i}, "id": str(i)}

    return SseStream(stream())


@app.get("/sse/collected")
def collected(request: Request) -> Response:
    stream = SseStream().add(SseEvent.data("one")).add_event("named", "two").add_data({"three": 3})
    stream.add(SseEvent("multi\nline", event="ml", retry=1500))
    return Response.sse(stream)


@app.get("/sse/last-id")
def last_id(request: Request) -> SseStream:
    return SseStream([SseEvent(request.headers.get("last-event-id", "none"))])


@app.get("/sse/bad")
def bad(request: Request) -> SseStream:
    async def stream():  # type: ignore[no-untyped-def]
        yield "ok"
        yield {"event": "forged\ndata: evil"}

    return SseStream(stream())


@app.get("/stream/endless")
def endless(request: Request) -> Response:
    async def chunks():  # type: ignore[no-untyped-def]
        block = b"x" * 65536
        try:
            while True:
                STATS["produced"] += len(block)
                yield block
        finally:
            STATS["finally"] += 1

    return Response.stream(chunks())


@app.get("/stream/gen")
async def generator_return(request: Request):  # type: ignore[no-untyped-def]
    async def gen():  # type: ignore[no-untyped-def]
        yield "a"
        yield "b"

    return gen()


@app.get("/stats")
def stats(request: Request) -> dict[str, int]:
    return STATS


@app.post("/stats/reset")
def reset(request: Request) -> None:
    STATS.update({"open": 0, "finally": 0, "produced": 0})


# -- static files -------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2] / "build" / "tests" / "static"
PUBLIC = ROOT / "public"
(PUBLIC / "sub").mkdir(parents=True, exist_ok=True)
(PUBLIC / "index.html").write_text("<h1>index</h1>")
(PUBLIC / "hello.txt").write_text("hello static world\n")
(PUBLIC / "sub" / "index.html").write_text("<h1>sub</h1>")
(PUBLIC / "data.bin").write_bytes(bytes(range(256)) * 40)
(ROOT / "secret.txt").write_text("top secret")
# Hidden files, and links that lead outside the root or to a hidden file.
(PUBLIC / ".env").write_text("SECRET_KEY=hunter2")
(PUBLIC / ".well-known").mkdir(exist_ok=True)
(PUBLIC / ".well-known" / "security.txt").write_text("Contact: mailto:security@example.com")
(PUBLIC / "linked").mkdir(exist_ok=True)
for name, target in [
    ("escape", ROOT / "secret.txt"),
    ("linked/index.html", ROOT / "secret.txt"),  # a directory whose index leaves the root
    ("env-link.txt", PUBLIC / ".env"),
]:
    if not (PUBLIC / name).is_symlink():
        os.symlink(target, PUBLIC / name)

app.static("/static", str(PUBLIC))
app.static("/dotted", str(PUBLIC), dotfiles=True)


@app.get("/download")
def download(request: Request) -> Response:
    return Response.file(PUBLIC / "hello.txt", filename="grüße.txt")
