"""The seam between the server (bytes, sockets) and the application (routing, handlers).

The server parses a request head, asks the application to ``resolve`` it into an
:class:`Endpoint`, receives the body within the endpoint's limits, then calls the endpoint.
It never looks at routes; the application never touches a socket.

What the server writes on a :class:`~cello.request.Request` and reads of a
:class:`~cello.response.Response` are plain attributes of those classes (cheap to read in the
compiled runtime, where a property would be a call), and nothing else of theirs:

* ``request.body_bytes`` — set to the whole body before a buffered endpoint is called;
* ``request.body_stream`` — set to the body's ``AsyncIterator[bytes]`` for ``stream_body``
  endpoints, before the body has arrived (``request.stream()`` returns it);
* ``request.client``, ``scheme``, ``host`` and ``via_trusted_proxy`` — rewritten, and set, when
  the peer is a trusted proxy (``forwarded_allow_ips``; cello/server/http/forwarded.py);
* ``response.status`` and ``response.raw_headers()`` — the status line and header block;
* ``response.body_bytes`` — the body, written with the head in one write;
* ``response.body_chunks`` — when not None, a streamed body (chunked for HTTP/1.1 without
  a Content-Length), written as it is produced, and closed (``aclose``) at the end;
* ``response.idle_filler`` — ``(seconds, bytes)``: for streams, bytes written after that long
  without a chunk;
* ``request.after_write`` — None, or work the application left for after the response
  (``request.after_response``): once the response is written, or has failed to be (the client
  left), the server calls it and runs the coroutine it returns as a task, which graceful
  shutdown waits for within its grace period (``len()`` of it: its calls not yet finished).

WebSocket handshakes take the same path. The server marks the request (``request.upgrade``)
and the application routes it to a WebSocket endpoint, which runs the route's hooks and
guards and answers either a normal Response (the handshake is refused with it) or a
:class:`~cello.response.WebSocketUpgrade`. Given the latter, the server checks the
handshake, creates a :class:`WebSocketSession` for the connection and awaits
``upgrade.run(session)``, which runs the handler: the 101 is sent when the handler accepts.
``run`` ends the session itself before it returns (denied, or closing): what a handler's
return, error or early close means is decided there, by the application
(``cello.websocket.run_handler``), not by the server. A ``run`` that raises or returns with
the session unanswered or open broke this contract; the server then refuses with 500 or
closes with 1011. The ASGI adapter implements the same session over ASGI messages, so the
application's WebSocket object and its defaults work on both.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Protocol, Union

from cello.response import WebSocketUpgrade

if TYPE_CHECKING:
    from cello.request import Request
    from cello.response import Response

EndpointResult = Union["Response", Awaitable["Response"]]

__all__ = ["Application", "Endpoint", "EndpointResult", "WebSocketSession", "WebSocketUpgrade"]


class Endpoint(Protocol):
    """The application's decision about one request head."""

    # Hand the body to the handler as it arrives (request.stream()) instead of buffering it.
    @property
    def stream_body(self) -> bool: ...

    # Bodies larger than this are refused with 413 (before reading, when Content-Length says so).
    @property
    def max_body_size(self) -> int: ...

    # The message of that 413 (cello.errors.body_too_large: the same under ASGI).
    @property
    def body_too_large(self) -> str: ...

    def __call__(self, request: Request) -> EndpointResult:
        """Run the handler chain. Never raises: failures become error responses."""
        ...


class Application(Protocol):
    def resolve(self, request: Request) -> Endpoint:
        """Pick the endpoint for a parsed head. Called once per request, before the body."""
        ...


class SharedMessage:
    """One outgoing WebSocket message sent to many connections (a channel's fan-out).

    Its frame is built once, by the first connection that can use it (one without a
    per-connection compression state), and written as is by the others."""

    __slots__ = ("data", "frame")

    def __init__(self, data: str | bytes) -> None:
        self.data = data
        self.frame: bytes | None = None


class WebSocketSession(Protocol):
    """One WebSocket connection as the server offers it to the application.

    Messages are whole (fragments reassembled, size limits enforced, control frames answered
    by the server). A session starts unaccepted: ``accept`` sends the 101, ``deny`` an HTTP
    response instead. Once the connection is closed (by either side, or lost), ``receive``
    returns the close code and ``send`` returns False.
    """

    @property
    def close_code(self) -> int:
        """0 while open; then the code the connection closed with (1006: lost without one)."""
        ...

    @property
    def close_reason(self) -> str: ...

    async def accept(self, subprotocol: str | None, headers: list[tuple[str, str]]) -> bool:
        """Complete the handshake; False if the client is already gone."""
        ...

    async def deny(self, response: Response) -> None:
        """Refuse the handshake with an HTTP response (only before ``accept``)."""
        ...

    async def receive(self) -> str | bytes | int:
        """The next message (str: text, bytes: binary), or the close code once closed."""
        ...

    async def send(self, data: str | bytes) -> bool:
        """Send one message, waiting while the client reads too slowly; False once closed."""
        ...

    def send_nowait(self, message: SharedMessage) -> bool:
        """Send ``message`` now if that needs no waiting (True; also once closed, when it is
        dropped); False when the client reads too slowly or the server can only send by
        awaiting ``send``."""
        ...

    async def close(self, code: int, reason: str) -> None:
        """Start the closing handshake (the server finishes it and closes the TCP connection).
        Only after ``accept``: before it, ``deny`` refuses the handshake."""
        ...
