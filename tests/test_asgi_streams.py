"""tests/test_streams.py's app-owned behaviour, with tests/apps/streams.py under uvicorn and hypercorn.

Left out:
- keep-alive comments on an idle SSE stream: `cello serve` writes them itself (App's
  sse_keepalive); under an ASGI server Cello sends only what the generator yields;
- a thousand concurrent streams: the server's capacity (and App's max_connections, which only
  `cello serve` enforces), too heavy to repeat per server on a small machine;
- the SSE encoder's property and unit tests: no server is involved.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

from asgisuite import variant  # noqa: F401 - fixture: uvicorn and hypercorn
from test_streams import (  # noqa: F401 - pytest collects these here again
    client,
    server,
    test_backpressure_with_slow_reader,
    test_collected_stream,
    test_conditional_and_range_headers_never_fail,
    test_directory_index,
    test_disconnect_runs_finally,
    test_download_with_filename,
    test_each_event_flushed_at_once,
    test_file_with_trailing_slash_is_not_found,
    test_forged_event_field_ends_stream_without_forging,
    test_hidden_files_only_with_dotfiles,
    test_invalid_range_or_date_is_ignored,
    test_last_event_id_readable,
    test_ranges,
    test_returning_async_generator_streams,
    test_seed_example_events,
    test_static_file_and_validators,
    test_static_never_escapes_root,
    test_sync_generator_and_json_data,
)

from cello import App, Request, SseStream

# -- the adapter itself, in-process: what no test app's timing can show -----------------------


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
