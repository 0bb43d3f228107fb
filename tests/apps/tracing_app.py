"""The app of the tracing tests (tests/test_tracing.py), served by every server variant.

Spans are made in the server's process, so this module configures the OpenTelemetry SDK the
way an application would (a global TracerProvider) with an in-memory exporter, and serves
the finished spans as JSON at ``GET /_spans?trace=<trace id>`` (or ``?query=<url.query>``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from cello import App, HTTPException, Request, WebSocket

EXPORTER = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
trace.set_tracer_provider(provider)

app = App()
app.enable_tracing()
# What handlers use for their own spans: the global provider, as application code would.
tracer = trace.get_tracer("tests.apps.tracing_app")


def span_json(span: ReadableSpan) -> dict[str, Any]:
    context = span.get_span_context()
    assert context is not None
    parent = span.parent
    return {
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": f"{context.trace_id:032x}",
        "span_id": f"{context.span_id:016x}",
        "parent_span_id": f"{parent.span_id:016x}" if parent is not None else None,
        "attributes": dict(span.attributes or {}),
        "status": span.status.status_code.name,
        "events": [{"name": event.name, "attributes": dict(event.attributes or {})} for event in span.events],
    }


def wanted(span: ReadableSpan, trace_id: str | None, query: str | None) -> bool:
    context = span.get_span_context()
    if trace_id is not None:
        return context is not None and f"{context.trace_id:032x}" == trace_id
    return query is not None and (span.attributes or {}).get("url.query") == query


@app.get("/_spans")
def spans(request: Request) -> dict[str, Any]:
    trace_id, query = request.query.get("trace"), request.query.get("query")
    return {"spans": [span_json(span) for span in EXPORTER.get_finished_spans() if wanted(span, trace_id, query)]}


@app.get("/users/{id:int}")
def user(request: Request) -> dict[str, Any]:
    return {"id": request.params["id"]}


@app.get("/child")
def child(request: Request) -> dict[str, Any]:
    with tracer.start_as_current_span("child work"):
        return {"ok": True}


@app.get("/async/{name}")
async def async_child(request: Request) -> dict[str, Any]:
    await asyncio.sleep(0)
    with tracer.start_as_current_span("async work"):
        await asyncio.sleep(0)
    return {"name": request.params["name"]}


async def _later() -> dict[str, Any]:
    await asyncio.sleep(0)
    with tracer.start_as_current_span("deferred work"):
        return {"ok": True}


@app.get("/deferred")
def deferred(request: Request) -> Any:
    # A synchronous function that returns an awaitable: begun inline, finished in a task.
    return _later()


@app.get("/threaded", threaded=True)
def threaded(request: Request) -> dict[str, Any]:
    with tracer.start_as_current_span("threaded work"):
        return {"ok": True}


@app.get("/boom")
def boom(request: Request) -> dict[str, Any]:
    raise ValueError("boom")


@app.get("/teapot")
def teapot(request: Request) -> dict[str, Any]:
    raise HTTPException(418, "I'm a teapot")


@app.get("/unavailable")
def unavailable(request: Request) -> dict[str, Any]:
    raise HTTPException(503, "try later")


@app.websocket("/ws/echo")
async def echo(ws: WebSocket) -> None:
    async for message in ws:
        if message == "bye":
            await ws.close(4001, "bye")
            return
        with tracer.start_as_current_span("ws message"):
            await ws.send(f"echo: {message!s}")


@app.websocket("/ws/fails")
async def fails(ws: WebSocket) -> None:
    await ws.accept()
    await ws.receive()
    raise RuntimeError("the handler broke")
