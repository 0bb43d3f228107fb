"""The plan and its interpreter: precedence, backtracking, 405 codes, and a property test
against a brute-force reference matcher written independently of the plan."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from urllib.parse import unquote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.segments import SEGMENT_VALUES

from cello.errors import RouteError
from cello.routing import InterpretedRouter, Route, RouteTable, build_plan, parse_pattern
from cello.routing.diagnostics import format_tree, shadowed

Table = list[tuple[str, str]]


def make(routes: Table) -> tuple[RouteTable, InterpretedRouter]:
    table = RouteTable()
    for i, (method, pattern) in enumerate(routes):
        table.add(method, pattern, f"{method} {pattern}", f"app.py:{i + 1}")
    return table, InterpretedRouter(build_plan(table.routes()))


def hit(routes: Table, method: str, path: str) -> tuple[str, str, tuple[object, ...]] | int:
    """(method, pattern, params) of the route chosen, else the 404/405 code."""
    table, router = make(routes)
    code, params = router.dispatch(method, path)
    if code < 0:
        return code
    route = table.routes()[code]
    return route.method, route.pattern.raw, params


# -- precedence and backtracking ---------------------------------------------------------


def test_static_beats_param_but_param_takes_other_methods() -> None:
    routes = [("GET", "/users/me"), ("GET", "/users/{id}"), ("DELETE", "/users/{id}")]
    assert hit(routes, "GET", "/users/me") == ("GET", "/users/me", ())
    assert hit(routes, "DELETE", "/users/me") == ("DELETE", "/users/{id}", ("me",))
    assert hit(routes, "GET", "/users/42") == ("GET", "/users/{id}", ("42",))


def test_static_fast_path_miss_still_walks_the_tree() -> None:
    routes = [("GET", "/users/me"), ("DELETE", "/users/{id}")]
    assert hit(routes, "DELETE", "/users/me") == ("DELETE", "/users/{id}", ("me",))


def test_backtracking_out_of_a_typed_branch() -> None:
    routes = [("GET", "/a/{x:int}/b"), ("GET", "/a/{y}/c")]
    assert hit(routes, "GET", "/a/5/c") == ("GET", "/a/{y}/c", ("5",))
    assert hit(routes, "GET", "/a/5/b") == ("GET", "/a/{x:int}/b", (5,))
    assert hit(routes, "GET", "/a/x/b") == -1


def test_typed_precedence_int_float_uuid_str() -> None:
    u = "12345678-1234-1234-1234-1234567890ab"
    routes = [("GET", "/v/{a:int}"), ("GET", "/v/{b:float}"), ("GET", "/v/{c:uuid}"), ("GET", "/v/{d}")]
    assert hit(routes, "GET", "/v/5") == ("GET", "/v/{a:int}", (5,))
    assert hit(routes, "GET", "/v/5.5") == ("GET", "/v/{b:float}", (5.5,))
    assert hit(routes, "GET", f"/v/{u}") == ("GET", "/v/{c:uuid}", (uuid.UUID(u),))
    assert hit(routes, "GET", "/v/x") == ("GET", "/v/{d}", ("x",))
    assert hit(routes, "GET", "/v/" + "1" * 19) == ("GET", "/v/{b:float}", (float("1" * 19),))


def test_catch_all_is_the_last_resort() -> None:
    routes = [("GET", "/f/{*rest}"), ("GET", "/f/{name}"), ("GET", "/f/a/b")]
    assert hit(routes, "GET", "/f/a/b") == ("GET", "/f/a/b", ())
    assert hit(routes, "GET", "/f/x") == ("GET", "/f/{name}", ("x",))
    assert hit(routes, "GET", "/f/x/y") == ("GET", "/f/{*rest}", ("x/y",))
    assert hit(routes, "GET", "/f/a/c") == ("GET", "/f/{*rest}", ("a/c",))
    assert hit(routes, "GET", "/f/") == ("GET", "/f/{*rest}", ("",))
    assert hit(routes, "GET", "/f") == -1


def test_catch_all_matches_empty_rest_but_not_missing_rest() -> None:
    routes = [("GET", "/static/{*p}")]
    assert hit(routes, "GET", "/static/") == ("GET", "/static/{*p}", ("",))
    assert hit(routes, "GET", "/static//x/") == ("GET", "/static/{*p}", ("/x/",))
    assert hit(routes, "GET", "/static") == -1


def test_trailing_slash_is_strict() -> None:
    routes = [("GET", "/users/"), ("POST", "/users")]
    assert hit(routes, "GET", "/users/") == ("GET", "/users/", ())
    assert hit(routes, "POST", "/users") == ("POST", "/users", ())
    table, router = make(routes)
    code = router.dispatch("GET", "/users")[0]
    assert code <= -2 and router.allow(code) == "OPTIONS, POST"
    assert hit([("GET", "/u/{x}")], "GET", "/u/") == -1


def test_root_route() -> None:
    assert hit([("GET", "/")], "GET", "/") == ("GET", "/", ())
    assert hit([("GET", "/")], "GET", "") == -1
    assert hit([("GET", "/a")], "GET", "a") == -1


def test_percent_decoding_after_splitting() -> None:
    routes = [("GET", "/files/{name}"), ("GET", "/files/{dir}/{name}"), ("GET", "/caf%C3%A9")]
    assert hit(routes, "GET", "/files/a%2Fb") == ("GET", "/files/{name}", ("a/b",))
    assert hit(routes, "GET", "/files/a/b") == ("GET", "/files/{dir}/{name}", ("a", "b"))
    assert hit(routes, "GET", "/files/%E2%9C%93") == ("GET", "/files/{name}", ("✓",))
    assert hit(routes, "GET", "/files/%ZZ") == ("GET", "/files/{name}", ("%ZZ",))
    assert hit(routes, "GET", "/files/%FF") == ("GET", "/files/{name}", ("\ufffd",))
    assert hit(routes, "GET", "/caf%C3%A9") == ("GET", "/caf%C3%A9", ())
    assert hit(routes, "GET", "/café") == ("GET", "/caf%C3%A9", ())
    # Static segments compare against decoded segments too.
    assert hit([("GET", "/a/b")], "GET", "/%61/b") == ("GET", "/a/b", ())
    assert hit([("GET", "/a/b")], "GET", "/a%2Fb") == -1


def test_decoded_static_slash_is_one_segment() -> None:
    routes = [("GET", "/a%2Fb"), ("GET", "/a/b")]
    assert hit(routes, "GET", "/a%2Fb") == ("GET", "/a%2Fb", ())
    assert hit(routes, "GET", "/a/b") == ("GET", "/a/b", ())


def test_non_ascii_digits_and_long_numbers_are_not_ints() -> None:
    routes = [("GET", "/n/{x:int}"), ("GET", "/n/{s}")]
    assert hit(routes, "GET", "/n/١٢") == ("GET", "/n/{s}", ("١٢",))
    assert hit(routes, "GET", "/n/%D9%A1") == ("GET", "/n/{s}", ("١",))
    assert hit(routes, "GET", "/n/０") == ("GET", "/n/{s}", ("０",))
    assert hit(routes, "GET", "/n/" + "9" * 18) == ("GET", "/n/{x:int}", (10**18 - 1,))
    assert hit(routes, "GET", "/n/" + "9" * 19) == ("GET", "/n/{s}", ("9" * 19,))
    assert hit(routes, "GET", "/n/%35") == ("GET", "/n/{x:int}", (5,))


def test_empty_segments_never_match_params() -> None:
    routes = [("GET", "/a/{x}/b")]
    assert hit(routes, "GET", "/a//b") == -1


# -- methods, HEAD and 405 ---------------------------------------------------------------


def test_head_falls_back_to_get() -> None:
    routes = [("GET", "/a"), ("GET", "/b"), ("HEAD", "/b")]
    assert hit(routes, "HEAD", "/a") == ("GET", "/a", ())
    assert hit(routes, "HEAD", "/b") == ("HEAD", "/b", ())


def test_head_fallback_is_per_terminal_in_precedence_order() -> None:
    routes = [("GET", "/x/{id:int}"), ("HEAD", "/x/{id}")]
    assert hit(routes, "HEAD", "/x/5") == ("GET", "/x/{id:int}", (5,))
    assert hit(routes, "HEAD", "/x/y") == ("HEAD", "/x/{id}", ("y",))


def test_405_allow_is_the_union_of_matching_terminals() -> None:
    routes = [("GET", "/items/{id:int}"), ("PUT", "/items/{id}"), ("POST", "/items/new"), ("GET", "/other")]
    _, router = make(routes)
    code, params = router.dispatch("DELETE", "/items/5")
    assert code <= -2 and params == ()
    assert router.allow(code) == "GET, HEAD, OPTIONS, PUT"
    assert router.allowed_methods(code) == frozenset({"GET", "HEAD", "OPTIONS", "PUT"})
    code = router.dispatch("DELETE", "/items/new")[0]
    assert router.allow(code) == "OPTIONS, POST, PUT"
    assert router.allow(code) is router.allow(code)  # memoised
    assert router.dispatch("DELETE", "/nothing")[0] == -1


def test_405_code_encodes_terminal_indexes() -> None:
    routes = [("GET", "/a"), ("GET", "/b"), ("GET", "/{x}")]
    table, router = make(routes)
    plan = router.plan
    code = router.dispatch("POST", "/b")[0]
    assert sorted(t.shape for t in plan.terminals_of(code)) == ["/b", "/{str}"]
    mask = -1 - code
    assert mask == (1 << plan.route_terminal[1].index) | (1 << plan.route_terminal[2].index)


def test_websocket_routes() -> None:
    routes = [("WEBSOCKET", "/ws"), ("GET", "/both"), ("WEBSOCKET", "/both")]
    _, router = make(routes)
    code = router.dispatch("GET", "/ws")[0]
    assert code <= -2 and router.allows_websocket(code)
    assert router.allow(code) == "OPTIONS"
    assert router.dispatch("WEBSOCKET", "/ws")[0] >= 0
    code = router.dispatch("POST", "/both")[0]
    assert router.allow(code) == "GET, HEAD, OPTIONS" and router.allows_websocket(code)
    assert not router.allows_websocket(router.dispatch("POST", "/nothing")[0])


def test_options_route_is_dispatched_when_declared() -> None:
    routes = [("GET", "/a"), ("OPTIONS", "/a")]
    assert hit(routes, "OPTIONS", "/a") == ("OPTIONS", "/a", ())


# -- plan structure ----------------------------------------------------------------------


def test_terminal_numbering_is_deterministic() -> None:
    routes = [("GET", "/b/{x}"), ("GET", "/a"), ("POST", "/b/{y}"), ("GET", "/b/c"), ("GET", "/{*p}")]
    t1, r1 = make(routes)
    t2, r2 = make(list(reversed(routes)))
    shapes1 = [t.shape for t in r1.plan.terminals]
    assert shapes1 == [t.shape for t in r2.plan.terminals]
    assert shapes1 == ["/a", "/b/c", "/b/{str}", "/{*}"]
    assert set(r1.plan.static_paths) == {"/a", "/b/c"}


def test_build_plan_rejects_duplicates() -> None:
    table = RouteTable()
    a = table.add("GET", "/a/{x}", None, "a.py:1")
    with pytest.raises(RouteError, match="a.py:1"):
        build_plan([a, Route("GET", a.pattern, None, "b.py:2")])


def test_format_tree_names_routes() -> None:
    _, router = make([("GET", "/a/{x:int}"), ("GET", "/a/b")])
    tree = format_tree(router.plan)
    assert "'a'" in tree and "{int}" in tree and "GET -> #0 /a/b" in tree


def test_no_route_is_shadowed() -> None:
    routes = [
        ("GET", "/{*p}"),
        ("GET", "/{x}"),
        ("GET", "/{x:int}"),
        ("GET", "/7"),
        ("GET", "/70"),
        ("GET", "/~"),
        ("GET", "/{x:float}"),
        ("GET", "/0.5"),
        ("GET", "/{x}/{*p}"),
        ("GET", "/a/{x:uuid}"),
        ("GET", "/a/"),
    ]
    _, router = make(routes)
    assert shadowed(router.plan) == []


# -- property test against a brute-force reference ---------------------------------------

RANK = {"static": 0, "int": 1, "float": 2, "uuid": 3, "str": 4, "path": 5}
REF_INT = re.compile(r"[0-9]{1,18}")
REF_FLOAT = re.compile(r"[0-9]+(\.[0-9]+)?")
REF_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
REF_PARAM = re.compile(r"\{(\*)?([A-Za-z_][A-Za-z0-9_]*)(?::(\w+))?\}|\*([A-Za-z_][A-Za-z0-9_]*)")


def ref_segments(raw: str) -> list[tuple[str, str]]:
    """(kind, static text) per segment, parsed without the library's parser."""
    out = []
    for text in raw[1:].split("/"):
        m = REF_PARAM.fullmatch(text)
        if m is None:
            out.append(("static", unquote(text, errors="replace")))
        elif m.group(1) or m.group(4):
            out.append(("path", ""))
        else:
            out.append((m.group(3) or "str", ""))
    return out


