"""Request ids (``app.enable_request_id``) and JSON logs (``enable_logging(format="json")``,
``cello serve --log-format json``).

Over the network on every server variant (tests/apps/request_ids.py trusts the proxy at
127.0.0.1): a test reaches the server from 127.0.0.1, a trusted proxy whose X-Request-ID is kept,
or from 127.0.0.2, a peer whose X-Request-ID is ignored. The server's log file shows the lines
written for a request. Then the same under TestClient, and the pieces directly.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.http import exchange_open
from support.http import get as raw_get
from support.servers import RunningServer, start_server

from cello import App, Blueprint, Request, logs
from cello.errors import error_body
from cello.logs import JsonFormatter, RequestIdFilter, TextFormatter, current_request_id
from cello.middleware import request_id as request_id_module
from cello.middleware.request_id import MAX_LENGTH, RequestIds, new_id, sane
from cello.testing import TestClient

APP = "tests/apps/request_ids.py"
TRUSTED_PEER = "127.0.0.1"
UNTRUSTED_PEER = "127.0.0.2"
GENERATED = re.compile(r"[0-9a-f]{32}")
ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@pytest.fixture
def server(serve_app: Callable[..., RunningServer], variant: tuple[str, str]) -> RunningServer:
    return serve_app(APP, *variant)


@pytest.fixture(autouse=True)
def restore_log_format() -> Iterator[None]:
    """enable_logging(format="json") sets the process's format: put it back after a test."""
    before = logs._format
    yield
    logs.use_format(before)


def get(
    server: RunningServer, path: str, headers: dict[str, Any] | None = None, peer: str = TRUSTED_PEER
) -> httpx.Response:
    transport = httpx.HTTPTransport(local_address=peer)
    with httpx.Client(transport=transport, timeout=10) as client:
        return client.get(server.url + path, headers=headers or {})


def json_lines(server: RunningServer) -> list[dict[str, Any]]:
    """Every line of the server's log that is a JSON object (a server may print others)."""
    found = []
    for line in server.output().splitlines():
        if line.startswith("{"):
            found.append(json.loads(line))  # a line that starts like one must be one
    return found


def lines_of(server: RunningServer, request_id: str, count: int) -> list[dict[str, Any]]:
    """The JSON log lines of one request, once ``count`` of them are there (or after 10s)."""
    deadline = time.monotonic() + 10
    while True:
        found = [line for line in json_lines(server) if line.get("request_id") == request_id]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


# -- over the network ---------------------------------------------------------------------


def test_each_request_gets_its_own_id(server: RunningServer) -> None:
    seen = set()
    for peer in (UNTRUSTED_PEER, TRUSTED_PEER, UNTRUSTED_PEER):
        response = get(server, "/id", peer=peer)
        assert response.status_code == 200
        request_id = response.headers["x-request-id"]
        assert GENERATED.fullmatch(request_id), request_id
        # The handler sees it as request.id, and as the current id (what log lines get).
        assert response.json() == {"id": request_id, "current": request_id}
        seen.add(request_id)
    assert len(seen) == 3


@pytest.mark.parametrize("path", ["/async-id", "/threaded-id"])
def test_async_and_threaded_handlers_see_the_id(server: RunningServer, path: str) -> None:
    response = get(server, path)
    request_id = response.headers["x-request-id"]
    assert response.json() == {"id": request_id, "current": request_id}


def test_pipelined_requests_each_see_their_own_id(server: RunningServer) -> None:
    # The second (synchronous) request waits until the first (async) is answered, and is then
    # answered from the first's task, whose context holds the first's id.
    responses, sock, _ = exchange_open(server.url, raw_get("/async-id") + raw_get("/id") + raw_get("/async-id"), 3)
    sock.close()
    ids = [response.header("x-request-id") for response in responses]
    assert [json.loads(response.body) for response in responses] == [{"id": i, "current": i} for i in ids]
    assert len(set(ids)) == 3


def test_a_thread_logging_during_an_inline_handler_does_not_get_its_id(server: RunningServer) -> None:
    response = get(server, "/thread-log")
    assert response.json() == {
        "id": response.headers["x-request-id"],
        "logged": ["-", response.headers["x-request-id"]],
    }


def test_trusted_proxy_id_is_kept(server: RunningServer) -> None:
    incoming = f"edge-{uuid.uuid4()}"
    response = get(server, "/id", {"X-Request-ID": incoming})
    assert response.headers["x-request-id"] == incoming
    assert response.json()["id"] == incoming


def test_untrusted_peer_id_is_ignored(server: RunningServer) -> None:
    response = get(server, "/id", {"X-Request-ID": "chosen-by-the-client"}, peer=UNTRUSTED_PEER)
    request_id = response.headers["x-request-id"]
    assert request_id != "chosen-by-the-client"
    assert GENERATED.fullmatch(request_id)
    assert response.json()["id"] == request_id


