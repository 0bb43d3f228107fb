"""Request, Response and return-value normalisation, without a network."""

from __future__ import annotations

import uuid

import orjson
import pytest

from cello import HTTPException, Request, Response, SseStream
from cello.forms import FormData
from cello.pipeline import to_response
from cello.request import WireRequest


def test_request_constructible_for_unit_tests() -> None:
    request = Request(
        "get",
        "/users/7",
        params={"id": 7},
        query={"page": "2"},
        headers={"X-Token": "abc", "Content-Type": "application/json"},
        body=b'{"a": 1}',
    )
    assert request.method == "GET"
    assert request.path == "/users/7"
    assert request.params == {"id": 7}
    assert request.get_param("id") == 7
    assert request.get_param("nope", "d") == "d"
    assert request.query["page"] == "2"
    assert request.get_query_param("page") == "2"
    assert request.headers["x-token"] == "abc"
    assert request.get_header("X-TOKEN") == "abc"
    assert request.json() == {"a": 1}
    assert request.is_json()
    assert not request.is_form()


def test_query_last_value_wins_and_get_all() -> None:
    request = Request("GET", "/s?tag=a&tag=b&q=x%20y&empty=")
    assert request.query["tag"] == "b"
    assert request.query.get_all("tag") == ["a", "b"]
    assert request.query["q"] == "x y"
    assert request.query["empty"] == ""
    assert request.query.get_all("missing") == []


def test_headers_case_insensitive_multi_valued() -> None:
    request = WireRequest(
        "GET", "/", "", [(b"X-A", b"1"), (b"x-a", b"2"), (b"Cookie", b"a=1; b=two")], ("127.0.0.1", 5), "http", "1.1"
    )
    # One header's values straight from the raw ones (before the mapping is built), then from it.
    assert (request.header_values(b"x-a"), request.header_values(b"x-b")) == (["1", "2"], [])
    assert request.headers["X-A"] == "2"
    assert request.headers.get_all("x-a") == ["1", "2"] == request.header_values(b"x-a")
    assert "x-A" in request.headers
    assert request.cookies == {"a": "1", "b": "two"}
    assert request.client_ip() == "127.0.0.1"
    assert request.client == ("127.0.0.1", 5)


def test_path_is_percent_decoded_raw_path_kept() -> None:
    request = WireRequest("GET", "/files/a%20b%2Fc", "", [], None, "http", "1.1")
    assert request.path == "/files/a b/c"
    assert request.raw_path == "/files/a%20b%2Fc"


def test_json_errors_are_400() -> None:
    with pytest.raises(HTTPException) as info:
        Request("POST", "/", body=b"{nope").json()
    assert info.value.status == 400
    with pytest.raises(HTTPException):
        Request("POST", "/").json()


def test_text_uses_charset() -> None:
    request = Request("POST", "/", headers={"content-type": "text/plain; charset=latin-1"}, body="é".encode("latin-1"))
    assert request.text() == "é"


def test_urlencoded_form_sync_and_await() -> None:
    request = Request("POST", "/", headers={"content-type": "application/x-www-form-urlencoded"}, body=b"a=1&b=x+y&a=2")
    form = request.form()
    assert isinstance(form, FormData)
    assert form["a"] == "2"
    assert form.get_all("a") == ["1", "2"]
    assert form.get_or("missing", "d") == "d"
    assert form.field_names() == ["a", "b"]
    assert orjson.loads(Response.json({"form": form}).body()) == {"form": {"a": "2", "b": "x y"}}


async def test_form_awaitable() -> None:
    request = Request("POST", "/", headers={"content-type": "application/x-www-form-urlencoded"}, body=b"a=1")
    form = await request.form()
    assert form["a"] == "1"
    assert await request.files() == []


@pytest.mark.parametrize(
    ("value", "status", "content_type", "body"),
    [
        ({"a": 1}, 200, "application/json", b'{"a":1}'),
        ([1, 2], 200, "application/json", b"[1,2]"),
        ("hi", 200, "text/plain; charset=utf-8", b"hi"),
        (b"\x00\x01", 200, "application/octet-stream", b"\x00\x01"),
        (None, 204, None, b""),
        (({"a": 1}, 201), 201, "application/json", b'{"a":1}'),
        (("made", 202, {"X-Thing": "1"}), 202, "text/plain; charset=utf-8", b"made"),
        ((None, 404), 404, None, b""),
    ],
)
def test_return_value_normalisation(value: object, status: int, content_type: str | None, body: bytes) -> None:
    response = to_response(value)
    assert response.status == status
    assert response.content_type() == content_type
    assert response.body() == body