def ref_value(kind: str, seg: str) -> object | None:
    if kind == "int":
        return int(seg) if REF_INT.fullmatch(seg) else None
    if kind == "float":
        return float(seg) if REF_FLOAT.fullmatch(seg) and len(seg) <= 64 else None
    if kind == "uuid":
        return uuid.UUID(seg) if REF_UUID.fullmatch(seg) else None
    return seg if seg else None


def ref_match(raw: str, segs: list[str]) -> tuple[tuple[int, ...], tuple[object, ...]] | None:
    ranks: list[int] = []
    params: list[object] = []
    pattern = ref_segments(raw)
    for i, (kind, text) in enumerate(pattern):
        if kind == "path":
            if i >= len(segs):
                return None
            ranks.append(RANK[kind])
            params.append("/".join(segs[i:]))
            return tuple(ranks), tuple(params)
        if i >= len(segs):
            return None
        if kind == "static":
            if segs[i] != text:
                return None
        else:
            value = ref_value(kind, segs[i])
            if value is None:
                return None
            params.append(value)
        ranks.append(RANK[kind])
    if len(pattern) != len(segs):
        return None
    return tuple(ranks), tuple(params)


def reference(
    routes: Sequence[Route], method: str, path: str
) -> tuple[int, tuple[object, ...], frozenset[str], frozenset[tuple[int, ...]]]:
    """(route id or -1, params, allowed methods, rank tuples of path-matching shapes)."""
    if not path.startswith("/"):
        return -1, (), frozenset(), frozenset()
    segs = [unquote(s, errors="replace") for s in path[1:].split("/")]
    by_ranks: dict[tuple[int, ...], dict[str, tuple[int, tuple[object, ...]]]] = {}
    for rid, route in enumerate(routes):
        m = ref_match(route.pattern.raw, segs)
        if m is not None:
            ranks, params = m
            # Equal rank tuples on the same path means the same shape.
            by_ranks.setdefault(ranks, {})[route.method] = (rid, params)
    for ranks in sorted(by_ranks):
        methods = by_ranks[ranks]
        chosen = methods.get(method)
        if chosen is None and method == "HEAD":
            chosen = methods.get("GET")
        if chosen is not None:
            return chosen[0], chosen[1], frozenset(), frozenset()
    allowed: set[str] = set()
    for methods in by_ranks.values():
        allowed.update(m for m in methods if m != "WEBSOCKET")
        if "GET" in methods:
            allowed.add("HEAD")
    if by_ranks:
        allowed.add("OPTIONS")
    return -1, (), frozenset(allowed), frozenset(by_ranks)


