"""A stand-in application with only the server's contract: ``resolve(request)`` and endpoints.

    app = FakeApp()

    @app.route("POST", "/upload", stream_body=True)
    def upload(request): ...

Server tests use it to drive `cello.server` without routing, middleware or an App.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cello.errors import body_too_large

Handler = Callable[[Any], Any]


@dataclass
class Endpoint:
    handler: Handler
    stream_body: bool = False
    max_body_size: int = 1024 * 1024

    @property
    def body_too_large(self) -> str:
        return body_too_large(self.max_body_size)

    def __call__(self, request: Any) -> Any:
        return self.handler(request)


@dataclass
class FakeApp:
    """Routes ``(method, path) -> Endpoint``; anything else answers 404 (JSON)."""

    routes: dict[tuple[str, str], Endpoint] = field(default_factory=dict)
    max_body_size: int = 1024 * 1024

    def route(
        self, method: str, path: str, *, stream_body: bool = False, max_body_size: int | None = None
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            size = self.max_body_size if max_body_size is None else max_body_size
            self.routes[(method, path)] = Endpoint(handler, stream_body, size)
            return handler

        return register

    def resolve(self, request: Any) -> Endpoint:
        endpoint = self.routes.get((request.method, request.raw_path))
        if endpoint is None and request.method == "HEAD":
            endpoint = self.routes.get(("GET", request.raw_path))
        if endpoint is None:
            return Endpoint(_not_found, False, self.max_body_size)
        return endpoint


def _not_found(request: Any) -> Any:
    from cello.response import Response

    return Response({"error": f"Not Found: {request.method} {request.raw_path}", "status": 404}, 404)
