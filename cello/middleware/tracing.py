"""OpenTelemetry server spans: one per HTTP request, one per WebSocket session.

``app.enable_tracing()`` gives every endpoint the app builds (routes, the multipart variants,
the router's own 404/405/OPTIONS/308 answers and WebSocket handshakes) a :class:`Tracing`,
which the endpoint calls around the whole chain, ``use`` middleware included (cello/pipeline.py,
``TracingHooks``). Not a ``use`` middleware itself: a route with one runs on the async path
(a task per request), and tracing would have cost every traced route that. The span is made
current while the chain runs: spans the handler starts, and clients instrumented with
OpenTelemetry that it calls, become its children. A WebSocket span lasts from the handshake to
the close.

Only opentelemetry-api is used; the SDK, its processors and exporters are the app's choice.
Attributes follow OpenTelemetry's HTTP semantic conventions (stable since 1.23).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextvars import Token
from typing import TYPE_CHECKING

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from cello.errors import HTTPException, unhandled_observers
from cello.request import Request
from cello.response import Response, WebSocketUpgrade

if TYPE_CHECKING:
    from cello.server.interface import SharedMessage, WebSocketSession

logger = logging.getLogger("cello.tracing")

# Methods the conventions name; any other is reported as "_OTHER" (an unbounded value would
# make an unbounded number of span names).
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
# Not in the conventions (they have no WebSocket attributes yet): the code the session closed with.
CLOSE_CODE = "websocket.close.code"


class _RequestGetter(Getter[Request]):
    """How the propagator reads ``traceparent``/``tracestate`` (and baggage) from a request:
    from its raw headers, without decoding them all into ``request.headers``."""

    def get(self, carrier: Request, key: str) -> list[str] | None:
        return carrier.header_values(key.lower().encode("latin-1")) or None

    def keys(self, carrier: Request) -> list[str]:
        return list(carrier.headers)


_getter = _RequestGetter()


def record_unhandled(exc: BaseException) -> None:
    """An exception Cello answered with 500 (or a 1011 close): on the current span, which is
    the request's while its chain runs (``cello.errors.unhandled_observers``)."""
    span = trace.get_current_span()
    if span.is_recording():
        _record(span, exc)


def _record(span: Span, exc: BaseException) -> None:
    span.record_exception(exc)
    span.set_attribute("error.type", _error_type(exc))
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))


class _Traced:
    """A request's span, the context that has it current, and the token to leave it with."""

    __slots__ = ("span", "context", "token")

    def __init__(self, span: Span, context: otel_context.Context, token: Token[otel_context.Context]) -> None:
        self.span = span
        self.context = context
        self.token = token


class Tracing:
    """What ``app.enable_tracing()`` gives the endpoints: its tracer and whether responses
    carry the server span's ``traceparent``."""

    def __init__(self, tracer: trace.Tracer, response_traceparent: bool = True) -> None:
        self.tracer = tracer
        self.response_traceparent = response_traceparent
        self._failed = False

    def start(self, request: Request) -> None:
        try:
            self._start(request)
        except Exception:
            # A broken tracer or propagator must not take the app down with it: the request is
            # served without a span (the other calls see none and do nothing). Said once.
            if not self._failed:
                self._failed = True
                logger.exception("tracing: the tracer failed; requests it fails on are served without a span")

    def _start(self, request: Request) -> None:
        method = request.method
        route = request.route
        known = method in KNOWN_METHODS
        # The route template, never the path: span names and http.route stay low-cardinality.
        # A request no route matched (404) has none, and its span is named by the method.
        name = (method if known else "HTTP") if route is None else f"{method if known else 'HTTP'} {route}"
        parent = propagate.extract(request, getter=_getter)
        span = self.tracer.start_span(name, parent, SpanKind.SERVER, _request_attributes(request, method, known))
        active = trace.set_span_in_context(span, parent)
        request.trace = _Traced(span, active, otel_context.attach(active))

    def leave(self, request: Request) -> None:
        traced = request.trace
        if isinstance(traced, _Traced):
            otel_context.detach(traced.token)

    def resume(self, request: Request) -> None:
        traced = request.trace
        if isinstance(traced, _Traced):
            # In a task of the request's own: current until the task ends.
            otel_context.attach(traced.context)

    def fail(self, request: Request, exc: BaseException) -> None:
        traced = request.trace
        if not isinstance(traced, _Traced):
            return
        # Only the task's cancellation (the client left) gets here, or a failure outside the
        # chain, which answers its own: that ends the span, nothing more.
        span = traced.span
        if isinstance(exc, HTTPException):
            _finish_http(span, exc.status)
        elif isinstance(exc, Exception):
            _record(span, exc)
        span.end()

    def finish(self, request: Request, response: Response) -> None:
        traced = request.trace
        if not isinstance(traced, _Traced):
            return
        span = traced.span
        if self.response_traceparent:
            header = _traceparent(span)
            if header is not None:
                response.set_header("traceparent", header)
        if isinstance(response, WebSocketUpgrade):
            # The session's span ends when the connection does (or when the handler refuses).
            response.run = _traced_session(span, traced.context, response.run)
            return
        # A streamed body is still being produced: the span covers the handler, not the transfer.
        _finish_http(span, response.status)
        span.end()


