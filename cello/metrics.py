"""Prometheus metrics of an app: ``app.enable_metrics()``.

Every endpoint calls :meth:`Metrics.before` first and :meth:`Metrics.after` last
(cello/pipeline.py, around the app's other hooks), which count and time every request by route
template (``/users/{id:int}``, never the raw path, so a scanner cannot mint label values), method
and status: direct calls of a compiled class rather than hooks in the scope's lists, a fraction
of the cost (docs/operations.md has the measurements). Streamed bodies and WebSocket handlers are
wrapped, so that the open-stream gauges and the bytes sent follow them to their end. An app that
does not enable metrics has none of it: no call, no wrapper, no import of prometheus-client.

In one process the calls add to plain numbers (a few attribute updates per request, no call
into prometheus-client) that a collector turns into metric families when the page is scraped.
With several worker processes (``cello serve --workers N``) the runner calls
:meth:`Metrics.share_between_processes` before forking: the calls then update
prometheus-client metrics in its multiprocess mode, which keeps each process's values in files
of a private directory; a scrape answered by any worker adds up every process's files, and the
supervisor reports the workers it reaps (:meth:`Metrics.worker_exited`), which drops their
gauges and counts their restarts.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from itertools import accumulate
from time import perf_counter
from typing import TYPE_CHECKING, Any, Final, Protocol

from cello.request import Request
from cello.response import Response, WebSocketUpgrade

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter, Histogram
    from prometheus_client.metrics_core import Metric

    from cello.server.interface import WebSocketSession

# The route label of a request no route matched (404, 405, a scanner's random paths).
UNMATCHED = "<unmatched>"
# Methods kept as label values; any other (h11 accepts any token) is counted as "OTHER".
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"))
# Series are found by (route, method, status) as the request has them; past this many keys
# (only garbage methods get there) a key is normalised on every request instead of cached.
_CACHE_LIMIT = 4096
_ENV = "PROMETHEUS_MULTIPROC_DIR"
_LEGACY_ENV = _ENV.lower()
_LABELS = ("route", "method", "status")

_REQUESTS = ("cello_requests", "HTTP requests answered, by route template, method and status.")
_DURATION = (
    "cello_request_duration_seconds",
    "Seconds from the app's first hook to its last (a streamed body's time is not included).",
)
_RECEIVED = ("cello_request_body_bytes", "Request body bytes received.")
_SENT = ("cello_response_body_bytes", "Response body bytes sent (streamed bodies included).")
_IN_FLIGHT = ("cello_requests_in_flight", "Requests being handled.")
_WEBSOCKETS = ("cello_websockets_open", "WebSocket handlers running.")
_STREAMS = ("cello_sse_streams_open", "Server-sent event streams open.")
_RESTARTS = ("cello_worker_restarts", "Worker processes that exited and were replaced.")

Labels = tuple[str, str, str]
Key = tuple["str | None", str, int]

# Read per request: held where compiled code reaches it without a module-dict lookup.
_clock: Final = perf_counter


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


def _labels(key: Key) -> Labels:
    route, method, status = key
    return (route or UNMATCHED, method if method in METHODS else "OTHER", str(status))


def _received(request: Request) -> int:
    """Bytes of the request's body; of a body streamed to the handler, what the client
    declared (the server enforced it)."""
    body = request.body_bytes
    if body:
        return len(body)
    if request.body_stream is None:
        return 0
    declared = request.header(b"content-length")
    return int(declared) if declared is not None and declared.isdigit() else 0


class _UpDown(Protocol):
    def inc(self) -> None: ...

    def dec(self) -> None: ...


class _Gauge:
    """A gauge of one process, read by the collector."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def inc(self) -> None:
        self.value += 1

    def dec(self) -> None:
        self.value -= 1


class _Series:
    """One (route, method, status) of one process: the numbers `Metrics.after` adds to."""

    __slots__ = ("labels", "count", "total", "buckets", "received", "sent")

    def __init__(self, labels: Labels, buckets: int) -> None:
        self.labels = labels
        self.count = 0
        self.total = 0.0
        # Per bound, then above the last: not cumulative (the collector adds them up).
        self.buckets = [0] * (buckets + 1)
        self.received = 0
        self.sent = 0

    def add_sent(self, size: int) -> None:
        self.sent += size


