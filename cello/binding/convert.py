"""Conversions a typed handler's values go through: text (query, header, cookie, path) to the
declared type, the JSON body to its model, and results to JSON. msgspec does the work
(pydantic models go through pydantic); this module turns their failures into ``Invalid``
problems with a ``loc`` and a ``msg`` each.
"""

from __future__ import annotations

import math
import re
import sys
import typing
from collections.abc import Callable
from typing import Annotated, Any, Final, Optional

import msgspec

from cello.errors import HTTPException
from cello.request import Request

Converter = Callable[[Any], Any]

# msgspec names where a problem is: "Expected `int` >= 1 - at `$.items[0].qty`".
_AT: Final = re.compile(r"^(.*) - at `\$(.*)`$", re.DOTALL)
_STEP: Final = re.compile(r"\.([^.\[]+)|\[(\d+)\]|\[([^\]]*)\]")
# msgspec names a missing field in its message, not in its path; a 422 names it in the loc.
_MISSING: Final = re.compile(r"^Object missing required field `(.*)`$", re.DOTALL)


class Invalid(ValueError):
    """A value that failed validation: ``problems`` is a list of (loc within the value, msg)."""

    def __init__(self, problems: list[tuple[tuple[Any, ...], str]]) -> None:
        super().__init__("; ".join(msg for _, msg in problems))
        self.problems = problems

    @classmethod
    def from_msgspec(cls, exc: msgspec.ValidationError) -> Invalid:
        message = str(exc)
        loc: list[Any] = []
        match = _AT.match(message)
        if match is not None:
            message = match.group(1)
            for step in _STEP.finditer(match.group(2)):
                key, index, other = step.groups()
                loc.append(key if key is not None else int(index) if index is not None else other)
        missing = _MISSING.match(message)
        if missing is not None:
            loc.append(missing.group(1))
            message = "Field required"
        return cls([(tuple(loc), message)])


def text_converter(type_: Any, multiple: bool) -> Converter | None:
    """Text from the query, a header, a cookie or a path segment to ``type_`` (lax: "5" is an
    int, "true" a bool), or None when the text is the value (``str`` with no constraints).

    ``multiple``: ``type_`` is the declared sequence (``list[int]``) and the raw value the
    list of every text given.

    A text is never null: ``int | None`` is None when the parameter is absent (the binder's
    default), and ``?limit=null`` is a 422 as ``?limit=abc`` is, not a None that a ``str | None``
    parameter would read as the text "null". (msgspec's lax mode reads "null" as None for an
    Optional target, hence the declared type alone here.)"""
    if type_ is str:
        return None
    return _converter(type_, strict=False, bounds=None if multiple else _int_bounds(type_), from_text=True)


def value_converter(type_: Any) -> Converter:
    """A value the router converted already, checked against ``type_``'s constraints."""
    return _converter(type_, strict=True, bounds=_int_bounds(type_), from_text=False)


def _converter(target: Any, strict: bool, bounds: tuple[int, int] | None, from_text: bool) -> Converter:
    """msgspec's conversion to ``target``; for an int within ``bounds``, a shortcut first.

    msgspec.convert builds its type description on every call (a microsecond or more); the
    shortcut answers the common case, plain decimal text (or an int) within the bounds, without
    it, and leaves every other input, and so every error message, to msgspec."""
    # A type msgspec cannot convert to (a constraint that does not fit it, say) raises
    # TypeError here, at registration, rather than on the first request.
    msgspec.inspect.type_info(target)
    convert = msgspec.convert

    def run(raw: Any) -> Any:
        try:
            return convert(raw, target, strict=strict)
        except msgspec.ValidationError as exc:
            raise Invalid.from_msgspec(exc) from None

    if bounds is None:
        return run
    low, high = bounds

    def int_text(raw: Any) -> Any:
        # msgspec reads JSON's number syntax: no sign handled here, no leading zero.
        if type(raw) is str and 0 < len(raw) <= 18 and raw.isascii() and raw.isdigit():
            if raw[0] != "0" or len(raw) == 1:
                value = int(raw)
                if low <= value <= high:
                    return value
        return run(raw)

    def int_value(raw: Any) -> Any:
        if type(raw) is int and low <= raw <= high:
            return raw
        return run(raw)

    return int_text if from_text else int_value


