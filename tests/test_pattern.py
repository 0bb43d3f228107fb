"""Pattern parsing, converters and the route table's registration checks."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cello.errors import RouteError
from cello.routing.converters import convert, is_float, is_int, is_str, is_uuid
from cello.routing.pattern import CATCHALL, FLOAT, INT, STATIC, STR, UUID, Segment, parse_pattern
from cello.routing.table import RouteTable, fingerprint_of

# -- valid patterns ---------------------------------------------------------------------


def test_root_is_one_empty_static_segment() -> None:
    p = parse_pattern("/")
    assert p.segments == (Segment(STATIC, ""),)
    assert p.is_static and p.param_names == () and p.shape == "/"


def test_trailing_slash_is_a_trailing_empty_segment() -> None:
    assert parse_pattern("/users/").segments == (Segment(STATIC, "users"), Segment(STATIC, ""))
    assert parse_pattern("/users").segments == (Segment(STATIC, "users"),)
    assert parse_pattern("/users/").shape != parse_pattern("/users").shape


@pytest.mark.parametrize(
    ("pattern", "kind", "shape"),
    [
        ("/u/{id}", STR, "/u/{str}"),
        ("/u/{id:str}", STR, "/u/{str}"),
        ("/u/{id:int}", INT, "/u/{int}"),
        ("/u/{id:float}", FLOAT, "/u/{float}"),
        ("/u/{id:uuid}", UUID, "/u/{uuid}"),
        ("/u/{id:path}", CATCHALL, "/u/{*}"),
        ("/u/{*id}", CATCHALL, "/u/{*}"),
        ("/u/*id", CATCHALL, "/u/{*}"),
    ],
)
def test_param_forms(pattern: str, kind: int, shape: str) -> None:
    p = parse_pattern(pattern)
    assert p.segments[1] == Segment(kind, "id")
    assert p.param_names == ("id",)
    assert p.shape == shape
    assert not p.is_static
    assert p.raw == pattern


def test_param_names_in_order_and_shape_erases_them() -> None:
    a = parse_pattern("/a/{x:int}/b/{y}/{*rest}")
    assert a.param_names == ("x", "y", "rest")
    assert a.shape == "/a/{int}/b/{str}/{*}"
    assert parse_pattern("/a/{p:int}/b/{q:str}/{r:path}").shape == a.shape
    assert a.has_catchall


def test_static_text_is_percent_decoded_and_shape_escapes_it() -> None:
    assert parse_pattern("/caf%C3%A9").segments[0].value == "café"
    assert parse_pattern("/caf%C3%A9").shape == parse_pattern("/café").shape
    # A decoded "{" or "/" must not collide with a param token or a separator.
    assert parse_pattern("/%7Bint%7D").shape != parse_pattern("/{x:int}").shape
    assert parse_pattern("/a%2Fb").shape != parse_pattern("/a/b").shape
    assert parse_pattern("/a%2Fb").segments == (Segment(STATIC, "a/b"),)


def test_static_text_may_contain_star_and_colon() -> None:
    assert parse_pattern("/a*b/c:d").segments == (Segment(STATIC, "a*b"), Segment(STATIC, "c:d"))


# -- malformed patterns ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("users", "must start with '/'"),
        ("", "must start with '/'"),
        ("/a//b", "empty segment"),
        ("//", "empty segment"),
        ("/a/{}", "empty parameter"),
        ("/a/{x", "unbalanced braces"),
        ("/a/x}", "unbalanced braces"),
        ("/a/}x{", "unbalanced braces"),
        ("/a/{x}}", "unbalanced braces"),
        ("/a/b{x}", "whole segment"),
        ("/a/{x}b", "whole segment"),
        ("/a/{x}{y}", "whole segment"),
        ("/a/{1x}", "bad parameter name"),
        ("/a/{x y}", "bad parameter name"),
        ("/a/{ x }", "bad parameter name"),
        ("/a/{x-y}", "bad parameter name"),
        ("/a/{*}", "bad parameter name"),
        ("/a/*", "bad catch-all name"),
        ("/a/*1", "bad catch-all name"),
        ("/a/{x:bogus}", "unknown converter 'bogus'"),
        ("/a/{x:}", "unknown converter ''"),
        ("/a/{x}/{x:int}", "duplicate parameter name 'x'"),
        ("/a/{*p}/b", "must be the last segment"),
        ("/a/{p:path}/b", "must be the last segment"),
        ("/a/*p/b", "must be the last segment"),
        ("/a/{*p}/", "must be the last segment"),
    ],
)
def test_malformed_patterns(pattern: str, message: str) -> None:
    with pytest.raises(RouteError) as info:
        parse_pattern(pattern, "app.py:7")
    text = str(info.value)
    assert message in text
    assert repr(pattern) in text
    assert "app.py:7" in text


@pytest.mark.parametrize(
    ("pattern", "hint"),
    [
        ("users", "did you mean '/users'?"),
        ("", "did you mean '/'?"),
        ("users/{id}", "did you mean '/users/{id}'?"),
    ],
)
def test_missing_leading_slash_suggests_one(pattern: str, hint: str) -> None:
    with pytest.raises(RouteError, match="must start with '/'") as info:
        parse_pattern(pattern)
    assert hint in str(info.value)


@pytest.mark.parametrize(
    ("pattern", "framework", "spelling", "rewritten"),
    [
        ("/x/<id>", "Flask", "{id}", "/x/{id}"),
        ("/x/<int:id>", "Flask", "{id:int}", "/x/{id:int}"),
        ("/f/<path:p>", "Flask", "{p:path}", "/f/{p:path}"),
        ("/x/<float:v>/<uuid:u>", "Flask", "{v:float}", "/x/{v:float}/{u:uuid}"),
        ("/x/<string:s>", "Flask", "{s}", "/x/{s}"),
        ("/x/<any(a, b):k>", "Flask", "{k}", "/x/{k}"),
        ("/x/<id:int>", "Sanic", "{id:int}", "/x/{id:int}"),
        ("/x/<slug:slug>", "Sanic", "{slug}", "/x/{slug}"),
        ("/x/<name:str>/more", "Sanic", "{name}", "/x/{name}/more"),
        ("/x/:id", "Express", "{id}", "/x/{id}"),
        ("/:org/repos/:repo", "Express", "{org}", "/{org}/repos/{repo}"),
        ("/x/:_id/<int:n>", "Express", "{_id}", "/x/{_id}/{n:int}"),
    ],
)
def test_other_frameworks_params_get_the_cello_spelling(
    pattern: str, framework: str, spelling: str, rewritten: str
) -> None:
    with pytest.raises(RouteError) as info:
        parse_pattern(pattern, "app.py:7")
    text = str(info.value)
    assert f"{framework} syntax" in text
    assert f"did you mean {spelling!r}, as in {rewritten!r}?" in text
    assert repr(pattern) in text and "app.py:7" in text
    # The suggestion is itself a valid pattern.
    parse_pattern(rewritten)


@pytest.mark.parametrize(("pattern", "spelling"), [("/page-<int:n>.html", "{n:int}"), ("/u/:id.json", "{id}")])
def test_a_foreign_param_inside_a_segment_is_refused_too(pattern: str, spelling: str) -> None:
    with pytest.raises(RouteError, match="a parameter must be a whole segment") as info:
        parse_pattern(pattern)
    assert f"did you mean {spelling!r}?" in str(info.value)


@pytest.mark.parametrize(
    ("pattern", "static"),
    [
        ("/a:b", "a:b"),
        ("/v1/files:batchGet", "files:batchGet"),  # Google API style custom method
        ("/x/:", ":"),
        ("/x/:1", ":1"),
        ("/x/::", "::"),
        ("/x/a::b", "a::b"),
        ("/x/<>", "<>"),
        ("/x/<1>", "<1>"),
        ("/x/a<b", "a<b"),
        ("/x/%3Aid", ":id"),  # percent-encoded: literal text on purpose
        ("/x/%3Cint:id%3E", "<int:id>"),
    ],
)
def test_colons_and_angle_brackets_that_are_not_params_stay_static(pattern: str, static: str) -> None:
    assert parse_pattern(pattern).segments[-1] == Segment(STATIC, static)


@given(
    st.from_regex(r"[A-Za-z0-9._~-]+", fullmatch=True),
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]*", fullmatch=True),
)
def test_a_colon_after_a_segments_first_character_is_static(resource: str, verb: str) -> None:
    text = f"{resource}:{verb}"
    assert parse_pattern(f"/v1/{text}").segments[-1] == Segment(STATIC, text)


def test_unknown_converter_lists_known_ones() -> None:
    with pytest.raises(RouteError, match="known: float, int, path, str, uuid"):
        parse_pattern("/{x:date}")


def test_route_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse_pattern("/{")


# -- converters -------------------------------------------------------------------------


def cases(accepted: list[str], refused: list[str]) -> list[tuple[str, bool]]:
    """(text, whether the converter accepts it) for ``parametrize``."""
    return [(text, True) for text in accepted] + [(text, False) for text in refused]


# Refused: fullwidth zero, Arabic-Indic one, superscript two (str.isdigit() accepts them all).
INT_CASES = cases(["0", "007", "9" * 18], ["9" * 19, "", "-1", "+1", "1.0", "1_000", " 1", "０", "١", "²"])
FLOAT_CASES = cases(
    ["0", "1.5", "00.50", "1" * 64], ["1.", ".5", "-1.5", "1e5", "inf", "nan", "1.2.3", "١.٥", "", "1" * 65]
)
A_UUID = "12345678-1234-1234-1234-1234567890ab"
UUID_CASES = cases(
    [A_UUID, A_UUID.upper()],
    [
        "12345678123412341234123456789012",
        A_UUID[:-1],
        A_UUID + "c",
        "1234567g" + A_UUID[8:],
        "12345678-1234-1234-1234-12345-7890ab",
        "-" * 36,
        "{" + A_UUID[1:] + "}",
        "１" + A_UUID[1:-1],
    ],
)


@pytest.mark.parametrize(("text", "ok"), INT_CASES)
def test_is_int(text: str, ok: bool) -> None:
    assert is_int(text) is ok


@pytest.mark.parametrize(("text", "ok"), FLOAT_CASES)
def test_is_float(text: str, ok: bool) -> None:
    assert is_float(text) is ok


@pytest.mark.parametrize(("text", "ok"), UUID_CASES)
def test_is_uuid(text: str, ok: bool) -> None:
    assert is_uuid(text) is ok


def test_is_str_requires_a_non_empty_segment() -> None:
    assert is_str("x") and not is_str("")


def test_convert() -> None:
    segs = ["12", "1.5", "12345678-1234-1234-1234-1234567890AB", "x", "", "y"]
    assert convert(INT, segs, 0) == 12
    assert convert(FLOAT, segs, 1) == 1.5
    assert convert(UUID, segs, 2) == uuid.UUID("12345678-1234-1234-1234-1234567890ab")
    assert convert(STR, segs, 3) == "x"
    assert convert(CATCHALL, segs, 3) == "x//y"
    assert convert(CATCHALL, segs, 4) == "/y"


# -- route table ------------------------------------------------------------------------


def test_duplicate_route_names_both_sources() -> None:
    table = RouteTable()
    table.add("GET", "/users/{id}", "a", "app.py:10")
    with pytest.raises(RouteError) as info:
        table.add("GET", "/users/{name}", "b", "views.py:20")
    text = str(info.value)
    assert "/users/{name}" in text and "/users/{id}" in text
    assert "app.py:10" in text and "views.py:20" in text
    # Same shape, another method: fine. Same path, another converter: fine.
    table.add("DELETE", "/users/{name}", "c", "views.py:30")
    table.add("GET", "/users/{id:int}", "d", "views.py:40")
    assert len(table) == 3


def test_method_is_upper_cased_and_validated() -> None:
    table = RouteTable()
    assert table.add("get", "/", None, "a.py:1").method == "GET"
    with pytest.raises(RouteError, match="invalid method"):
        table.add("GE T", "/", None, "a.py:2")
    with pytest.raises(RouteError, match="invalid method"):
        table.add("", "/", None, "a.py:3")


def test_malformed_pattern_in_add_names_source() -> None:
    with pytest.raises(RouteError, match="a.py:3"):
        RouteTable().add("GET", "/{x", None, "a.py:3")


def test_canonical_order_ignores_declaration_order() -> None:
    decl = [("POST", "/b"), ("GET", "/a/{x}"), ("GET", "/b"), ("DELETE", "/a/{x}"), ("GET", "/")]
    one, two = RouteTable(), RouteTable()
    for method, pattern in decl:
        one.add(method, pattern, None, "x.py:1")
    for method, pattern in reversed(decl):
        two.add(method, pattern, None, "y.py:1")
    order = [(r.method, r.pattern.raw) for r in one.routes()]
    assert order == [("GET", "/"), ("DELETE", "/a/{x}"), ("GET", "/a/{x}"), ("GET", "/b"), ("POST", "/b")]
    assert order == [(r.method, r.pattern.raw) for r in two.routes()]
    assert one.fingerprint("0.3.0") == two.fingerprint("0.3.0")


def test_fingerprint_depends_on_routes_and_extra() -> None:
    table = RouteTable()
    table.add("GET", "/a", None, "x.py:1")
    base = table.fingerprint("0.3.0")
    assert len(base) == 64 and int(base, 16) >= 0
    assert table.fingerprint("0.3.1") != base
    assert base == fingerprint_of([("GET", "/a")], "0.3.0")
    table.add("POST", "/a", None, "x.py:2")
    assert table.fingerprint("0.3.0") != base


def test_add_accepts_a_parsed_pattern() -> None:
    table = RouteTable()
    route = table.add("GET", parse_pattern("/x/{y:int}"), "ep", "x.py:1", name="x")
    assert route.pattern.param_names == ("y",) and route.endpoint == "ep" and route.name == "x"
