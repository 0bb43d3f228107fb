"""The ASGI 3 callables and messages, and what the adapter needs of the app it serves."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Protocol

from cello.pipeline import Endpoint
from cello.request import Request
from cello.server.http.forwarded import TrustedProxies

Message = MutableMapping[str, Any]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class Application(Protocol):
    """What the adapter calls on an app (``cello.App``): it never imports the App itself."""

    def resolve(self, request: Request) -> Endpoint: ...

    # Peers whose proxy headers are believed (the App's forwarded_allow_ips), or None.
    @property
    def trusted_proxies(self) -> TrustedProxies | None: ...

    async def startup(self) -> None: ...

    async def shutdown(self) -> None: ...
