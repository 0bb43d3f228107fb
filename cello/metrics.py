"""Prometheus metrics of an app: ``app.enable_metrics()``.

A before/after hook pair on the app's scope counts and times every request by route template
(``/users/{id:int}``, never the raw path, so a scanner cannot mint label values), method and
status. Streamed bodies and WebSocket handlers are wrapped, so that the open-stream gauges and
the bytes sent follow them to their end. An app that does not enable metrics has none of it:
no hook, no wrapper, no import of prometheus-client.

With several worker processes (``cello serve --workers N``) the runner calls
:meth:`Metrics.share_between_processes` before forking: prometheus-client's multiprocess mode
keeps each process's values in files of a private directory, a scrape answered by any worker
adds up every process's files, and the supervisor reports the workers it reaps
(:meth:`Metrics.worker_exited`), which drops their gauges and counts their restarts.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from time import perf_counter
from typing import TYPE_CHECKING, Any

from cello.pipeline import Scope
from cello.request import Request
from cello.response import Response, WebSocketUpgrade

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

    from cello.server.interface import WebSocketSession

# The route label of a request no route matched (404, 405, a scanner's random paths).
UNMATCHED = "<unmatched>"
# Methods kept as label values; any other (h11 accepts any token) is counted as "OTHER".
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"))
# Labelled children cached per (route, method, status) as the requests come; past this many
# keys (only garbage methods get there) the children are looked up without being cached.
_CACHE_LIMIT = 4096
_ENV = "PROMETHEUS_MULTIPROC_DIR"

# (requests, duration, bytes received, bytes sent) of one (route, method, status).
_Children = tuple["Counter", "Histogram", "Counter", "Counter"]


def _prometheus() -> Any:
    try:
        import prometheus_client
    except ImportError:
        raise RuntimeError(
            "app.enable_metrics() needs prometheus-client: pip install 'cello-framework[metrics]'"
        ) from None
    return prometheus_client


def _multiprocess_mode() -> bool:
    """Whether metrics created now keep their values in PROMETHEUS_MULTIPROC_DIR's files."""
    from prometheus_client import values

    return bool(getattr(values.ValueClass, "_multiprocess", False))


