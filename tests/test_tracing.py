"""app.enable_tracing(): OpenTelemetry server spans.

Over the network on every server variant, the spans are read back from the served app
(tests/apps/tracing_app.py configures the SDK with an in-memory exporter and serves what it
recorded at /_spans); in-process under TestClient, from an exporter the test holds. Each test
finds its own spans by a trace id or query string of its own: the servers are shared.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from support.http import exchange_open
from support.http import get as raw_get
from support.servers import RunningServer
from websockets.sync.client import connect as ws_connect

from cello import App, Blueprint, Request, Response
from cello.testing import TestClient

APP = "tests/apps/tracing_app.py"
AGENT = "tracing-test/1.0"


def new_trace() -> tuple[str, str, str]:
    """A trace id, a parent span id, and the ``traceparent`` naming them (sampled)."""
    trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
    return trace_id, parent, f"00-{trace_id}-{parent}-01"


def spans_of(client: httpx.Client, *, trace: str | None = None, query: str | None = None, count: int = 1) -> list[Any]:
    """The finished spans of one trace (or url.query), waiting (briefly) for ``count`` of them:
    a WebSocket session's span ends after the client has seen the close."""
    params = {"trace": trace} if trace is not None else {"query": query or ""}
    deadline = time.monotonic() + 5
    while True:
        found: list[Any] = client.get("/_spans", params=params).json()["spans"]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def server_span(spans: list[Any]) -> Any:
    servers = [span for span in spans if span["kind"] == "SERVER"]
    assert len(servers) == 1, spans
    return servers[0]


@pytest.fixture
def served(serve_app: Callable[..., RunningServer], variant: tuple[str, str]) -> Iterator[tuple[httpx.Client, int]]:
    server = serve_app(APP, *variant)
    with httpx.Client(base_url=server.url, headers={"user-agent": AGENT}) as client:
        yield client, server.port


# -- over the network, on every server variant -------------------------------------------------


def test_a_span_per_request_named_by_the_route(served: tuple[httpx.Client, int]) -> None:
    client, port = served
    token = secrets.token_hex(8)
    response = client.get(f"/users/42?t={token}")
    assert response.status_code == 200
    assert response.json() == {"id": 42}
    span = server_span(spans_of(client, query=f"t={token}"))
    assert span["name"] == "GET /users/{id:int}"
    assert span["kind"] == "SERVER"
    assert span["status"] == "UNSET"
    assert span["parent_span_id"] is None
    assert span["attributes"] == {
        "http.request.method": "GET",
        "http.route": "/users/{id:int}",  # the template, not /users/42
        "url.path": "/users/42",
        "url.query": f"t={token}",
        "url.scheme": "http",
        "server.address": "127.0.0.1",
        "server.port": port,
        "client.address": "127.0.0.1",
        "network.protocol.version": "1.1",
        "user_agent.original": AGENT,
        "http.response.status_code": 200,
    }
    # The response names the server span: a client can find the trace.
    assert response.headers["traceparent"].startswith(f"00-{span['trace_id']}-{span['span_id']}-")


def test_incoming_traceparent_is_the_parent(served: tuple[httpx.Client, int]) -> None:
    client, _ = served
    trace_id, parent, traceparent = new_trace()
    response = client.get("/users/7", headers={"traceparent": traceparent, "tracestate": "vendor=x"})
    assert response.status_code == 200
    span = server_span(spans_of(client, trace=trace_id))
    assert span["trace_id"] == trace_id
    assert span["parent_span_id"] == parent
    assert span["span_id"] != parent
    assert response.headers["traceparent"] == f"00-{trace_id}-{span['span_id']}-01"  # sampled, as asked


def test_not_found_has_no_route(served: tuple[httpx.Client, int]) -> None:
    client, _ = served
    trace_id, _, traceparent = new_trace()
    response = client.get("/no/such/page", headers={"traceparent": traceparent})
    assert response.status_code == 404
    span = server_span(spans_of(client, trace=trace_id))
    assert span["name"] == "GET"
    assert "http.route" not in span["attributes"]
    assert span["attributes"]["url.path"] == "/no/such/page"
    assert span["attributes"]["http.response.status_code"] == 404
    assert span["status"] == "UNSET"  # 4xx is the client's error, not the server's


def test_unhandled_exception_is_an_error_with_the_exception_recorded(served: tuple[httpx.Client, int]) -> None:
    client, _ = served
    trace_id, _, traceparent = new_trace()
    response = client.get("/boom", headers={"traceparent": traceparent})
    assert response.status_code == 500
    span = server_span(spans_of(client, trace=trace_id))
    assert span["name"] == "GET /boom"
    assert span["status"] == "ERROR"
    assert span["attributes"]["http.response.status_code"] == 500
    assert span["attributes"]["error.type"] == "ValueError"
    [event] = [event for event in span["events"] if event["name"] == "exception"]
    assert event["attributes"]["exception.type"] == "ValueError"
    assert event["attributes"]["exception.message"] == "boom"
    assert "Traceback" in event["attributes"]["exception.stacktrace"]


