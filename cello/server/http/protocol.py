"""The HTTP/1.1 connection: one class for both parser backends.

``HttpProtocol`` moves bytes between the socket and a parser adapter (parsers.py), turns the
adapter's four events into calls of the application, and writes responses in request order.
Byte-level rules live elsewhere: head validation in head.py, response bytes in wire.py.

The connection's lifecycle (phases, why reading is paused, the pipeline queue, keep-alive and
timeout decisions) is a ``ConnectionState`` (state.py), without I/O: this class tells it what
happened and acts on what it decides (pause or resume reading, write, refuse, close), and keeps
the transport, the timers, the tasks and the request being received or answered.

Life of a request: ``on_head`` builds the Request and resolves the endpoint (refusing an
oversized declared body at once); ``on_body`` buffers or streams the body; ``on_end`` calls the
endpoint. A sync handler's Response is written at once, inside the same ``data_received``;
an awaitable runs as a task. Requests that arrive while a response is in progress (pipelining)
wait in the state's ``pipeline``; while any wait, further input is held unparsed (``_held``) and
reading pauses once that exceeds ``input_high_water``, so a flood costs bounded memory however
long. While the client does not read (the transport paused writing), reading pauses too and no
request is answered, so sync handlers cannot pile answers up in the transport either.

A WebSocket handshake answered with a WebSocketUpgrade (status 101, so it never meets the
common response path) hands the connection to a WebSocketConnection (websocket/connection.py):
it runs the handler, and on accept writes the 101 and becomes the transport's protocol.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final, Protocol, cast

from cello.errors import HTTPException, body_too_large
from cello.request import Request, WireRequest
from cello.response import Response, WebSocketUpgrade, error_response
from cello.server.config import ServerConfig
from cello.server.errors import ClientDisconnect
from cello.server.http import wire
from cello.server.http.body import RequestStream
from cello.server.http.forwarded import TrustedProxies
from cello.server.http.head import HeadValidator, split_target
from cello.server.http.parsers import create_parser
from cello.server.http.state import (
    CLOSE,
    CLOSED,
    DONE,
    IDLE,
    KEEP,
    LINGER,
    LINGER_OVER,
    LINGERING,
    PAUSE,
    PAUSE_STREAM,
    PAUSE_WRITE,
    STREAMING,
    UNCHANGED,
    ConnectionState,
)
from cello.server.http.wire import LENGTH_LINES, STATUS_LINES
from cello.server.websocket.connection import WebSocketConnection
from cello.server.websocket.handshake import check_handshake, refusal
from cello.server.write_gate import WriteGate

if TYPE_CHECKING:
    from cello.background import AfterResponse
    from cello.server.interface import Application, Endpoint, EndpointResult

logger = logging.getLogger("cello.server")

# Largest body concatenated with its head into one buffer; larger ones go out with writelines
# (still one call) to spare the copy.
_JOIN_LIMIT: Final = 64 * 1024
# Input goes to the parser in pieces of at most this size, and no further piece while requests
# wait in the pipeline: a read full of pipelined requests becomes a few hundred Request objects
# at a time, not thousands (the rest waits as bytes, counted against input_high_water).
_FEED_SLICE: Final = 16 * 1024
# Responses answered while one read is handled (pipelined requests) are gathered and written
# with one call when the read is done, or once this much is waiting: a write per response
# made the write syscall ~70% of a pipelined plaintext run.
_CORK_LIMIT: Final = 64 * 1024


class _FailedEndpoint:
    """Stands in when ``resolve`` raises: the request is read normally and answered with 500."""

    stream_body = False
    max_body_size = 1 << 62

    @property
    def body_too_large(self) -> str:
        return body_too_large(self.max_body_size)

    def __call__(self, request: Request) -> EndpointResult:
        return error_response(500, "Internal Server Error")


class Connection(Protocol):
    """What the server's timer and shutdown need of a connection (HTTP or WebSocket)."""

    def check_timeout(self, now: float) -> None: ...

    def shutdown(self) -> None: ...

    def abort(self) -> None: ...


