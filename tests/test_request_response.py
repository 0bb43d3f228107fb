"""Request, Response and return-value normalisation, without a network."""

from __future__ import annotations

import uuid

import orjson
import pytest

from cello import HTTPException, Request, Response, SseStream
from cello.request import WireRequest
from cello.forms import FormData
from cello.pipeline import to_response


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
    assert request.headers["X-A"] == "2"
    assert request.headers.get_all("x-a") == ["1", "2"]
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
    assert (redirect.status, redirect.headers["location"]) == (307, "/there")
    assert Response.redirect("/p", permanent=True).status == 308
    assert Response.redirect("/p", status=303).status == 303
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