@pytest.mark.parametrize(
    "incoming",
    ["x" * (MAX_LENGTH + 1), "two words", 'quote"d', "semi;colon", "back\\slash", "é".encode()],
    ids=["too-long", "space", "quote", "semicolon", "backslash", "non-ascii"],
)
def test_insane_id_from_a_trusted_proxy_is_replaced(server: RunningServer, incoming: str | bytes) -> None:
    response = get(server, "/id", {"X-Request-ID": incoming})
    request_id = response.headers["x-request-id"]
    assert GENERATED.fullmatch(request_id), request_id
    assert response.json()["id"] == request_id


def test_longest_sane_id_is_kept(server: RunningServer) -> None:
    incoming = "A1._:+/=@-" * (MAX_LENGTH // 10) + "z" * (MAX_LENGTH % 10)
    assert len(incoming) == MAX_LENGTH
    assert get(server, "/id", {"X-Request-ID": incoming}).headers["x-request-id"] == incoming


def test_error_bodies(server: RunningServer) -> None:
    response = get(server, "/boom")
    request_id = response.headers["x-request-id"]
    assert response.status_code == 500
    assert response.json() == {"error": "Internal Server Error", "status": 500, "request_id": request_id}
    response = get(server, "/unavailable")
    assert response.status_code == 503
    assert response.json() == {
        "error": "Service Unavailable",
        "status": 503,
        "request_id": response.headers["x-request-id"],
    }
    # A 4xx names no id in its body (the header has it): the client's mistake, not one to report.
    response = get(server, "/teapot")
    assert response.status_code == 418
    assert "request_id" not in response.json()
    assert GENERATED.fullmatch(response.headers["x-request-id"])
    # The router's own answers go through the app's hooks too.
    response = get(server, "/no/such/route")
    assert response.status_code == 404
    assert GENERATED.fullmatch(response.headers["x-request-id"])


def test_log_lines_of_a_request_share_its_id(server: RunningServer) -> None:
    request_id = f"trace-{uuid.uuid4()}"
    response = get(server, "/boom", {"X-Request-ID": request_id})
    assert response.status_code == 500
    found = lines_of(server, request_id, 2)
    by_logger = {line["logger"]: line for line in found}
    assert set(by_logger) == {"cello.error", "cello.access"}, found
    error = by_logger["cello.error"]
    assert error["level"] == "ERROR"
    assert error["message"] == "unhandled error in GET /boom"
    assert "RuntimeError: boom" in error["exception"]
    access = by_logger["cello.access"]
    assert access["level"] == "INFO"
    assert (access["method"], access["path"], access["route"], access["status"]) == ("GET", "/boom", "/boom", 500)
    assert isinstance(access["duration_ms"], float) and 0 <= access["duration_ms"] < 10_000
    assert access["client"].startswith(f"{TRUSTED_PEER}:")
    assert "GET /boom HTTP/1.1" in access["message"]
    for line in found:
        assert ISO_UTC.fullmatch(line["timestamp"]), line


def test_access_line_of_a_route_with_parameters(server: RunningServer) -> None:
    response = get(server, "/id?x=1")
    request_id = response.headers["x-request-id"]
    (access,) = lines_of(server, request_id, 1)
    assert (access["route"], access["path"], access["query"], access["status"]) == ("/id", "/id", "x=1", 200)
    # A path no route matches has no template.
    response = get(server, "/nowhere")
    (access,) = lines_of(server, response.headers["x-request-id"], 1)
    assert (access["route"], access["path"], access["status"]) == (None, "/nowhere", 404)


def test_user_log_records_get_the_id(server: RunningServer) -> None:
    response = get(server, "/user-log")
    assert response.json() == {"id": response.headers["x-request-id"], "logged": response.headers["x-request-id"]}


@pytest.mark.parametrize("parser", ["httptools", "h11"])
def test_serve_log_format_json(parser: str) -> None:
    """`cello serve --log-format json`: the framework's own lines (start-up, shutdown) are JSON,
    and so is the access log of an app that asked for text."""
    server = start_server("tests/apps/middleware_app.py", parser, "interpreted", "--log-format", "json")
    try:
        assert httpx.get(server.url + "/logged/x").status_code == 200
        deadline = time.monotonic() + 10
        while not any(line.get("logger") == "cello.access" for line in json_lines(server)):
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.05)
    finally:
        assert server.stop() == 0
    output = server.output().splitlines()
    assert output and all(line.startswith("{") for line in output), output
    lines = json_lines(server)
    messages = [line["message"] for line in lines]
    assert any(message.startswith("Cello serving on") for message in messages), messages
    assert any(message.startswith("shutting down") for message in messages), messages
    for line in lines:
        assert {"timestamp", "level", "logger", "message"} <= set(line)
    (access,) = [line for line in lines if line["logger"] == "cello.access"]
    assert (access["path"], access["status"]) == ("/logged/x", 200)