def test_http_errors_are_errors_only_when_5xx(served: tuple[httpx.Client, int]) -> None:
    client, _ = served
    for path, status, expected in (("/teapot", 418, "UNSET"), ("/unavailable", 503, "ERROR")):
        trace_id, _, traceparent = new_trace()
        assert client.get(path, headers={"traceparent": traceparent}).status_code == status
        span = server_span(spans_of(client, trace=trace_id))
        assert span["attributes"]["http.response.status_code"] == status
        assert span["status"] == expected, path
        assert not span["events"]  # an HTTPException is an answer, not a failure to record


@pytest.mark.parametrize("path", ["/child", "/async/x", "/threaded", "/deferred"])
def test_a_handlers_span_is_a_child_of_the_server_span(served: tuple[httpx.Client, int], path: str) -> None:
    client, _ = served
    trace_id, parent, traceparent = new_trace()
    assert client.get(path, headers={"traceparent": traceparent}).status_code == 200
    spans = spans_of(client, trace=trace_id, count=2)
    server = server_span(spans)
    [inner] = [span for span in spans if span["kind"] == "INTERNAL"]
    assert server["parent_span_id"] == parent
    assert inner["parent_span_id"] == server["span_id"]
    assert inner["trace_id"] == trace_id


def test_pipelined_requests_each_have_their_own_span(served: tuple[httpx.Client, int]) -> None:
    # The synchronous /child waits for the async request before it and is then answered from
    # that request's task, where that request's span is current: its span must be its own, and
    # nothing may stay current for the untraced request after it.
    client, port = served
    first, second = new_trace(), new_trace()
    leak = secrets.token_hex(4)
    heads = (
        raw_get("/async/x", extra=f"traceparent: {first[2]}\r\n")
        + raw_get("/child", extra=f"traceparent: {second[2]}\r\n")
        + raw_get(f"/users/1?{leak}")
    )
    responses, sock, _ = exchange_open(f"http://127.0.0.1:{port}", heads, 3)
    sock.close()
    assert [response.status for response in responses] == [200, 200, 200]
    for (trace_id, parent, _), inner_name in ((first, "async work"), (second, "child work")):
        spans = spans_of(client, trace=trace_id, count=2)
        server = server_span(spans)
        [inner] = [span for span in spans if span["kind"] == "INTERNAL"]
        assert (server["parent_span_id"], inner["name"], inner["parent_span_id"]) == (
            parent,
            inner_name,
            server["span_id"],
        )
    untraced = server_span(spans_of(client, query=leak))
    assert untraced["parent_span_id"] is None
    assert untraced["trace_id"] not in (first[0], second[0])


def test_a_websocket_session_is_one_span(served: tuple[httpx.Client, int]) -> None:
    client, port = served
    trace_id, parent, traceparent = new_trace()
    with ws_connect(f"ws://127.0.0.1:{port}/ws/echo", additional_headers={"traceparent": traceparent}) as ws:
        ws.send("hello")
        assert ws.recv(timeout=5) == "echo: hello"
        ws.send("bye")
        with pytest.raises(Exception):  # noqa: B017 - closed by the server, with 4001
            ws.recv(timeout=5)
        assert ws.close_code == 4001
    spans = spans_of(client, trace=trace_id, count=2)
    session = server_span(spans)
    assert session["name"] == "GET /ws/echo"
    assert session["parent_span_id"] == parent
    assert session["attributes"]["http.route"] == "/ws/echo"
    assert session["attributes"]["http.response.status_code"] == 101
    assert session["attributes"]["websocket.close.code"] == 4001
    assert session["status"] == "UNSET"
    # The handler's span per message is the session's child.
    [message] = [span for span in spans if span["name"] == "ws message"]
    assert message["parent_span_id"] == session["span_id"]


def test_a_failing_websocket_handler_is_an_error(served: tuple[httpx.Client, int]) -> None:
    client, port = served
    trace_id, _, traceparent = new_trace()
    with ws_connect(f"ws://127.0.0.1:{port}/ws/fails", additional_headers={"traceparent": traceparent}) as ws:
        ws.send("go")
        with pytest.raises(Exception):  # noqa: B017 - closed by the server, with 1011
            ws.recv(timeout=5)
        assert ws.close_code == 1011
    session = server_span(spans_of(client, trace=trace_id))
    assert session["status"] == "ERROR"
    assert session["attributes"]["websocket.close.code"] == 1011
    [event] = [event for event in session["events"] if event["name"] == "exception"]
    assert event["attributes"]["exception.type"] == "RuntimeError"


