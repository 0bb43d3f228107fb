"""request.after_response: work run once the response is written, over the network on every
server variant, under TestClient, and through a graceful shutdown of `cello serve`."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.http import Reader, connect, get
from support.servers import RunningServer, start_asgi_server, start_server
from websockets.sync.client import connect as ws_connect

from cello import App, Request, Response
from cello.request import WireRequest
from cello.testing import AsyncTestClient, TestClient

APP = "tests/apps/after.py"


@pytest.fixture
def server(serve_app: Callable[..., RunningServer], variant: tuple[str, str]) -> RunningServer:
    return serve_app(APP, *variant)


@pytest.fixture
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


@pytest.fixture
def key() -> str:
    return uuid.uuid4().hex


def events(client: httpx.Client, key: str) -> list[Any]:
    result: list[Any] = client.get(f"/events/{key}").json()["events"]
    return result


def wait_for(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    return check()


def post(path: str) -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\n\r\n".encode()


# -- over the network ----------------------------------------------------------------------


def test_a_slow_task_does_not_delay_the_response(client: httpx.Client, key: str) -> None:
    started = time.monotonic()
    response = client.get(f"/slow/{key}")
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    # The task sleeps 1 s before it records anything: the response came first.
    assert elapsed < 0.9, elapsed
    assert [event[0] for event in events(client, key)] == ["handler"]
    done = wait_for(lambda: [e for e in events(client, key) if e[0] == "async"])
    assert done, events(client, key)
    assert done[0][-1] - response.json()["answered"] >= 0.9


def test_sync_and_async_work_run_in_order_with_their_arguments(client: httpx.Client, key: str) -> None:
    assert client.post(f"/orders/{key}").json() == {"ok": True}
    found = wait_for(lambda: len(events(client, key)) == 3 and events(client, key))
    assert [event[:5] for event in found] == [
        ["sync", "first", [1, 2], {"mail": "a@example.com"}, False],
        ["async", "second", [], {}, True],
        ["sync", "third", [], {}, False],
    ]
    times = [event[-1] for event in found]
    assert times == sorted(times)


def test_a_failing_task_is_logged_with_its_route_and_the_connection_goes_on(server: RunningServer, key: str) -> None:
    with connect(server.url) as sock:
        reader = Reader(sock)
        sock.sendall(post(f"/fail/{key}"))
        assert reader.response().json() == {"ok": True}

        def recorded() -> list[Any]:
            sock.sendall(get(f"/events/{key}"))
            found: list[Any] = reader.response().json()["events"]
            return found if len(found) == 2 else []

        # The same keep-alive connection answers on; the work after the failing one ran.
        found = wait_for(recorded)
        assert [event[0] for event in found] == ["explode", "sync"]
        assert found[1][1] == "after the failure"
    logged = wait_for(lambda: f"the mail server is down ({key})" in server.output() and server.output())
    assert "after_response task explode of POST /fail/{key} failed" in logged
    assert "Traceback" in logged


def test_work_runs_after_the_last_chunk_of_a_stream(client: httpx.Client, key: str) -> None:
    response = client.get(f"/stream/{key}")
    assert response.text == "chunk 0\nchunk 1\nchunk 2\n"
    found = wait_for(lambda: len(events(client, key)) == 5 and events(client, key))
    assert [event[0] for event in found] == ["chunk", "chunk", "chunk", "stream over", "sync"]
    assert found[-1][1] == "after the stream"


def test_work_still_runs_when_the_client_leaves_a_stream(server: RunningServer, key: str) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        with client.stream("GET", f"/sse/{key}") as response:
            assert next(response.iter_lines()) == "data: event 0"
        # Leaving the block closed the connection in the middle of an endless stream.
        found = wait_for(lambda: events(client, key))
        assert [event[:2] for event in found] == [["async", "after the client left"]]


def test_work_a_websocket_guard_registers_runs(server: RunningServer, key: str) -> None:
    with ws_connect(f"ws://127.0.0.1:{server.port}/ws/{key}", open_timeout=10) as ws:
        assert ws.recv(timeout=10) == "hello"
        ws.send("bye")
    # After the 101 under `cello serve`, at the end of the connection under an ASGI server.
    with httpx.Client(base_url=server.url, timeout=10) as client:
        found = wait_for(lambda: events(client, key))
    assert [event[:2] for event in found] == [["sync", "after the handshake"]]


# -- graceful shutdown (`cello serve`) -------------------------------------------------------


@pytest.mark.parametrize(
    ("sig", "sync"),
    [(signal.SIGTERM, ""), (signal.SIGINT, ""), (signal.SIGTERM, "1")],
    ids=["SIGTERM-async", "SIGINT-async", "SIGTERM-sync"],
)
def test_shutdown_waits_for_pending_work(tmp_path: Path, sig: signal.Signals, sync: str) -> None:
    server = start_server(APP, "httptools", "interpreted", "--graceful-timeout", "5")
    try:
        marker = tmp_path / "sent"
        with httpx.Client(base_url=server.url, timeout=10) as client:
            params = {"seconds": "1", "path": str(marker)}
            reply = client.post("/sleep", params={**params, "sync": sync} if sync else params)
            assert reply.json() == {"sleeping": 1.0}
        started = time.monotonic()
        server.process.send_signal(sig)
        assert server.process.wait(10) == 0
        assert marker.read_text() == "done"
        assert time.monotonic() - started >= 0.5
        assert "cut off" not in server.output()
    finally:
        server.stop()


def test_shutdown_cuts_off_work_that_outlives_the_grace_period(tmp_path: Path) -> None:
    server = start_server(APP, "h11", "interpreted", "--graceful-timeout", "1")
    try:
        marker = tmp_path / "never"
        with httpx.Client(base_url=server.url, timeout=10) as client:
            assert client.post("/sleep", params={"seconds": "30", "path": str(marker)}).status_code == 200
            assert client.post("/sleep", params={"seconds": "30", "path": str(marker)}).status_code == 200
        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(10) == 0
        assert 0.8 <= time.monotonic() - started < 5
        assert not marker.exists()
        assert "shutdown: 2 after_response task(s) cut off after 1s" in server.output()
    finally:
        server.stop()


# -- TestClient and the Request itself ------------------------------------------------------


def _app(log: list[Any]) -> App:
    app = App()

    def remember(*what: Any, **named: Any) -> None:
        # Off the loop: in a worker thread, not in the client's loop thread.
        log.append((what, named, threading.current_thread().name != "cello-testclient"))

    async def remember_later(what: str) -> None:
        await asyncio.sleep(0.01)
        log.append(what)

    def explode() -> None:
        raise ValueError("no mail today")

    @app.post("/orders")
    def orders(request: Request) -> Any:
        request.after_response(remember, "first", 1, to="a@example.com")
        request.after_response(explode)
        request.after_response(remember_later, "second")
        log.append("handler")
        return {"ok": True}

    @app.get("/stream")
    def stream(request: Request) -> Response:
        def chunks() -> Iterator[bytes]:
            yield b"a"
            log.append("streamed")
            yield b"b"

        request.after_response(log.append, "after the stream")
        return Response.stream(chunks())

    @app.get("/plain")
    def plain(request: Request) -> Any:
        return {"after_write": request.after_write is None}

    return app


def test_testclient_returns_once_the_work_has_run(caplog: pytest.LogCaptureFixture) -> None:
    log: list[Any] = []
    with TestClient(_app(log)) as client, caplog.at_level(logging.ERROR, "cello.error"):
        assert client.post("/orders").json() == {"ok": True}
        # TestClient waits for the whole ASGI call, which runs the work after the response.
        assert log == ["handler", (("first", 1), {"to": "a@example.com"}, True), "second"]
        assert client.get("/stream").content == b"ab"
        assert log[-2:] == ["streamed", "after the stream"]
        assert client.get("/plain").json() == {"after_write": True}
    (failure,) = [r for r in caplog.records if r.name == "cello.error"]
    assert failure.getMessage() == "after_response task explode of POST /orders failed"
    assert failure.exc_info is not None and isinstance(failure.exc_info[1], ValueError)


async def test_asynctestclient_runs_the_work_too() -> None:
    log: list[Any] = []
    async with AsyncTestClient(_app(log)) as client:
        assert (await client.post("/orders")).status_code == 200
    assert log[-1] == "second"


def test_a_request_without_work_has_none_and_work_is_collected_in_order() -> None:
    request = WireRequest("GET", "/", "", [], None, "http", "1.1")
    assert request.after_write is None
    assert Request("GET", "/").after_write is None
    request.route = "/orders/{id}"
    request.after_response(print, "a")
    request.after_response(len, "bc")
    work = request.after_write
    assert work is not None and len(work) == 2
    assert repr(work) == "<AfterResponse of GET /orders/{id}: print, len>"
    with pytest.raises(TypeError, match="needs a function"):
        request.after_response("not a function")


@pytest.mark.parametrize("asgi_server", ["uvicorn", "hypercorn"])
def test_asgi_servers_wait_for_the_work_at_shutdown(tmp_path: Path, asgi_server: str) -> None:
    pytest.importorskip(asgi_server)
    server = start_asgi_server(APP, asgi_server)
    try:
        marker = tmp_path / "sent"
        with httpx.Client(base_url=server.url, timeout=10) as client:
            reply = client.post("/sleep", params={"seconds": "1", "path": str(marker)})
            assert reply.json() == {"sleeping": 1.0}
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(10)
        # The work runs inside the request's ASGI call, which the server lets finish.
        assert marker.read_text() == "done"
    finally:
        server.stop()
