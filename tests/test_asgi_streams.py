"""The ASGI adapter's streaming, in-process: what no test app's timing can show.

tests/test_streams.py runs the app-owned streaming behaviour on every server variant,
uvicorn and hypercorn included.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

from cello import App, Request, SseStream


async def test_disconnect_cancels_a_generator_waiting_for_its_next_event() -> None:
    app = App()
    ended = asyncio.Event()

    @app.get("/wait")
    def wait(request: Request) -> SseStream:
        async def stream() -> AsyncIterator[str]:
            try:
                yield "first"
                await asyncio.Event().wait()  # a next event that never comes
            finally:
                ended.set()

        return SseStream(stream())

    sent: list[MutableMapping[str, Any]] = []
    first_event_sent = asyncio.Event()
    messages: list[MutableMapping[str, Any]] = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> MutableMapping[str, Any]:
        if messages:
            return messages.pop(0)
        await first_event_sent.wait()
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)
        if message.get("body"):
            first_event_sent.set()

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/wait",
        "raw_path": b"/wait",
        "query_string": b"",
        "headers": [(b"host", b"x")],
        "http_version": "1.1",
        "scheme": "http",
        "client": ("127.0.0.1", 1),
    }
    await asyncio.wait_for(app(scope, receive, send), 2)
    assert ended.is_set()
    assert [message["type"] for message in sent] == ["http.response.start", "http.response.body"]
    assert sent[0]["status"] == 200
    assert sent[1]["body"] == b"data: first\n\n"
