"""WebSocket connections (RFC 6455): the handshake, a frame driver, the asyncio glue.

Three parts, from the bytes up:

* handshake helpers (``check_handshake``, ``negotiate_deflate``, ``handshake_response``): pure
  functions of header values.
* :class:`WsDriver`: frames in, whole messages out, and messages to frames; it answers pings,
  replies to and initiates closes, and refuses protocol errors (1002), invalid UTF-8 (1007)
  and oversized messages (1009: on a frame's declared length, before its payload is read,
  on inflated output, and on a message in more fragments than allowed). No socket, no
  clock: it hands the bytes to send to its owner.
* :class:`WebSocketConnection`: the asyncio side of one upgraded connection. It moves bytes
  between the transport and the driver, keeps the timers (pings, close handshake), applies
  back-pressure both ways, and is the application's ``WebSocketSession``.

The frames are parsed by the ``websockets`` library's sans-I/O ``Protocol`` rather than by
wsproto: measured in this driver, wsproto cost ~12 us per echoed message against ~4 us (its
frame parser builds several objects and generators per frame; websockets unmasks in C), which
made the whole server spend 35-40% more CPU per message. websockets also bounds inflation
(a 200 KiB frame cannot inflate to 200 MiB) and refuses an oversized frame by its header.

Nothing here knows about routes: the HTTP connection (protocol.py) creates a
WebSocketConnection when the application answers a handshake with a WebSocketUpgrade.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
import math
import struct
from collections import deque
from typing import TYPE_CHECKING, Final, Protocol, Union

from websockets.exceptions import InvalidHeader, NegotiationError, PayloadTooBig
from websockets.extensions import Extension
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.frames import Frame, Opcode
from websockets.headers import build_extension, parse_extension
from websockets.protocol import Protocol as WsProtocol
from websockets.protocol import Side, State

from cello.headers import check_header_value
from cello.response import Response
from cello.server.http import wire
from cello.server.write_gate import WriteGate

if TYPE_CHECKING:
    from cello.request import Request
    from cello.response import WebSocketUpgrade
    from cello.server.config import ServerConfig
    from cello.server.http.protocol import ServerState

logger = logging.getLogger("cello.websocket")

NEVER: Final = math.inf
# Seconds a connection failed for a protocol error keeps draining input after its close frame:
# closing with unread input makes the kernel send a reset that can destroy the close frame.
LINGER: Final = 2.0
ACCEPT_GUID: Final = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# Close codes (RFC 6455 7.4.1).
NORMAL: Final = 1000
GOING_AWAY: Final = 1001
ABNORMAL: Final = 1006
INVALID_DATA: Final = 1007
TOO_BIG: Final = 1009
INTERNAL_ERROR: Final = 1011

Payload = Union[str, bytes]


# -- the opening handshake ----------------------------------------------------------------


class Handshake:
    """What the server needs from a client's opening handshake, or why it is refused."""

    __slots__ = ("status", "reason", "headers", "key", "extensions")

    def __init__(self) -> None:
        self.status = 0
        self.reason = ""
        # Headers for a refusal (426 names the version the server speaks).
        self.headers: dict[str, str] = {}
        self.key = b""
        # Sec-WebSocket-Extensions offers, one per entry.
        self.extensions: list[str] = []


def check_handshake(request: Request) -> Handshake:
    """Check the WebSocket-specific fields of an upgrade request (RFC 6455 4.2.1); the
    request line, Upgrade and Connection were checked by the HTTP layer."""
    result = Handshake()
    headers = request.headers
    version = headers.get("sec-websocket-version")
    if version is None or version.strip() != "13":
        result.status = 426
        result.reason = "Unsupported WebSocket version (this server speaks 13)"
        result.headers = {"Sec-WebSocket-Version": "13", "Upgrade": "websocket"}
        return result
    keys = headers.get_all("sec-websocket-key")
    key = keys[0].strip().encode("latin-1") if len(keys) == 1 else b""
    if not _valid_key(key):
        result.status = 400
        result.reason = "Missing or invalid Sec-WebSocket-Key"
        return result
    result.key = key
    for value in headers.get_all("sec-websocket-extensions"):
        result.extensions.extend(offer.strip() for offer in value.split(",") if offer.strip())
    return result


