"""App as an ASGI 3 application: the same resolve/endpoint path as the native server.

``uvicorn app:app``, hypercorn and granian serve a Cello app unchanged. The native server
remains the fast path; this adapter maps ASGI messages onto the same Request/Response:
``http.py`` (requests, with the server's body limits), ``websocket.py`` (WebSocket routes)
and ``lifespan.py`` (startup and shutdown hooks).
"""

from __future__ import annotations

from cello.asgi.http import http
from cello.asgi.lifespan import lifespan
from cello.asgi.types import Application, Receive, Scope, Send
from cello.asgi.websocket import websocket

__all__ = ["Application", "Receive", "Scope", "Send", "handle"]


async def handle(app: Application, scope: Scope, receive: Receive, send: Send) -> None:
    """Serve one ASGI scope of ``app``."""
    kind = scope["type"]
    if kind == "http":
        await http(app, scope, receive, send)
    elif kind == "websocket":
        await websocket(app, scope, receive, send)
    elif kind == "lifespan":
        await lifespan(app, receive, send)