STATIC_WORDS = ["a", "b", "users", "5", "1.5", "x", "", "%C3%A9", "12345678-1234-1234-1234-1234567890ab"]
PARAMS = ["{NAME}", "{NAME:int}", "{NAME:float}", "{NAME:uuid}", "{NAME:str}"]
CATCHALLS = ["{*NAME}", "{NAME:path}", "*NAME"]
METHODS = ["GET", "POST", "DELETE", "HEAD", "WEBSOCKET"]


@st.composite
def patterns(draw: st.DrawFn) -> str:
    n = draw(st.integers(1, 4))
    texts = []
    for i in range(n):
        if draw(st.booleans()):
            word = draw(st.sampled_from(STATIC_WORDS))
            texts.append(word if word or i == n - 1 else "a")
        else:
            texts.append(draw(st.sampled_from(PARAMS)).replace("NAME", f"p{i}"))
    if draw(st.integers(0, 4)) == 0:
        if texts[-1] == "":
            texts[-1] = "b"
        texts.append(draw(st.sampled_from(CATCHALLS)).replace("NAME", "rest"))
    return "/" + "/".join(texts)


@st.composite
def tables(draw: st.DrawFn) -> list[Route]:
    table = RouteTable()
    seen: set[tuple[str, str]] = set()
    for pattern in draw(st.lists(patterns(), min_size=1, max_size=12)):
        for method in draw(st.lists(st.sampled_from(METHODS), min_size=1, max_size=3, unique=True)):
            if (method, parse_pattern(pattern).shape) not in seen:
                seen.add((method, parse_pattern(pattern).shape))
                table.add(method, pattern, None, "gen.py:1")
    return table.routes()