def test_tuple_headers_applied() -> None:
    response = to_response(("x", 200, {"X-Thing": "1"}))
    assert response.headers["x-thing"] == "1"


def test_uuid_and_mapping_serialise() -> None:
    value = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert orjson.loads(to_response({"id": value}).body()) == {"id": str(value)}


def test_response_factories() -> None:
    assert Response.json({"a": 1}, status=201).status == 201
    assert Response.text("x").content_type() == "text/plain; charset=utf-8"
    assert Response.html("<b>").content_type() == "text/html; charset=utf-8"
    assert Response.binary(b"x", "image/png").content_type() == "image/png"
    redirect = Response.redirect("/there")
    assert (redirect.status, redirect.headers["location"]) == (302, "/there")
    assert Response.redirect("/p", permanent=True).status == 301
    assert Response.redirect("/p", status=303).status == 303
    assert Response.redirect("/p", permanent=True, status=308).status == 308
    assert Response.no_content().status == 204
    created = Response.created({"id": 1}, location="/items/1")
    assert (created.status, created.headers["Location"], created.body()) == (201, "/items/1", b'{"id":1}')
    assert Response(b"x", content_type="text/csv").content_type() == "text/csv"
    assert isinstance(Response.sse(SseStream()), Response)


def test_status_is_settable_and_headers_mutable() -> None:
    response = Response.text("x")
    response.status = 418
    response.set_header("X-A", "1")
    response.headers["x-a"] = "2"
    assert response.headers.get_all("X-A") == ["2"]
    assert response.status == 418


@pytest.mark.parametrize("bad", ["a\r\nSet-Cookie: x=1", "a\nb", "a\x00b"])
def test_set_header_rejects_injection(bad: str) -> None:
    with pytest.raises(ValueError):
        Response.text("x").set_header("X-A", bad)
    with pytest.raises(ValueError):
        Response.redirect(bad)


# Every control character but HTAB (RFC 9110 §5.5), and what latin-1 cannot encode.
BAD_VALUE_CHARS = [chr(c) for c in [*range(0x00, 0x09), *range(0x0A, 0x20), 0x7F]] + ["\u20ac", "\U0001f600"]


@pytest.mark.parametrize("char", BAD_VALUE_CHARS, ids=lambda c: f"U+{ord(c):04X}")
def test_header_values_refuse_control_characters(char: str) -> None:
    value = f"a{char}b"
    for build in (
        lambda: Response.text("x").set_header("X-A", value),
        lambda: Response.text("x").headers.add("X-A", value),
        lambda: Response(b"x", headers={"X-A": value}),
        lambda: to_response(("x", 200, {"X-A": value})),
        lambda: Response(b"x", content_type=f"text/plain{value}"),
    ):
        with pytest.raises(ValueError, match=r"invalid character .* in header '(X-A|content-type)'"):
            build()


@pytest.mark.parametrize("value", ["a\tb", "caf\xe9", "x" * 8000, "", " spaced "])
def test_header_values_allow_htab_and_latin1(value: str) -> None:
    assert Response.text("x").set_header("X-A", value).headers["x-a"] == value


