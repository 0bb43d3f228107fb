"""Cello side of the SSE and upload benchmarks."""

import asyncio

from cello import App, Request, SseStream

app = App(max_body_size=1 << 30, max_file_size=1 << 30)


@app.get("/sse")
def sse(request: Request) -> SseStream:
    count = int(request.query.get("n", "1000"))

    async def events():  # type: ignore[no-untyped-def]
        for i in range(count):
            yield {"event": "tick", "data": f"event number {i}", "id": str(i)}

    return SseStream(events())


@app.get("/sse-idle")
def sse_idle(request: Request) -> SseStream:
    async def events():  # type: ignore[no-untyped-def]
        yield {"data": "hello"}
        await asyncio.sleep(3600)

    return SseStream(events())


@app.post("/upload")
async def upload(request: Request) -> dict[str, int]:
    files = await request.files()
    return {"size": sum(f.size() for f in files)}