def _valid_key(key: bytes) -> bool:
    if len(key) != 24:
        return False
    try:
        return len(base64.b64decode(key, validate=True)) == 16
    except binascii.Error:
        return False


def accept_token(key: bytes) -> bytes:
    return base64.b64encode(hashlib.sha1(key + ACCEPT_GUID).digest())


def negotiate_deflate(offers: list[str]) -> tuple[Extension | None, str]:
    """The first acceptable permessage-deflate offer: the extension and its response header
    value, or (None, "")."""
    factory = ServerPerMessageDeflateFactory()
    for offer in offers:
        try:
            parsed = parse_extension(offer)
        except InvalidHeader:
            continue
        for name, params in parsed:
            if name != factory.name:
                continue
            try:
                response, extension = factory.process_request_params(params, [])
            except NegotiationError:
                continue
            return extension, build_extension([(name, response)])
    return None, ""


def handshake_response(
    key: bytes, subprotocol: str | None, extensions: str, headers: list[tuple[str, str]], server: bytes
) -> bytes:
    """The 101 response. ``server`` is the ready-made Server line (or b"")."""
    lines = [
        b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: ",
        accept_token(key),
        b"\r\n",
    ]
    if subprotocol:
        check_header_value("sec-websocket-protocol", subprotocol)
        lines.append(b"sec-websocket-protocol: " + subprotocol.encode("latin-1") + b"\r\n")
    if extensions:
        lines.append(b"sec-websocket-extensions: " + extensions.encode("latin-1") + b"\r\n")
    extra: list[tuple[str, str]] = []
    for name, value in headers:
        check_header_value(name, value)
        if name.lower() not in _HANDSHAKE_FIELDS:
            extra.append((name, value))
    if extra:
        lines.append(wire.render_headers(extra))
    lines.append(server)
    lines.append(b"\r\n")
    return b"".join(lines)


# Fields of the 101 the server writes itself (after-hooks may have set some on the marker).
_HANDSHAKE_FIELDS: Final = frozenset(
    {
        "upgrade", "connection", "sec-websocket-accept", "sec-websocket-protocol",
        "sec-websocket-extensions", "content-length", "content-type", "transfer-encoding", "server",
    }
)  # fmt: skip


# -- the frame driver ----------------------------------------------------------------------


class DriverEvents(Protocol):
    """What a WsDriver reports to its owner."""

    def write(self, data: bytes) -> None:
        """Send these bytes (pongs, close frames) now, before anything reported after them."""
        ...

    def on_message(self, data: Payload) -> None: ...

    def on_pong(self) -> None: ...

    def on_close(self, code: int, reason: str) -> None:
        """The closing handshake is complete (the peer started it, or answered ours): the
        TCP connection can close."""
        ...

    def on_failure(self, code: int, reason: str) -> None:
        """The connection failed (protocol error, bad UTF-8, oversized message); a close frame
        with ``code`` was written; nothing more will be reported."""
        ...


def _short_heads(opcode: int) -> list[bytes]:
    return [bytes((0x80 | opcode, n)) for n in range(126)]


_TEXT_HEADS: Final = _short_heads(0x1)
_BINARY_HEADS: Final = _short_heads(0x2)
_MEDIUM: Final = struct.Struct("!BBH")
_LARGE: Final = struct.Struct("!BBQ")


def frame(opcode: int, payload: bytes) -> bytes:
    """One unmasked, final frame (what a server sends)."""
    size = len(payload)
    if size < 126:
        head = _TEXT_HEADS[size] if opcode == 0x1 else _BINARY_HEADS[size]
    elif size < 65536:
        head = _MEDIUM.pack(0x80 | opcode, 126, size)
    else:
        head = _LARGE.pack(0x80 | opcode, 127, size)
    return head + payload


# The protocol objects log each frame at debug level to these; Cello logs its own lines.
_PROTOCOL_LOG: Final = logging.getLogger("cello.websocket.protocol")
_PROTOCOL_LOG.setLevel(logging.WARNING)