# -- in process ---------------------------------------------------------------------------


def make_app(**options: Any) -> App:
    app = App(forwarded_allow_ips=["127.0.0.1"], **options)
    app.enable_request_id()

    @app.get("/id")
    def show(request: Request) -> dict[str, Any]:
        return {"id": request.id}

    @app.get("/boom")
    def boom(request: Request) -> str:
        raise RuntimeError("boom")

    return app


def test_test_client() -> None:
    app = make_app()
    with TestClient(app) as client:
        first, second = client.get("/id"), client.get("/id")
        assert first.headers["x-request-id"] != second.headers["x-request-id"]
        assert first.json() == {"id": first.headers["x-request-id"]}
        # TestClient's peer is 127.0.0.1, trusted here.
        assert client.get("/id", headers={"X-Request-ID": "abc"}).headers["x-request-id"] == "abc"
        boom = client.get("/boom")
        assert boom.json()["request_id"] == boom.headers["x-request-id"]
    with TestClient(app, client=(UNTRUSTED_PEER, 4000)) as client:
        assert client.get("/id", headers={"X-Request-ID": "abc"}).headers["x-request-id"] != "abc"


def test_no_id_is_current_once_a_request_is_answered() -> None:
    async def current() -> tuple[str | None, str | None]:
        return current_request_id(), request_id_module.inline.request_id

    with TestClient(make_app()) as client:
        for path, status in (("/id", 200), ("/boom", 500)):
            assert client.get(path).status_code == status
            # On the thread that ran the handler (inline: the id was in the slot), nothing left.
            assert client._loop_thread.run(current()) == (None, None)


def test_off_changes_nothing() -> None:
    app = App()

    @app.get("/id")
    def show(request: Request) -> dict[str, Any]:
        return {"id": request.id}

    @app.get("/boom")
    def boom(request: Request) -> str:
        raise RuntimeError("boom")

    with TestClient(app) as client:
        response = client.get("/id", headers={"X-Request-ID": "abc"})
        assert response.json() == {"id": None}
        assert "x-request-id" not in response.headers
        assert client.get("/boom").json() == {"error": "Internal Server Error", "status": 500}


def test_custom_header_and_a_handler_that_sets_it() -> None:
    app = App(forwarded_allow_ips=["127.0.0.1"])
    app.enable_request_id(header="X-Trace-Id")

    @app.get("/own")
    def own(request: Request) -> Any:
        return "x", 200, {"X-Trace-Id": "mine"}

    @app.get("/id")
    def show(request: Request) -> dict[str, Any]:
        return {"id": request.id}

    with TestClient(app) as client:
        response = client.get("/id", headers={"X-Trace-Id": "from-proxy", "X-Request-ID": "other"})
        assert response.headers["x-trace-id"] == "from-proxy"
        assert "x-request-id" not in response.headers
        own = client.get("/own")
        assert own.headers.get_list("x-trace-id") == ["mine"]
    with pytest.raises(ValueError, match="header name"):
        app.enable_request_id(header="bad header")


def test_blueprint_scope() -> None:
    app = App()
    traced = Blueprint("/traced")
    traced.enable_request_id()

    @traced.get("/x")
    def inside(request: Request) -> dict[str, Any]:
        return {"id": request.id}

    @app.get("/y")
    def outside(request: Request) -> dict[str, Any]:
        return {"id": request.id}

    app.register_blueprint(traced)
    with TestClient(app) as client:
        response = client.get("/traced/x")
        assert response.json() == {"id": response.headers["x-request-id"]}
        assert client.get("/y").json() == {"id": None}