class ServerState:
    """What all connections of one server share: the application, the settings, a clock and
    the Date header (both refreshed by one timer instead of per request), and the open
    connections (for timeouts and graceful shutdown)."""

    def __init__(self, app: Application, config: ServerConfig, loop: asyncio.AbstractEventLoop) -> None:
        self.app = app
        self.config = config
        self.loop = loop
        self.connections: set[Connection] = set()
        self.tails = wire.HeadTails(config.server_header)
        # None unless forwarded_allow_ips names some: then each connection asks once whether
        # its peer is one of them.
        self.proxies = TrustedProxies.parse(config.forwarded_allow_ips)
        self.now = loop.time()
        self.shutting_down = False
        # Work requests asked to run after their response (``request.after_write``), while it
        # runs: graceful shutdown waits for it as for the connections.
        self.after_writes: dict[asyncio.Task[None], AfterResponse] = {}
        # Connections refused for max_connections, and when that was last logged.
        self.refused_connections = 0
        self.refusal_logged = -math.inf
        self._timer: asyncio.TimerHandle | None = None
        timeouts = [config.keep_alive_timeout, config.request_head_timeout, config.body_idle_timeout]
        timeouts += [t for t in (config.ws_ping_interval, config.ws_ping_timeout) if t > 0]
        smallest = min(timeouts)
        # Timeouts fire within a quarter of the smallest one (and at least twice a second, for Date).
        self.tick = max(0.01, min(0.5, smallest / 4))
        self.tails.update(time.time())

    def start(self) -> None:
        self._on_tick()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_tick(self) -> None:
        self._timer = self.loop.call_later(self.tick, self._on_tick)
        now = self.loop.time()
        self.now = now
        self.tails.update(time.time())
        for connection in list(self.connections):
            connection.check_timeout(now)

    def begin_shutdown(self) -> None:
        """Responses from now on close their connection; idle connections close at once."""
        self.shutting_down = True
        for connection in list(self.connections):
            connection.shutdown()

    def abort_all(self) -> None:
        for connection in list(self.connections):
            connection.abort()

    def run_after_write(self, work: AfterResponse) -> None:
        """Start the work a request left for after its response (which is out, or failed)."""
        task = self.loop.create_task(work())
        self.after_writes[task] = work
        task.add_done_callback(self._after_write_done)

    def _after_write_done(self, task: asyncio.Task[None]) -> None:
        del self.after_writes[task]
        if not task.cancelled() and task.exception() is not None:
            # The work logs its own failures; this is a broken one, not a failed call.
            logger.error("after_response work failed", exc_info=task.exception())


