"""The ASGI 3 callables and messages, and what the adapter needs of the app it serves."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Protocol

from cello.pipeline import Endpoint
from cello.request import Request

Message = MutableMapping[str, Any]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class Application(Protocol):
    """What the adapter calls on an app (``cello.App``): it never imports the App itself."""

    def resolve(self, request: Request) -> Endpoint: ...

    async def startup(self) -> None: ...

    async def shutdown(self) -> None: ...
