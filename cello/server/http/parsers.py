"""Parser backends: each turns its parser's output into the same five events.

``on_head`` (a complete, validated request head), ``on_body`` (a chunk of body bytes, already
de-chunked), ``on_end`` (the message is complete), ``on_error`` (refuse with this status; the
parser delivers nothing more) and ``on_upgrade`` (after the end of a request with
``Connection: upgrade``: the bytes that followed it, which belong to the next protocol; the
parser delivers nothing more). The connection class (protocol.py) implements those events
once; the adapters below hold no connection logic, only translation.

httptools (llhttp) is the default: it is fast, and it refuses most malformed input itself.
h11 is the pure-Python reference; the shapes it accepts but llhttp refuses are checked in
head.py, so that both answer the same. The other way round (runs of spaces in the request
line), and for the bounds neither has (chunk extensions, trailers), the httptools adapter
looks at the bytes itself.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Final, Protocol, cast

import h11
import httptools

from cello.server.config import ServerConfig
from cello.server.http.head import (
    ChunkedFraming,
    HeadValidator,
    head_buffer_limit,
    method_start_ok,
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
_METHOD_NAMES: Final = {m.encode("ascii"): m for m in ("GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH")}


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
        "_head_limit",
        "_completed",
        "_stopped",
        "_feed_data",
        "_on_head",
        "_on_body",
        "_on_end",
        "_between",
        "_first",
        "_data",
        "_start",
        "_head_end",
        "_end",
        "_partial",
        "_body_left",
        "_framing",
        "_scanning",
    )

    def __init__(self, events: ParserEvents, config: ServerConfig) -> None:
        self._events = events
        self._head = HeadValidator(config)
        # llhttp says what it parsed, never where: the adapter keeps track of where each message
        # lies in the input (``_data``), lazily, so that a request without a chunked body pays
        # nothing for it. Where the bytes are needed: the request line (its spaces; its
        # version, read off the bytes), and a chunked body, whose framing is checked
        # (``_framing``) before llhttp reads it. Offsets are into ``_data``, -1 when not known:
        # ``_start`` is where the current message starts (-1: in an earlier input, whose part
        # of the head is in ``_partial``), ``_head_end`` where its head ends, ``_end`` where it
        # ends. ``_first``: the next message to begin is the first one of this input, and it
        # began between two messages (it starts at ``_start`` = 0, after empty lines).
        self._between = True
        self._first = False
        self._data = b""
        self._start = -1
        self._head_end = -1
        self._end = -1
        self._partial = bytearray()
        # Body bytes still to come after this input (Content-Length).
        self._body_left = 0
        self._framing = ChunkedFraming(config)
        self._scanning = False
        self._method = b""
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._in_head = False
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
        self._data = data
        if self._between:
            self._first = True
            self._start = 0
            self._head_end = -1
            self._end = -1
        elif not self._resume(data):
            return
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
        if self._in_head and not self._stopped:
            self._keep_partial(data)

    def _resume(self, data: bytes) -> bool:
        """The input continues a message begun in an earlier one: where does that end?"""
        self._first = False
        self._head_end = -1
        self._end = -1
        if self._in_head:
            self._start = -1
        elif self._scanning:
            framing = self._framing
            consumed = framing.feed(data)
            if consumed < 0:
                self._refuse(framing.status, framing.error)
                return False
            if framing.done:
                self._scanning = False
                self._end = consumed
        else:
            self._end = self._body_left
        return True

    def _keep_partial(self, data: bytes) -> None:
        """A head is unfinished at the end of the input: keep its bytes, within the head limit
        (httptools buffers an unfinished header field without bound)."""
        start = self._start
        if start >= 0:
            self._partial = bytearray(data[_skip_empty_lines(data, start) :])
            self._start = -1
        else:
            self._partial += data
        if len(self._partial) > self._head_limit:
            head = self._head
            head.fail(431, "Request header fields too large")
            self._check_line(bytes(self._partial))
            self._refuse(head.status, head.reason)

    def _check_line(self, head: bytes) -> bool:
        """Whether the request line at the start of the current message in ``head`` is whole
        and has single spaces; when it is whole and has more, the head is refused with 400. The
        line is checked before anything else that refuses the head, as in the h11 adapter
        (which checks a head's lines in order)."""
        begin = _skip_empty_lines(head, self._start) if self._start >= 0 else 0
        end = head.find(b"\r\n", begin)
        # llhttp accepted the line, and a target holds no space: two spaces are single ones.
        if end < 0 or head.count(b" ", begin, end) == 2:
            return end >= 0
        self._head.fail(400, "Invalid request line")
        return False

    def _message_end(self) -> int:
        """Where the message that has just ended ends in the input."""
        if self._end >= 0:
            return self._end
        head_end = self._head_end
        if head_end < 0:
            head_end = _find_head_end(self._data, self._start)
        # (a chunked message's end is always known: its framing check found it)
        return head_end + self._head.content_length

    def _split_head(self) -> bytes:
        """The whole head of a message that began in an earlier input; sets ``_head_end``."""
        partial = bytes(self._partial)
        self._partial = bytearray()
        # The blank line that ends the head may begin at the end of the earlier input.
        tail = partial[-3:]
        self._head_end = (tail + self._data).index(b"\r\n\r\n") + 4 - len(tail)
        return partial + self._data[: self._head_end]

    def _line_version(self) -> str:
        """The request's version, read the slow way, once its request line is checked; ""
        when it is refused."""
        if not self._check_line(self._data if self._start >= 0 else self._split_head()):
            return ""
        return self._parser.get_http_version()

    def _check_chunked_body(self) -> bool:
        """A chunked body starts: check the framing of what the input holds of it, before
        llhttp reads it; what later inputs bring is checked as they come (_resume)."""
        head_end = self._head_end
        if head_end < 0:
            head_end = _find_head_end(self._data, self._start)
            self._head_end = head_end
        framing = self._framing
        framing.reset()
        consumed = framing.feed(self._data[head_end:])
        if consumed < 0:
            self._head.fail(framing.status, framing.error)
            return False
        self._scanning = not framing.done
        if not self._scanning:
            self._end = head_end + consumed
        return True

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
        if self._first:
            self._first = False
        else:
            # Another message ended in this input: this one starts where that one ended.
            self._start = _skip_empty_lines(self._data, self._message_end())
            self._head_end = -1
            self._end = -1
        self._in_head = True
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
            self._check_line(self._data if self._start >= 0 else bytes(self._partial) + self._data)
            self._abort()

    def on_headers_complete(self) -> None:
        self._in_head = False
        method = _method_name(self._method)
        url = self._url
        start = self._start
        version = ""
        if start >= 0:
            version = _version_at(self._data, start, start + len(self._method) + len(url) + 1)
        if not version:
            version = self._line_version()
            if not version:
                self._abort()
        head = self._head
        if not head.finish(method, version):
            self._abort()
        if url[0] != 47 and not head.take_authority(url, self._headers):  # not "/..."
            self._abort()
        if head.rare:
            self._body_left = head.content_length
            if head.chunked and not self._check_chunked_body():
                self._abort()
        self._on_head(method, url, version, self._headers, head)

    def on_body(self, body: bytes) -> None:
        self._body_left -= len(body)
        self._on_body(body)

    def on_message_complete(self) -> None:
        if self._scanning:
            # llhttp ended a chunked body that the framing check has not seen end: they
            # disagree on its framing, and the request is refused.
            self._head.fail(400, "Malformed request: bad chunked framing")
            self._abort()
        self._completed = True
        self._between = True
        if not self._head.keep_alive:
            # Nothing after a message that closes the connection is delivered (by either adapter).
            self._stopped = True
        self._on_end()


def _skip_empty_lines(data: bytes, pos: int) -> int:
    # RFC 9112 2.2: empty lines before a request line are ignored (llhttp skips CR and LF).
    while pos < len(data) and (data[pos] == 13 or data[pos] == 10):
        pos += 1
    return pos


def _find_head_end(data: bytes, start: int) -> int:
    """The end of the head that starts at ``start`` and ends in ``data`` (llhttp accepted it:
    its lines end with CRLF, and the first empty one ends it)."""
    return data.index(b"\r\n\r\n", _skip_empty_lines(data, start)) + 4


def _version_at(data: bytes, start: int, end_of_target: int) -> str:
    """The version of the request line at ``start`` in ``data`` (one llhttp accepted), read
    off the bytes; "" when they are not plainly "method SP target SP HTTP/1.x CRLF".

    httptools' ``get_http_version()`` formats a new string for every request: about a tenth
    of the server's own work on a small request. Only bytes are compared here (mypyc makes
    each a machine instruction or two). ``end_of_target`` is where the line would have its
    second space if the method and the target were each followed by one; if they were not,
    the bytes there are inside the line and cannot be a space followed by a version and CR.
    """
    i = end_of_target
    if len(data) < i + 11 or data[start] == 13 or data[start] == 10 or data[i] != 32 or data[i + 9] != 13:
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

    def __init__(self, events: ParserEvents, config: ServerConfig) -> None:
        self._events = events
        self._head = HeadValidator(config)
        self._fields: list[tuple[bytes, bytes]] = []
        self._framing = ChunkedFraming(config)
        self._chunked = False
        self._rest = b""
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
        if self._stopped or not data:
            return  # (h11 takes no data for the end of the input)
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
        if framing.done or framing.feed(data) >= 0:
            return True
        self._refuse(framing.status, framing.error)
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
                if buffer and not method_start_ok(buffer):
                    self._refuse(400, "Invalid method")
                elif len(buffer) > self._max_line:
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
        # What follows the head, checked when the head is (_on_request) if the body is chunked.
        self._rest = buffer[end.end() :]
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=self._head_limit)
        conn.receive_data(buffer)
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
        target = bytes(event.target)
        if not head.finish(method, version) or (target[0] != 47 and not head.take_authority(target, self._fields)):
            self._refuse(head.status, head.reason)
            return
        # Later input goes through the framing check before h11 (feed); what came with the head
        # is checked now, before h11 reads it.
        self._chunked = head.chunked
        rest = self._rest
        self._rest = b""
        if self._chunked:
            self._framing.reset()
            if not self._check_framing(rest):
                return
        self._events.on_head(method, target, version, self._fields, head)
