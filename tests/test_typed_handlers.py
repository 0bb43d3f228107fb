"""Typed handlers (API.md, "Typed handlers"): every binding rule, the 422 shape, 400/415,
``status=`` and return annotations, over the network on every server variant and in-process
through ``cello.testing.TestClient``; and the registration rules (RouteError naming file:line,
classic handlers left alone) without a server.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterator
from typing import Annotated, Any, TypeVar

import httpx
import msgspec
import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.servers import RunningServer

from cello import App, Blueprint, Body, Cookie, FormData, Header, Query, Request, RouteError, UploadedFile
from cello.binding.plan import BinderPlan, is_legacy, plan_handler
from cello.routing import parse_pattern
from cello.testing import TestClient

APP = "tests/apps/typed.py"
UID = "12345678-1234-5678-1234-567812345678"
Check = TypeVar("Check", bound=Callable[[httpx.Client], None])
# The behaviour checks, run once per server variant and once through TestClient.
SHARED: list[Callable[[httpx.Client], None]] = []


def shared(check: Check) -> Check:
    SHARED.append(check)
    return check


@pytest.fixture
def client(serve_app: Callable[..., RunningServer], variant: tuple[str, str]) -> Iterator[httpx.Client]:
    server = serve_app(APP, *variant)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def ok(response: httpx.Response, body: Any, status: int = 200) -> None:
    assert (response.status_code, response.headers["content-type"]) == (status, "application/json"), response.text
    assert response.json() == body


def invalid(response: httpx.Response, *problems: tuple[list[Any], str]) -> None:
    """A 422 listing exactly ``problems`` (loc, msg), in order."""
    assert (response.status_code, response.headers["content-type"]) == (422, "application/json"), response.text
    assert response.json() == {
        "error": "Validation failed",
        "status": 422,
        "detail": [{"loc": loc, "msg": msg} for loc, msg in problems],
    }


def error(response: httpx.Response, status: int, prefix: str) -> None:
    assert (response.status_code, response.headers["content-type"]) == (status, "application/json"), response.text
    body = response.json()
    assert sorted(body) == ["error", "status"] and body["status"] == status
    assert body["error"].startswith(prefix), body["error"]


def value(v: Any, type_name: str) -> dict[str, Any]:
    return {"value": v, "type": type_name}


# -- path parameters -------------------------------------------------------------------------


@shared
def test_typed_path_converters(client: httpx.Client) -> None:
    ok(client.get("/items/5"), {"id": 5, "type": "int"})
    ok(client.get("/scale/2.5"), {"x": 2.5, "type": "float"})
    ok(client.get("/scale/2"), {"x": 2.0, "type": "float"})
    ok(client.get(f"/things/{UID}"), {"u": UID, "type": "UUID"})
    # The router's converters still decide what matches.
    assert client.get("/items/x").status_code == 404


@shared
def test_plain_path_param_converted_by_its_annotation(client: httpx.Client) -> None:
    ok(client.get("/pages/7"), {"n": 7, "type": "int"})
    invalid(client.get("/pages/seven"), (["path", "n"], "Expected `int`, got `str`"))


@shared
def test_path_constraints(client: httpx.Client) -> None:
    ok(client.get("/small/10"), {"n": 10})
    invalid(client.get("/small/11"), (["path", "n"], "Expected `int` <= 10"))
    ok(client.get("/slugs/typed-handlers"), {"slug": "typed-handlers"})
    invalid(client.get("/slugs/Typed"), (["path", "slug"], "Expected `str` matching regex '^[a-z-]+$'"))


# -- query parameters ------------------------------------------------------------------------


QUERY_DEFAULTS = {
    "q": value("hi", "str"),
    "limit": value(20, "int"),
    "ratio": value(0.5, "float"),
    "flag": value(False, "bool"),
    "color": value("red", "Color"),
    "order": value("asc", "str"),
    "ref": value(None, "NoneType"),
    "since": value(None, "NoneType"),
    "note": value(None, "NoneType"),
    "ids": [],
    "page_size": value(10, "int"),
}


@shared
def test_query_defaults(client: httpx.Client) -> None:
    ok(client.get("/query", params={"q": "hi"}), QUERY_DEFAULTS)


@shared
def test_query_every_type(client: httpx.Client) -> None:
    params = [
        ("q", "hi"),
        ("limit", "5"),
        ("ratio", "1.5"),
        ("flag", "true"),
        ("color", "green"),
        ("order", "desc"),
        ("ref", UID),
        ("since", "2026-01-02T03:04:05Z"),
        ("note", "n"),
        ("ids", "1"),
        ("ids", "2"),
        ("ids", "3"),
        ("page-size", "3"),
    ]
    ok(
        client.get("/query", params=params),
        {
            "q": value("hi", "str"),
            "limit": value(5, "int"),
            "ratio": value(1.5, "float"),
            "flag": value(True, "bool"),
            "color": value("green", "Color"),
            "order": value("desc", "str"),
            "ref": value(UID, "UUID"),
            "since": value("2026-01-02 03:04:05+00:00", "datetime"),
            "note": value("n", "str"),
            "ids": [value(1, "int"), value(2, "int"), value(3, "int")],
            "page_size": value(3, "int"),
        },
    )


@shared
def test_query_every_problem_reported_in_signature_order(client: httpx.Client) -> None:
    params = [
        ("page-size", "z"),
        ("ids", "1"),
        ("ids", "a"),
        ("since", "yesterday"),
        ("ref", "nope"),
        ("order", "up"),
        ("color", "blue"),
        ("flag", "maybe"),
        ("ratio", "x"),
        ("limit", "0"),
    ]
    invalid(
        client.get("/query", params=params),
        (["query", "q"], "Field required"),
        (["query", "limit"], "Expected `int` >= 1"),
        (["query", "ratio"], "Expected `float`, got `str`"),
        (["query", "flag"], "Expected `bool`, got `str`"),
        (["query", "color"], "Invalid enum value 'blue'"),
        (["query", "order"], "Invalid enum value 'up'"),
        (["query", "ref"], "Invalid UUID"),
        (["query", "since"], "Invalid RFC3339 encoded datetime"),
        (["query", "ids", 1], "Expected `int`, got `str`"),
        (["query", "page-size"], "Expected `int`, got `str`"),
    )


@shared
def test_query_alias_and_repeated_scalar(client: httpx.Client) -> None:
    # The alias is the only name: the Python name is not read.
    ok(client.get("/query", params={"q": "hi", "page_size": "3"}), QUERY_DEFAULTS)
    # A scalar given twice takes the last value, as request.query.get does.
    body = client.get("/query", params=[("q", "a"), ("q", "b"), ("limit", "1"), ("limit", "2")]).json()
    assert (body["q"], body["limit"]) == (value("b", "str"), value(2, "int"))


@shared
def test_query_bool_lax_text(client: httpx.Client) -> None:
    for text, expected in [("true", True), ("false", False), ("1", True), ("0", False), ("True", True)]:
        assert client.get("/query", params={"q": "x", "flag": text}).json()["flag"] == value(expected, "bool")
    invalid(client.get("/query", params={"q": "x", "flag": "yes"}), (["query", "flag"], "Expected `bool`, got `str`"))


@shared
def test_query_empty_value(client: httpx.Client) -> None:
    # "?note=" is the empty string, not absent; "?limit=" is not an int.
    assert client.get("/query?q=x&note=").json()["note"] == value("", "str")
    invalid(client.get("/query?q=x&limit="), (["query", "limit"], "Expected `int`, got `str`"))


@shared
def test_query_decimal_date_int_enum_literal_and_header_list(client: httpx.Client) -> None:
    headers = [("x-tag", "a"), ("x-tag", "b")]
    ok(
        client.get("/more", params={"price": "1.50", "day": "2026-01-31", "level": "2", "size": "3"}, headers=headers),
        {
            "price": value("1.50", "Decimal"),
            "day": value("2026-01-31", "date"),
            "level": value(2, "Level"),
            "size": value(3, "int"),
            "tags": ["a", "b"],
        },
    )
    invalid(
        client.get("/more", params={"price": "cheap", "day": "31/01/2026", "level": "3", "size": "4"}),
        (["query", "price"], "Invalid decimal string"),
        (["query", "day"], "Invalid RFC3339 encoded date"),
        (["query", "level"], "Invalid enum value 3"),
        (["query", "size"], "Invalid enum value 4"),
    )


# -- headers and cookies ---------------------------------------------------------------------


@shared
def test_headers(client: httpx.Client) -> None:
    headers = {"X-Request-Id": "r1", "x-token": "t", "x-count": "3"}
    ok(client.get("/headers", headers=headers), {"x_request_id": "r1", "token": "t", "x_count": value(3, "int")})
    ok(
        client.get("/headers", headers={"x-request-id": "r2"}),
        {"x_request_id": "r2", "token": None, "x_count": value(0, "int")},
    )
    invalid(client.get("/headers"), (["header", "x-request-id"], "Field required"))
    invalid(
        client.get("/headers", headers={"x-request-id": "r", "x-count": "many"}),
        (["header", "x-count"], "Expected `int`, got `str`"),
    )


@shared
def test_cookies(client: httpx.Client) -> None:
    cookie = "session=s1; ui-theme=dark; visits=4"
    ok(
        client.get("/cookies", headers={"cookie": cookie}),
        {"session": "s1", "theme": "dark", "visits": value(4, "int")},
    )
    ok(
        client.get("/cookies", headers={"cookie": "session=s2"}),
        {"session": "s2", "theme": "light", "visits": value(0, "int")},
    )
    invalid(
        client.get("/cookies", headers={"cookie": "theme=dark; visits=x"}),
        (["cookie", "session"], "Field required"),
        (["cookie", "visits"], "Expected `int`, got `str`"),
    )


@shared
def test_every_problem_across_sources(client: httpx.Client) -> None:
    invalid(
        client.get("/mixed/1", params={"ratio": "x", "limit": "0"}),
        (["query", "limit"], "Expected `int` >= 1"),
        (["query", "ratio"], "Expected `float`, got `str`"),
        (["header", "x-token"], "Field required"),
    )
    ok(
        client.get("/mixed/1", params={"ratio": "2", "limit": "3"}, headers={"x-token": "t"}),
        {"id": 1, "limit": 3, "ratio": 2.0, "x_token": "t"},
    )


# -- bodies ----------------------------------------------------------------------------------

ORDER = {"customer": "ada", "items": [{"sku": "a", "quantity": 2}, {"sku": "b", "quantity": 3}]}


@shared
def test_text_and_bytes_results_answer_as_from_any_handler(client: httpx.Client) -> None:
    response = client.get("/greeting", params={"name": "cello"})
    assert (response.status_code, response.headers["content-type"]) == (200, "text/plain; charset=utf-8")
    assert response.text == "hello cello"
    response = client.get("/raw", params={"size": "5"})
    assert (response.status_code, response.headers["content-type"]) == (203, "application/octet-stream")
    assert response.content == b"xxxxx"


@shared
def test_struct_body_and_status(client: httpx.Client) -> None:
    ok(client.post("/orders", json=ORDER), {"customer": "ada", "lines": 2, "units": 5, "note": None}, 201)
    # curl -d sends no Content-Type: read as JSON; +json types are JSON.
    ok(
        client.post("/orders", content=b'{"customer":"b","items":[]}'),
        {"customer": "b", "lines": 0, "units": 0, "note": None},
        201,
    )
    response = client.post(
        "/orders", content=msgspec.json.encode(ORDER), headers={"content-type": "application/vnd.api+json"}
    )
    assert response.status_code == 201


@shared
def test_nested_body_error_loc(client: httpx.Client) -> None:
    order = {"customer": "ada", "items": [{"sku": "a", "quantity": 2}, {"sku": "b", "quantity": 0}]}
    invalid(client.post("/orders", json=order), (["body", "items", 1, "quantity"], "Expected `int` >= 1"))
    order = {"customer": "ada", "items": [{"sku": "a"}]}
    invalid(client.post("/orders", json=order), (["body", "items", 0, "quantity"], "Field required"))
    invalid(client.post("/orders", json={"items": []}), (["body", "customer"], "Field required"))
    invalid(client.post("/orders", json=[ORDER]), (["body"], "Expected `object`, got `array`"))


@shared
def test_body_not_json(client: httpx.Client) -> None:
    error(
        client.post("/orders", content=b"{bad", headers={"content-type": "application/json"}),
        400,
        "Invalid JSON body: ",
    )
    error(
        client.post("/users", content=b"{bad", headers={"content-type": "application/json"}), 400, "Invalid JSON body: "
    )
    response = client.post(
        "/orders", content=b"customer=ada", headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert (response.status_code, response.json()) == (
        415,
        {
            "error": "Unsupported Media Type: expected application/json, got application/x-www-form-urlencoded",
            "status": 415,
        },
    )
    invalid(client.post("/orders"), (["body"], "Field required"))


@shared
def test_dataclass_body(client: httpx.Client) -> None:
    ok(client.post("/points", json={"x": 1}), {"type": "Point", "x": 1, "y": 0})
    invalid(client.post("/points", json={"x": "1"}), (["body", "x"], "Expected `int`, got `str`"))
    invalid(client.post("/points", json={}), (["body", "x"], "Field required"))


@shared
def test_typeddict_body(client: httpx.Client) -> None:
    ok(client.post("/people", json={"name": "ada", "age": 36}), {"type": "dict", "person": {"name": "ada", "age": 36}})
    invalid(client.post("/people", json={"name": "ada"}), (["body", "age"], "Field required"))


@shared
def test_pydantic_body_reports_every_problem(client: httpx.Client) -> None:
    ok(client.post("/users", json={"name": "ada", "age": 36}), {"name": "ADA", "age": 37})
    invalid(
        client.post("/users", json={"name": "a", "age": -1}),
        (["body", "name"], "String should have at least 2 characters"),
        (["body", "age"], "Input should be greater than or equal to 0"),
    )
    invalid(client.post("/users", json={"name": "ada"}), (["body", "age"], "Field required"))


@shared
def test_list_of_pydantic_models_body(client: httpx.Client) -> None:
    ok(client.post("/user-list", json=[{"name": "ada", "age": 1}, {"name": "bob", "age": 2}]), ["User:ada", "User:bob"])
    invalid(
        client.post("/user-list", json=[{"name": "ada", "age": 1}, {"name": "b"}]),
        (["body", 1, "name"], "String should have at least 2 characters"),
        (["body", 1, "age"], "Field required"),
    )


@shared
def test_list_of_structs_body(client: httpx.Client) -> None:
    lines = [{"sku": "a", "quantity": 1}, {"sku": "b", "quantity": 2}]
    ok(client.post("/lines", json=lines), {"types": ["Line", "Line"], "units": 3})
    invalid(
        client.post("/lines", json=[{"sku": "a", "quantity": 1}, {"sku": "b"}]),
        (["body", 1, "quantity"], "Field required"),
    )


@shared
def test_optional_body(client: httpx.Client) -> None:
    ok(client.post("/optional-body"), {"point": None})
    ok(client.post("/optional-body", json={"x": 1, "y": 2}), {"point": {"x": 1, "y": 2}})
    ok(client.post("/optional-body", content=b"null", headers={"content-type": "application/json"}), {"point": None})


@shared
def test_body_marker_and_dict_body(client: httpx.Client) -> None:
    ok(client.post("/numbers", json=[1, 2, 3]), {"sum": 6, "types": ["int"]})
    invalid(client.post("/numbers", json=[1, 2, 3, 4]), (["body"], "Expected `array` of length <= 3"))
    invalid(client.post("/numbers", json=[1, "2"]), (["body", 1], "Expected `int`, got `str`"))
    ok(client.post("/scores", json={"ada": 3, "bob": 5}), {"best": "bob"})
    assert client.post("/scores", json={"ada": "x"}).status_code == 422


# -- forms and files -------------------------------------------------------------------------


@shared
def test_form_data_parameter(client: httpx.Client) -> None:
    ok(client.post("/form", data={"a": "1", "b": "2"}), {"type": "FormData", "fields": {"a": "1", "b": "2"}})
    ok(client.post("/form", data={"a": "1"}, files={"f": ("f.txt", b"x")}), {"type": "FormData", "fields": {"a": "1"}})
    error(client.post("/form", json={"a": 1}), 415, "Unsupported form content type")


@shared
def test_uploaded_file_parameter(client: httpx.Client) -> None:
    files = {"avatar": ("me.png", b"\x89PNG....", "image/png")}
    ok(
        client.post("/upload", params={"name": "ada"}, files=files),
        {"type": "UploadedFile", "filename": "me.png", "size": 8, "name": "ada"},
    )
    invalid(client.post("/upload", data={"other": "x"}), (["body", "avatar"], "Field required"))


@shared
def test_list_of_uploaded_files_parameter(client: httpx.Client) -> None:
    files = [("docs", ("a.txt", b"a")), ("docs", ("b.txt", b"bb")), ("other", ("c.txt", b"ccc"))]
    ok(client.post("/uploads", files=files), {"filenames": ["a.txt", "b.txt"], "sizes": [1, 2]})
    invalid(client.post("/uploads", files=[("other", ("c.txt", b"c"))]), (["body", "docs"], "Field required"))


# -- the request, keyword-only parameters, sync / async / threaded ---------------------------


@shared
def test_request_beside_typed_parameters(client: httpx.Client) -> None:
    ok(
        client.get("/with-request/3", params={"q": "z"}),
        {"path": "/with-request/3", "method": "GET", "id": 3, "q": "z"},
    )


@shared
def test_keyword_only_parameters(client: httpx.Client) -> None:
    ok(client.get("/keywords", params={"a": "1", "b": "2"}), {"a": 1, "b": 2, "c": "c"})
    ok(client.get("/keywords", params={"a": "1", "b": "2", "c": "x"}), {"a": 1, "b": 2, "c": "x"})
    invalid(client.get("/keywords"), (["query", "a"], "Field required"), (["query", "b"], "Field required"))


@shared
def test_async_threaded_and_parameterless_handlers(client: httpx.Client) -> None:
    ok(client.get("/async/4", params={"delay": "0.01"}), {"id": 4, "async": True})
    invalid(client.get("/async/4", params={"delay": "soon"}), (["query", "delay"], "Expected `float`, got `str`"))
    ok(client.get("/threaded/4"), {"id": 4, "main_thread": False})
    ok(client.get("/nothing"), {"parameters": 0})


# -- results ---------------------------------------------------------------------------------


@shared
def test_none_return_is_204(client: httpx.Client) -> None:
    response = client.delete("/items/4")
    assert (response.status_code, response.content, response.headers.get("content-type")) == (204, b"", None)


@shared
def test_status_option(client: httpx.Client) -> None:
    ok(client.put("/items/4"), {"id": 4, "accepted": True}, 202)


@shared
def test_returned_response_and_tuple_go_out_as_they_are(client: httpx.Client) -> None:
    response = client.get("/response/4")
    assert (response.status_code, response.headers["content-type"], response.text) == (
        203,
        "text/plain; charset=utf-8",
        "item 4",
    )
    response = client.get("/typed-response/0")
    assert (response.status_code, response.headers["content-type"], response.text) == (
        200,
        "text/plain; charset=utf-8",
        "zero",
    )
    ok(client.get("/typed-response/3"), {"id": 3})
    ok(client.get("/tuple/4"), {"id": 4}, 201)
    ok(client.get("/pair/201"), ["n", 201])


@shared
def test_http_exception_from_typed_handler(client: httpx.Client) -> None:
    error(client.get("/missing/4"), 404, "No item 4")


@shared
def test_return_annotation_encodes(client: httpx.Client) -> None:
    ok(client.get("/encoded"), {"when": "2026-01-02T03:04:05Z", "ref": UID, "kind": "a", "tags": ["x"]})


@shared
def test_head_of_typed_get(client: httpx.Client) -> None:
    response = client.head("/items/5")
    assert (response.status_code, response.headers["content-type"], response.content) == (200, "application/json", b"")


# -- blueprints and classic handlers ---------------------------------------------------------


@shared
def test_blueprint_with_typed_routes(client: httpx.Client) -> None:
    ok(
        client.get("/orgs/7/members/ada", params={"verbose": "1"}),
        {"org": value(7, "int"), "member": "ada", "verbose": True},
    )
    assert client.get("/orgs/seven/members/ada").status_code == 404
    ok(client.post("/orgs/7/members", json={"name": "bob"}), {"org": 7, "name": "bob", "role": "member"}, 201)
    invalid(
        client.post("/orgs/7/members", json={"name": "bob", "role": "owner"}),
        (["body", "role"], "Invalid enum value 'owner'"),
    )


@shared
def test_classic_handlers_beside_typed_ones(client: httpx.Client) -> None:
    ok(client.get("/legacy/3", params={"q": "a"}), {"id": 3, "q": "a"})
    ok(client.post("/legacy-json", json={"a": [1]}), {"echo": {"a": [1]}})


# -- properties ------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(min_value=1, max_value=100))
def test_limit_in_range_round_trips(client: httpx.Client, limit: int) -> None:
    ok(client.get("/limit", params={"limit": str(limit)}), {"limit": limit})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.integers(max_value=0), st.integers(min_value=101)).filter(lambda n: abs(n) < 2**63))
def test_limit_out_of_range_is_one_problem(client: httpx.Client, limit: int) -> None:
    invalid(
        client.get("/limit", params={"limit": str(limit)}),
        (["query", "limit"], "Expected `int` >= 1" if limit < 1 else "Expected `int` <= 100"),
    )


# -- the same through TestClient -------------------------------------------------------------


@pytest.fixture(scope="module")
def test_client() -> Iterator[TestClient]:
    import typed  # tests/apps is on the test path

    with TestClient(typed.app) as client:
        yield client


@pytest.mark.parametrize("check", SHARED, ids=lambda check: check.__name__.removeprefix("test_"))
def test_same_through_test_client(test_client: TestClient, check: Callable[[httpx.Client], None]) -> None:
    check(test_client)


@given(st.integers(min_value=-(2**40), max_value=2**40), st.sampled_from(["limit", "page-size"]))
def test_query_int_property_in_process(test_client: TestClient, number: int, name: str) -> None:
    """Any int reaches the handler as that int, or gives exactly one problem at its loc."""
    response = test_client.get("/query", params={"q": "x", name: str(number)})
    if name == "limit" and not 1 <= number <= 100:
        bound = "Expected `int` >= 1" if number < 1 else "Expected `int` <= 100"
        invalid(response, (["query", "limit"], bound))
    else:
        assert response.json()["limit" if name == "limit" else "page_size"] == value(number, "int")


@given(st.lists(st.integers(min_value=-(2**62), max_value=2**62), max_size=8))
def test_query_list_property_in_process(test_client: TestClient, numbers: list[int]) -> None:
    """Every value of a list parameter arrives, in order, as an int."""
    response = test_client.get("/query", params=[("q", "x")] + [("ids", str(n)) for n in numbers])
    assert response.json()["ids"] == [value(n, "int") for n in numbers]


# For each /mixed parameter: what to send and the problem it gives, if any.
MIXED_CASES = {
    "limit": [("5", None), ("0", "Expected `int` >= 1"), ("101", "Expected `int` <= 100"), (None, "Field required")],
    "ratio": [("0.5", None), ("x", "Expected `float`, got `str`"), (None, "Field required")],
    "x_token": [("t", None), (None, "Field required")],
}


@given(st.fixed_dictionaries({name: st.sampled_from(cases) for name, cases in MIXED_CASES.items()}))
def test_every_problem_property_in_process(
    test_client: TestClient, chosen: dict[str, tuple[str | None, str | None]]
) -> None:
    """Whatever is missing or wrong, the 422 lists exactly those problems, in signature order."""
    params = {name: text for name, (text, _) in chosen.items() if name != "x_token" and text is not None}
    token = chosen["x_token"][0]
    response = test_client.get("/mixed/1", params=params, headers={} if token is None else {"x-token": token})
    where = {"limit": ["query", "limit"], "ratio": ["query", "ratio"], "x_token": ["header", "x-token"]}
    problems = [(where[name], chosen[name][1]) for name in MIXED_CASES if chosen[name][1] is not None]
    if problems:
        invalid(response, *problems)
    else:
        ok(response, {"id": 1, "limit": 5, "ratio": 0.5, "x_token": "t"})


# -- registration: what a signature binds to -------------------------------------------------


def plan_of(handler: Callable[..., Any], path: str = "/", status: int | None = None) -> BinderPlan | None:
    return plan_handler(handler, parse_pattern(path, "test"), "test", status)


def where(handler: Callable[..., Any]) -> str:
    return f"{handler.__code__.co_filename}:{handler.__code__.co_firstlineno}"


def refuses(path: str, handler: Callable[..., Any], *words: str) -> str:
    """Registering ``handler`` at ``path`` raises a RouteError naming its file:line and ``words``."""
    with pytest.raises(RouteError) as caught:
        App().get(path)(handler)
    message = str(caught.value)
    assert message.startswith(where(handler) + ": "), message
    for word in words:
        assert word in message, message
    return message


class Line(msgspec.Struct):
    sku: str


def test_unbindable_type_is_route_error() -> None:
    def raw(data: bytes) -> None: ...

    def nested(matrix: list[list[int]]) -> None: ...

    def cookie_list(ids: Annotated[list[int], Cookie()]) -> None: ...

    refuses("/", raw, "cannot bind parameter 'data' of type bytes")
    refuses("/", nested, "cannot bind parameter 'matrix'")
    refuses("/", cookie_list, "cannot bind parameter 'ids'")


def test_path_annotation_contradicting_converter_is_route_error() -> None:
    def show(id: str) -> None: ...

    def ratio(x: int) -> None: ...

    refuses("/items/{id:int}", show, "parameter 'id' is annotated str but {id:int} gives int values")
    refuses("/scale/{x:float}", ratio, "{x:float} gives float values")
    # An int converter's values are acceptable as float.
    assert plan_of(lambda id: None, "/items/{id:int}") is None  # one unannotated parameter: classic

    def as_float(id: float) -> None: ...

    plan = plan_of(as_float, "/items/{id:int}")
    assert plan is not None and plan.params[0].source == "path"


def test_two_bodies_or_body_and_form_is_route_error() -> None:
    def two(a: Line, b: Line) -> None: ...

    def body_and_file(a: Line, f: UploadedFile) -> None: ...

    def body_and_form(form: FormData, items: Annotated[list[int], Body()]) -> None: ...

    refuses("/", two, "parameters a, b all read the JSON body")
    refuses("/", body_and_file, "either a JSON body or a form")
    refuses("/", body_and_form, "either a JSON body or a form")


def test_body_on_a_streamed_route_is_route_error() -> None:
    def body(line: Line) -> None: ...

    def upload(f: UploadedFile) -> None: ...

    for handler, name in [(body, "line"), (upload, "f")]:
        with pytest.raises(RouteError) as caught:
            App().post("/", stream=True)(handler)
        assert str(caught.value).startswith(f"{where(handler)}: parameter {name!r} reads the body")

    def typed_stream(request: Request, n: int = 1) -> None: ...

    App().post("/", stream=True)(typed_stream)  # the request and query parameters are fine


def test_unresolvable_annotation_is_route_error() -> None:
    def show(item: NoSuchType) -> None: ...  # type: ignore[name-defined]  # noqa: F821

    refuses("/", show, "cannot resolve the annotations of", "NoSuchType")


def test_marker_on_a_path_parameter_is_route_error() -> None:
    def show(id: Annotated[int, Query(ge=1)]) -> None: ...

    refuses("/items/{id:int}", show, "'id' is the path parameter {id}", "msgspec.Meta")


def test_unannotated_parameter_beside_typed_ones_is_route_error() -> None:
    def show(request, id: int) -> None: ...  # type: ignore[no-untyped-def]

    refuses("/items/{id:int}", show, "parameter 'request' has no annotation")

    # Unannotated path parameters get the router's value.
    def raw(request: Request, id) -> None: ...  # type: ignore[no-untyped-def]

    plan = plan_of(raw, "/items/{id:int}")
    assert plan is not None and [(p.source, p.convert) for p in plan.params] == [("request", None), ("path", None)]


def test_blueprint_route_refused_at_its_decorator() -> None:
    orgs = Blueprint("/orgs/{org:int}")

    def show(org: uuid.UUID) -> None: ...

    with pytest.raises(RouteError, match=r"parameter 'org' is annotated UUID but \{org:int\}") as caught:
        orgs.get("/")(show)
    assert str(caught.value).startswith(where(show))


def test_status_option_is_checked() -> None:
    with pytest.raises(RouteError, match="status must be an int from 200 to 599, got 99"):
        App().get("/", status=99)(lambda request: None)


def test_plan_sources_keys_and_keywords() -> None:
    def handler(
        request: Request,
        id: int,
        q: str,
        x_api_key: Annotated[str | None, Header()] = None,
        token: Annotated[str, Header("X-Token")] = "",
        session: Annotated[str, Cookie("sid")] = "",
        tags: list[str] = [],  # noqa: B006 - never mutated
        *,
        line: Line,
    ) -> None: ...

    plan = plan_of(handler, "/items/{id:int}")
    assert plan is not None
    assert [(p.name, p.source, p.key, p.required, p.multiple, p.keyword) for p in plan.params] == [
        ("request", "request", "", True, False, False),
        ("id", "path", "id", True, False, False),
        ("q", "query", "q", True, False, False),
        ("x_api_key", "header", "x-api-key", False, False, False),
        ("token", "header", "x-token", False, False, False),
        ("session", "cookie", "sid", False, False, False),
        ("tags", "query", "tags", False, True, False),
        ("line", "body", "body", True, False, True),
    ]
    assert (plan.positional, plan.keywords) == (7, ("line",))
    assert plan.result.status == 204 and not plan.result.encode


def test_result_plans() -> None:
    def encodes() -> Line: ...

    def plain(): ...  # type: ignore[no-untyped-def]

    def created() -> dict[str, int]: ...

    plans = [plan_of(encodes), plan_of(plain), plan_of(created, status=201)]
    assert [(p.result.encode, p.result.status, p.result.explicit_status) for p in plans if p is not None] == [
        (True, 200, False),
        (False, 200, False),
        (True, 201, True),
    ]


# -- registration: classic handlers are left alone -------------------------------------------


def classic_unannotated(request):  # type: ignore[no-untyped-def]
    return request


def classic_request(request: Request) -> Any:
    return request


def classic_object(request: object) -> Any:
    return request


def classic_any(request: Any) -> Any:
    return request


def classic_wrapper(*args: Any, **kwargs: Any) -> Any:
    return args[0]


@pytest.mark.parametrize(
    "handler",
    [classic_unannotated, classic_request, classic_object, classic_any, classic_wrapper],
    ids=lambda h: h.__name__,
)
def test_classic_handlers_are_not_planned(handler: Callable[..., Any]) -> None:
    assert is_legacy(handler)
    assert plan_of(handler, "/items/{id:int}") is None
    app = App()
    app.get("/items/{id:int}")(handler)
    assert app.binder_plans() == {}


def test_keyword_only_request_is_passed_by_name() -> None:
    app = App()

    @app.get("/kw")
    def by_name(*, request: Request) -> dict[str, str]:
        return {"path": request.path}

    @app.get("/kw-query")
    def with_query(n: int = 1, *, request: Request) -> dict[str, Any]:
        return {"path": request.path, "n": n}

    assert not is_legacy(by_name)
    with TestClient(app) as client:
        assert client.get("/kw").json() == {"path": "/kw"}
        assert client.get("/kw-query?n=2").json() == {"path": "/kw-query", "n": 2}


def test_classic_handler_with_status_gets_the_request() -> None:
    app = App()

    @app.post("/things", status=201)
    def create(request):  # type: ignore[no-untyped-def]
        return {"path": request.path}

    @app.post("/wrapped", status=201)
    def wrapped(*args: Any, **kwargs: Any) -> Any:  # a decorator's wrapper without functools.wraps
        return create(*args, **kwargs)

    with TestClient(app) as client:
        response = client.post("/things")
        assert (response.status_code, response.json()) == (201, {"path": "/things"})
        response = client.post("/wrapped")
        assert (response.status_code, response.json()) == (201, {"path": "/wrapped"})


def test_request_imported_only_under_type_checking() -> None:
    """``from __future__ import annotations`` + a Request named only for the type checker:
    the handler's annotation is the string "Request", which names no class at run time."""
    source = (
        "from __future__ import annotations\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from cello import Request\n"
        "    import cello\n"
        "def show(request: Request):\n"
        "    return {'path': request.path}\n"
        "def qualified(request: cello.Request):\n"
        "    return {'method': request.method}\n"
    )
    namespace: dict[str, Any] = {"__name__": "checked_only"}
    exec(compile(source, "checked_only.py", "exec"), namespace)  # noqa: S102 - our own source
    app = App()
    app.get("/show")(namespace["show"])
    app.get("/qualified")(namespace["qualified"])
    assert app.binder_plans() == {}
    with TestClient(app) as client:
        assert client.get("/show").json() == {"path": "/show"}
        assert client.get("/qualified").json() == {"method": "GET"}


