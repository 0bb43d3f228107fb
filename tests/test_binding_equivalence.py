"""The binders `cello build` generates agree with the interpreted binder.

Hypothesis makes random typed signatures (every parameter source, required or not, converted
or not, with constraints) and random requests for them (valid values, bad text, missing
values, malformed or mistyped bodies); the generated binder (rendered by codegen, executed
as Python source here; the compiled variants of the network tests run it through mypyc)
and ``cello.binding.binder.bind`` must give the same arguments, or fail with the same
status and the same 422 problems.
"""

from __future__ import annotations

import enum
import inspect
import json
import uuid
from typing import Annotated, Any, Literal

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cello import Cookie, Header, Query, Request
from cello.binding.binder import bind
from cello.binding.plan import BinderPlan, plan_handler
from cello.codegen.generate import generate_source
from cello.errors import HTTPException
from cello.routing import RouteTable, parse_pattern


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Item(msgspec.Struct):
    name: Annotated[str, msgspec.Meta(min_length=1)]
    quantity: Annotated[int, msgspec.Meta(ge=1)] = 1


class Order(msgspec.Struct):
    id: int
    items: list[Item]


# (annotation, texts that convert, texts that do not): the query/header/cookie types drawn from.
SCALARS: list[tuple[Any, list[str], list[str]]] = [
    (str, ["", "abc", "ü"], []),
    (int, ["0", "7", "-3"], ["x", "1.5", ""]),
    (Annotated[int, Query(ge=1, le=100)], ["1", "100", "42"], ["0", "101", "x"]),
    (float, ["1.5", "2", "-0.25"], ["abc", ""]),
    (bool, ["true", "false", "1", "0"], ["maybe"]),
    (Literal["a", "b"], ["a", "b"], ["c"]),
    (Colour, ["red", "blue"], ["green"]),
    (uuid.UUID, [str(uuid.UUID(int=5))], ["not-a-uuid"]),
    (Annotated[str, Query(min_length=2, max_length=4)], ["ab", "abcd"], ["a", "abcde"]),
]
SOURCES = ("query", "header", "cookie")


@st.composite
def parameters(draw: st.DrawFn) -> tuple[list[inspect.Parameter], str, list[tuple[str, str, Any, list[str], bool]]]:
    """A signature's parameters, its route pattern, and per bindable parameter
    (name, source, key, good values, multiple) for drawing requests."""
    params: list[inspect.Parameter] = []
    facts: list[tuple[str, str, Any, list[str], bool]] = []
    segments = ["t"]
    count = draw(st.integers(0, 6))
    has_body = False
    for index in range(count):
        name = f"p{index}"
        kind = draw(st.sampled_from(["path-str", "path-int", "scalar", "list", "body", "request"]))
        default: Any = inspect.Parameter.empty
        if kind == "request":
            params.append(inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request))
            continue
        if kind == "path-str":
            converted = draw(st.booleans())
            segments.append(f"{{{name}}}")
            annotation: Any = int if converted else str
            params.append(inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=annotation))
            facts.append((name, "path", name, ["5", "x"] if converted else ["abc"], False))
            continue
        if kind == "path-int":
            segments.append(f"{{{name}:int}}")
            constrained = draw(st.booleans())
            annotation = Annotated[int, msgspec.Meta(ge=3)] if constrained else int
            params.append(inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=annotation))
            facts.append((name, "path-int", name, [], False))
            continue
        if kind == "body":
            if has_body:
                continue
            has_body = True
            optional = draw(st.booleans())
            annotation = Order | None if optional else Order
            default = None if optional else inspect.Parameter.empty
            params.append(
                inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)
            )
            facts.append((name, "body", "body", [], False))
            continue
        scalar, good, bad = draw(st.sampled_from(SCALARS))
        source = draw(st.sampled_from(SOURCES))
        multiple = kind == "list" and source != "cookie"
        annotation = list[scalar] if multiple else scalar  # type: ignore[valid-type]
        key = name
        if source == "header":
            annotation = Annotated[annotation, Header()]
            key = name.replace("_", "-")
        elif source == "cookie":
            annotation = Annotated[annotation, Cookie()]
        if draw(st.booleans()):
            default = [] if multiple else None
            annotation = annotation if multiple else annotation | None
        keyword = draw(st.booleans())
        kind_of = inspect.Parameter.KEYWORD_ONLY if keyword else inspect.Parameter.POSITIONAL_OR_KEYWORD
        params.append(inspect.Parameter(name, kind_of, annotation=annotation, default=default))
        facts.append((name, source, key, good + bad, multiple))
    # As Python requires: keyword-only parameters last, positional ones with defaults after the others.
    params.sort(key=lambda p: (p.kind == inspect.Parameter.KEYWORD_ONLY, p.default is not inspect.Parameter.empty))
    return params, "/" + "/".join(segments), facts


