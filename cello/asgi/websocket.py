"""ASGI ``websocket`` scopes: the app's WebSocket routes over ASGI messages.

The handshake request goes through ``App.resolve`` and the route's endpoint like any other;
its ``WebSocketUpgrade`` then runs the handler on an ``_AsgiSession``, the WebSocketSession
(cello.server.interface) that speaks ASGI's ``websocket.*`` messages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from websockets.frames import CloseCode

from cello.asgi.http import after_response
from cello.asgi.types import Application, Message, Receive, Scope, Send
from cello.request import WireRequest
from cello.response import Response, WebSocketUpgrade

if TYPE_CHECKING:
    from cello.server.interface import SharedMessage


class _AsgiSession:
    """A WebSocketSession over ASGI messages (``App`` served by uvicorn, hypercorn...)."""

    def __init__(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        self._receive = receive
        self._send = send
        extensions = scope.get("extensions") or {}
        self._http_denial = "websocket.http.response" in extensions
        self._code = 0
        self._reason = ""

    @property
    def close_code(self) -> int:
        return self._code

    @property
    def close_reason(self) -> str:
        return self._reason

    async def _emit(self, message: Message) -> bool:
        try:
            await self._send(message)
        except OSError:  # servers raise a ConnectionError/ClientDisconnected once the client left
            if not self._code:
                self._code = CloseCode.ABNORMAL_CLOSURE
            return False
        return True

    async def accept(self, subprotocol: str | None, headers: list[tuple[str, str]]) -> bool:
        if self._code:
            return False
        return await self._emit(
            {
                "type": "websocket.accept",
                "subprotocol": subprotocol,
                "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
            }
        )

    async def deny(self, response: Response) -> None:
        self._code = CloseCode.ABNORMAL_CLOSURE
        if not self._http_denial:
            # Closing before accept: the ASGI server answers 403.
            await self._emit({"type": "websocket.close", "code": CloseCode.POLICY_VIOLATION})
            return
        headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response.raw_headers()]
        headers.append((b"content-length", str(len(response.body_bytes)).encode("ascii")))
        await self._emit({"type": "websocket.http.response.start", "status": response.status, "headers": headers})
        await self._emit({"type": "websocket.http.response.body", "body": response.body_bytes})

    async def receive(self) -> str | bytes | int:
        if self._code:
            return self._code
        message = await self._receive()
        kind = message["type"]
        if kind == "websocket.receive":
            text = message.get("text")
            if text is not None:
                return str(text)
            return bytes(message.get("bytes") or b"")
        self._code = (
            int(message.get("code") or CloseCode.NO_STATUS_RCVD)
            if kind == "websocket.disconnect"
            else CloseCode.ABNORMAL_CLOSURE
        )
        self._reason = str(message.get("reason") or "")
        return self._code

    async def send(self, data: str | bytes) -> bool:
        if self._code:
            return False
        if isinstance(data, str):
            return await self._emit({"type": "websocket.send", "text": data})
        return await self._emit({"type": "websocket.send", "bytes": data})

    def send_nowait(self, message: SharedMessage) -> bool:
        # ASGI sends only by awaiting send(): the caller queues the message and awaits.
        return bool(self._code)

    async def close(self, code: int, reason: str) -> None:
        if self._code:
            return
        self._code = code
        self._reason = reason
        await self._emit({"type": "websocket.close", "code": code, "reason": reason})


async def websocket(app: Application, scope: Scope, receive: Receive, send: Send) -> None:
    """Serve one ASGI ``websocket`` scope with the app's WebSocket routes."""
    first = await receive()
    if first["type"] != "websocket.connect":
        return
    raw_path = scope.get("raw_path")
    client = scope.get("client")
    scheme = scope.get("scheme", "ws")
    headers = [(bytes(name), bytes(value)) for name, value in scope.get("headers", [])]
    offered = scope.get("subprotocols") or []
    if offered and not any(name.lower() == b"sec-websocket-protocol" for name, _ in headers):
        # Some servers keep the header for themselves and pass only the parsed list.
        headers.append((b"sec-websocket-protocol", ", ".join(offered).encode("latin-1")))
    request = WireRequest(
        "GET",
        raw_path.decode("latin-1") if raw_path else scope["path"],
        scope.get("query_string", b"").decode("latin-1"),
        headers,
        (str(client[0]), int(client[1])) if client else None,
        "https" if scheme == "wss" else "http",
        scope.get("http_version", "1.1"),
        True,
    )
    proxies = app.trusted_proxies
    if proxies is not None:
        proxies.apply_if_trusted(request)
    endpoint = app.resolve(request)
    result = endpoint(request)
    response = result if isinstance(result, Response) else await result
    session = _AsgiSession(scope, receive, send)
    if isinstance(response, WebSocketUpgrade):
        await response.run(session)
    else:
        await session.deny(response)
    # What the handshake's hooks or guards left for after it (request.after_response).
    await after_response(request)
