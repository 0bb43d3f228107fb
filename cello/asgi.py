"""App as an ASGI 3 application: the same resolve/endpoint path as the native server.

``uvicorn app:app``, hypercorn and granian serve a Cello app unchanged. The native server
remains the fast path; this adapter maps ASGI messages onto the same Request/Response.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, AsyncIterator, Awaitable, Callable, MutableMapping

from cello.pipeline import error_response
from cello.request import Request
from cello.response import Response

if TYPE_CHECKING:
    from cello.app import App

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


async def handle(app: App, scope: Scope, receive: Receive, send: Send) -> None:
    kind = scope["type"]
    if kind == "http":
        await _http(app, scope, receive, send)
    elif kind == "websocket":
        from cello.websocket import asgi_websocket

        await asgi_websocket(app, scope, receive, send)
    elif kind == "lifespan":
        await _lifespan(app, receive, send)


async def _lifespan(app: App, receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                await app.startup()
            except Exception as exc:  # noqa: BLE001 - reported to the server, which stops
                await send({"type": "lifespan.startup.failed", "message": f"{type(exc).__name__}: {exc}"})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await app.shutdown()
            await send({"type": "lifespan.shutdown.complete"})
            return


def _request_from_scope(scope: Scope) -> Request:
    raw_path = scope.get("raw_path")
    path = raw_path.decode("latin-1") if raw_path else scope["path"]
    client = scope.get("client")
    return Request._from_wire(
        scope["method"],
        path,
        scope.get("query_string", b"").decode("latin-1"),
        [(bytes(name), bytes(value)) for name, value in scope.get("headers", [])],
        (str(client[0]), int(client[1])) if client else None,
        scope.get("scheme", "http"),
        scope.get("http_version", "1.1"),
    )


async def _body_chunks(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


async def _http(app: App, scope: Scope, receive: Receive, send: Send) -> None:
    request = _request_from_scope(scope)
    endpoint = app.resolve(request)
    if endpoint.stream_body:
        request._stream = _body_chunks(receive)
    else:
        body = bytearray()
        async for chunk in _body_chunks(receive):
            body += chunk
            if len(body) > endpoint.max_body_size:
                await _send_response(
                    error_response(413, f"Request body larger than {endpoint.max_body_size} bytes"), send, False
                )
                return
        request._body = bytes(body)
    result = endpoint(request)
    response = result if isinstance(result, Response) else await result
    await _send_response(response, send, request.method == "HEAD")


async def _send_response(response: Response, send: Send, head: bool) -> None:
    headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in response.raw_headers()]
    status = response.status
    no_body = status < 200 or status in (204, 304)
    chunks = response._iter
    if chunks is None and not no_body and not any(name == b"content-length" for name, _ in headers):
        headers.append((b"content-length", str(len(response._body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    if chunks is None or head or no_body:
        if chunks is not None:
            close = getattr(chunks, "aclose", None)
            if close is not None:
                await close()
        await send({"type": "http.response.body", "body": b"" if (head or no_body) else response._body})
        return
    try:
        async for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    finally:
        close = getattr(chunks, "aclose", None)
        if close is not None:
            await close()
    await send({"type": "http.response.body", "body": b""})

