"""Conversions of typed parameters: the int shortcut answers exactly as msgspec would."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cello import App, Query, RouteError
from cello.binding.convert import Invalid, text_converter, value_converter


def _msgspec(raw: Any, type_: Any, strict: bool) -> tuple[str, Any]:
    try:
        return "ok", msgspec.convert(raw, type_, strict=strict)
    except msgspec.ValidationError as exc:
        return "invalid", str(exc)


def _ours(converter: Any, raw: Any) -> tuple[str, Any]:
    try:
        return "ok", converter(raw)
    except Invalid as exc:
        return "invalid", exc.problems[0][1]


# msgspec takes one lower and one upper bound.
BOUNDS = st.tuples(
    st.sampled_from([None, "ge", "gt"]),
    st.integers(-50, 50),
    st.sampled_from([None, "le", "lt"]),
    st.integers(-50, 50),
).map(lambda t: {key: value for key, value in ((t[0], t[1]), (t[2], t[3])) if key is not None})
TEXT = st.one_of(st.from_regex(r"[+-]?[0-9]{1,20}", fullmatch=True), st.text(max_size=6), st.just("٣"))


@given(bounds=BOUNDS, raw=TEXT)
def test_int_text_converts_as_msgspec_does(bounds: dict[str, Any], raw: str) -> None:
    type_ = Annotated[int, msgspec.Meta(**bounds)] if bounds else int
    expected = _msgspec(raw, type_, strict=False)
    assert _ours(text_converter(type_, False), raw) == expected
    assert type(_ours(text_converter(type_, False), raw)[1]) is type(expected[1])


@given(bounds=BOUNDS, value=st.integers(-100, 100) | st.floats(-100, 100) | st.booleans())
def test_router_values_are_checked_as_msgspec_does(bounds: dict[str, Any], value: Any) -> None:
    type_ = Annotated[int, msgspec.Meta(**bounds)] if bounds else int
    assert _ours(value_converter(type_), value) == _msgspec(value, type_, strict=True)


@pytest.mark.parametrize(
    ("message", "loc"),
    [
        ("Expected `int` >= 1 - at `$.items[0].qty`", ("items", 0, "qty")),
        ("Expected `int`, got `str` - at `$[2]`", (2,)),
        ("Object missing required field `name` - at `$.customer`", ("customer", "name")),
        ("Object missing required field `name`", ("name",)),
        ("Expected `str`", ()),
    ],
)
def test_msgspec_paths_become_locs(message: str, loc: tuple[Any, ...]) -> None:
    problem = Invalid.from_msgspec(msgspec.ValidationError(message)).problems[0]
    assert problem[0] == loc and " - at " not in problem[1]


def test_a_constraint_that_does_not_fit_the_type_is_refused_at_registration() -> None:
    app = App()

    def handler(q: Annotated[str, Query(ge=1)]) -> None: ...

    with pytest.raises(RouteError, match=r"test_binding_convert\.py:\d+: .*Can only set `ge` on a numeric type"):
        app.get("/x")(handler)
