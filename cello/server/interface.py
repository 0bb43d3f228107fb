"""The seam between the server (bytes, sockets) and the application (routing, handlers).

The server parses a request head, asks the application to ``resolve`` it into an
:class:`Endpoint`, receives the body within the endpoint's limits, then calls the endpoint.
It never looks at routes; the application never touches a socket.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Awaitable, Protocol, Union

if TYPE_CHECKING:
    from cello.request import Request
    from cello.response import Response

EndpointResult = Union["Response", Awaitable["Response"]]


class Endpoint(Protocol):
    """The application's decision about one request head."""

    # Hand the body to the handler as it arrives (request.stream()) instead of buffering it.
    @property
    def stream_body(self) -> bool: ...

    # Bodies larger than this are refused with 413 (before reading, when Content-Length says so).
    @property
    def max_body_size(self) -> int: ...

    def __call__(self, request: Request) -> EndpointResult:
        """Run the handler chain. Never raises: failures become error responses."""
        ...


class Application(Protocol):
    def resolve(self, request: Request) -> Endpoint:
        """Pick the endpoint for a parsed head. Called once per request, before the body."""
        ...
