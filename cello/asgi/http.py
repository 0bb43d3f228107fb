"""ASGI ``http`` scopes: the same resolve/endpoint path as the native server, with its limits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from cello.asgi.types import Application, Receive, Scope, Send
from cello.errors import HTTPException
from cello.request import Request, WireRequest
from cello.response import Response, error_response
from cello.server.http.head import valid_host


def _request_from_scope(scope: Scope) -> Request:
    raw_path = scope.get("raw_path")
    path = raw_path.decode("latin-1") if raw_path else scope["path"]
    client = scope.get("client")
    return WireRequest(
        scope["method"],
        path,
        scope.get("query_string", b"").decode("latin-1"),
        [(bytes(name), bytes(value)) for name, value in scope.get("headers", [])],
        (str(client[0]), int(client[1])) if client else None,
        scope.get("scheme", "http"),
        scope.get("http_version", "1.1"),
    )


def _invalid_host(scope: Scope) -> bool:
    # The native server's Host rule (RFC 9110 7.2), which ASGI servers do not apply: without
    # it, request.host and request.url would carry whatever a client sent.
    return any(
        bytes(name).lower() == b"host" and not valid_host(bytes(value)) for name, value in scope.get("headers", [])
    )


class _Body:
    """The request's body messages, within the endpoint's body limit (as `cello serve` counts
    it: the declared length before reading, then every chunk as it comes, for buffered,
    streamed and multipart endpoints alike). Once they are all read, the next message is the
    disconnect: reading it sooner would take chunks from a handler that streams the body."""

    def __init__(self, receive: Receive, limit: int, too_large: str) -> None:
        self._receive = receive
        self._limit = limit
        self._too_large = too_large
        self.done = False
        self.disconnected = False
        # A 413 was given: the rest of the body stays unread, so the connection must close.
        self.refused = False

    def refuse_declared(self, request: Request) -> bool:
        """Whether the declared Content-Length is over the limit (nothing has been read)."""
        declared = request.header(b"content-length")
        if declared is not None and declared.isascii() and declared.isdigit():
            # More digits than any limit has: over it, without converting a huge number.
            if len(declared) > 18 or int(declared) > self._limit:
                self.done = self.refused = True
        return self.refused

    async def chunks(self) -> AsyncIterator[bytes]:
        size = 0
        while not self.done:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self.done = self.disconnected = True
                return
            chunk = message.get("body", b"")
            if not message.get("more_body", False):
                self.done = True
            if chunk:
                size += len(chunk)
                if size > self._limit:
                    self.done = self.refused = True
                    raise HTTPException(413, self._too_large)
                yield chunk

    async def disconnect(self) -> None:
        while (await self._receive())["type"] != "http.disconnect":
            pass
        self.disconnected = True


async def http(app: Application, scope: Scope, receive: Receive, send: Send) -> None:
    """Serve one ASGI ``http`` scope with the app's routes."""
    request = _request_from_scope(scope)
    proxies = app.trusted_proxies
    if proxies is not None:
        proxies.apply_if_trusted(request)
    if _invalid_host(scope):
        # Refused before anything of the body is read (a limit of 0 accepts none of it).
        await _send_response(error_response(400, "Invalid Host header"), send, False, _Body(receive, 0, ""))
        return
    endpoint = app.resolve(request)
    body = _Body(receive, endpoint.max_body_size, endpoint.body_too_large)
    if body.refuse_declared(request):
        await _send_response(error_response(413, endpoint.body_too_large), send, False, body)
        return
    if endpoint.stream_body:
        request.body_stream = body.chunks()
    else:
        data = bytearray()
        try:
            async for chunk in body.chunks():
                data += chunk
        except HTTPException as exc:
            await _send_response(error_response(exc.status, exc.detail, exc.headers), send, False, body)
            return
        request.body_bytes = bytes(data)
    result = endpoint(request)
    response = result if isinstance(result, Response) else await result
    try:
        await _send_response(response, send, request.method == "HEAD", body)
    except Exception:
        await after_response(request)  # the send failed: the client left
        raise
    await after_response(request)


async def after_response(request: Request) -> None:
    """Run what the request left for after its response (request.after_response).

    Inside the ASGI call, after its last message: the response is complete, so the client
    does not wait, and the ASGI server counts the work as the request's, which its graceful
    shutdown waits for (uvicorn's ``--timeout-graceful-shutdown``). Not when the call is
    cancelled: the server gave up on this request."""
    work = request.after_write
    if work is not None:
        await work()


async def _send_response(response: Response, send: Send, head: bool, body: _Body) -> None:
    headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in response.raw_headers()]
    if body.refused:
        headers.append((b"connection", b"close"))
    status = response.status
    no_body = status < 200 or status in (204, 304)
    chunks = response.body_chunks
    if chunks is None and not no_body and not any(name == b"content-length" for name, _ in headers):
        headers.append((b"content-length", str(len(response.body_bytes)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    if chunks is None or head or no_body or body.disconnected:
        if chunks is not None:
            await _close(chunks)
        await send({"type": "http.response.body", "body": b"" if (head or no_body) else response.body_bytes})
        return
    await _stream(chunks, send, body)


async def _close(chunks: AsyncIterator[bytes]) -> None:
    close = getattr(chunks, "aclose", None)
    if close is not None:
        await close()


async def _stream(chunks: AsyncIterator[bytes], send: Send, body: _Body) -> None:
    """Send the chunks until they end or the client leaves, whichever comes first.

    uvicorn and hypercorn drop what is sent after a disconnect without raising: only the
    ``http.disconnect`` message tells, so it is awaited beside the stream, which is then
    cancelled (the generator's ``finally`` runs at once, even while it waits for its next
    event). A handler that has not read all of a streamed body is left to the server: its
    disconnect message would come after the body chunks the handler may still read."""
    if not body.done:
        await _pump(chunks, send)
        return
    pump = asyncio.ensure_future(_pump(chunks, send))
    left = asyncio.ensure_future(body.disconnect())
    try:
        await asyncio.wait((pump, left), return_when=asyncio.FIRST_COMPLETED)
        if not pump.done():
            pump.cancel()
            await asyncio.wait((pump,))
        if not pump.cancelled():
            pump.result()  # a generator that failed: the server aborts the response
    finally:
        pump.cancel()
        left.cancel()


async def _pump(chunks: AsyncIterator[bytes], send: Send) -> None:
    try:
        async for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            # Neither a generator that never awaits nor a send to a client that has left
            # suspends: without this the stream would keep the loop, and the watcher of the
            # disconnect would never run.
            await asyncio.sleep(0)
    finally:
        await _close(chunks)
    await send({"type": "http.response.body", "body": b""})
