"""The ceiling: a raw uvloop + httptools server that answers every request with a canned response.

    python benchmarks/apps/limit_server.py PORT

An asyncio.Protocol parses with httptools (so keep-alive, pipelining and request bodies
are handled as a real server would) and writes the same 27-byte JSON hello for every
request, whatever its path or method. No routing, no request object, no serialisation:
what is left is the cost of the event loop, the socket and the HTTP parser.
"""

from __future__ import annotations

import asyncio
import sys

import httptools
import uvloop

BODY = b'{"message":"Hello, world!"}'
RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
    + str(len(BODY)).encode()
    + b"\r\n\r\n"
    + BODY
)


class LimitProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.close()

    def on_message_complete(self) -> None:
        if self.transport is not None:
            self.transport.write(RESPONSE)
            if not self.parser.should_keep_alive():
                self.transport.close()


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(LimitProtocol, "127.0.0.1", port, backlog=2048)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        uvloop.run(serve(int(sys.argv[1]) if len(sys.argv) > 1 else 8000))
    except KeyboardInterrupt:
        pass
