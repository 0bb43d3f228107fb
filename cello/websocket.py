"""WebSocket handlers: the connection object they receive, its sync facade, and messages.

    @app.websocket("/ws/{room}")
    async def chat(ws):
        async for message in ws:              # str for text, bytes for binary
            await ws.send(f"Echo: {message}")

The handshake request goes through the route's before-hooks and guards like any request
(a refusal is a normal HTTP response); then the handler runs with a :class:`WebSocket`.
``def`` handlers run in a worker thread with :class:`SyncWebSocket`. This module is the user
API only (the route's endpoint and the handler's runner are in cello/endpoints.py) and knows
nothing of sockets: it talks to a ``WebSocketSession`` (cello.server.interface), which the
native server and the ASGI adapter (cello/asgi/websocket.py) both provide.

``await ws.join(channel)`` forwards the messages of one of the app's channels (cello.channels)
to the client until ``ws.leave(channel)`` or the end of the handler.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import threading
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import (
    TYPE_CHECKING,
    Any,
    Final,
    TypeVar,
    Union,
)

import orjson
from websockets.frames import EXTERNAL_CLOSE_CODES, CloseCode

from cello._descriptors import FactoryOrField
from cello.errors import HTTPException, report_unhandled
from cello.forwarding import Forwarding
from cello.request import Request, State
from cello.response import dumps, error_response

if TYPE_CHECKING:
    from cello.channels import Channels
    from cello.datastructures import QueryParams
    from cello.headers import Headers
    from cello.server.interface import WebSocketSession

logger = logging.getLogger("cello.websocket")
error_log = logging.getLogger("cello.error")

T = TypeVar("T")
Sendable = Union[str, bytes, bytearray, memoryview, "WebSocketMessage"]

__all__ = ["SyncWebSocket", "WebSocket", "WebSocketDisconnect", "WebSocketMessage"]


class WebSocketDisconnect(Exception):
    """The connection is closed (``code`` 1000 normal, 1001 going away, 1006 lost...).

    Raised by ``receive*`` once the peer has closed and by ``send*`` on a closed connection;
    a handler that lets it escape ends normally.
    """

    def __init__(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason

    def __str__(self) -> str:
        return f"WebSocket closed with code {self.code}" + (f": {self.reason}" if self.reason else "")


class WebSocketMessage:
    """A text, binary or close message.

    ``WebSocketMessage.text("hi")`` / ``.binary(b"..")`` / ``.close(code, reason)`` build one;
    on an instance, ``msg.text`` / ``msg.binary`` read the payload (None for the other kind).
    """

    __slots__ = ("msg_type", "_text", "_binary", "code", "reason")

    TEXT = "text"
    BINARY = "binary"
    CLOSE = "close"

    _text: str | None
    _binary: bytes | None

    def _make_text(cls, data: str) -> WebSocketMessage:  # noqa: N805 - bound by FactoryOrField
        return WebSocketMessage("text", data)

    def _make_binary(cls, data: bytes) -> WebSocketMessage:  # noqa: N805 - bound by FactoryOrField
        return WebSocketMessage("binary", data)

    text: FactoryOrField[str | None, WebSocketMessage] = FactoryOrField(_make_text)
    binary: FactoryOrField[bytes | None, WebSocketMessage] = FactoryOrField(_make_binary)

    def __init__(
        self, msg_type: str, data: str | bytes | None = None, code: int = CloseCode.NORMAL_CLOSURE, reason: str = ""
    ) -> None:
        if msg_type not in ("text", "binary", "close"):
            raise ValueError(f"msg_type must be 'text', 'binary' or 'close', not {msg_type!r}")
        self.msg_type = msg_type
        self.text = None
        self.binary = None
        if msg_type == "text":
            if not isinstance(data, str):
                raise TypeError("a text message holds a str")
            self.text = data
        elif msg_type == "binary":
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise TypeError("a binary message holds bytes")
            self.binary = bytes(data)
        self.code = code
        self.reason = reason

    @classmethod
    def close(cls, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> WebSocketMessage:
        return cls("close", None, code, reason)

    @property
    def data(self) -> str | bytes | None:
        """The payload: str for text, bytes for binary, None for close."""
        return self._text if self._text is not None else self._binary

    def is_text(self) -> bool:
        return self.msg_type == "text"

    def is_binary(self) -> bool:
        return self.msg_type == "binary"

    def is_close(self) -> bool:
        return self.msg_type == "close"

    def json(self) -> Any:
        data = self.data
        if data is None:
            raise ValueError("a close message has no payload")
        return orjson.loads(data)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, WebSocketMessage):
            return NotImplemented
        return (self.msg_type, self.data, self.code, self.reason) == (
            other.msg_type,
            other.data,
            other.code,
            other.reason,
        )

    def __repr__(self) -> str:
        if self.msg_type == "close":
            return f"WebSocketMessage.close({self.code}, {self.reason!r})"
        return f"WebSocketMessage.{self.msg_type}({self.data!r})"


# Close codes for applications' own use (RFC 6455 7.4.2: 3000-3999 registered, 4000-4999 private).
_APPLICATION_CODES: Final = range(3000, 5000)


def _check_close_code(code: int) -> None:
    # RFC 6455 7.4: 1004-1006 and 1015 are never sent; 1016-2999 are reserved.
    if not (code in EXTERNAL_CLOSE_CODES or code in _APPLICATION_CODES):
        raise ValueError(f"{code} is not a close code an endpoint may send")


class _HandshakeFacts:
    """What a WebSocket handler reads of the handshake request, for both handler styles."""

    request: Request

    @property
    def params(self) -> dict[str, Any]:
        return self.request.params

    @property
    def query(self) -> QueryParams:
        return self.request.query

    @property
    def headers(self) -> Headers:
        return self.request.headers

    @property
    def cookies(self) -> dict[str, str]:
        return self.request.cookies

    @property
    def state(self) -> State:
        """Per-connection scratch space (the handshake request's state: what guards set)."""
        return self.request.state

    @property
    def path(self) -> str:
        return self.request.path

    @property
    def url(self) -> str:
        return self.request.url

    @property
    def client(self) -> tuple[str, int] | None:
        return self.request.client

    @property
    def subprotocols(self) -> list[str]:
        """The subprotocols the client offered, in its order."""
        offered: list[str] = []
        for value in self.request.headers.get_all("sec-websocket-protocol"):
            offered.extend(p.strip() for p in value.split(",") if p.strip())
        return offered


class WebSocket(_HandshakeFacts):
    """One WebSocket connection, as an ``async def`` handler sees it."""

    def __init__(
        self,
        session: WebSocketSession,
        request: Request,
        subprotocols: Sequence[str] = (),
        channels: Channels | None = None,
    ) -> None:
        self._session = session
        # The app's channels, for join(); None for a WebSocket made outside an app's route.
        self._channels = channels
        # Joined channel -> its forwarding; made on the first join, so others pay nothing.
        self._joined: dict[str, Forwarding] | None = None
        self.request = request
        # The route's own subprotocols, in order of preference (implicit accept picks one).
        self._supported = tuple(subprotocols)
        self._accepted = False
        self.subprotocol: str | None = None
        # Checked once: a debug line per message costs nothing when debug logging is off.
        self._log = logger.isEnabledFor(logging.DEBUG)

    @property
    def accepted(self) -> bool:
        return self._accepted

    @property
    def closed(self) -> bool:
        return self._session.close_code != 0

    @property
    def close_code(self) -> int | None:
        return self._session.close_code or None

    # -- the handshake ------------------------------------------------------------------

    async def accept(self, subprotocol: str | None = None, headers: Mapping[str, str] | None = None) -> None:
        """Complete the handshake (done on the first receive or send if not called)."""
        if self._accepted:
            raise RuntimeError("this WebSocket is already accepted")
        if subprotocol is not None and subprotocol not in self.subprotocols:
            raise ValueError(f"subprotocol {subprotocol!r} was not offered by the client")
        pairs = list(headers.items()) if headers else []
        if not await self._session.accept(subprotocol, pairs):
            raise WebSocketDisconnect(self._session.close_code or CloseCode.ABNORMAL_CLOSURE)
        self._accepted = True
        self.subprotocol = subprotocol
        if self._log:
            logger.debug(
                "connect %s from %s%s",
                self.request.path,
                _peer(self.request.client),
                f" (subprotocol {subprotocol})" if subprotocol else "",
            )

    async def _accept_implicitly(self) -> None:
        chosen = None
        if self._supported:
            offered = self.subprotocols
            chosen = next((p for p in self._supported if p in offered), None)
        await self.accept(chosen)

    # -- receiving ----------------------------------------------------------------------

    async def receive(self) -> str | bytes:
        """The next message: str for text, bytes for binary. Raises WebSocketDisconnect once
        the connection is closed."""
        if not self._accepted:
            await self._accept_implicitly()
        item = await self._session.receive()
        if isinstance(item, int):
            raise WebSocketDisconnect(item, self._session.close_reason)
        if self._log:
            _log_message("received", item)
        return item

    async def receive_text(self) -> str:
        item = await self.receive()
        if not isinstance(item, str):
            raise TypeError("expected a text message, got a binary one")
        return item

    async def receive_bytes(self) -> bytes:
        item = await self.receive()
        if not isinstance(item, bytes):
            raise TypeError("expected a binary message, got a text one")
        return item

    async def receive_json(self) -> Any:
        return orjson.loads(await self.receive())

    async def receive_message(self) -> WebSocketMessage:
        """The next message as a WebSocketMessage; a close message once closed (no exception)."""
        try:
            item = await self.receive()
        except WebSocketDisconnect as exc:
            return WebSocketMessage.close(exc.code, exc.reason)
        return WebSocketMessage("text" if isinstance(item, str) else "binary", item)

    def __aiter__(self) -> WebSocket:
        return self

    async def __anext__(self) -> str | bytes:
        if not self._accepted:
            await self._accept_implicitly()
        item = await self._session.receive()
        if isinstance(item, int):
            raise StopAsyncIteration
        if self._log:
            _log_message("received", item)
        return item

    # -- sending ------------------------------------------------------------------------

    async def send(self, data: Sendable) -> None:
        """str -> text message, bytes -> binary message; a close WebSocketMessage closes."""
        if not self._accepted:
            await self._accept_implicitly()
        payload: str | bytes
        if isinstance(data, (str, bytes)):
            payload = data
        elif isinstance(data, (bytearray, memoryview)):
            payload = bytes(data)
        elif isinstance(data, WebSocketMessage):
            if data.msg_type == "close":
                await self.close(data.code, data.reason)
                return
            message = data.data
            assert message is not None
            payload = message
        else:
            raise TypeError(f"send() takes str or bytes, not {type(data).__name__}; use send_json() for other values")
        if not await self._session.send(payload):
            raise WebSocketDisconnect(
                self._session.close_code or CloseCode.ABNORMAL_CLOSURE, self._session.close_reason
            )
        if self._log:
            _log_message("sent", payload)

    async def send_text(self, data: str) -> None:
        if not isinstance(data, str):
            raise TypeError("send_text() takes a str")
        await self.send(data)

    async def send_bytes(self, data: bytes | bytearray | memoryview) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError("send_bytes() takes bytes")
        await self.send(data)

    async def send_json(self, data: Any, mode: str = "text") -> None:
        """``data`` as JSON, in a text message (``mode="binary"``: a binary one)."""
        encoded = dumps(data)
        await self.send(encoded.decode("utf-8") if mode == "text" else encoded)

    async def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Close with ``code``; before accept, refuse the handshake (HTTP 403)."""
        _check_close_code(code)
        if len(reason.encode("utf-8")) > 123:
            raise ValueError("a close reason is at most 123 bytes of UTF-8")
        if not self._accepted:
            await _forbid(self._session)
            return
        await self._session.close(code, reason)

    # -- channels -------------------------------------------------------------------------

    async def join(self, channel: str) -> None:
        """Send the client every message published to ``channel`` from now on, until
        ``leave(channel)`` or the end of the handler: a str as a text message, bytes as a
        binary one, any other value as JSON text. Joining accepts the handshake if the handler
        has not; joining a channel already joined does nothing. Raises ChannelError when the
        broker cannot subscribe."""
        channels = self._channels
        if channels is None:
            raise RuntimeError(
                "this WebSocket has no channels to join: ws.join() works on the WebSocket an "
                "App's @websocket route hands its handler (it uses that app's app.channels)"
            )
        joined = self._joined
        if joined is None:
            joined = self._joined = {}
        forwarding = joined.get(channel)
        if forwarding is not None:
            # Joined already, or being joined by a concurrent call: return once subscribed.
            await asyncio.shield(forwarding.joined)
            return
        if not self._accepted:
            await self._accept_implicitly()
        forwarding = joined[channel] = Forwarding(channel, self._session, channels.max_queue)
        try:
            await forwarding.start(channels)
        except BaseException:
            # Subscribing failed, or join() was cancelled: the channel is not joined.
            if joined.get(channel) is forwarding:
                del joined[channel]
            forwarding.stop()
            raise
        if joined.get(channel) is not forwarding:
            forwarding.stop()  # left while subscribing: as if leave() had come after join()

    async def leave(self, channel: str) -> None:
        """Stop forwarding ``channel``: nothing more of it reaches the client once this returns.
        Leaving a channel not joined does nothing."""
        forwarding = self._joined.pop(channel, None) if self._joined else None
        if forwarding is not None:
            forwarding.stop()

    async def _leave_all(self) -> None:
        """Leave every joined channel: the handler is done with the connection."""
        joined = self._joined
        if not joined:
            return
        for forwarding in joined.values():
            forwarding.stop()
        joined.clear()


def _peer(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "?"


def _log_message(direction: str, item: str | bytes) -> None:
    if isinstance(item, str):
        logger.debug("message %s: text, %d chars", direction, len(item))
    else:
        logger.debug("message %s: binary, %d bytes", direction, len(item))


class SyncWebSocket(_HandshakeFacts):
    """The blocking facade a ``def`` handler gets; it runs in a worker thread and each call
    waits for the event loop to carry it out."""

    def __init__(self, ws: WebSocket, loop: asyncio.AbstractEventLoop) -> None:
        self._ws = ws
        self._loop = loop
        self.request = ws.request

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        try:
            future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        except RuntimeError:
            coro.close()  # the loop is closed: the server has stopped
            raise WebSocketDisconnect(CloseCode.GOING_AWAY) from None
        return future.result()

    @property
    def closed(self) -> bool:
        return self._ws.closed

    def accept(self, subprotocol: str | None = None, headers: Mapping[str, str] | None = None) -> None:
        self._call(self._ws.accept(subprotocol, headers))

    def recv(self) -> WebSocketMessage | None:
        """The next message, or None once the connection is closed."""
        try:
            item = self._call(self._ws.receive())
        except WebSocketDisconnect:
            return None
        return WebSocketMessage("text" if isinstance(item, str) else "binary", item)

    receive = recv

    def __iter__(self) -> Iterator[WebSocketMessage]:
        while True:
            message = self.recv()
            if message is None:
                return
            yield message

    def send(self, message: Sendable) -> None:
        self._call(self._ws.send(message))

    def send_text(self, data: str) -> None:
        self._call(self._ws.send_text(data))

    def send_binary(self, data: bytes | bytearray | memoryview) -> None:
        self._call(self._ws.send_bytes(data))

    send_bytes = send_binary

    def send_json(self, data: Any, mode: str = "text") -> None:
        self._call(self._ws.send_json(data, mode))

    def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        self._call(self._ws.close(code, reason))

    def join(self, channel: str) -> None:
        """See ``WebSocket.join``: messages of ``channel`` are sent to the client from now on."""
        self._call(self._ws.join(channel))

    def leave(self, channel: str) -> None:
        self._call(self._ws.leave(channel))


# Sync handlers hold a thread for the life of their connection: they get their own pool, so
# that they cannot starve ``threaded=True`` HTTP routes (and the other way round).
SYNC_HANDLER_THREADS = 256
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _sync_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(SYNC_HANDLER_THREADS, thread_name_prefix="cello-ws")
        return _pool


# -- how a handler's end ends the connection ----------------------------------------------------


async def run_handler(ws: WebSocket, handler: Callable[..., Any], run_sync: bool, debug: bool, route: str) -> None:
    """Run a route's handler on ``ws``, then end the connection the way the handler left it.

    The one place these defaults live: ``cello serve`` and the ASGI adapter both hand their
    session to the route's WebSocketUpgrade, whose ``run`` is this. (The server only answers a
    ``run`` that breaks the session's contract, see ``cello.server.websocket.connection``.)

    ====================================  ===========================  =========================
    the handler...                        before it accepted           after it accepted
    ====================================  ===========================  =========================
    receives, sends or joins first        accepted implicitly (the route's subprotocol, if any)
    returns                               refused: 403                 closed: 1000
    calls ``ws.close(code)``              refused: 403                 closed: ``code``
    raises WebSocketDisconnect            refused: 403, unless gone    nothing more: closed
    raises HTTPException(status)          refused: ``status``          closed: 1011 if 5xx, else 1008
    raises anything else (logged)         refused: 500                 closed: 1011
    ====================================  ===========================  =========================

    Whichever way it ends, the channels the handler joined are left first.
    """
    session = ws._session
    try:
        try:
            if run_sync:
                loop = asyncio.get_running_loop()
                run = contextvars.copy_context().run  # the session's contextvars (its trace span)
                await loop.run_in_executor(_sync_pool(), run, handler, SyncWebSocket(ws, loop))
            else:
                result = handler(ws)
                if inspect.isawaitable(result):
                    await result
        finally:
            # Joined channels end with the handler, before the connection closes: nothing
            # stays subscribed, and nothing is forwarded to a connection being closed.
            if ws._joined:
                await ws._leave_all()
    except WebSocketDisconnect:
        pass  # the peer went away while the handler was using the connection: a normal end
    except HTTPException as exc:
        if not ws.accepted:
            await session.deny(error_response(exc.status, exc.detail, exc.headers, exc.details))
            return
        await session.close(CloseCode.INTERNAL_ERROR if exc.status >= 500 else CloseCode.POLICY_VIOLATION, "")
    except Exception as exc:  # noqa: BLE001 - every failure closes or refuses the connection
        error_log.error("unhandled error in WebSocket handler for %s", route, exc_info=exc)
        report_unhandled(exc)
        if not ws.accepted:
            message = f"Handler error: {type(exc).__name__}: {exc}" if debug else "Internal Server Error"
            await session.deny(error_response(500, message))
            return
        await session.close(CloseCode.INTERNAL_ERROR, "")
    if not ws.accepted:
        await _forbid(session)  # returned without accepting: refused, as ASGI servers do
        return
    if session.close_code == 0:
        await session.close(CloseCode.NORMAL_CLOSURE, "")
    if ws._log:
        logger.debug("disconnect %s from %s: code %d", ws.request.path, _peer(ws.request.client), session.close_code)


async def _forbid(session: WebSocketSession) -> None:
    """Refuse the handshake with 403, unless the connection has already ended."""
    if session.close_code == 0:
        await session.deny(error_response(403, "Forbidden"))