# -- in process, under TestClient ------------------------------------------------------------


def traced_app(**options: Any) -> tuple[App, InMemorySpanExporter, TracerProvider]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = App()
    app.enable_tracing(tracer_provider=provider, **options)
    return app, exporter, provider


def only_span(exporter: InMemorySpanExporter) -> ReadableSpan:
    [span] = exporter.get_finished_spans()
    exporter.clear()
    return span


def test_a_split_tracestate_and_the_user_agent_are_read_from_the_raw_headers() -> None:
    app, exporter, _ = traced_app()

    @app.get("/")
    def index(request: Request) -> str:
        return "ok"

    trace_id, parent, traceparent = new_trace()
    headers = [("traceparent", traceparent), ("tracestate", "a=1"), ("tracestate", "b=2"), ("user-agent", AGENT)]
    with TestClient(app) as client:
        assert client.get("/", headers=headers).status_code == 200
    span = only_span(exporter)
    assert (f"{span.context.trace_id:032x}", f"{span.parent.span_id:016x}") == (trace_id, parent)  # type: ignore[union-attr]
    # Both tracestate headers, in order: W3C's rule for a list split over several lines.
    assert span.context.trace_state.to_header() == "a=1,b=2"
    assert dict(span.attributes or {})["user_agent.original"] == AGENT


def test_testclient_spans() -> None:
    app, exporter, provider = traced_app()
    tracer = provider.get_tracer("test")
    users = Blueprint("/users")

    @users.route("/{name}", methods=["GET", "POST"])
    def show(request: Request) -> dict[str, str]:
        with tracer.start_as_current_span("lookup"):
            return {"name": request.params["name"]}

    app.register_blueprint(users)
    with TestClient(app) as client:
        response = client.get("/users/ann?x=1")
        assert response.status_code == 200
        lookup, span = exporter.get_finished_spans()
        exporter.clear()
        assert span.name == "GET /users/{name}"
        assert span.kind is SpanKind.SERVER
        assert lookup.parent is not None and lookup.parent.span_id == span.context.span_id
        attributes = dict(span.attributes or {})
        assert attributes["http.route"] == "/users/{name}"
        assert attributes["url.path"] == "/users/ann"
        assert attributes["url.query"] == "x=1"
        assert attributes["server.address"] == "testserver"
        assert attributes["server.port"] == 80
        assert response.headers["traceparent"].startswith(
            f"00-{span.context.trace_id:032x}-{span.context.span_id:016x}-"
        )
        # 405: the router's own answer is traced too, without a route.
        response = client.delete("/users/ann")
        assert response.status_code == 405
        span = only_span(exporter)
        assert span.name == "DELETE"
        assert dict(span.attributes or {})["http.response.status_code"] == 405
        # A method the conventions do not name.
        assert client.request("PURGE", "/users/ann").status_code == 405
        span = only_span(exporter)
        assert span.name == "HTTP"
        assert dict(span.attributes or {})["http.request.method"] == "_OTHER"
        assert dict(span.attributes or {})["http.request.method_original"] == "PURGE"


def test_testclient_websocket_span() -> None:
    app, exporter, _ = traced_app()

    @app.websocket("/ws")
    async def ws_echo(ws: Any) -> None:
        await ws.send_text(await ws.receive_text())

    @app.websocket("/refused")
    async def refused(ws: Any) -> None:
        return  # without accepting: 403

    with TestClient(app) as client:
        with client.websocket_connect("/ws") as ws:
            ws.send_text("hi")
            assert ws.receive_text() == "hi"
        deadline = time.monotonic() + 5
        while not exporter.get_finished_spans() and time.monotonic() < deadline:
            time.sleep(0.02)
        span = only_span(exporter)
        assert span.name == "GET /ws"
        assert dict(span.attributes or {})["http.response.status_code"] == 101
        assert dict(span.attributes or {})["websocket.close.code"] == 1000
        with pytest.raises(Exception):  # noqa: B017 - refused with 403
            with client.websocket_connect("/refused"):
                pass
        deadline = time.monotonic() + 5
        while not exporter.get_finished_spans() and time.monotonic() < deadline:
            time.sleep(0.02)
        span = only_span(exporter)
        assert dict(span.attributes or {})["http.response.status_code"] == 403
        assert "websocket.close.code" not in dict(span.attributes or {})