def _int_bounds(type_: Any) -> tuple[int, int] | None:
    """(lowest, highest) value of an ``int`` type with only bound constraints, else None."""
    base, metas = type_, []
    if typing.get_origin(type_) is Annotated:
        base, *extras = typing.get_args(type_)
        metas = [extra for extra in extras if isinstance(extra, msgspec.Meta)]
        if len(metas) != len(extras):
            return None
    if base is not int:
        return None
    low, high = -(10**18), 10**18
    for meta in metas:
        if meta.multiple_of is not None:
            return None
        if meta.ge is not None:
            low = max(low, math.ceil(meta.ge))
        if meta.gt is not None:
            low = max(low, math.floor(meta.gt) + 1)
        if meta.le is not None:
            high = min(high, math.floor(meta.le))
        if meta.lt is not None:
            high = min(high, math.ceil(meta.lt) - 1)
    return low, high


# -- bodies ---------------------------------------------------------------------------------


def is_pydantic_model(cls: type) -> bool:
    """Whether ``cls`` is a pydantic v2 model, without importing pydantic when the app has not."""
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and isinstance(cls, type) and issubclass(cls, pydantic.BaseModel)


def _mentions_pydantic(type_: Any) -> bool:
    """Whether ``type_`` is a pydantic model or is built of one (``list[User]``, ``User | None``)."""
    if isinstance(type_, type) and is_pydantic_model(type_):
        return True
    return any(_mentions_pydantic(arg) for arg in typing.get_args(type_))


def body_decoder(type_: Any, nullable: bool) -> Converter:
    """The JSON body's bytes to ``type_``: malformed JSON is a 400, an invalid document 422."""
    target = Optional[type_] if nullable else type_  # noqa: UP045 - a runtime type, built from a variable
    if _mentions_pydantic(type_):
        # msgspec knows no pydantic model: it would refuse every list[User] with 422.
        return _pydantic_decoder(target)
    decoder = msgspec.json.Decoder(target)

    def decode(raw: bytes) -> Any:
        try:
            return decoder.decode(raw)
        except msgspec.ValidationError as exc:
            raise Invalid.from_msgspec(exc) from None
        except msgspec.DecodeError as exc:
            raise HTTPException(400, f"Invalid JSON body: {exc}") from None

    return decode


def _pydantic_decoder(type_: Any) -> Converter:
    # Only reached for a pydantic model, so pydantic is loaded; taken untyped from sys.modules
    # because it is optional: `cello build`'s and the wheel's mypyc type-check runs without it.
    pydantic: Any = sys.modules["pydantic"]

    validate = pydantic.TypeAdapter(type_).validate_json

    def decode(raw: bytes) -> Any:
        try:
            return validate(raw)
        except pydantic.ValidationError as exc:
            errors = exc.errors(include_url=False)
            if any(error["type"] == "json_invalid" for error in errors):
                raise HTTPException(400, f"Invalid JSON body: {errors[0]['msg']}") from None
            raise Invalid([(tuple(error["loc"]), error["msg"]) for error in errors]) from None

    return decode


def is_json(content_type: str) -> bool:
    """``application/json`` or a ``+json`` type, parameters ignored."""
    media = content_type.partition(";")[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def read_json_body(request: Request) -> bytes | None:
    """The body a JSON parameter decodes, None when there is none; a body declared as anything
    but JSON is refused with 415 (no Content-Type at all is read as JSON, as curl -d sends)."""
    body = request.body_bytes
    if not body:
        return None
    content_type = request.headers.get("content-type")
    if content_type is not None and not is_json(content_type):
        raise HTTPException(415, f"Unsupported Media Type: expected application/json, got {content_type}")
    return body


# -- results --------------------------------------------------------------------------------


def _encode_hook(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump):  # a pydantic model
        return dump(mode="json")
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    if isinstance(value, (set, frozenset)):
        return list(value)
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


encode: Final[Callable[[Any], bytes]] = msgspec.json.Encoder(enc_hook=_encode_hook).encode
