"""The frames of one open WebSocket connection, without I/O: bytes in, events out.

:class:`WsDriver` takes the bytes read from the peer and reports whole messages, pongs, the
end of the closing handshake and failures to its owner (:class:`DriverEvents`); it turns
outgoing messages, pings and closes into bytes. It answers pings and closes itself, and
refuses protocol errors (1002), invalid UTF-8 (1007) and oversized messages (1009: on a
frame's declared length, before its payload is read, on inflated output, and on a message in
more fragments than allowed). No socket, no clock: the owner sends the bytes and keeps time.

The frames are parsed by the ``websockets`` library's sans-I/O ``Protocol`` (here
:class:`ServerFrames`) rather than by wsproto: measured in this driver, wsproto cost ~12 us per
echoed message against ~4 us (its frame parser builds several objects and generators per
frame; websockets unmasks in C), which made the whole server spend 35-40% more CPU per
message. websockets also bounds inflation (a 200 KiB frame cannot inflate to 200 MiB) and
refuses an oversized frame by its header.

The driver's phase is that protocol's: ``state`` (OPEN, then CLOSING once a close frame is
out) and ``eof_sent`` (a server protocol ends the stream exactly when the closing handshake is
complete or the connection failed). The driver keeps no flags of its own beside them.
"""

from __future__ import annotations

import logging
import struct
from typing import Final, Protocol, Union

from websockets.exceptions import PayloadTooBig
from websockets.extensions import Extension
from websockets.frames import CloseCode, Frame, Opcode
from websockets.protocol import Protocol as WsProtocol
from websockets.protocol import Side, State

Payload = Union[str, bytes]


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

    __slots__ = ("_events", "_protocol", "_partial", "_text", "_plain")

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

    @property
    def open(self) -> bool:
        """No close frame was sent yet (by us, or in answer to the peer's)."""
        return self._protocol.state is State.OPEN

    @property
    def done(self) -> bool:
        """Nothing more will be received: the closing handshake completed or the connection
        failed. A server-side protocol ends its stream in exactly these two cases."""
        return self._protocol.eof_sent

    def receive(self, data: bytes) -> None:
        protocol = self._protocol
        if protocol.eof_sent:
            return  # closed or failed: reported already
        protocol.receive_data(data)
        for received in protocol.events_received():
            if not isinstance(received, Frame):
                continue
            opcode = received.opcode
            if opcode is Opcode.TEXT or opcode is Opcode.BINARY or opcode is Opcode.CONT:
                if not self._on_data(received):
                    return  # failed while reassembling (bad UTF-8): reported already
                if protocol.parser_exc is not None:
                    break
            elif opcode is Opcode.PONG:
                self._events.on_pong()
        self._flush()
        if not protocol.eof_sent:
            return  # open, or waiting for the answer to our close
        # The stream ended in this read (so this is reported once): a failure or the end of
        # the closing handshake.
        if protocol.parser_exc is not None:
            self._fail_reported()
        elif protocol.close_rcvd is not None:
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
            self.fail(CloseCode.INVALID_DATA, f"invalid UTF-8 at position {exc.start}")
            return False
        self._events.on_message(text)
        return True

    def _flush(self) -> None:
        for chunk in self._protocol.data_to_send():
            if chunk:  # b"" asks for the end of the stream: the owner closes on its own terms
                self._events.write(chunk)

    def _fail_reported(self) -> None:
        self._partial = bytearray()
        protocol = self._protocol
        sent = protocol.close_sent
        code = sent.code if sent is not None else CloseCode.ABNORMAL_CLOSURE
        reason = sent.reason if sent is not None else ""
        if code == CloseCode.MESSAGE_TOO_BIG and not isinstance(protocol.parser_exc, _TooManyFragments):
            reason = "message too big"  # rather than which frame passed the limit by how much
        self._events.on_failure(code, _short_reason(reason))

    def fail(self, code: int, reason: str) -> None:
        """Send a close frame (if none was sent) and stop: the caller closes the connection."""
        protocol = self._protocol
        if protocol.eof_sent:
            return
        protocol.fail(code, _short_reason(reason))
        self._flush()
        self._fail_reported()

    def end(self) -> None:
        """The transport is gone (or the peer half-closed it): nothing more will be read. The
        protocol is told, so that it ends too (``done``); nothing is reported or written."""
        self._protocol.receive_eof()
        self._partial = bytearray()

    # -- sending -------------------------------------------------------------------------

    @property
    def plain(self) -> bool:
        """No extension (compression) keeps state across frames: a frame is the same for any connection."""
        return self._plain

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
        if protocol.state is not State.OPEN or protocol.eof_sent:
            return b""
        protocol.send_close(code, reason)
        return b"".join(protocol.data_to_send())


def _short_reason(reason: str) -> str:
    # A close reason has room for 123 bytes; parse errors can say more than that.
    return reason if len(reason) <= 60 else reason[:57] + "..."