class Metrics:
    """An app's Prometheus metrics, the hooks that update them and the page that shows them."""

    def __init__(self, path: str, buckets: Sequence[float] | None = None) -> None:
        prometheus = _prometheus()
        self.path = path
        self._buckets: tuple[float, ...] = tuple(buckets) if buckets else tuple(prometheus.Histogram.DEFAULT_BUCKETS)
        # Set when values live in files (ours, or an operator's PROMETHEUS_MULTIPROC_DIR).
        self._directory: str | None = os.environ.get(_ENV) if _multiprocess_mode() else None
        self._owned: str | None = None
        self._build()

    def _build(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        # A registry per app, not the global one: several apps (tests) do not collide, and
        # a scrape shows this app's metrics plus what the operator registers on it.
        registry = CollectorRegistry()
        labels = ("route", "method", "status")
        self.registry: CollectorRegistry = registry
        self._requests = Counter(
            "cello_requests", "HTTP requests answered, by route template, method and status.", labels, registry=registry
        )
        self._duration = Histogram(
            "cello_request_duration_seconds",
            "Seconds from the app's first hook to its last (a streamed body's time is not included).",
            labels,
            registry=registry,
            buckets=self._buckets,
        )
        self._received = Counter(
            "cello_request_body_bytes", "Request body bytes received.", ("route", "method"), registry=registry
        )
        self._sent = Counter(
            "cello_response_body_bytes",
            "Response body bytes sent (streamed bodies included).",
            ("route", "method"),
            registry=registry,
        )
        # livesum: a worker's share leaves the sum when the supervisor reaps it.
        self._in_flight = Gauge(
            "cello_requests_in_flight", "Requests being handled.", registry=registry, multiprocess_mode="livesum"
        )
        self._websockets = Gauge(
            "cello_websockets_open", "WebSocket handlers running.", registry=registry, multiprocess_mode="livesum"
        )
        self._streams = Gauge(
            "cello_sse_streams_open", "Server-sent event streams open.", registry=registry, multiprocess_mode="livesum"
        )
        self._restarts = Counter(
            "cello_worker_restarts", "Worker processes that exited and were replaced.", registry=registry
        )
        self._children: dict[tuple[str | None, str, int], _Children] = {}

    # -- installation --------------------------------------------------------------------

    def pin(self, scope: Scope) -> None:
        """Keep the hooks outermost in the app's scope whatever is enabled after them: the
        first before-hook starts the clock, the last after-hook sees the final status and body
        (after compression, say)."""
        before, after = scope.before, scope.after
        if not before or before[0] != self.before:
            if self.before in before:
                before.remove(self.before)
            before.insert(0, self.before)
        # After-hooks run in reverse registration order: the first runs last.
        if not after or after[0] != self.after:
            if self.after in after:
                after.remove(self.after)
            after.insert(0, self.after)

    # -- the hooks -----------------------------------------------------------------------

    def before(self, request: Request) -> None:
        # Always set: a request whose "started" is still 0.0 at the after-hook is one a hook
        # ahead of this one answered (a CORS preflight), not counted in flight.
        request.started = perf_counter()
        self._in_flight.inc()

    def after(self, request: Request, response: Response) -> None:
        started = request.started
        status = response.status
        key = (request.route, request.method, status)
        children = self._children.get(key)
        if children is None:
            children = self._children_for(key)
        requests, duration, received, sent = children
        requests.inc()
        if started:
            duration.observe(perf_counter() - started)
            self._in_flight.dec()
        body = request.body_bytes
        if body:
            received.inc(len(body))
        elif request.body_stream is not None:
            # A body streamed to the handler: what the client declared (the server enforced it).
            declared = request.header(b"content-length")
            if declared is not None and declared.isdigit():
                received.inc(int(declared))
        chunks = response.body_chunks
        if chunks is not None:
            response.body_chunks = _CountedStream(chunks, sent, self._streams if _is_event_stream(response) else None)
        elif status == 101 and isinstance(response, WebSocketUpgrade):
            response.run = self._websocket(response.run)
        else:
            size = len(response.body_bytes)
            if size and request.method != "HEAD":
                sent.inc(size)

    def _children_for(self, key: tuple[str | None, str, int]) -> _Children:
        route, method, status = key
        labels = (route or UNMATCHED, method if method in METHODS else "OTHER", str(status))
        children = (
            self._requests.labels(*labels),
            self._duration.labels(*labels),
            self._received.labels(*labels[:2]),
            self._sent.labels(*labels[:2]),
        )
        if len(self._children) < _CACHE_LIMIT:
            self._children[key] = children
        return children

    def _websocket(
        self, run: Callable[[WebSocketSession], Awaitable[None]]
    ) -> Callable[[WebSocketSession], Awaitable[None]]:
        gauge = self._websockets

        async def counted(session: WebSocketSession) -> None:
            gauge.inc()
            try:
                await run(session)
            finally:
                gauge.dec()

        return counted

    # -- the page ------------------------------------------------------------------------

    def scrape(self, request: Request) -> Response:
        """The metrics in Prometheus text format: in multiprocess mode, summed over every
        process's files (live ones only for the gauges)."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = self.registry
        if self._directory is not None:
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=self._directory)  # type: ignore[no-untyped-call]
        return Response(generate_latest(registry), 200, None, CONTENT_TYPE_LATEST)

    # -- several processes (cello.runner, the supervisor) --------------------------------

    def share_between_processes(self) -> None:
        """Before forking workers: keep values in files every process can read. Uses the
        operator's PROMETHEUS_MULTIPROC_DIR if set before the start (and leaves it), or a
        private directory removed by :meth:`close`."""
        if self._directory is not None:
            return
        from prometheus_client import values

        directory = tempfile.mkdtemp(prefix="cello-metrics-")
        self._owned = directory
        self._directory = directory
        # prometheus-client picks its value class when imported, from this variable; the app
        # (and prometheus-client with it) was imported before we knew there would be workers.
        # The variable also tells the worker processes' own metrics.
        os.environ[_ENV] = directory
        values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
        self._build()

    def worker_exited(self, pid: int, replaced: bool) -> None:
        """The supervisor reaped worker ``pid`` (and starts another if ``replaced``)."""
        from prometheus_client import multiprocess

        if self._directory is not None:
            multiprocess.mark_process_dead(pid, self._directory)  # type: ignore[no-untyped-call]
        if replaced:
            self._restarts.inc()

    def close(self) -> None:
        """After the workers are gone: remove the private directory."""
        owned = self._owned
        if owned is None:
            return
        self._owned = None
        if os.environ.get(_ENV) == owned:
            del os.environ[_ENV]
        shutil.rmtree(owned, ignore_errors=True)


class _CountedStream:
    """A streamed body that counts its bytes as they go out and, for an event stream, holds
    the open-streams gauge up from the first chunk asked for until it ends or is closed (a
    body never iterated, for HEAD or a client already gone, was never open). Both servers
    close the body whichever way it ends, and a close reaches the stream wrapped."""

    __slots__ = ("_chunks", "_sent", "_gauge", "_open")

    def __init__(self, chunks: AsyncIterator[bytes], sent: Counter, gauge: Gauge | None) -> None:
        self._chunks = chunks
        self._sent = sent
        self._gauge = gauge
        self._open = False

    def __aiter__(self) -> _CountedStream:
        return self

    async def __anext__(self) -> bytes:
        gauge = self._gauge
        if gauge is not None and not self._open:
            self._open = True
            gauge.inc()
        try:
            chunk = await self._chunks.__anext__()
        except BaseException:  # the end, a failure, or the task cancelled (the client left)
            self._closed()
            raise
        self._sent.inc(len(chunk))
        return chunk

    async def aclose(self) -> None:
        self._closed()
        close = getattr(self._chunks, "aclose", None)
        if close is not None:
            await close()

    def _closed(self) -> None:
        gauge = self._gauge
        if gauge is not None and self._open:
            self._gauge = None
            gauge.dec()


def _is_event_stream(response: Response) -> bool:
    for name, value in response.raw_headers():
        if name.lower() == "content-type":
            return value[:17].lower() == "text/event-stream"
    return False