def _traced_session(
    span: Span, context: otel_context.Context, run: Callable[[WebSocketSession], Awaitable[None]]
) -> Callable[[WebSocketSession], Awaitable[None]]:
    """``run`` (the handler's runner) with ``span`` current, ending it when the session ends."""

    async def traced(session: WebSocketSession) -> None:
        observed = _ObservedSession(session)
        token = otel_context.attach(context)
        try:
            await run(observed)
        except Exception as exc:  # the runner answers the handler's failures: this is its own
            _record(span, exc)
            raise
        finally:
            otel_context.detach(token)
            status = observed.denied_with or (101 if observed.accepted else 0)
            if status:
                _finish_http(span, status)
            if observed.accepted:
                code = session.close_code
                span.set_attribute(CLOSE_CODE, code)
                # 1011: the handler failed (its exception is already recorded, if it raised one).
                if code == 1011 and not _has_error_type(span):
                    span.set_status(Status(StatusCode.ERROR, "closed with 1011 (internal error)"))
            span.end()

    return traced


class _ObservedSession:
    """A WebSocket session as the handler's runner sees it, noting how the handshake ended."""

    __slots__ = ("_session", "accepted", "denied_with")

    def __init__(self, session: WebSocketSession) -> None:
        self._session = session
        self.accepted = False
        self.denied_with = 0

    @property
    def close_code(self) -> int:
        return self._session.close_code

    @property
    def close_reason(self) -> str:
        return self._session.close_reason

    async def accept(self, subprotocol: str | None, headers: list[tuple[str, str]]) -> bool:
        self.accepted = await self._session.accept(subprotocol, headers)
        return self.accepted

    async def deny(self, response: Response) -> None:
        self.denied_with = response.status
        await self._session.deny(response)

    async def receive(self) -> str | bytes | int:
        return await self._session.receive()

    async def send(self, data: str | bytes) -> bool:
        return await self._session.send(data)

    def send_nowait(self, message: SharedMessage) -> bool:
        return self._session.send_nowait(message)

    async def close(self, code: int, reason: str) -> None:
        await self._session.close(code, reason)


def _request_attributes(request: Request, method: str, known: bool) -> dict[str, AttributeValue]:
    attributes: dict[str, AttributeValue] = {
        "http.request.method": method if known else "_OTHER",
        "url.path": request.raw_path,
        "url.scheme": request.scheme,
        "network.protocol.version": request.http_version,
    }
    if not known:
        attributes["http.request.method_original"] = method
    route = request.route
    if route is not None:
        attributes["http.route"] = route
    query = request.query_string
    if query:
        attributes["url.query"] = query
    host, port = _split_host(request.host, request.scheme)
    if host:
        attributes["server.address"] = host
        if port:
            attributes["server.port"] = port
    client = request.client
    if client is not None:
        attributes["client.address"] = client[0]
    agent = request.header(b"user-agent")
    if agent is not None:
        attributes["user_agent.original"] = agent
    return attributes


def _split_host(host: str, scheme: str) -> tuple[str, int]:
    """``(address, port)`` of a Host header value, the port defaulting to the scheme's."""
    if host.startswith("["):  # an IPv6 literal: [::1]:8000
        end = host.find("]")
        address, rest = host[1:end], host[end + 1 :]
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        address, _, port_text = host.partition(":")
    port = int(port_text) if port_text.isdigit() else DEFAULT_PORTS.get(scheme, 0)
    return address, port


def _finish_http(span: Span, status: int) -> None:
    span.set_attribute("http.response.status_code", status)
    # A server span is an error for 5xx only: 4xx are the client's (the conventions' rule).
    # After a recorded exception it is one already, with the exception's description.
    if status >= 500 and not _has_error_type(span):
        span.set_status(Status(StatusCode.ERROR))
        span.set_attribute("error.type", str(status))


def _has_error_type(span: Span) -> bool:
    """Whether an error was recorded on ``span`` (an SDK span shows its attributes; a span
    that records nothing has none to show)."""
    attributes = getattr(span, "attributes", None)
    return attributes is not None and "error.type" in attributes


def _error_type(exc: BaseException) -> str:
    cls = type(exc)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def _traceparent(span: Span) -> str | None:
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return None
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}"


def install(tracer_provider: trace.TracerProvider | None, version: str, response_traceparent: bool = True) -> Tracing:
    """The endpoints' tracing, with the tracer ``cello`` of ``tracer_provider`` (None: the
    global one, looked up at each span, so the SDK may be configured after this call);
    unhandled exceptions are recorded on the current span from now on (once per process)."""
    if record_unhandled not in unhandled_observers:
        unhandled_observers.append(record_unhandled)
    tracer = trace.get_tracer("cello", version, tracer_provider)
    return Tracing(tracer, response_traceparent)
