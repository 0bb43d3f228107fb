"""Parser backends: each turns its parser's output into the same five events.

``on_head`` (a complete, validated request head), ``on_body`` (a chunk of body bytes, already
de-chunked), ``on_end`` (the message is complete), ``on_error`` (refuse with this status; the
parser delivers nothing more) and ``on_upgrade`` (after the end of a request with
``Connection: upgrade``: the bytes that followed it, which belong to the next protocol; the
parser delivers nothing more). The connection class (protocol.py) implements those events
once; the adapters below hold no connection logic, only translation.

httptools (llhttp) is the default: it is fast, and it refuses most malformed input itself.
h11 is the pure-Python reference; the shapes it accepts but llhttp refuses are checked in
head.py, so that both answer the same.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Final, Protocol, cast

import h11
import httptools

from cello.server.config import ServerConfig
from cello.server.head import (
    ChunkedFraming,
    HeadValidator,
    head_buffer_limit,
    normal_request_line,
    parse_raw_head,
)

logger = logging.getLogger("cello.server")


class ParserEvents(Protocol):
    def on_head(
        self,
        method: str,
        target: bytes,
        http_version: str,
        headers: list[tuple[bytes, bytes]],
        head: HeadValidator,
    ) -> None: ...

    def on_body(self, data: bytes) -> None: ...

    def on_end(self) -> None: ...

    def on_error(self, status: int, reason: str) -> None: ...

    def on_upgrade(self, data: bytes) -> None: ...


class RequestParser(Protocol):
    def feed(self, data: bytes) -> None: ...

    def in_head(self) -> bool:
        """Part of a request head has been read, not all of it: the connection is not idle."""
        ...

    def stop(self) -> None:
        """Deliver no more events; later input is dropped."""
        ...


def create_parser(name: str, events: ParserEvents, config: ServerConfig) -> RequestParser:
    if name == "h11":
        return H11Parser(events, config)
    return HttptoolsParser(events, config)


# Interned method names: no decode per request for the common ones.
_METHOD_NAMES: Final = {
    m.encode("ascii"): m for m in ("GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH")
}


def _method_name(raw: bytes) -> str:
    # Compared before the lookup: hashing a new bytes object costs more than a comparison.
    if raw == b"GET":
        return "GET"
    name = _METHOD_NAMES.get(raw)
    if name is None:
        name = raw.decode("ascii")
    return name


class _Abort(Exception):
    """Raised inside an llhttp callback to stop ``feed_data`` once the head is refused."""


class HttptoolsParser:
    __slots__ = (
        "_events",
        "_parser",
        "_head",
        "_method",
        "_url",
        "_headers",
        "_in_head",
        "_head_bytes",
        "_head_limit",
        "_completed",
        "_stopped",
        "_feed_data",
        "_on_head",
        "_on_body",
        "_on_end",
        "_between",
        "_input",
        "_line_source",
    )

    def __init__(self, events: ParserEvents, config: ServerConfig) -> None:
        self._events = events
        self._head = HeadValidator(config)
        # Between two messages (nothing of the next one read yet); the input being fed when
        # it began between two; the input the current message's request line starts at the
        # start of (b"" if none), where its version can be read off (see _version_at).
        self._between = True
        self._input = b""
        self._line_source = b""
        self._method = b""
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._in_head = False
        self._head_bytes = 0
        self._head_limit = head_buffer_limit(config)
        self._completed = False
        self._stopped = False
        self._parser = httptools.HttpRequestParser(self)
        # Per-request calls, bound once: through a Protocol-typed object, compiled code looks
        # each method up by name on every call.
        self._feed_data = self._parser.feed_data
        self._on_head = events.on_head
        self._on_body = events.on_body
        self._on_end = events.on_end

    def stop(self) -> None:
        self._stopped = True

    def in_head(self) -> bool:
        return self._in_head

    def feed(self, data: bytes) -> None:
        if self._stopped:
            return
        self._completed = False
        self._input = data if self._between else b""
        try:
            self._feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            # llhttp stops after an Upgrade or CONNECT request; those requests never keep the
            # connection alive (HeadValidator), so nothing after them is parsed as HTTP. What
            # follows belongs to the protocol switched to (WebSocket frames a client sent
            # without waiting for the 101).
            self._stopped = True
            head = self._head
            if self._completed and head.upgrade and head.connection_upgrade:  # not CONNECT
                offset = exc.args[0] if exc.args and isinstance(exc.args[0], int) else len(data)
                self._events.on_upgrade(data[offset:])
            return
        except httptools.HttpParserError as exc:
            self._parser_error(exc)
            return
        if self._in_head and not self._completed:
            # httptools buffers an unfinished header field without bound: cap the bytes of an
            # unfinished head. A chunk in which another message ended is not counted (part of it
            # is that message, or many pipelined ones): at most one read too few, still bounded.
            self._head_bytes += len(data)
            if self._head_bytes > self._head_limit:
                self._refuse(431, "Request header fields too large")

    def _parser_error(self, exc: Exception) -> None:
        if self._stopped:
            return  # our own _Abort, or input after a refusal
        self._stopped = True
        if isinstance(exc, httptools.HttpParserCallbackError) and exc.__context__ is not None:
            # A bug on our side, not bad input.
            logger.error("error while handling a request", exc_info=exc.__context__)
            self._events.on_error(500, "Internal Server Error")
        else:
            self._events.on_error(400, f"Malformed request: {exc}")

    def _refuse(self, status: int, reason: str) -> None:
        self._stopped = True
        self._in_head = False
        self._events.on_error(status, reason)

    def _abort(self) -> None:
        self._refuse(self._head.status, self._head.reason)
        raise _Abort()

    # -- llhttp callbacks -------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._between = False
        # Only the first message of an input can start at its start.
        self._line_source = self._input
        self._input = b""
        self._in_head = True
        self._head_bytes = 0
        self._url = b""
        self._headers = []
        self._head.begin()

    def on_url(self, url: bytes) -> None:
        if self._url:
            self._url += url
        else:
            self._url = url
            self._method = self._parser.get_method()
        if not self._head.check_request_line(len(self._method), len(self._url)):
            self._abort()

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._in_head:
            return  # a trailer field after a chunked body: ignored, as h11 does
        # llhttp drops leading whitespace of a value but keeps trailing whitespace (rare:
        # looking at the last byte first spares a method call per field).
        if value and (value[-1] == 32 or value[-1] == 9):
            value = value.rstrip(b" \t")
        self._headers.append((name, value))
        if not self._head.add_field(name, value):
            self._abort()

    def on_headers_complete(self) -> None:
        self._in_head = False
        method = _method_name(self._method)
        version = ""
        if self._line_source:
            version = _version_at(self._line_source, len(self._method) + len(self._url) + 1)
            self._line_source = b""
        if not version:
            version = self._parser.get_http_version()
        head = self._head
        if not head.finish(method, version):
            self._abort()
        self._on_head(method, self._url, version, self._headers, head)

    def on_body(self, body: bytes) -> None:
        self._on_body(body)

    def on_message_complete(self) -> None:
        self._completed = True
        self._between = True
        if not self._head.keep_alive:
            # Nothing after a message that closes the connection is delivered (by either adapter).
            self._stopped = True
        self._on_end()


def _version_at(data: bytes, end_of_target: int) -> str:
    """The version of the request line ``data`` starts with (one llhttp accepted), read off
    the bytes; "" when they are not plainly "method SP target SP HTTP/1.x CRLF".

    httptools' ``get_http_version()`` formats a new string for every request: about a tenth
    of the server's own work on a small request. Only bytes are compared here (mypyc makes
    each a machine instruction or two). ``end_of_target`` is where the line would have its
    second space if the method and the target were each followed by one; if they were not,
    the bytes there are inside the line and cannot be a space followed by a version and CR.
    """
    i = end_of_target
    if len(data) < i + 11 or data[0] == 13 or data[0] == 10 or data[i] != 32 or data[i + 9] != 13:
        return ""
    if data[i + 1] != 72 or data[i + 2] != 84 or data[i + 3] != 84 or data[i + 4] != 80:  # HTTP
        return ""
    if data[i + 5] != 47 or data[i + 6] != 49 or data[i + 7] != 46:  # /1.
        return ""
    minor = data[i + 8]
    if minor == 49:
        return "1.1"
    if minor == 48:
        return "1.0"
    return ""


def _to_bytes(data: Any) -> bytes:
    # h11 hands out bytearrays where its annotations say bytes; read through Any so that
    # mypyc converts them instead of refusing them.
    return bytes(data)


# End of a head: the first empty line, with or without CR (a bare LF is refused by parse_raw_head).
_HEAD_END: Final = re.compile(rb"\n\r?\n")


class H11Parser:
    """h11 as a message parser only: one h11.Connection per request, fed the bytes left over by
    the previous one, so the server never sends its responses through h11."""

    __slots__ = (
        "_events",
        "_head",
        "_fields",
        "_framing",
        "_chunked",
        "_buffer",
        "_conn",
        "_stopped",
        "_head_limit",
        "_max_line",
    )

    def __init__(self, events: ParserEvents, config: ServerConfig) -> None:
        self._events = events
        self._head = HeadValidator(config)
        self._fields: list[tuple[bytes, bytes]] = []
        self._framing = ChunkedFraming()
        self._chunked = False
        self._buffer = b""
        self._conn: h11.Connection | None = None
        self._stopped = False
        self._head_limit = head_buffer_limit(config)
        self._max_line = config.max_request_line

    def stop(self) -> None:
        self._stopped = True

    def in_head(self) -> bool:
        # A complete head moves to an h11.Connection at once; what waits in the buffer is partial.
        # Empty lines between requests are skipped, as llhttp does: they do not start a head.
        return self._conn is None and bool(self._buffer.lstrip(b"\r\n"))

    def feed(self, data: bytes) -> None:
        if self._stopped:
            return
        conn = self._conn
        if conn is None:
            self._buffer += data
        else:
            if self._chunked and not self._check_framing(data):
                return
            conn.receive_data(data)
        self._run()

    def _check_framing(self, data: bytes) -> bool:
        framing = self._framing
        if framing.done or framing.feed(data):
            return True
        self._refuse(400, framing.error)
        return False

    def _refuse(self, status: int, reason: str) -> None:
        self._stopped = True
        self._conn = None
        self._buffer = b""
        self._events.on_error(status, reason)

    def _run(self) -> None:
        while not self._stopped:
            conn = self._conn
            if conn is None:
                if not self._start_message():
                    return
            elif not self._next_event(conn):
                return

    def _start_message(self) -> bool:
        """Validate a complete head in the buffer and hand it to a fresh h11.Connection."""
        # RFC 9112 2.2: empty lines before a request line are ignored (llhttp does the same).
        buffer = self._buffer.lstrip(b"\r\n")
        self._buffer = buffer
        end = _HEAD_END.search(buffer)
        head = self._head
        head.begin()
        if end is None:
            newline = buffer.rfind(b"\n")
            if newline < 0:
                if len(buffer) > self._max_line:
                    self._refuse(414, "Request line too long")
            elif parse_raw_head(buffer[: newline + 1], head, complete=False) is None:
                # A bad line is refused at once, not when the head ends (as llhttp does).
                self._refuse(head.status, head.reason)
            elif len(buffer) > self._head_limit:
                self._refuse(431, "Request header fields too large")
            return False
        fields = parse_raw_head(buffer[: end.end()], head)
        if fields is None:
            self._refuse(head.status, head.reason)
            return False
        # h11 parses the head again (it must, to frame the body); its fields are the same as ours.
        self._fields = fields
        # (finish() has not run yet: a bad Transfer-Encoding is refused there, with 400 too)
        self._chunked = head.transfer_encoding_count > 0
        if self._chunked:
            self._framing.reset()
            if not self._check_framing(buffer[end.end() :]):
                return False
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=self._head_limit)
        conn.receive_data(normal_request_line(buffer))
        self._buffer = b""
        self._conn = conn
        return True

    def _next_event(self, conn: h11.Connection) -> bool:
        """Deliver one event; False when more input is needed."""
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            self._refuse(400, f"Malformed request: {exc}")
            return False
        if event is h11.NEED_DATA:
            return False
        if isinstance(event, h11.Data):
            self._events.on_body(_to_bytes(cast(Any, event).data))
        elif isinstance(event, h11.Request):
            self._on_request(event)
        elif isinstance(event, h11.EndOfMessage):
            # The rest of the input belongs to the next request, if the connection stays, or
            # to the next protocol after an upgrade request.
            self._conn = None
            head = self._head
            rest = _to_bytes(cast(Any, conn).trailing_data[0])
            if head.keep_alive:
                self._buffer = rest
            else:
                self._stopped = True
                self._buffer = b""
            self._events.on_end()
            if head.upgrade and head.connection_upgrade:
                self._events.on_upgrade(rest)
        return True

    def _on_request(self, event: h11.Request) -> None:
        head = self._head
        method = _method_name(event.method)
        version = event.http_version.decode("ascii")
        if not head.finish(method, version):
            self._refuse(head.status, head.reason)
            return
        self._events.on_head(method, bytes(event.target), version, self._fields, head)