def test_no_span_stays_current_after_a_request() -> None:
    app, exporter, _ = traced_app()

    @app.get("/")
    def index(request: Request) -> str:
        return "ok"

    @app.get("/boom")
    def boom(request: Request) -> str:
        raise RuntimeError("boom")

    for path, status in (("/", 200), ("/boom", 500)):
        request = Request("GET", path)
        response = app.resolve(request)(request)
        # Answered inline, in this context (the server's: the connection's), and nothing of
        # the request's is left current in it.
        assert isinstance(response, Response) and response.status == status
        assert not trace.get_current_span().get_span_context().is_valid
    assert [span.name for span in exporter.get_finished_spans()] == ["GET /", "GET /boom"]


@pytest.mark.parametrize("path", ["/slow", "/slow-deferred"])
def test_a_cancelled_request_ends_its_span(path: str) -> None:
    # The server cancels a request's task when it must stop it (a stream whose client left,
    # the end of the shutdown grace period): its span ends, without a status.
    app, exporter, _ = traced_app()

    @app.get("/slow")
    async def slow(request: Request) -> str:
        await asyncio.sleep(30)
        return "late"

    @app.get("/slow-deferred")
    def slow_deferred(request: Request) -> Any:
        return asyncio.sleep(30)

    async def scenario() -> None:
        request = Request("GET", path)
        pending = app.resolve(request)(request)
        assert not isinstance(pending, Response)
        task = asyncio.ensure_future(pending)
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    span = only_span(exporter)
    assert span.name == f"GET {path}" and span.end_time is not None
    assert "http.response.status_code" not in dict(span.attributes or {})


def test_a_broken_tracer_does_not_break_the_app(caplog: pytest.LogCaptureFixture) -> None:
    class BrokenTracer(trace.NoOpTracer):
        def start_span(self, *args: Any, **kwargs: Any) -> trace.Span:
            raise RuntimeError("the exporter's bug")

    class BrokenProvider(trace.NoOpTracerProvider):
        def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
            return BrokenTracer()

    app = App()
    app.enable_tracing(tracer_provider=BrokenProvider())

    @app.get("/")
    def index(request: Request) -> str:
        return "ok"

    @app.get("/async")
    async def index_async(request: Request) -> str:
        return "ok"

    with TestClient(app) as client, caplog.at_level(logging.ERROR, logger="cello.tracing"):
        for path in ("/", "/async", "/", "/async"):
            response = client.get(path)
            assert (response.status_code, response.text) == (200, "ok")
            assert "traceparent" not in response.headers
    # Said once, with what broke.
    [logged] = [r for r in caplog.records if r.name == "cello.tracing"]
    assert logged.exc_info is not None and "the exporter's bug" in str(logged.exc_info[1])


def test_a_failing_middleware_is_recorded() -> None:
    app, exporter, _ = traced_app()

    @app.get("/")
    def index(request: Request) -> str:
        return "ok"

    async def broken(request: Request, call_next: Any) -> Response:
        raise KeyError("mw")

    app.use(broken)
    with TestClient(app) as client:
        assert client.get("/").status_code == 500
    span = only_span(exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert [event.attributes["exception.type"] for event in span.events if event.attributes] == ["KeyError"]


def test_handled_errors_are_not_recorded() -> None:
    app, exporter, _ = traced_app()

    @app.get("/")
    def index(request: Request) -> str:
        raise LookupError("gone")

    @app.error_handler(LookupError)
    def gone(exc: LookupError) -> Response:
        return Response.json({"gone": True}, status=410)

    with TestClient(app) as client:
        assert client.get("/").status_code == 410
    span = only_span(exporter)
    assert span.status.status_code is StatusCode.UNSET
    assert not span.events


def test_response_traceparent_can_be_left_out() -> None:
    app, exporter, _ = traced_app(response_traceparent=False)

    @app.get("/")
    def index(request: Request) -> str:
        return "ok"

    with TestClient(app) as client:
        response = client.get("/")
    assert "traceparent" not in response.headers
    assert only_span(exporter).name == "GET /"


def test_enabled_once() -> None:
    app, _, provider = traced_app()
    with pytest.raises(RuntimeError, match="called already"):
        app.enable_tracing(tracer_provider=provider)


def test_without_opentelemetry_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import cello.middleware

    # As if never imported: neither the module nor the package's attribute for it.
    monkeypatch.delitem(sys.modules, "cello.middleware.tracing", raising=False)
    monkeypatch.delattr(cello.middleware, "tracing", raising=False)
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    with pytest.raises(ImportError, match=r"pip install 'cello-framework\[tracing\]'"):
        App().enable_tracing()


def test_off_by_default() -> None:
    app = App()

    @app.get("/")
    def index(request: Request) -> str:
        return "ok"

    with TestClient(app) as client:
        assert "traceparent" not in client.get("/").headers
    assert app.scope.middleware == []  # nothing wraps the chains of an app that does not trace
