"""API.md's routes, requests, return values and errors, over the network.

Every test runs against the real `cello serve` on both parsers and both routers.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

import httpx
import pytest
from support.servers import RunningServer

APP = "tests/apps/basic.py"


@pytest.fixture
def client(serve_app: Callable[..., RunningServer], variant: tuple[str, str]) -> httpx.Client:
    server = serve_app(APP, *variant)
    with httpx.Client(base_url=server.url, timeout=10, follow_redirects=False) as client:
        yield client  # type: ignore[misc]


def raw_request(url: str, data: bytes) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def assert_error(response: httpx.Response, status: int, message: str | None = None) -> None:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["status"] == status
    if message is not None:
        assert body["error"] == message


# -- routing ---------------------------------------------------------------------------


def test_json_index(client: httpx.Client) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"hello": "world"}
    assert response.headers["content-length"] == str(len(response.content))


def test_typed_param_converted(client: httpx.Client) -> None:
    assert client.get("/users/42").json() == {"id": 42, "type": "int"}


def test_static_beats_param(client: httpx.Client) -> None:
    assert client.get("/users/me").json() == {"user": "me"}


def test_method_aware_backtracking(client: httpx.Client) -> None:
    # GET /users/{id:int} does not take DELETE; the str route /users/{name} does.
    assert client.delete("/users/42").json() == {"deleted": "42"}
    assert client.delete("/users/me").json() == {"deleted": "me"}


def test_non_ascii_digits_are_not_int(client: httpx.Client) -> None:
    # U+0661 ARABIC-INDIC DIGIT ONE: str.isdigit() says yes, the int converter says no.
    assert client.get("/users/%D9%A1").status_code == 405  # only DELETE /users/{name} matches


def test_str_param_percent_decoded(client: httpx.Client) -> None:
    body = client.get("/items/caf%C3%A9%20au%20lait").json()
    assert body["name"] == "café au lait"


def test_encoded_slash_stays_in_segment(client: httpx.Client) -> None:
    body = client.get("/items/a%2Fb").json()
    assert body["name"] == "a/b"
    assert body["raw_path"] == "/items/a%2Fb"


def test_catch_all(client: httpx.Client) -> None:
    assert client.get("/files/a/b/c.txt").json() == {"path": "a/b/c.txt"}
    assert client.get("/files/").json() == {"path": ""}


def test_uuid_and_float(client: httpx.Client) -> None:
    u = "12345678-1234-5678-1234-567812345678"
    assert client.get(f"/uuid/{u}").json() == {"u": u, "type": "UUID"}
    assert client.get("/uuid/not-a-uuid").status_code == 404
    assert client.get("/float/3.25").json() == {"f": 3.25}
    assert client.get("/float/1e5").status_code == 404


def test_not_found(client: httpx.Client) -> None:
    assert_error(client.get("/nope"), 404, "Not Found: GET /nope")


def test_head_on_missing_route_has_no_body(client: httpx.Client) -> None:
    response = client.head("/nope")
    assert response.status_code == 404
    assert response.content == b""


def test_method_not_allowed_with_allow(client: httpx.Client) -> None:
    response = client.post("/users/42")
    assert_error(response, 405, "Method Not Allowed: POST /users/42")
    assert response.headers["allow"] == "DELETE, GET, HEAD, OPTIONS"


def test_multi_method_route(client: httpx.Client) -> None:
    assert client.get("/multi").json() == {"method": "GET"}
    assert client.post("/multi").json() == {"method": "POST"}
    assert client.put("/multi").headers["allow"] == "GET, HEAD, OPTIONS, POST"


def test_head_uses_get_route(client: httpx.Client) -> None:
    get = client.get("/")
    head = client.head("/")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]
    assert head.headers["content-length"] == get.headers["content-length"]


def test_explicit_head_route(client: httpx.Client) -> None:
    response = client.head("/head-only")
    assert response.status_code == 200
    assert response.headers["x-head"] == "yes"
    assert client.get("/head-only").headers["allow"] == "HEAD, OPTIONS"


def test_automatic_options(client: httpx.Client) -> None:
    response = client.options("/users/42")
    assert response.status_code == 204
    assert response.headers["allow"] == "DELETE, GET, HEAD, OPTIONS"
    assert response.content == b""


def test_declared_options_wins(client: httpx.Client) -> None:
    response = client.options("/custom-options")
    assert response.status_code == 200
    assert response.text == "custom options"


def test_trailing_slash_redirects(client: httpx.Client) -> None:
    response = client.get("/slash?x=1")
    assert response.status_code == 308
    assert response.headers["location"] == "/slash/?x=1"
    assert response.headers["content-length"] == "0"
    response = client.get("/noslash/")
    assert (response.status_code, response.headers["location"]) == (308, "/noslash")
    assert client.get("/noslash").text == "without slash"


# -- requests --------------------------------------------------------------------------


def test_json_body_echo(client: httpx.Client) -> None:
    payload = {"a": [1, 2, {"b": None}], "ü": "ß"}
    assert client.post("/echo", json=payload).json() == {"json": payload}


def test_invalid_json_is_400(client: httpx.Client) -> None:
    response = client.post("/echo", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"].startswith("Invalid JSON body")


def test_bytes_body_round_trip(client: httpx.Client) -> None:
    data = bytes(range(256)) * 100
    response = client.put("/raw", content=data)
    assert response.content == data
    assert response.headers["content-type"] == "application/octet-stream"


def test_text_body(client: httpx.Client) -> None:
    assert client.patch("/text", content="héllo".encode()).text == "HÉLLO"


def test_query(client: httpx.Client) -> None:
    body = client.get("/query?tag=a&tag=b&q=hello%20world").json()
    assert body == {"query": {"tag": "b", "q": "hello world"}, "tags": ["a", "b"], "q": "hello world"}


def test_request_info(client: httpx.Client) -> None:
    response = client.get(
        "/request-info?x=1",
        headers=[("X-Custom", "v"), ("X-Multi", "1"), ("X-Multi", "2"), ("Cookie", "a=1; b=2"), ("User-Agent", "t/1")],
    )
    body = response.json()
    port = client.base_url.port
    assert body == {
        "method": "GET",
        "path": "/request-info",
        "url": f"http://127.0.0.1:{port}/request-info?x=1",
        "host": f"127.0.0.1:{port}",
        "scheme": "http",
        "client_ip": "127.0.0.1",
        "client_port_is_int": True,
        "user_agent": "t/1",
        "header_x": "v",
        "header_all": ["1", "2"],
        "cookies": {"a": "1", "b": "2"},
        "content_type": "",
    }


def test_urlencoded_form(client: httpx.Client) -> None:
    body = client.post("/form", data={"a": "1", "b": "two words"}).json()
    assert body == {"fields": {"a": "1", "b": "two words"}, "files": []}


def test_multipart_form(client: httpx.Client) -> None:
    body = client.post("/form", data={"name": "x"}, files={"doc": ("a.txt", b"hello", "text/plain")}).json()
    assert body == {"fields": {"name": "x"}, "files": [["doc", "a.txt", 5]]}


def test_streamed_request_body(client: httpx.Client) -> None:
    def gen():  # type: ignore[no-untyped-def]
        for _ in range(10):
            yield b"x" * 10000

    assert client.post("/stream-body", content=gen()).json() == {"bytes": 100000, "chunks_seen": 1}


# -- return values -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "status", "content_type", "body"),
    [
        ("/kinds/text", 200, "text/plain; charset=utf-8", b"plain text"),
        ("/kinds/bytes", 200, "application/octet-stream", b"\x00\x01\x02"),
        ("/kinds/list", 200, "application/json", b"[1,2,3]"),
        ("/kinds/tuple", 201, "application/json", b'{"made":true}'),
        ("/kinds/html", 200, "text/html; charset=utf-8", b"<h1>hi</h1>"),
    ],
)
def test_return_kinds(client: httpx.Client, path: str, status: int, content_type: str, body: bytes) -> None:
    response = client.get(path)
    assert (response.status_code, response.headers["content-type"], response.content) == (status, content_type, body)


def test_none_is_204_without_length(client: httpx.Client) -> None:
    response = client.get("/kinds/none")
    assert response.status_code == 204
    assert "content-length" not in response.headers
    assert response.content == b""


def test_empty_body_has_content_length_zero(client: httpx.Client) -> None:
    response = client.get("/kinds/empty")
    assert response.status_code == 200
    assert response.headers["content-length"] == "0"


def test_tuple_headers(client: httpx.Client) -> None:
    assert client.get("/kinds/tuple").headers["x-made"] == "yes"


def test_redirect_and_cookie(client: httpx.Client) -> None:
    response = client.get("/kinds/redirect")
    assert (response.status_code, response.headers["location"]) == (302, "/")
    response = client.get("/kinds/cookie")
    assert response.headers["set-cookie"] == "session=abc; Path=/; HttpOnly; SameSite=Lax"


def test_streaming_responses(client: httpx.Client) -> None:
    response = client.get("/kinds/stream")
    assert response.text == "chunk0;chunk1;chunk2;"
    assert response.headers["transfer-encoding"] == "chunked"
    assert client.get("/kinds/sync-stream").text == "abc"


@pytest.mark.native_only(reason="each server writes its own Date and Server headers")
def test_date_and_server_headers(client: httpx.Client) -> None:
    response = client.get("/")
    assert response.headers["server"] == "cello"
    assert response.headers["date"].endswith("GMT")


# -- handlers --------------------------------------------------------------------------


def test_async_handler(client: httpx.Client) -> None:
    assert client.get("/async").json() == {"async": "yes"}


def test_threaded_runs_off_the_loop(client: httpx.Client) -> None:
    assert client.get("/threaded").json() == {"main": False}
    assert client.get("/inline").json() == {"main": True}


# -- errors ----------------------------------------------------------------------------


def test_unhandled_exception_hides_detail(client: httpx.Client) -> None:
    response = client.get("/boom")
    assert_error(response, 500, "Internal Server Error")
    assert "secret" not in response.text
    assert_error(client.get("/async-boom"), 500, "Internal Server Error")
    # The connection is still usable after a handler error.
    assert client.get("/").status_code == 200


def test_http_exception(client: httpx.Client) -> None:
    assert_error(client.get("/http-error"), 418, "I am a teapot")


def test_error_handler_by_type(client: httpx.Client) -> None:
    assert_error(client.get("/teapot"), 418, "teapot: short and stout")


def test_debug_mode_names_the_exception(serve_app: Callable[..., RunningServer], variant: tuple[str, str]) -> None:
    server = serve_app("tests/apps/debug_errors.py", *variant)
    response = httpx.get(server.url + "/boom")
    assert_error(response, 500, "Handler error: ValueError: visible in debug")
    assert "Traceback" in server.output()


def test_error_handlers_by_status(serve_app: Callable[..., RunningServer], variant: tuple[str, str]) -> None:
    server = serve_app("tests/apps/debug_errors.py:custom", *variant)
    response = httpx.get(server.url + "/nothing-here")
    assert response.status_code == 404
    assert response.json() == {"error": "custom not found", "path": "/nothing-here", "status": 404}
    response = httpx.get(server.url + "/boom")
    assert response.json() == {"error": "custom failure", "kind": "KeyError", "status": 500}


@pytest.mark.native_only(reason="the server's HTTP parser refuses it before the app sees a scope")
def test_malformed_request_closes_connection(client: httpx.Client) -> None:
    reply = raw_request(
        str(client.base_url), b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"
    )
    assert reply.startswith(b"HTTP/1.1 400 ")
    assert b'"status":400' in reply
