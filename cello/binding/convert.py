"""Conversions a typed handler's values go through: text (query, header, cookie, path) to the
declared type, the JSON body to its model, and results to JSON. msgspec does the work
(pydantic models go through pydantic); this module turns their failures into ``Invalid``
problems with a ``loc`` and a ``msg`` each.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from typing import Any, Final, Optional

import msgspec

from cello.errors import HTTPException
from cello.request import Request

Converter = Callable[[Any], Any]

# msgspec names where a problem is: "Expected `int` >= 1 - at `$.items[0].qty`".
_AT: Final = re.compile(r"^(.*) - at `\$(.*)`$", re.DOTALL)
_STEP: Final = re.compile(r"\.([^.\[]+)|\[(\d+)\]|\[([^\]]*)\]")


class Invalid(ValueError):
    """A value that failed validation: ``problems`` is a list of (loc within the value, msg)."""

    def __init__(self, problems: list[tuple[tuple[Any, ...], str]]) -> None:
        super().__init__("; ".join(msg for _, msg in problems))
        self.problems = problems

    @classmethod
    def from_msgspec(cls, exc: msgspec.ValidationError) -> Invalid:
        message = str(exc)
        match = _AT.match(message)
        if match is None:
            return cls([((), message)])
        loc: list[Any] = []
        for step in _STEP.finditer(match.group(2)):
            key, index, other = step.groups()
            loc.append(key if key is not None else int(index) if index is not None else other)
        return cls([(tuple(loc), match.group(1))])


def text_converter(type_: Any, nullable: bool, multiple: bool) -> Converter | None:
    """Text from the query, a header, a cookie or a path segment to ``type_`` (lax: "5" is an
    int, "true" a bool), or None when the text is the value (``str`` with no constraints)."""
    if type_ is str and not multiple:
        return None
    target: Any = list[type_] if multiple else type_
    if nullable:
        target = Optional[target]  # noqa: UP045 - a runtime type, built from a variable
    return _msgspec_converter(target, strict=False)


def value_converter(type_: Any) -> Converter:
    """A value the router converted already, checked against ``type_``'s constraints."""
    return _msgspec_converter(type_, strict=True)


def _msgspec_converter(target: Any, strict: bool) -> Converter:
    convert = msgspec.convert

    def run(raw: Any) -> Any:
        try:
            return convert(raw, target, strict=strict)
        except msgspec.ValidationError as exc:
            raise Invalid.from_msgspec(exc) from None

    return run


# -- bodies ---------------------------------------------------------------------------------


def is_pydantic_model(cls: type) -> bool:
    """Whether ``cls`` is a pydantic v2 model, without importing pydantic when the app has not."""
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and isinstance(cls, type) and issubclass(cls, pydantic.BaseModel)


def body_decoder(type_: Any, nullable: bool) -> Converter:
    """The JSON body's bytes to ``type_``: malformed JSON is a 400, an invalid document 422."""
    if is_pydantic_model(type_):
        return _pydantic_decoder(type_)
    decoder = msgspec.json.Decoder(Optional[type_] if nullable else type_)  # noqa: UP045

    def decode(raw: bytes) -> Any:
        try:
            return decoder.decode(raw)
        except msgspec.ValidationError as exc:
            raise Invalid.from_msgspec(exc) from None
        except msgspec.DecodeError as exc:
            raise HTTPException(400, f"Invalid JSON body: {exc}") from None

    return decode


def _pydantic_decoder(model: Any) -> Converter:
    import pydantic  # only reached for a pydantic model, so pydantic is installed

    def decode(raw: bytes) -> Any:
        try:
            return model.model_validate_json(raw)
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
