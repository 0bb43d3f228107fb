"""The asyncio side of one upgraded WebSocket connection.

:class:`WebSocketConnection` moves bytes between the transport and its :class:`WsDriver`
(``driver.py``), keeps the timers (pings, the close handshake, lingering after a failure),
applies back-pressure both ways, runs the application's handler as a task, and is the
application's ``WebSocketSession`` (``cello.server.interface``).

Its phase is not stored: it follows from the driver (none before the handshake is accepted;
its protocol's state after) and from the close code the session reports (set once the
connection is closing or closed, by either side or by the transport). See ``_phase``.

What happens when a handler returns, raises or closes before accepting is the application's
runner's decision (``cello.websocket.run_handler``), the same under ``cello serve`` and ASGI;
this layer only answers a runner that breaks the session's contract (500 or 1011).

Nothing here knows about routes: the HTTP connection (protocol.py) creates a
WebSocketConnection when the application answers a handshake with a WebSocketUpgrade.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from typing import TYPE_CHECKING, Final, Protocol

from websockets.extensions import Extension
from websockets.frames import CloseCode

from cello.response import Response, error_response
from cello.server.interface import SharedMessage
from cello.server.websocket.driver import Payload, WsDriver
from cello.server.websocket.handshake import Handshake, handshake_response, negotiate_deflate
from cello.server.write_gate import WriteGate

if TYPE_CHECKING:
    from cello.response import WebSocketUpgrade
    from cello.server.config import ServerConfig
    from cello.server.http.protocol import ServerState

logger = logging.getLogger("cello.websocket")

NEVER: Final = math.inf
# Seconds a connection failed for a protocol error keeps draining input after its close frame:
# closing with unread input makes the kernel send a reset that can destroy the close frame.
LINGER: Final = 2.0


class UpgradeOwner(Protocol):
    """The HTTP connection a WebSocket came from, until the handshake is decided."""

    def upgraded(self) -> bytes:
        """The 101 is written: detach from the transport; return the bytes read after the
        handshake request (they are WebSocket frames)."""
        ...

    def denied(self, response: Response) -> None:
        """Answer the handshake with ``response`` instead, then close."""
        ...


# The connection's phases, as ``_phase`` derives them.
_CONNECTING: Final = 0  # the handler has not accepted (nor denied) the handshake yet
_OPEN: Final = 1
_CLOSING: Final = 2  # our close frame is out; waiting for the peer's
_CLOSED: Final = 3  # nothing more is read or written (the transport may still linger)

_PING_PAYLOAD: Final = b"cello"


class WebSocketConnection(asyncio.Protocol):
    """One WebSocket connection: the transport's protocol once accepted, and the session the
    application's handler uses (``cello.server.interface.WebSocketSession``)."""

    _transport: asyncio.Transport

    def __init__(
        self,
        state: ServerState,
        transport: asyncio.Transport,
        owner: UpgradeOwner,
        handshake: Handshake,
        upgrade: WebSocketUpgrade,
    ) -> None:
        self._state = state
        self._loop = state.loop
        config: ServerConfig = state.config
        self._config = config
        self._transport = transport
        self._owner: UpgradeOwner | None = owner
        self._handshake = handshake
        self._upgrade_headers = upgrade.raw_headers()
        # Created when the handshake is accepted; its protocol's state is the connection's.
        self._driver: WsDriver | None = None
        self._queue: deque[Payload] = deque()
        self._max_queue = config.ws_max_queue
        self._receiver: asyncio.Future[Payload | int] | None = None
        # 0 while the handshake is pending or the connection open; then the code it closes
        # with (what receive() returns from then on).
        self._close_code = 0
        self._close_reason = ""
        # The HTTP side paused reading after the handshake request.
        self._read_paused = True
        self._write_paused = False
        self._write_gate = WriteGate(self._loop)
        self._lost = False
        self._lingering = False
        interval = config.ws_ping_interval
        self._ping_interval = interval if interval > 0 else NEVER
        self._ping_timeout = config.ws_ping_timeout if config.ws_ping_timeout > 0 else NEVER
        self._next_ping = NEVER
        self._pong_deadline = NEVER
        self._close_deadline = NEVER
        self._deadline = NEVER
        self._task: asyncio.Task[None] | None = None
        self._run = upgrade.run

    def _phase(self) -> int:
        """Derived, never stored: no driver yet is CONNECTING; then OPEN until a close code is
        set (we sent a close frame, the peer's close was reported, the connection failed or
        the transport went away); then CLOSED once the driver's protocol has ended its stream
        (handshake complete, failure, or the transport's end fed to it), CLOSING before.

        The close code, not the protocol's state, ends OPEN: the protocol parses a whole read
        before its messages are reported, and the messages that came before the peer's close
        frame are still delivered."""
        driver = self._driver
        if driver is None:
            return _CLOSED if self._close_code else _CONNECTING
        if not self._close_code:
            return _OPEN
        return _CLOSED if driver.done else _CLOSING

    def start(self) -> None:
        """Run the application's handler (which accepts or denies)."""
        self._task = self._loop.create_task(self._main())

    async def _main(self) -> None:
        # The application's runner (cello.websocket.run_handler) decides how the handler's
        # end ends the connection, and leaves it denied or closing. One that raises, or that
        # returns with the handshake unanswered or the connection open, broke the session's
        # contract: it is answered as a broken HTTP endpoint is, with 500 (or 1011).
        try:
            await self._run(self)
        except Exception:
            logger.exception("unhandled error in a WebSocket application")
        phase = self._phase()
        if phase == _CONNECTING:
            self._deny(error_response(500, "Internal Server Error"))
        elif phase == _OPEN:
            self._start_close(CloseCode.INTERNAL_ERROR, "")

    # -- WebSocketSession ------------------------------------------------------------------

    @property
    def close_code(self) -> int:
        return self._close_code

    @property
    def close_reason(self) -> str:
        return self._close_reason

    async def accept(self, subprotocol: str | None, headers: list[tuple[str, str]]) -> bool:
        if self._phase() != _CONNECTING:
            raise RuntimeError("the WebSocket handshake is already complete")
        owner = self._owner
        if owner is None or self._lost:
            return False
        if self._state.shutting_down:
            self._deny(error_response(503, "Service Unavailable: shutting down"))
            return False
        config = self._config
        extensions: list[Extension] = []
        offer = ""
        if config.ws_compression and self._handshake.extensions:
            extension, offer = negotiate_deflate(self._handshake.extensions)
            if extension is not None:
                extensions.append(extension)
        response = handshake_response(
            self._handshake.key, subprotocol, offer, self._upgrade_headers + headers, self._state.tails.server
        )
        self._driver = WsDriver(self, config.ws_max_message_size, config.ws_max_fragments, extensions)
        self._owner = None
        transport = self._transport
        transport.write(response)
        leftover = owner.upgraded()
        transport.set_protocol(self)
        self._state.connections.add(self)
        self._next_ping = self._state.now + self._ping_interval
        self._update_deadline()
        if leftover:
            self.data_received(leftover)
        self._update_reading()
        return True

    async def deny(self, response: Response) -> None:
        if self._phase() != _CONNECTING:
            raise RuntimeError("a WebSocket can only be denied before it is accepted")
        self._deny(response)

    def _deny(self, response: Response) -> None:
        owner = self._owner
        self._owner = None
        self._set_closed(CloseCode.ABNORMAL_CLOSURE, "")
        if owner is not None:
            owner.denied(response)

    async def receive(self) -> Payload | int:
        queue = self._queue
        if queue:
            data = queue.popleft()
            if self._read_paused and len(queue) <= self._max_queue // 2:
                self._update_reading()
            return data
        if self._close_code:
            return self._close_code
        if self._driver is None:
            raise RuntimeError("receive() before the WebSocket is accepted")
        if self._receiver is not None:
            raise RuntimeError("another task is already receiving on this WebSocket")
        waiter: asyncio.Future[Payload | int] = self._loop.create_future()
        self._receiver = waiter
        try:
            return await waiter
        finally:
            if self._receiver is waiter:
                self._receiver = None  # cancelled

    async def send(self, data: Payload) -> bool:
        driver = self._driver
        if driver is None or self._close_code:  # not OPEN
            if driver is None and not self._close_code:
                raise RuntimeError("send() before the WebSocket is accepted")
            return False
        self._transport.write(driver.message(data))
        if self._write_paused:
            # The client reads slower than we write: wait, so that the buffer stays bounded.
            await self._drain()
        return True

    def send_nowait(self, message: SharedMessage) -> bool:
        driver = self._driver
        if driver is None or self._close_code:
            return True  # closed (or not yet open): nothing is sent, nothing to wait for
        if self._write_paused:
            return False
        if driver.plain:
            # The same bytes for every connection without compression: built once per message.
            frame = message.frame
            if frame is None:
                frame = message.frame = driver.message(message.data)
        else:
            frame = driver.message(message.data)
        self._transport.write(frame)
        return True

    async def close(self, code: int, reason: str) -> None:
        if self._phase() == _CONNECTING:
            # Refusing is deny()'s (the application's runner picks the response).
            raise RuntimeError("close() before the WebSocket is accepted")
        self._start_close(code, reason)

    def _start_close(self, code: int, reason: str) -> None:
        driver = self._driver
        if driver is None or self._close_code:  # not OPEN
            return
        self._transport.write(driver.close(code, reason))
        self._set_closed(code, reason)
        self._queue.clear()
        self._close_deadline = self._state.now + self._config.ws_close_timeout
        self._update_deadline()
        # The peer's close frame must be read even if the handler stopped reading.
        self._update_reading()

    # -- DriverEvents ------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if not self._lost:
            self._transport.write(data)

    def on_message(self, data: Payload) -> None:
        if self._close_code:
            return  # not OPEN: dropped (it came after our close frame)
        waiter = self._receiver
        if waiter is not None and not waiter.done():
            self._receiver = None
            waiter.set_result(data)
            return
        queue = self._queue
        queue.append(data)
        if len(queue) >= self._max_queue and not self._read_paused:
            self._update_reading()

    def on_pong(self) -> None:
        if self._pong_deadline != NEVER:
            self._pong_deadline = NEVER
            self._next_ping = self._state.now + self._ping_interval
            self._update_deadline()

    def on_close(self, code: int, reason: str) -> None:
        self._set_closed(code, reason)
        # The server closes the TCP connection first (RFC 6455 7.1.1).
        self._transport.close()

    def on_failure(self, code: int, reason: str) -> None:
        if code != CloseCode.GOING_AWAY:
            logger.debug("WebSocket failed: %d %s", code, reason)
        self._set_closed(code, reason)
        self._linger()

    # -- helpers -------------------------------------------------------------------------

    def _set_closed(self, code: int, reason: str) -> None:
        if self._close_code:
            return
        self._close_code = code
        self._close_reason = reason
        waiter = self._receiver
        if waiter is not None and not waiter.done():
            self._receiver = None
            waiter.set_result(code)
        self._wake_writer()

    def _end(self) -> None:
        """The transport is done with (lost, aborted, or half-closed by the peer): nothing more
        is read. The driver's protocol is told, which ends its phase (CLOSED)."""
        self._set_closed(CloseCode.ABNORMAL_CLOSURE, "")
        driver = self._driver
        if driver is not None:
            driver.end()

    def _linger(self) -> None:
        transport = self._transport
        if self._lost:
            return
        if transport.can_write_eof():
            self._lingering = True
            transport.write_eof()
            self._close_deadline = self._state.now + LINGER
            self._update_deadline()
            self._update_reading()
        else:
            transport.close()

    def _update_reading(self) -> None:
        if self._lost or self._owner is not None:
            return
        phase = self._phase()
        pause = self._write_paused or (phase == _OPEN and len(self._queue) >= self._max_queue)
        if phase == _CLOSED and not self._lingering:
            pause = True
        if pause != self._read_paused:
            self._read_paused = pause
            if pause:
                self._transport.pause_reading()
            else:
                self._transport.resume_reading()

    def _update_deadline(self) -> None:
        self._deadline = min(self._next_ping, self._pong_deadline, self._close_deadline)

    async def _drain(self) -> None:
        if self._write_paused and not self._lost:
            await self._write_gate.wait()

    def _wake_writer(self) -> None:
        self._write_gate.release()

    # -- asyncio.Protocol ----------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        driver = self._driver
        if driver is not None:
            driver.receive(data)  # which drops input once closed (lingering)

    def eof_received(self) -> bool | None:
        # A peer that half-closes without a close frame has gone (1006); after a failure we
        # were only waiting for this.
        self._end()
        return None

    def pause_writing(self) -> None:
        self._write_paused = True
        # A peer that does not read must not make us buffer replies to its pings either.
        self._update_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake_writer()
        self._update_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._state.connections.discard(self)
        self._end()
        self._wake_writer()

    def lost_before_accept(self) -> None:
        """The HTTP connection went away while the handler had not accepted yet."""
        self._lost = True
        self._owner = None
        self._set_closed(CloseCode.ABNORMAL_CLOSURE, "")

    # -- the server's timer and shutdown -------------------------------------------------

    def check_timeout(self, now: float) -> None:
        if now < self._deadline:
            return
        if self._close_deadline <= now:
            # The peer never answered our close (or the linger after a failure is over).
            self._close_deadline = NEVER
            lingering = self._lingering
            self._end()
            if lingering:
                self._transport.close()
            else:
                self._transport.abort()
        elif self._phase() == _OPEN:
            driver = self._driver
            assert driver is not None
            if self._pong_deadline <= now:
                self._pong_deadline = NEVER
                driver.fail(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
            elif self._next_ping <= now:
                self._next_ping = NEVER
                self._pong_deadline = now + self._ping_timeout
                self._transport.write(driver.ping(_PING_PAYLOAD))
        else:
            self._next_ping = NEVER
            self._pong_deadline = NEVER
        self._update_deadline()

    def shutdown(self) -> None:
        """Graceful shutdown: close with 1001 (the handler sees WebSocketDisconnect(1001))."""
        self._start_close(CloseCode.GOING_AWAY, "server shutting down")

    def abort(self) -> None:
        task = self._task
        if task is not None and not task.done():
            task.cancel()
        self._end()
        if not self._lost:
            self._transport.abort()