def _handler(params: list[inspect.Parameter]) -> Any:
    def handler(*args: Any, **kwargs: Any) -> Any:
        return args, kwargs

    handler.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    return handler


def _generated(pattern: str, plan: BinderPlan) -> Any:
    table = RouteTable()
    table.add("GET", pattern, None, "test")
    namespace: dict[str, Any] = {}
    exec(compile(generate_source(table.routes(), "0" * 64, {0: plan}), "<generated>", "exec"), namespace)
    return namespace["BINDERS"][0]


BODIES = [
    None,
    b"",
    b"{",
    b'{"id": 1, "items": []}',
    b'{"id": 1, "items": [{"name": "a", "quantity": 2}, {"name": "", "quantity": 0}]}',
    b'{"id": "x", "items": [{"name": "b"}]}',
    b"[1, 2]",
]


@st.composite
def requests(draw: st.DrawFn, pattern: str, facts: list[tuple[str, str, Any, list[str], bool]]) -> Request:
    params: dict[str, Any] = {}
    query: list[tuple[str, str]] = []
    headers: list[tuple[str, str]] = []
    cookies: list[str] = []
    body: bytes | None = None
    for name, source, key, values, multiple in facts:
        if source == "path":
            params[name] = draw(st.sampled_from(values + ["abc", "12"]))
            continue
        if source == "path-int":
            params[name] = draw(st.integers(0, 10))
            continue
        if source == "body":
            body = draw(st.sampled_from(BODIES))
            if body is not None:
                content_type = draw(st.sampled_from(["application/json", "text/plain", None]))
                if content_type is not None:
                    headers.append(("content-type", content_type))
            continue
        chosen = draw(st.lists(st.sampled_from(values), max_size=3 if multiple else 1)) if values else []
        for value in chosen:
            if source == "query":
                query.append((key, value))
            elif source == "header":
                headers.append((key, value))
            elif all(ch not in value for ch in ";= ") and value.isascii():
                cookies.append(f"{key}={value}")
    if cookies:
        headers.append(("cookie", "; ".join(cookies)))
    return Request("GET", pattern, params=params, query=query, headers=headers, body=body)


def _outcome(binder: Any, request: Request, plan: BinderPlan) -> tuple[str, Any]:
    try:
        return "ok", binder(request, plan)
    except HTTPException as exc:
        return "error", (exc.status, exc.detail, json.dumps(exc.details, default=str))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), signature=parameters())
def test_generated_binders_agree_with_the_interpreted_one(data: st.DataObject, signature: Any) -> None:
    params, pattern, facts = signature
    plan = plan_handler(_handler(params), parse_pattern(pattern), "test:1")
    if plan is None:  # one Request parameter: a classic handler, nothing to bind
        return
    generated = _generated(pattern, plan)
    for _ in range(5):
        request = data.draw(requests(pattern, facts))
        assert _outcome(generated, request, plan) == _outcome(bind, request, plan)


def test_the_generated_binder_reports_every_problem_as_the_interpreted_one() -> None:
    """A fixed case the random search must not be needed for: three problems in one request."""

    def handler(
        a: Annotated[int, Query(ge=1)], b: int, token: Annotated[str, Header("x-token")], body: Order
    ) -> None: ...

    plan = plan_handler(handler, parse_pattern("/t"), "test:1")
    assert plan is not None
    request = Request("GET", "/t", query="a=0&b=x", body=b'{"id": 1, "items": [{"name": ""}]}')
    generated = _outcome(_generated("/t", plan), request, plan)
    assert generated == _outcome(bind, request, plan)
    status, message, details = generated[1]
    assert (status, message) == (422, "Validation failed")
    assert json.loads(details) == [
        {"loc": ["query", "a"], "msg": "Expected `int` >= 1"},
        {"loc": ["query", "b"], "msg": "Expected `int`, got `str`"},
        {"loc": ["header", "x-token"], "msg": "Field required"},
        {"loc": ["body", "items", 0, "name"], "msg": "Expected `str` of length >= 1"},
    ]


@pytest.mark.parametrize("body", [b"{", b"x"])
def test_a_malformed_body_is_a_400_from_both(body: bytes) -> None:
    def handler(order: Order) -> None: ...

    plan = plan_handler(handler, parse_pattern("/t"), "test:1")
    assert plan is not None
    request = Request("POST", "/t", headers={"content-type": "application/json"}, body=body)
    outcome = _outcome(_generated("/t", plan), request, plan)
    assert outcome == _outcome(bind, request, plan)
    assert outcome[0] == "error" and outcome[1][0] == 400