@pytest.mark.parametrize("name", ["", "X A", "X:A", "X-\u00e9", "X\tA", "(x)", "X/A", "X@A", 'X"A'])
def test_header_names_are_tokens(name: str) -> None:
    with pytest.raises(ValueError, match="invalid header name"):
        Response.text("x").set_header(name, "1")
    with pytest.raises(ValueError, match="invalid header name"):
        to_response(("x", 200, {name: "1"}))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"key": "a; Domain=evil.example"}, "invalid cookie name"),
        ({"key": "a=b"}, "invalid cookie name"),
        ({"key": ""}, "invalid cookie name"),
        ({"key": "s\x0b"}, "invalid cookie name"),
        ({"key": "s", "path": "/; Domain=evil.example"}, "cookie path"),
        ({"key": "s", "path": "/a\x7f"}, "cookie path"),
        ({"key": "s", "path": "/caf\xe9"}, "cookie path"),
        ({"key": "s", "domain": "example.com; Secure"}, "cookie domain"),
        ({"key": "s", "domain": "a\x0cb"}, "cookie domain"),
        ({"key": "s", "expires": "never; Domain=x"}, "cookie expires"),
        ({"key": "s", "samesite": "sometimes"}, "samesite"),
    ],
)
def test_set_cookie_refuses_what_would_forge_attributes(arguments: dict[str, str], message: str) -> None:
    response = Response.text("x")
    with pytest.raises(ValueError, match=message):
        response.set_cookie(**arguments)  # type: ignore[arg-type]
    assert response.headers.get("set-cookie") is None


def test_cookie_value_is_encoded_not_refused() -> None:
    response = Response.text("x").set_cookie("s", 'a; Domain=evil.example\x0b"\\,')
    assert response.headers["set-cookie"] == "s=a%3B%20Domain%3Devil.example%0B%22%5C%2C; Path=/; SameSite=Lax"


def test_set_cookie() -> None:
    response = Response.text("x")
    response.set_cookie("session", "a b", max_age=60, httponly=True, secure=True, samesite="strict")
    response.set_cookie("other", "1")
    cookies = response.headers.get_all("set-cookie")
    assert cookies[0] == "session=a%20b; Max-Age=60; Path=/; Secure; HttpOnly; SameSite=Strict"
    assert cookies[1] == "other=1; Path=/; SameSite=Lax"


def test_response_file(tmp_path: object) -> None:
    import pathlib

    path = pathlib.Path(str(tmp_path)) / "a.txt"
    path.write_bytes(b"hello")
    response = Response.file(path, filename="résumé.txt")
    assert response.headers["content-length"] == "5"
    assert response.content_type() == "text/plain; charset=utf-8"
    assert "filename*=UTF-8''r%C3%A9sum%C3%A9.txt" in response.headers["content-disposition"]
    assert response.is_streaming


def test_static_files_under_the_test_client(tmp_path: object) -> None:
    import os
    import pathlib

    from cello import App
    from cello.testing import TestClient

    base = pathlib.Path(str(tmp_path))
    root = base / "public"
    (root / "linked").mkdir(parents=True)
    (base / "secret.txt").write_text("top secret")
    os.symlink(base / "secret.txt", root / "linked" / "index.html")
    (root / ".env").write_text("SECRET_KEY=1")
    (root / "notes.txt").write_text("notes")
    app = App()
    app.static("/s", str(root))
    app.static("/all", str(root), dotfiles=True)
    with TestClient(app) as client:
        for path in ["/s/linked/", "/s/linked", "/s/.env", "/s/notes.txt/", "/all/linked/"]:
            assert client.get(path).status_code == 404, path
        assert client.get("/s/notes.txt").text == "notes"
        assert client.get("/all/.env").text == "SECRET_KEY=1"
        whole = client.get(
            "/s/notes.txt", headers={"range": b"bytes=\xb2-", "if-modified-since": "Mon, 01 Jan 99999 00:00:00 GMT"}
        )
        assert (whole.status_code, whole.text) == (200, "notes")


def test_bad_header_from_a_handler_is_a_500_under_the_test_client(caplog: pytest.LogCaptureFixture) -> None:
    from cello import App
    from cello.testing import TestClient

    app = App()

    @app.get("/tuple")
    def tuple_headers(request: Request) -> object:
        return ("ok", 200, {"X-A": "a\x0bb"})

    @app.get("/cookie")
    def cookie(request: Request) -> Response:
        return Response.text("ok").set_cookie("a; Domain=evil.example", "1")

    with TestClient(app) as client:
        for path in ("/tuple", "/cookie"):
            response = client.get(path)
            assert (response.status_code, response.json()) == (500, {"error": "Internal Server Error", "status": 500})
            assert "set-cookie" not in response.headers
    assert "invalid character '\\x0b' in header 'X-A'" in caplog.text
    assert "invalid cookie name 'a; Domain=evil.example'" in caplog.text