def test_logs_in_process(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    app = make_app()
    access = tmp_path / "access.jsonl"
    app.enable_logging(file=str(access), format="json")
    blueprint = Blueprint("/bp")

    @blueprint.get("/z")
    def z(request: Request) -> str:
        return "z"

    app.register_blueprint(blueprint)
    # The filter runs where the record is handled: on the app's loop, in the request's context.
    caplog.handler.addFilter(RequestIdFilter())
    with caplog.at_level(logging.ERROR, logger="cello.error"), TestClient(app) as client:
        boom = client.get("/boom", headers={"X-Request-ID": "rid-1"})
        assert boom.status_code == 500
        z = client.get("/bp/z?q=2", headers={"X-Request-ID": "rid-2"})
    # The record of the error log carries the id, set by the filter.
    (record,) = [r for r in caplog.records if r.name == "cello.error"]
    assert record.request_id == "rid-1"
    formatted = json.loads(JsonFormatter().format(record))
    assert (formatted["request_id"], formatted["message"]) == ("rid-1", "unhandled error in GET /boom")
    lines = [json.loads(line) for line in access.read_text().splitlines()]
    # The blueprint's route is logged by the app's access log.
    assert [(line["request_id"], line["status"], line["route"]) for line in lines] == [
        ("rid-1", 500, "/boom"),
        ("rid-2", 200, "/bp/z"),
    ]
    assert all(ISO_UTC.fullmatch(line["timestamp"]) and line["logger"] == "cello.access" for line in lines)
    assert lines[1]["query"] == "q=2"
    assert z.headers["x-request-id"] == "rid-2"


def test_text_access_file_names_the_id(tmp_path: Path) -> None:
    app = make_app()
    text_access = tmp_path / "access.log"
    app.enable_logging(file=str(text_access))
    with TestClient(app) as client:
        client.get("/id?q=2", headers={"X-Request-ID": "rid-3"})
    (text_line,) = text_access.read_text().splitlines()
    assert '"GET /id?q=2 HTTP/1.1" 200 ' in text_line and text_line.endswith("ms request_id=rid-3")


def test_enable_logging_format_is_checked() -> None:
    with pytest.raises(ValueError, match="'text' or 'json'"):
        App().enable_logging(format="xml")


# -- the pieces ---------------------------------------------------------------------------


def record(message: str = "hello", **extra: Any) -> logging.LogRecord:
    made = logging.LogRecord("cello.test", logging.WARNING, __file__, 1, message, None, None)
    made.__dict__.update(extra)
    return made


def test_formatters_and_filter() -> None:
    token = request_id_module._context_id.set("rid-9")
    try:
        filtered = record()
        assert RequestIdFilter().filter(filtered) and filtered.request_id == "rid-9"
        # An id given with the record (the access log's, a caller's extra) stands.
        given = record(request_id="given")
        RequestIdFilter().filter(given)
        assert given.request_id == "given"
        text = TextFormatter("%(levelname)s %(message)s").format(record())
        assert text == "WARNING hello request_id=rid-9"
    finally:
        request_id_module._context_id.reset(token)
    outside = record()
    RequestIdFilter().filter(outside)
    assert outside.request_id == "-"
    assert TextFormatter("%(message)s").format(outside) == "hello"
    line = json.loads(JsonFormatter().format(outside))
    assert set(line) == {"timestamp", "level", "logger", "message"}
    assert (line["level"], line["logger"], line["message"]) == ("WARNING", "cello.test", "hello")
    try:
        raise KeyError("k")
    except KeyError:
        failed = logging.LogRecord("cello.test", logging.ERROR, __file__, 1, "failed %s", ("x",), sys.exc_info())
    line = json.loads(JsonFormatter().format(failed))
    assert line["message"] == "failed x" and "KeyError: 'k'" in line["exception"]
    # The access fields a record carries; values JSON cannot hold are written as text.
    line = json.loads(JsonFormatter().format(record(status=200, route="/a/{id}", client=object())))
    assert line["status"] == 200 and line["route"] == "/a/{id}" and line["client"].startswith("<object")


def test_sane_ids() -> None:
    assert sane("a") and sane("x" * MAX_LENGTH) and sane(str(uuid.uuid4())) and sane("Root=1-5e1b4151-5ac6c58f")
    assert not sane("") and not sane("x" * (MAX_LENGTH + 1)) and not sane("a b") and not sane("a\nb")
    assert GENERATED.fullmatch(new_id()) and new_id() != new_id()
    with pytest.raises(ValueError):
        RequestIds("X-Request-ID\r\n")


def test_generated_ids_are_unique_across_batches_and_forks() -> None:
    ids = [new_id() for _ in range(1000)]  # several of the pool's batches
    assert all(GENERATED.fullmatch(i) for i in ids) and len(set(ids)) == len(ids)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the ids its parent's batch still holds must not be handed out
        os.write(write, " ".join(new_id() for _ in range(8)).encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 4096).decode().split()
    os.close(read)
    os.waitpid(pid, 0)
    parent = [new_id() for _ in range(8)]
    assert len(child) == 8 and not set(child) & set(parent)


def test_error_body_shape() -> None:
    assert json.loads(error_body(500, "x")) == {"error": "x", "status": 500}
    assert json.loads(error_body(500, "x", None, "r")) == {"error": "x", "status": 500, "request_id": "r"}
    assert json.loads(error_body(422, "x", [{"a": 1}])) == {"error": "x", "status": 422, "detail": [{"a": 1}]}