# Values each param kind accepts (index = kind), so that generated paths often hit.
FITTING = [["a"], ["5", "007"], ["1.5", "5"], ["12345678-1234-1234-1234-1234567890ab"], ["x", "5"], ["x", ""]]


@st.composite
def paths_for(draw: st.DrawFn, routes: list[Route]) -> str:
    route = draw(st.sampled_from(routes))
    segs = []
    for seg in route.pattern.segments:
        if seg.kind == 0 and draw(st.integers(0, 5)) > 0:
            segs.append(seg.value)
        elif seg.kind == 5:
            segs.extend(draw(st.lists(st.sampled_from(SEGMENT_VALUES), max_size=3)))
        elif draw(st.booleans()):
            segs.append(draw(st.sampled_from(FITTING[seg.kind])))
        else:
            segs.append(draw(st.sampled_from(SEGMENT_VALUES)))
    mutation = draw(st.integers(0, 12))
    if mutation == 1:
        segs.append(draw(st.sampled_from(SEGMENT_VALUES)))
    elif mutation == 2 and segs:
        segs.pop()
    elif mutation == 3:
        segs.append("")
    elif mutation == 4 and segs:
        segs.insert(draw(st.integers(0, len(segs) - 1)), "")
    elif mutation == 5 and segs:
        i = draw(st.integers(0, len(segs) - 1))
        segs[i] = "".join(f"%{b:02X}" for b in segs[i].encode())
    elif mutation == 6 and segs:
        i = draw(st.integers(0, len(segs) - 1))
        segs[i] = segs[i].translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    path = "/" + "/".join(segs)
    if draw(st.integers(0, 30)) == 0:
        path = path[1:]
    return path