class _TooManyFragments(PayloadTooBig):
    """A message in more frames than allowed. Raised inside websockets' parser, which answers
    any PayloadTooBig with a 1009 close frame whose reason is ``str(exc)``."""

    def __init__(self, limit: int) -> None:
        super().__init__(None, 0)
        self.limit = limit

    def __str__(self) -> str:
        return f"message in more than {self.limit} fragments"


class ServerFrames(WsProtocol):
    """websockets' sans-I/O ``Protocol`` on the server side of an open connection, with two
    changes to how fragmented messages are read.

    * A message may come in at most ``max_fragments`` frames. websockets bounds the payload
      bytes of a message, not its frames: a flood of empty continuation frames costs a few
      microseconds each and is never too big. The parser stops at the first frame over the
      limit, so no more of that read is parsed.
    * A close frame between the fragments of a message closes the connection normally (it is
      answered with its own code; the unfinished message is dropped). RFC 6455 5.4 lets control
      frames come between fragments; websockets fails the connection with 1002 instead.
    """

    def __init__(self, max_message_size: int, max_fragments: int, extensions: list[Extension]) -> None:
        super().__init__(Side.SERVER, state=State.OPEN, max_size=max_message_size, logger=_PROTOCOL_LOG)
        self.extensions = extensions
        self.max_fragments = max_fragments
        # Frames of the fragmented message being received so far.
        self.fragments = 0

    def recv_frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        if self.current_size is not None:  # within a fragmented message
            if opcode is Opcode.CONT:
                self.fragments += 1
                if self.fragments > self.max_fragments:
                    raise _TooManyFragments(self.max_fragments)
            elif opcode is Opcode.CLOSE:
                # What websockets checks to refuse the close; the message is dropped anyway.
                self.current_size = None
        elif not frame.fin and (opcode is Opcode.TEXT or opcode is Opcode.BINARY):
            self.fragments = 1
        super().recv_frame(frame)