class _Shared:
    """prometheus-client metrics in multiprocess mode, and their children per series."""

    def __init__(self, registry: CollectorRegistry, bounds: tuple[float, ...]) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.requests = Counter(*_REQUESTS, _LABELS, registry=registry)
        self.duration = Histogram(*_DURATION, _LABELS, registry=registry, buckets=bounds)
        self.received = Counter(*_RECEIVED, _LABELS[:2], registry=registry)
        self.sent = Counter(*_SENT, _LABELS[:2], registry=registry)
        # livesum: a worker's share leaves the sum when the supervisor reaps it.
        self.in_flight = Gauge(*_IN_FLIGHT, registry=registry, multiprocess_mode="livesum")
        self.websockets = Gauge(*_WEBSOCKETS, registry=registry, multiprocess_mode="livesum")
        self.streams = Gauge(*_STREAMS, registry=registry, multiprocess_mode="livesum")
        self.restarts = Counter(*_RESTARTS, registry=registry)
        self.children: dict[Key, tuple[Counter, Histogram, Counter, Counter]] = {}

    def children_for(self, key: Key) -> tuple[Counter, Histogram, Counter, Counter]:
        labels = _labels(key)
        children = (
            self.requests.labels(*labels),
            self.duration.labels(*labels),
            self.received.labels(*labels[:2]),
            self.sent.labels(*labels[:2]),
        )
        if len(self.children) < _CACHE_LIMIT:
            self.children[key] = children
        return children