@st.composite
def cases(draw: st.DrawFn) -> tuple[list[Route], list[tuple[str, str]]]:
    routes = draw(tables())
    methods = st.sampled_from(METHODS + ["PUT"]) | st.sampled_from([r.method for r in routes])
    probes = draw(st.lists(st.tuples(methods, paths_for(routes)), min_size=1, max_size=20))
    return routes, probes


def check_against_reference(routes: list[Route], router: InterpretedRouter, method: str, path: str) -> None:
    code, params = router.dispatch(method, path)
    want_id, want_params, want_allowed, want_shapes = reference(routes, method, path)
    where = f"{method} {path!r} on {[(r.method, r.pattern.raw) for r in routes]}"
    if want_id >= 0:
        assert code == want_id, where
        assert params == want_params, where
        assert [type(p) for p in params] == [type(p) for p in want_params], where
    elif not want_shapes:
        assert (code, params) == (-1, ()), where
    else:
        assert code <= -2 and params == (), where
        assert router.allowed_methods(code) == want_allowed, where
        assert len(router.plan.terminals_of(code)) == len(want_shapes), where


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_interpreter_matches_reference(case: tuple[list[Route], list[tuple[str, str]]]) -> None:
    routes, probes = case
    router = InterpretedRouter(build_plan(routes))
    for method, path in probes:
        check_against_reference(routes, router, method, path)
    assert shadowed(router.plan) == []