class WsDriver:
    """Server side of the WebSocket framing on one connection, after the handshake.

    The parsing, the answers to pings and closes, the limits (a message's size, checked on
    each frame's declared length and on inflated output; its number of fragments) are
    :class:`ServerFrames`; the driver reassembles messages, checks their UTF-8, and frames
    outgoing data messages itself when no extension is negotiated.
    """

    __slots__ = ("_events", "_protocol", "_partial", "_text", "_plain", "_closed", "_failed")

    def __init__(
        self, events: DriverEvents, max_message_size: int, max_fragments: int, extensions: list[Extension]
    ) -> None:
        self._events = events
        self._protocol = ServerFrames(max_message_size, max_fragments, extensions)
        # The fragments of the message being received so far, joined as they arrive: one
        # buffer, bounded by the message size limit whatever the number of fragments. And
        # whether that message is text.
        self._partial = bytearray()
        self._text = False
        self._plain = not extensions
        self._closed = False
        self._failed = False

    @property
    def open(self) -> bool:
        return self._protocol.state is State.OPEN

    @property
    def done(self) -> bool:
        """Nothing more will be received: the closing handshake completed or the connection failed."""
        return self._closed or self._failed

    def receive(self, data: bytes) -> None:
        if self._closed or self._failed:
            return
        protocol = self._protocol
        protocol.receive_data(data)
        for received in protocol.events_received():
            if not isinstance(received, Frame):
                continue
            opcode = received.opcode
            if opcode is Opcode.TEXT or opcode is Opcode.BINARY or opcode is Opcode.CONT:
                if not self._on_data(received) or protocol.parser_exc is not None:
                    break
            elif opcode is Opcode.PONG:
                self._events.on_pong()
        self._flush()
        if self._failed:
            return  # failed while reassembling (bad UTF-8): reported already
        if protocol.parser_exc is not None:
            self._fail_reported()
        elif protocol.close_rcvd is not None and not self._closed:
            self._closed = True
            self._partial = bytearray()  # a close may end an unfinished message
            close = protocol.close_rcvd
            self._events.on_close(close.code, close.reason)

    def _on_data(self, received: Frame) -> bool:
        # (Messages that follow our own close frame are dropped by the owner, not here: the
        # whole read is parsed before its events are looked at.)
        if received.opcode is not Opcode.CONT:
            self._text = received.opcode is Opcode.TEXT
        partial = self._partial
        if not received.fin:
            partial += received.data
            return True
        payload: bytes | bytearray
        if partial:
            partial += received.data
            payload = partial
            self._partial = bytearray()  # a new buffer: this one is the message now
        else:  # a message in one frame (or with only empty frames before this one)
            payload = bytes(received.data)
        if not self._text:
            self._events.on_message(bytes(payload))
            return True
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            self.fail(INVALID_DATA, f"invalid UTF-8 at position {exc.start}")
            return False
        self._events.on_message(text)
        return True

    def _flush(self) -> None:
        for chunk in self._protocol.data_to_send():
            if chunk:  # b"" asks for the end of the stream: the owner closes on its own terms
                self._events.write(chunk)

    def _fail_reported(self) -> None:
        self._failed = True
        self._partial = bytearray()
        protocol = self._protocol
        sent = protocol.close_sent
        code = sent.code if sent is not None else ABNORMAL
        reason = sent.reason if sent is not None else ""
        if code == TOO_BIG and not isinstance(protocol.parser_exc, _TooManyFragments):
            reason = "message too big"  # rather than which frame passed the limit by how much
        self._events.on_failure(code, _short_reason(reason))

    def fail(self, code: int, reason: str) -> None:
        """Send a close frame (if none was sent) and stop: the caller closes the connection."""
        if self._failed:
            return
        protocol = self._protocol
        protocol.fail(code, _short_reason(reason))
        self._flush()
        self._fail_reported()

    # -- sending -------------------------------------------------------------------------

    def message(self, data: Payload) -> bytes:
        """The bytes of one message."""
        if self._plain:
            if isinstance(data, str):
                return frame(0x1, data.encode("utf-8"))
            return frame(0x2, data)
        protocol = self._protocol
        if isinstance(data, str):
            protocol.send_text(data.encode("utf-8"))
        else:
            protocol.send_binary(data)
        return b"".join(protocol.data_to_send())

    def ping(self, payload: bytes) -> bytes:
        protocol = self._protocol
        protocol.send_ping(payload)
        return b"".join(protocol.data_to_send())

    def close(self, code: int, reason: str) -> bytes:
        """Start the closing handshake; b"" when closing already."""
        protocol = self._protocol
        if protocol.state is not State.OPEN or self._failed:
            return b""
        protocol.send_close(code, reason)
        return b"".join(protocol.data_to_send())


def _error(status: int, message: str) -> Response:
    return Response(wire.error_body(status, message), status, None, "application/json")


def _short_reason(reason: str) -> str:
    # A close reason has room for 123 bytes; parse errors can say more than that.
    return reason if len(reason) <= 60 else reason[:57] + "..."


# -- the asyncio side ----------------------------------------------------------------------


class UpgradeOwner(Protocol):
    """The HTTP connection a WebSocket came from, until the handshake is decided."""

    def upgraded(self) -> bytes:
        """The 101 is written: detach from the transport; return the bytes read after the
        handshake request (they are WebSocket frames)."""
        ...

    def denied(self, response: Response) -> None:
        """Answer the handshake with ``response`` instead, then close."""
        ...