class HttpProtocol(asyncio.Protocol):
    _transport: asyncio.Transport
    _write: Callable[[bytes], None]  # _transport.write, bound once

    def __init__(self, state: ServerState) -> None:
        self._state = state
        self._loop = state.loop
        # Bound once per connection (these and the parser's below): a method call through an
        # object that is not a native class makes compiled code look the method up each time.
        self._resolve = state.app.resolve
        self._clock = state.loop.time
        config = state.config
        self._config = config
        self._tails = state.tails  # updated in place every second
        # The lifecycle: every decision about phases, reading, keep-alive and timeouts.
        self._st = ConnectionState(
            config.request_head_timeout,
            config.body_idle_timeout,
            config.keep_alive_timeout,
            config.min_body_rate,
            config.input_high_water,
        )
        self._parser = create_parser(config.http, self, config)
        self._parser_feed = self._parser.feed
        self._parser_in_head = self._parser.in_head
        self._client: tuple[str, int] | None = None
        self._scheme = "http"
        # Set when the peer is a trusted proxy: its requests name the client (forwarded.py).
        self._proxies: TrustedProxies | None = None
        # Receiving side: the request whose head or body is being parsed.
        self._rx_request: Request | None = None
        self._rx_endpoint: Endpoint = _FAILED
        self._rx_keep_alive = False
        self._rx_parts: list[bytes] = []
        self._rx_size = 0
        self._rx_remaining = 0
        self._rx_limit = 0
        self._rx_stream: RequestStream | None = None
        # Sending side: the request being answered, and the task answering it.
        self._tx_request: Request | None = None
        self._task: asyncio.Task[None] | None = None
        # The task is writing a streamed body (_pump): cancelling it stops the stream.
        self._pumping = False
        # Shutdown cancelled the stream: end it properly instead of as broken.
        self._ending_stream = False
        self._last_chunk = 0.0
        self._idle_timer: asyncio.TimerHandle | None = None
        self._eof = False
        # The transport is not ours to close any more (lost, aborted or handed over).
        self._lost = False
        self._write_gate = WriteGate(self._loop)
        # A WebSocket handshake whose handler has not accepted or denied yet, and the bytes
        # that followed the handshake request.
        self._ws: WebSocketConnection | None = None
        self._upgrade_data = b""
        # Input read but not parsed yet (``_held[_held_at:]``), see _FEED_SLICE; EOF that came
        # after it, applied once it is parsed.
        self._held = b""
        self._held_at = 0
        self._feeding = False
        self._eof_held = False
        # _next is answering queued requests: a sync one finishing inside it must not call
        # _next again (a flood of tiny pipelined requests would recurse once per request).
        self._answering_queue = False
        # While a read (or the queue) is being answered, complete responses wait here and go
        # out together (_flush); anything else written to the transport flushes them first.
        self._corking = False
        self._corked: list[bytes] = []
        self._corked_size = 0

    # -- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        transport = cast(asyncio.Transport, transport)
        self._transport = transport
        self._write = transport.write
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self._client = (str(peer[0]), int(peer[1]))
        if transport.get_extra_info("sslcontext") is not None:
            self._scheme = "https"
        state = self._state
        proxies = state.proxies
        if proxies is not None and self._client is not None and proxies.trusts(self._client[0]):
            self._proxies = proxies
        if len(state.connections) >= self._config.max_connections:
            self._refuse_connection()
            return
        state.connections.add(self)
        # A fresh connection gets the head timeout for its first request.
        self._st.deadline = state.now + self._config.request_head_timeout
        if state.shutting_down:
            self._close()

    def connection_lost(self, exc: Exception | None) -> None:
        st = self._st
        st.lost()
        self._lost = True
        self._state.connections.discard(self)
        self._parser.stop()
        self._held = b""
        disconnect = ClientDisconnect("client disconnected")
        stream = self._rx_stream
        if stream is not None:
            self._rx_stream = None
            stream.fail(disconnect)
        for queued in st.pipeline:
            request = queued.request
            if request is not None and isinstance(request.body_stream, RequestStream):
                request.body_stream.fail(disconnect)
        st.pipeline.clear()
        ws = self._ws
        if ws is not None:
            self._ws = None
            ws.lost_before_accept()
        if self._pumping and self._task is not None:
            # Stop a streaming response now (an SSE generator may wait for events for a long
            # time); its generator's ``finally`` runs. Plain handlers finish on their own.
            self._task.cancel()
        self._wake_writer()

    def data_received(self, data: bytes) -> None:
        self._corking = True
        try:
            if self._held or self._st.pipeline or len(data) > _FEED_SLICE:
                self._hold(data)
            else:
                self._feed(data)
        finally:
            self._corking = False
            if self._corked:
                self._flush()

    def _flush(self) -> None:
        """Write the responses gathered while corked, in one call."""
        corked = self._corked
        if not corked:
            return
        data = corked[0] if len(corked) == 1 else b"".join(corked)
        corked.clear()
        self._corked_size = 0
        if not self._lost:
            self._write(data)

    def _feed(self, data: bytes) -> None:
        st = self._st
        if not st.bytes_received(self._state.now):
            return
        self._parser_feed(data)
        if st.reading == IDLE and self._parser_in_head():
            # A response written during this feed made the connection idle, but the same read
            # went on into the next request's head.
            st.head_begun(self._state.now)

    def _hold(self, data: bytes) -> None:
        if self._st.writing >= LINGERING:
            return
        held = self._held
        self._held = held[self._held_at :] + data if held else data
        self._held_at = 0
        self._feed_held()
        if len(self._held) > self._st.high_water:
            self._update_reading()

    def _feed_held(self) -> None:
        """Parse held input, a slice at a time, until requests wait in the pipeline (or the
        handler of a streamed body stops reading it)."""
        if self._feeding or not self._held:
            return
        self._feeding = True
        st = self._st
        try:
            while self._held and st.may_feed():
                start = self._held_at
                # A body of known length goes to the parser whole (an upload must not be cut
                # into 16 KiB pieces); heads, where a flood of pipelined requests hides, are sliced.
                slice_size = _FEED_SLICE
                if self._rx_request is not None and self._rx_remaining > slice_size:
                    slice_size = self._rx_remaining
                end = start + slice_size
                piece = self._held[start:end]
                if end >= len(self._held):
                    self._held = b""
                    self._held_at = 0
                else:
                    self._held_at = end
                self._feed(piece)
        finally:
            self._feeding = False
        if self._eof_held and (not self._held or st.reading == DONE):
            self._eof_held = False
            if not self._end_of_input():
                self._close()
        elif st.read_paused:
            self._update_reading()

    def eof_received(self) -> bool | None:
        # The client sent everything it will send: answer what is complete, then close. A
        # client that stops sending during a streaming response (SSE) has gone away: a half
        # close cannot be told apart from a close until a write fails, which may take long.
        if self._st.writing == LINGERING:
            return None
        if self._held and self._st.reading != DONE and not self._pumping:
            self._eof_held = True  # _feed_held ends the input once the held requests are parsed
            return True
        return True if self._end_of_input() else None

    def _end_of_input(self) -> bool:
        """No more input: whether the transport stays open for the responses still due."""
        self._parser.stop()
        st = self._st
        st.end_input()
        self._eof = True
        if self._pumping:
            return False  # connection_lost stops the stream
        stream = self._rx_stream
        if stream is not None:
            self._rx_stream = None
            stream.fail(ClientDisconnect("client closed before the end of the body"))
        self._rx_request = None
        return st.answering()

    def pause_writing(self) -> None:
        # The client does not read what it asked for: read no more of what it sends, and answer
        # nothing more (on_end queues requests) until it catches up. Without this, pipelined
        # requests answered inline (sync handlers) would pile their answers up in the transport.
        self._st.pause(PAUSE_WRITE)
        self._update_reading()

    def resume_writing(self) -> None:
        st = self._st
        st.unpause(PAUSE_WRITE)
        self._wake_writer()
        if st.pipeline:
            if st.writing == IDLE:
                self._next()
        else:
            self._feed_held()
        self._update_reading()

    # -- parser events ----------------------------------------------------------------

    def on_head(
        self,
        method: str,
        target: bytes,
        http_version: str,
        headers: list[tuple[bytes, bytes]],
        head: HeadValidator,
    ) -> None:
        st = self._st
        if st.reading == DONE:
            return
        raw_path, query = split_target(target)
        request = WireRequest(
            method, raw_path, query, headers, self._client, self._scheme, http_version, head.websocket
        )
        if self._proxies is not None:
            self._proxies.apply(request)
        try:
            endpoint = self._resolve(request)
        except Exception:
            logger.exception("error resolving %s %s", method, raw_path)
            endpoint = _FAILED
        limit = endpoint.max_body_size
        chunked = head.chunked
        if not chunked and head.content_length > limit:
            # Refused before reading: with "Expect: 100-continue" the client never sends it.
            self._refuse(413, endpoint.body_too_large)
            return
        keep_alive = head.keep_alive
        self._rx_request = request
        self._rx_endpoint = endpoint
        self._rx_keep_alive = keep_alive
        self._rx_size = 0
        # Body bytes still expected (Content-Length), fed to the parser in one piece.
        self._rx_remaining = 0 if chunked else head.content_length
        self._rx_limit = limit
        expects_body = chunked or head.content_length > 0
        if endpoint.stream_body:
            st.head_received(True)
            stream = RequestStream(self, self._loop, self._config.stream_high_water, head.expect_continue)
            request.body_stream = stream
            self._rx_stream = stream
            self._submit(request, endpoint, keep_alive)
            if expects_body and st.writing < LINGERING:
                st.start_body(self._state.now)
                if head.expect_continue:
                    # The client waits for "100 Continue", sent when the handler first reads
                    # (send_continue starts the clock again).
                    st.wait_for_continue()
            return
        st.head_received(False)
        if expects_body:
            st.start_body(self._state.now)
        if head.expect_continue:
            if st.answering():
                st.continue_pending = True
            else:
                self._flush()
                self._transport.write(wire.CONTINUE)

    def on_body(self, data: bytes) -> None:
        st = self._st
        if st.reading == DONE:
            return
        size = self._rx_size + len(data)
        self._rx_size = size
        self._rx_remaining -= len(data)
        if size > self._rx_limit:
            self._refuse(413, self._rx_endpoint.body_too_large)
            return
        st.body_received(len(data), self._state.now)
        stream = self._rx_stream
        if stream is not None:
            stream.feed(data)
        else:
            self._rx_parts.append(data)

    def on_end(self) -> None:
        st = self._st
        if st.reading == DONE:
            return
        request = self._rx_request
        if request is None:
            return
        self._rx_request = None
        keep_alive = self._rx_keep_alive
        st.request_ended(keep_alive)
        if not keep_alive:
            # Nothing after this request is read; the connection closes after its response.
            self._parser.stop()
            self._update_reading()
        stream = self._rx_stream
        if stream is not None:
            self._rx_stream = None
            stream.end()
            return
        parts = self._rx_parts
        if parts:
            request.body_bytes = b"".join(parts)
            parts.clear()
        if st.must_wait():
            self._submit(request, self._rx_endpoint, keep_alive)
        else:
            self._dispatch(request, self._rx_endpoint, keep_alive)

    def on_error(self, status: int, reason: str) -> None:
        self._refuse(status, reason)

    def on_upgrade(self, data: bytes) -> None:
        self._upgrade_data = data

    # -- flow control (RequestStream's owner) -------------------------------------------

    def send_continue(self) -> None:
        if self._st.writing < LINGERING:
            self._flush()
            self._transport.write(wire.CONTINUE)
            self._st.resume_body(self._state.now)  # the client has been waiting for this to send the body

    def pause_for_stream(self) -> None:
        self._st.pause(PAUSE_STREAM)
        self._update_reading()

    def resume_for_stream(self) -> None:
        st = self._st
        st.unpause(PAUSE_STREAM)
        st.resume_body(self._state.now)
        self._feed_held()
        self._update_reading()

    def _update_reading(self) -> None:
        change = self._st.reading_change(len(self._held))
        if change != UNCHANGED:
            if change == PAUSE:
                self._transport.pause_reading()
            else:
                self._transport.resume_reading()

    # -- refusing input ---------------------------------------------------------------

    def _refuse(self, status: int, reason: str) -> None:
        """Answer ``status`` in turn and read nothing more."""
        st = self._st
        if st.reading == DONE:
            return
        st.end_input()
        self._parser.stop()
        self._update_reading()
        self._rx_request = None
        stream = self._rx_stream
        if stream is not None:
            # The handler already has this request: it sees the error while reading the body
            # and answers it itself (an HTTPException becomes the error response).
            self._rx_stream = None
            stream.fail(HTTPException(status, reason))
            return
        if st.answering():
            st.queue_refusal(status, reason)
        else:
            self._send_refusal(status, reason)

    def _send_refusal(self, status: int, reason: str) -> None:
        if self._st.writing < LINGERING:
            self._flush()
            self._transport.write(wire.render_error(status, reason, self._state.tails.close))
        self._close(linger=True)

    # -- calling the application ------------------------------------------------------

    def _submit(self, request: Request, endpoint: Endpoint, keep_alive: bool) -> None:
        st = self._st
        if st.must_wait():
            st.queue(request, endpoint, keep_alive)
            self._update_reading()
        else:
            self._dispatch(request, endpoint, keep_alive)

    def _dispatch(self, request: Request, endpoint: Endpoint, keep_alive: bool) -> None:
        self._st.dispatched(keep_alive)
        self._tx_request = request
        try:
            result = endpoint(request)
        except Exception:
            # Endpoints promise not to raise; a broken one must not take the connection down.
            logger.exception("unhandled error in %s %s", request.method, request.raw_path)
            result = error_response(500, "Internal Server Error")
        if isinstance(result, Response):
            self._send(result)
        else:
            self._task = self._loop.create_task(self._complete(result))

    async def _complete(self, pending: Awaitable[Response]) -> None:
        try:
            response = await pending
        except Exception:
            request = self._tx_request
            logger.exception(
                "unhandled error in %s %s",
                request.method if request is not None else "?",
                request.raw_path if request is not None else "?",
            )
            response = error_response(500, "Internal Server Error")
        if not isinstance(response, Response):
            logger.error("endpoint returned %r instead of a Response", type(response).__name__)
            response = error_response(500, "Internal Server Error")
        if response.body_chunks is None:
            self._send(response)
        else:
            await self._send_stream(response)

    def _keep_alive_now(self) -> bool:
        """Whether the connection stays open after the response being written (state.py
        decides; a handler that answered before its body arrived leaves the rest unread)."""
        rx = self._rx_request
        return self._st.keep_alive_now(self._state.shutting_down, rx is not None and rx is self._tx_request)

    def _tail(self, keep_alive: bool, request: Request) -> bytes:
        tails = self._tails
        if not keep_alive:
            return tails.close
        if request.http_version == "1.0":
            return tails.keep_alive_10
        return tails.keep_alive

    def _send(self, response: Response) -> None:
        """Write a complete response (head and body in one write)."""
        if response.body_chunks is not None:
            self._task = self._loop.create_task(self._send_stream(response))
            return
        request = self._tx_request
        assert request is not None
        keep_alive = self._keep_alive_now()
        tail = self._tail(keep_alive, request)
        status = response.status
        body = response.body_bytes
        # Most responses: one buffer holding head and body. A large body is not copied into
        # it (writelines), HEAD and bodiless statuses send the head alone.
        large = b""
        try:
            if status >= 200 and status != 204 and status != 304:
                line = STATUS_LINES.get(status)
                if line is None:
                    line = wire.status_line(status)
                size = len(body)
                length = LENGTH_LINES[size] if size < 4096 else wire.content_length_line(size)
                headers = wire.render_headers(response.raw_headers())
                if request.method == "HEAD":
                    data = b"".join((line, headers, length, tail))
                elif size > _JOIN_LIMIT:
                    data = b"".join((line, headers, length, tail))
                    large = body
                else:
                    data = b"".join((line, headers, length, tail, body))
            else:
                if status == 101 and isinstance(response, WebSocketUpgrade):
                    self._upgrade(request, response)
                    return
                headers = wire.render_headers(wire.without_framing(response.raw_headers()))
                data = wire.status_line(status) + headers + tail
        except Exception:
            # e.g. a header value that is not latin-1
            logger.exception("cannot render the response to %s %s", request.method, request.raw_path)
            data = wire.render_error(500, "Internal Server Error", tail, request.method != "HEAD")
        if self._st.writing < LINGERING:
            if large:
                self._flush()
                self._transport.writelines((data, large))
            elif self._corking:
                self._corked.append(data)
                self._corked_size += len(data)
                if self._corked_size >= _CORK_LIMIT:
                    self._flush()
            else:
                self._write(data)
        self._finish()

    # -- WebSocket -----------------------------------------------------------------------

    def _upgrade(self, request: Request, response: WebSocketUpgrade) -> None:
        """Run the WebSocket handler; it accepts (``upgraded``) or denies (``denied``)."""
        handshake = check_handshake(request) if request.upgrade else None
        if handshake is None or handshake.status:
            self._st.keep_alive = False
            self._send(refusal(handshake))
            return
        self._flush()  # the responses before the handshake's
        ws = WebSocketConnection(self._state, self._transport, self, handshake, response)
        self._ws = ws
        ws.start()

    def upgraded(self) -> bytes:
        """The 101 is out: this connection is the WebSocket's now (connection.UpgradeOwner)."""
        request = self._tx_request
        if request is not None and request.after_write is not None:
            self._state.run_after_write(request.after_write)  # the handshake's response is out
        self._ws = None
        self._state.connections.discard(self)
        self._st.handed_over()
        self._task = None
        self._tx_request = None
        # The transport is not ours to abort any more.
        self._lost = True
        data = self._upgrade_data
        self._upgrade_data = b""
        if self._held:
            # Frames that came in a later slice than the handshake (see _FEED_SLICE).
            data += self._held[self._held_at :]
            self._held = b""
        return data

    def denied(self, response: Response) -> None:
        """The handler refused the handshake (connection.UpgradeOwner)."""
        self._ws = None
        self._upgrade_data = b""
        self._st.keep_alive = False
        if isinstance(response, WebSocketUpgrade):
            response = error_response(500, "Internal Server Error")
        self._send(response)

    async def _send_stream(self, response: Response) -> None:
        iterator = response.body_chunks
        assert iterator is not None
        request = self._tx_request
        assert request is not None
        status = response.status
        headers = response.raw_headers()
        length = wire.declared_length(headers)
        body_allowed = wire.has_body(status)
        # Without a length, HTTP/1.1 gets chunks; HTTP/1.0 gets the body up to the close.
        chunked = body_allowed and length < 0 and request.http_version == "1.1"
        st = self._st
        if body_allowed and length < 0 and not chunked:
            st.keep_alive = False
        keep_alive = self._keep_alive_now()
        stream_body = body_allowed and request.method != "HEAD"
        # An event stream never ends by itself: shutdown ends it instead of waiting for it.
        event_stream = wire.is_event_stream(headers)
        tail = self._tail(keep_alive, request)
        try:
            if not body_allowed:
                head = wire.status_line(status) + wire.render_headers(wire.without_framing(headers))
            elif chunked:
                head = wire.status_line(status) + wire.render_headers(headers) + wire.CHUNKED
            else:
                head = wire.status_line(status) + wire.render_headers(headers)
            head += tail
        except Exception:
            logger.exception("cannot render the response to %s %s", request.method, request.raw_path)
            head = wire.render_error(500, "Internal Server Error", tail, request.method != "HEAD")
            stream_body = False
        if self._eof and stream_body:
            # See eof_received: the client is gone, nothing is written.
            st.keep_alive = False
        elif st.writing < LINGERING:
            self._transport.write(head)
            if stream_body:
                st.streaming(event_stream)
                self._pumping = True
                sent = await self._pump(iterator, chunked, response.idle_filler)
                self._pumping = False
                st.stream_ended()
                if length >= 0 and sent != length:
                    if sent >= 0:
                        logger.error("streamed %d bytes but Content-Length said %d", sent, length)
                    # The client cannot find the end of this response: close.
                    st.keep_alive = False
        await _aclose(iterator)
        self._finish()

    async def _pump(self, iterator: Any, chunked: bool, idle: tuple[float, bytes] | None) -> int:
        """Write the chunks as they come, flushing each at once; -1 when the stream broke.

        ``idle`` (seconds, filler) asks for the filler after that long without a chunk (SSE
        keep-alive comments): one timer per stream, instead of a timeout per chunk.
        """
        sent = 0
        transport = self._transport
        loop = self._loop
        st = self._st
        timer: asyncio.TimerHandle | None = None
        if idle is not None:
            filler = wire.chunk(idle[1]) if chunked else idle[1]
            self._last_chunk = loop.time()
            timer = loop.call_later(idle[0], self._idle_tick, idle[0], filler)
        try:
            async for data in iterator:
                if st.writing >= LINGERING:
                    break
                if not data:
                    continue  # an empty chunk would end a chunked body
                if chunked:
                    transport.write(wire.chunk(data))
                else:
                    transport.write(data)
                sent += len(data)
                if timer is not None:
                    self._last_chunk = loop.time()
                if st.paused & PAUSE_WRITE:
                    await self._drain()
            else:
                if chunked and st.writing < LINGERING:
                    transport.write(wire.LAST_CHUNK)
        except asyncio.CancelledError:
            if self._ending_stream and chunked and st.writing < LINGERING:
                # Server shutdown: end the stream properly so the client sees a clean end.
                transport.write(wire.LAST_CHUNK)
                return sent
            return -1  # the client went away (connection_lost cancels us)
        except Exception:
            logger.exception("error while streaming a response")
            # The head is out: all that can still be said is that the response is broken.
            st.keep_alive = False
            if st.writing < LINGERING:
                self._transport.abort()
            return -1
        finally:
            if self._idle_timer is not None:
                self._idle_timer.cancel()
                self._idle_timer = None
            elif timer is not None:
                timer.cancel()
        return sent

    def _idle_tick(self, interval: float, filler: bytes) -> None:
        self._idle_timer = None
        if self._st.writing != STREAMING:
            return
        silent = self._loop.time() - self._last_chunk
        if silent >= interval * 0.999:
            if not self._st.paused & PAUSE_WRITE:
                self._transport.write(filler)
            self._last_chunk = self._loop.time()
            silent = 0.0
        self._idle_timer = self._loop.call_later(interval - silent, self._idle_tick, interval, filler)

    async def _drain(self) -> None:
        if self._st.paused & PAUSE_WRITE and self._st.writing < LINGERING:
            await self._write_gate.wait()

    def _wake_writer(self) -> None:
        self._write_gate.release()

    def _finish(self) -> None:
        """The current response is fully written (or failed to be: the client left)."""
        st = self._st
        st.finished()
        request = self._tx_request
        if request is not None and request.after_write is not None:
            self._state.run_after_write(request.after_write)
        self._task = None
        self._tx_request = None
        if st.writing != IDLE:
            return  # closed
        if not st.keep_alive:
            self._close(linger=True)
            return
        if st.pipeline:
            if not self._answering_queue:
                self._next()  # (else the loop in _next goes on)
        else:
            self._became_idle()

    def _next(self) -> None:
        # A loop, not recursion: sync handlers finish inside _dispatch.
        st = self._st
        pipeline = st.pipeline
        self._answering_queue = True
        corking = self._corking
        self._corking = True
        try:
            while st.writing == IDLE and pipeline:
                if st.paused & PAUSE_WRITE:
                    return  # resume_writing continues
                queued = pipeline.popleft()
                request = queued.request
                endpoint = queued.endpoint
                if request is None or endpoint is None:
                    self._send_refusal(queued.status, queued.reason)
                    return
                self._dispatch(request, endpoint, queued.keep_alive)
                if st.read_paused:
                    # A queued request streaming its body needs reading back on.
                    self._update_reading()
        finally:
            self._answering_queue = False
            self._corking = corking
            if not corking:
                self._flush()
        if st.writing == IDLE and not pipeline:
            self._became_idle()
        elif not pipeline:
            self._feed_held()

    def _became_idle(self) -> None:
        st = self._st
        if st.read_paused:
            self._update_reading()
        if self._rx_request is None:
            if st.reading == DONE:
                self._close()  # EOF came while answering
                return
            if self._state.shutting_down:
                # A response begun before the shutdown (a stream) has ended: close now, not at
                # the keep-alive timeout. Linger if the client has sent more already.
                self._close(linger=bool(self._held) or self._parser_in_head())
                return
            # The loop's clock, not the tick's: answering a slice of pipelined requests can
            # outlast the keep-alive timeout on a busy machine, and a deadline from the last
            # tick would then close the connection before its next request (already sent,
            # not yet read: uvloop runs timers before it reads) is seen.
            st.became_idle(self._clock())
        else:
            st.resume_body(self._state.now)  # its body waited while the requests before it were answered
            if st.continue_pending:
                st.continue_pending = False
                self._flush()
                self._transport.write(wire.CONTINUE)
        self._feed_held()

    # -- closing ----------------------------------------------------------------------

    def _close(self, linger: bool = False) -> None:
        """Stop reading and writing. With ``linger``, first half-close and drop input for a
        moment: closing a socket with unread input makes the kernel send a reset, which can
        destroy the response before the client reads it (a refused upload, a pipelined
        request after a refusal)."""
        st = self._st
        if st.writing >= LINGERING:
            return
        self._flush()
        self._parser.stop()
        self._held = b""
        transport = self._transport
        if linger and not self._eof and transport.can_write_eof():
            read_paused = st.read_paused
            st.close(self._state.now, True)
            transport.write_eof()
            if read_paused:
                transport.resume_reading()
            return
        st.close(self._state.now, False)
        transport.close()

    def check_timeout(self, now: float) -> None:
        """Called by the server's timer; state.py decides."""
        st = self._st
        if now < st.deadline:
            return
        action = st.check_timeout(now, len(self._held))
        if action == KEEP:
            return
        if action == LINGER_OVER:
            self._transport.close()
        elif action == CLOSE:
            self._close()  # keep-alive idle timeout: nothing to say
        else:
            self._refuse(408, "Request Timeout")

    def _refuse_connection(self) -> None:
        """Over max_connections: the kernel accepted already, so answer 503 and close. Not in
        ``state.connections`` (it must not count), hence its own timer for the linger."""
        state = self._state
        state.refused_connections += 1
        if state.now - state.refusal_logged >= 10.0:
            state.refusal_logged = state.now
            logger.warning(
                "more than %d connections: refusing new ones with 503 (%d so far)",
                self._config.max_connections,
                state.refused_connections,
            )
        self._send_refusal(503, "Service Unavailable: too many connections")
        self._loop.call_later(LINGER, self._transport.close)

    def shutdown(self) -> None:
        """Graceful shutdown: close if idle, otherwise after the response in progress."""
        st = self._st
        if st.writing == LINGERING:
            st.writing = CLOSED
            self._transport.close()
        elif st.writing == CLOSED:
            return
        elif st.idle_for_shutdown():
            self._close()
        elif self._pumping and st.event_stream and self._task is not None:
            self._ending_stream = True
            self._task.cancel()

    def abort(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._st.handed_over()
        if not self._lost:
            self._transport.abort()


_FAILED: Final = _FailedEndpoint()


async def _aclose(iterator: Any) -> None:
    aclose = getattr(iterator, "aclose", None)
    if aclose is None:
        return
    try:
        await aclose()
    except Exception:
        logger.exception("error while closing a response stream")
