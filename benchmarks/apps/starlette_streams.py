"""Starlette (sse-starlette, python-multipart) side of the SSE and upload benchmarks."""

import asyncio

from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def sse(request: Request) -> EventSourceResponse:
    count = int(request.query_params.get("n", "1000"))

    async def events():  # type: ignore[no-untyped-def]
        for i in range(count):
            yield {"event": "tick", "data": f"event number {i}", "id": str(i)}

    return EventSourceResponse(events(), ping=15)


async def sse_idle(request: Request) -> EventSourceResponse:
    async def events():  # type: ignore[no-untyped-def]
        yield {"data": "hello"}
        await asyncio.sleep(3600)

    return EventSourceResponse(events(), ping=15)


async def upload(request: Request) -> JSONResponse:
    async with request.form(max_files=1000, max_fields=1000, max_part_size=1 << 30) as form:
        size = 0
        for value in form.values():
            if hasattr(value, "size"):
                size += value.size or 0
        return JSONResponse({"size": size})


app = Starlette(routes=[Route("/sse", sse), Route("/sse-idle", sse_idle), Route("/upload", upload, methods=["POST"])])