_CONNECTING: Final = 0
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
        self._driver: WsDriver | None = None
        self._phase = _CONNECTING
        self._queue: deque[Payload] = deque()
        self._max_queue = config.ws_max_queue
        self._receiver: asyncio.Future[Payload | int] | None = None
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

    def start(self) -> None:
        """Run the application's handler (which accepts or denies)."""
        self._task = self._loop.create_task(self._main())

    async def _main(self) -> None:
        # The application's runner accepts, closes and reports errors itself; this is the
        # safety net that keeps a broken one from leaving the connection hanging.
        try:
            await self._run(self)
        except Exception:
            logger.exception("unhandled error in a WebSocket handler")
            if self._phase == _CONNECTING:
                self._deny(_error(500, "Internal Server Error"))
            else:
                self._start_close(INTERNAL_ERROR, "")
        if self._phase == _OPEN:
            self._start_close(NORMAL, "")
        elif self._phase == _CONNECTING:
            self._deny(_error(403, "Forbidden"))

    # -- WebSocketSession ------------------------------------------------------------------

    @property
    def close_code(self) -> int:
        return self._close_code

    @property
    def close_reason(self) -> str:
        return self._close_reason

    async def accept(self, subprotocol: str | None, headers: list[tuple[str, str]]) -> bool:
        if self._phase != _CONNECTING:
            raise RuntimeError("the WebSocket handshake is already complete")
        owner = self._owner
        if owner is None or self._lost:
            return False
        if self._state.shutting_down:
            self._deny(_error(503, "Service Unavailable: shutting down"))
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
        self._phase = _OPEN
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
        if self._phase != _CONNECTING:
            raise RuntimeError("a WebSocket can only be denied before it is accepted")
        self._deny(response)

    def _deny(self, response: Response) -> None:
        owner = self._owner
        self._owner = None
        self._phase = _CLOSED
        self._set_closed(ABNORMAL, "")
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
        if self._phase == _CONNECTING:
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
        if self._phase != _OPEN or driver is None:
            if self._phase == _CONNECTING:
                raise RuntimeError("send() before the WebSocket is accepted")
            return False
        self._transport.write(driver.message(data))
        if self._write_paused:
            # The client reads slower than we write: wait, so that the buffer stays bounded.
            await self._drain()
        return True

    async def close(self, code: int, reason: str) -> None:
        if self._phase == _CONNECTING:
            self._deny(_error(403, "Forbidden"))  # as ASGI servers do
        else:
            self._start_close(code, reason)

    def _start_close(self, code: int, reason: str) -> None:
        if self._phase != _OPEN:
            return
        driver = self._driver
        assert driver is not None
        self._transport.write(driver.close(code, reason))
        self._phase = _CLOSING
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
        if self._phase != _OPEN:
            return
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
        self._phase = _CLOSED
        # The server closes the TCP connection first (RFC 6455 7.1.1).
        self._transport.close()

    def on_failure(self, code: int, reason: str) -> None:
        if code != GOING_AWAY:
            logger.debug("WebSocket failed: %d %s", code, reason)
        self._set_closed(code, reason)
        self._phase = _CLOSED
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
        phase = self._phase
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
        if driver is None or self._phase == _CLOSED:
            return  # lingering: input is dropped
        driver.receive(data)

    def eof_received(self) -> bool | None:
        # A peer that half-closes without a close frame has gone (1006); after a failure we
        # were only waiting for this.
        self._set_closed(ABNORMAL, "")
        self._phase = _CLOSED
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
        self._phase = _CLOSED
        self._state.connections.discard(self)
        self._set_closed(ABNORMAL, "")
        self._wake_writer()

    def lost_before_accept(self) -> None:
        """The HTTP connection went away while the handler had not accepted yet."""
        self._lost = True
        self._owner = None
        self._phase = _CLOSED
        self._set_closed(ABNORMAL, "")

    # -- the server's timer and shutdown -------------------------------------------------

    def check_timeout(self, now: float) -> None:
        if now < self._deadline:
            return
        if self._close_deadline <= now:
            # The peer never answered our close (or the linger after a failure is over).
            self._close_deadline = NEVER
            self._phase = _CLOSED
            if self._lingering:
                self._transport.close()
            else:
                self._transport.abort()
        elif self._phase == _OPEN:
            driver = self._driver
            assert driver is not None
            if self._pong_deadline <= now:
                self._pong_deadline = NEVER
                driver.fail(INTERNAL_ERROR, "keepalive ping timeout")
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
        self._start_close(GOING_AWAY, "server shutting down")

    def abort(self) -> None:
        task = self._task
        if task is not None and not task.done():
            task.cancel()
        self._phase = _CLOSED
        if not self._lost:
            self._transport.abort()