def test_every_problem_through_test_client() -> None:

    def handler(a: int, b: Annotated[int, Query(le=5)], c: Annotated[str, Header()]) -> None: ...

    app = App()
    app.get("/")(handler)
    with TestClient(app) as client:
        invalid(
            client.get("/", params={"a": "x", "b": "9"}),
            (["query", "a"], "Expected `int`, got `str`"),
            (["query", "b"], "Expected `int` <= 5"),
            (["header", "c"], "Field required"),
        )


@dataclasses.dataclass
class Pair:
    left: int
    right: int


def test_dataclass_and_struct_results_through_test_client() -> None:
    app = App()

    @app.post("/swap", status=201)
    async def swap(pair: Pair) -> Pair:
        return Pair(pair.right, pair.left)

    with TestClient(app) as client:
        response = client.post("/swap", json={"left": 1, "right": 2})
        assert (response.status_code, response.json()) == (201, {"left": 2, "right": 1})
        invalid(client.post("/swap", json={"left": 1}), (["body", "right"], "Field required"))


class Invite(pydantic.BaseModel):
    email: str


def test_optional_pydantic_body() -> None:
    app = App()

    @app.post("/invite")
    def invite(invite: Invite | None = None) -> dict[str, Any]:
        return {"email": None if invite is None else invite.email}

    with TestClient(app) as client:
        assert client.post("/invite").json() == {"email": None}
        assert client.post("/invite", content=b"null", headers={"content-type": "application/json"}).json() == {
            "email": None
        }
        assert client.post("/invite", json={"email": "a@b"}).json() == {"email": "a@b"}
        invalid(client.post("/invite", json={}), (["body", "email"], "Field required"))