class Metrics:
    """An app's Prometheus metrics, the calls that update them and the page that shows them."""

    def __init__(self, path: str, buckets: Sequence[float] | None = None) -> None:
        prometheus = _prometheus()
        self.path = path
        bounds = [float(b) for b in (buckets or prometheus.Histogram.DEFAULT_BUCKETS)]
        self._bounds = tuple(sorted(b for b in bounds if b != float("inf")))
        # This process's numbers (see _Series); _by_labels holds each series once.
        self._series: dict[Key, _Series] = {}
        self._by_labels: dict[Labels, _Series] = {}
        self._in_flight = 0
        self._websockets = _Gauge()
        self._streams = _Gauge()
        # A registry per app, not the global one: several apps (tests) do not collide, and
        # the page shows this app's metrics plus what the operator registers on it.
        self.registry: CollectorRegistry = prometheus.CollectorRegistry()
        # Set when values live in files (ours, or an operator's PROMETHEUS_MULTIPROC_DIR).
        self._directory: str | None = None
        self._owned: str | None = None
        self._shared: _Shared | None = None
        if _multiprocess_mode():
            # prometheus-client still reads the lower-case name it used to document.
            self._share(os.environ.get(_ENV) or os.environ[_LEGACY_ENV])
        else:
            self.registry.register(_Collector(self))

    # -- what every endpoint calls, first and last ----------------------------------------

    def before(self, request: Request) -> None:
        request.started = _clock()
        shared = self._shared
        if shared is None:
            self._in_flight += 1
        else:
            shared.in_flight.inc()

    def after(self, request: Request, response: Response) -> None:
        if self._shared is None:
            self._after_local(request, response)
        else:
            self._after_shared(request, response, self._shared)

    # -- one process ----------------------------------------------------------------------

    def _after_local(self, request: Request, response: Response) -> None:
        started = request.started
        status = response.status
        key = (request.route, request.method, status)
        series = self._series.get(key)
        if series is None:
            series = self._new_series(key)
        series.count += 1
        if started:  # 0.0: ``before`` did not see it, and neither did the in-flight gauge
            elapsed = _clock() - started
            series.total += elapsed
            series.buckets[_bucket(self._bounds, elapsed)] += 1
            self._in_flight -= 1
        series.received += _received(request)
        chunks = response.body_chunks
        if chunks is not None:
            stream = self._streams if _is_event_stream(response) else None
            response.body_chunks = _CountedStream(chunks, series.add_sent, stream)
        elif status == 101 and isinstance(response, WebSocketUpgrade):
            response.run = _counted_run(response.run, self._websockets)
        elif request.method != "HEAD":
            series.sent += len(response.body_bytes)

    def _new_series(self, key: Key) -> _Series:
        labels = _labels(key)
        series = self._by_labels.get(labels)
        if series is None:
            series = self._by_labels[labels] = _Series(labels, len(self._bounds))
        if len(self._series) < _CACHE_LIMIT:
            self._series[key] = series
        return series

    # -- several processes --------------------------------------------------------------

    def _after_shared(self, request: Request, response: Response, shared: _Shared) -> None:
        started = request.started
        status = response.status
        key = (request.route, request.method, status)
        children = shared.children.get(key)
        if children is None:
            children = shared.children_for(key)
        requests, duration, received, sent = children
        requests.inc()
        if started:
            duration.observe(_clock() - started)
            shared.in_flight.dec()
        size = _received(request)
        if size:
            received.inc(size)
        chunks = response.body_chunks
        if chunks is not None:
            stream = shared.streams if _is_event_stream(response) else None
            response.body_chunks = _CountedStream(chunks, sent.inc, stream)
        elif status == 101 and isinstance(response, WebSocketUpgrade):
            response.run = _counted_run(response.run, shared.websockets)
        elif request.method != "HEAD":
            sent.inc(len(response.body_bytes))

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
        """Before forking workers (before any request): keep values in files every process
        can read. Uses the operator's PROMETHEUS_MULTIPROC_DIR if set before the start (and
        leaves it), or a private directory removed by :meth:`close`."""
        if self._directory is not None:
            return
        from prometheus_client import values

        directory = tempfile.mkdtemp(prefix="cello-metrics-")
        self._owned = directory
        # The runner closes it after serving; this covers a start that fails on the way.
        atexit.register(self.close)
        # prometheus-client picks its value class when imported, from this variable; the app
        # (and prometheus-client with it) was imported before we knew there would be workers.
        # The variable also tells the worker processes' own metrics.
        os.environ[_ENV] = directory
        values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
        self._share(directory)

    def _share(self, directory: str) -> None:
        from prometheus_client import CollectorRegistry

        self._directory = directory
        self.registry = CollectorRegistry()
        self._shared = _Shared(self.registry, self._bounds)

    def worker_exited(self, pid: int, replaced: bool) -> None:
        """The supervisor reaped worker ``pid`` (and starts another if ``replaced``)."""
        # The function, not its module: compiled, ``from package import submodule`` gives None
        # for a submodule the package has not imported itself.
        from prometheus_client.multiprocess import mark_process_dead

        shared = self._shared
        if shared is None:
            return
        mark_process_dead(pid, self._directory)  # type: ignore[no-untyped-call]
        if replaced:
            shared.restarts.inc()

    def close(self) -> None:
        """After the workers are gone: remove the private directory."""
        owned = self._owned
        if owned is None:
            return
        self._owned = None
        if os.environ.get(_ENV) == owned:
            del os.environ[_ENV]
        shutil.rmtree(owned, ignore_errors=True)

    # -- what the collector reads (one process) ------------------------------------------

    def _families(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
        from prometheus_client.utils import floatToGoString

        requests = CounterMetricFamily(*_REQUESTS, labels=_LABELS)
        duration = HistogramMetricFamily(*_DURATION, labels=_LABELS)
        received: dict[tuple[str, str], int] = {}
        sent: dict[tuple[str, str], int] = {}
        bounds = [floatToGoString(bound) for bound in self._bounds] + ["+Inf"]  # type: ignore[no-untyped-call]
        for series in list(self._by_labels.values()):
            requests.add_metric(series.labels, series.count)
            cumulative = list(accumulate(series.buckets))
            duration.add_metric(series.labels, list(zip(bounds, cumulative)), series.total)
            pair = (series.labels[0], series.labels[1])
            received[pair] = received.get(pair, 0) + series.received
            sent[pair] = sent.get(pair, 0) + series.sent
        yield requests
        yield duration
        for (name, documentation), totals in ((_RECEIVED, received), (_SENT, sent)):
            family = CounterMetricFamily(name, documentation, labels=_LABELS[:2])
            for pair, total in totals.items():
                family.add_metric(pair, total)
            yield family
        yield GaugeMetricFamily(*_IN_FLIGHT, value=self._in_flight)
        yield GaugeMetricFamily(*_WEBSOCKETS, value=self._websockets.value)
        yield GaugeMetricFamily(*_STREAMS, value=self._streams.value)
        # One process has no supervisor: nothing restarts it but the operator.
        yield CounterMetricFamily(*_RESTARTS, value=0)


class _Collector:
    """What the registry asks of a collector, for the numbers of one process."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return self._metrics._families()


def _counted_run(
    run: Callable[[WebSocketSession], Awaitable[None]], gauge: _UpDown
) -> Callable[[WebSocketSession], Awaitable[None]]:
    async def counted(session: WebSocketSession) -> None:
        gauge.inc()
        try:
            await run(session)
        finally:
            gauge.dec()

    return counted


class _CountedStream:
    """A streamed body that counts its bytes as they go out and, for an event stream, holds
    the open-streams gauge up from the first chunk asked for until it ends or is closed (a
    body never iterated, for HEAD or a client already gone, was never open). Both servers
    close the body whichever way it ends, and a close reaches the stream wrapped."""

    __slots__ = ("_chunks", "_sent", "_gauge", "_open")

    def __init__(self, chunks: AsyncIterator[bytes], sent: Callable[[int], None], gauge: _UpDown | None) -> None:
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
        self._sent(len(chunk))
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


def _bucket(bounds: tuple[float, ...], elapsed: float) -> int:
    """The histogram bucket of ``elapsed``: the first bound at or above it (``len(bounds)``:
    above the last). A scan from the smallest bound: most requests end in the first few, and
    compiled it beats bisect's call."""
    index = 0
    for bound in bounds:
        if elapsed <= bound:
            return index
        index += 1
    return index


def _is_event_stream(response: Response) -> bool:
    for name, value in response.raw_headers():
        if name.lower() == "content-type":
            return value[:17].lower() == "text/event-stream"
    return False
