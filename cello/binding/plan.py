"""A typed handler's binder plan: its signature read once, at registration.

``plan_handler`` decides, for each parameter, where its value comes from (the request itself,
a path parameter, the query string, a header, a cookie, the JSON body, the form or its files)
and how it is converted and validated; and, from the return annotation, how the result is
encoded. Nothing here runs per request: the interpreted binder (``cello.binding.binder``) and
the binders ``cello build`` generates both execute a plan, reading everything that varies per
route (converters, defaults, how problems are reported) from it.

A handler with exactly one parameter that is unannotated or annotated ``Request`` is not
planned: it gets the request, as every Cello handler always has.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import inspect
import types
import typing
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Final, Literal, Union

import msgspec

from cello.binding import convert
from cello.binding.convert import Converter, Invalid
from cello.binding.markers import BODY, COOKIE, HEADER, QUERY, Param
from cello.errors import HTTPException, RouteError
from cello.forms import FormData, UploadedFile
from cello.request import Request
from cello.response import Response
from cello.routing.pattern import CATCHALL, FLOAT, INT, STR, UUID, Pattern
from cello.sse import SseStream

# Where a parameter's value comes from (QUERY, HEADER, COOKIE, BODY are the markers' sources).
REQUEST: Final = "request"
PATH: Final = "path"
FORM: Final = "form"
FILE: Final = "file"
FILES: Final = "files"

# Types a query, header, cookie or path value converts to from its text.
_SCALARS: Final = (
    str,
    int,
    float,
    bool,
    decimal.Decimal,
    uuid.UUID,
    datetime.datetime,
    datetime.date,
    datetime.time,
    datetime.timedelta,
)
_SEQUENCES: Final = (list, tuple, set, frozenset, Sequence)
# What each typed path converter gives, and the annotations that accept it as it is.
_PATH_TYPES: Final[dict[int, type]] = {INT: int, FLOAT: float, UUID: uuid.UUID}

Binder = Callable[[Request, "BinderPlan"], list[Any]]


@dataclasses.dataclass(frozen=True)
class Parameter:
    """One parameter of a typed handler."""

    name: str
    source: str
    # Its name in the source: the query key, the header (lower case), the cookie, the path param.
    key: str
    # The declared type without None and the source marker, constraints kept (Annotated[...]).
    type: Any
    required: bool
    default: Any
    # A query or header parameter declared as a list takes every value.
    multiple: bool
    convert: Converter | None
    keyword: bool
    description: str | None = None
    deprecated: bool = False
    nullable: bool = False


@dataclasses.dataclass(frozen=True)
class ResultPlan:
    """How the handler's result becomes a response."""

    # The return annotation, or None when there is none (or it names a Response).
    type: Any
    # Encode with msgspec (a typed handler with a return annotation); else today's normalisation.
    encode: bool
    status: int
    # ``status=`` given on the decorator.
    explicit_status: bool
    # The annotation admits tuples (``-> tuple[float, float]``, a NamedTuple): a tuple result is
    # then the body, not ``(body, status)``.
    tuples: bool = False


class BinderPlan:
    """The plan of one typed handler: what the binders read per parameter, and how to report."""

    def __init__(self, handler: Callable[..., Any], params: Sequence[Parameter], result: ResultPlan) -> None:
        self.handler = handler
        self.params = tuple(params)
        self.result = result
        # Read by the binders, indexed like params.
        self.converters: tuple[Converter | None, ...] = tuple(p.convert for p in self.params)
        self.defaults: tuple[Any, ...] = tuple(p.default for p in self.params)
        self.positional = sum(1 for p in self.params if not p.keyword)
        self.keywords = tuple(p.name for p in self.params if p.keyword)
        self.body = next((p for p in self.params if p.source == BODY), None)
        self.uses_form = any(p.source in (FORM, FILE, FILES) for p in self.params)

    # -- what the binders call -----------------------------------------------------------

    def problems(self, index: int, exc: ValueError) -> list[dict[str, Any]]:
        """The problems of a value that failed to convert, ``loc`` starting at its source."""
        where = _loc(self.params[index])
        if isinstance(exc, Invalid):
            return [{"loc": where + list(loc), "msg": msg} for loc, msg in exc.problems]
        return [{"loc": where, "msg": str(exc)}]

    def missing(self, index: int) -> list[dict[str, Any]]:
        return [{"loc": _loc(self.params[index]), "msg": "Field required"}]

    @staticmethod
    def failed(problems: list[Any]) -> HTTPException:
        return HTTPException(422, "Validation failed", details=problems)

    @staticmethod
    def read_body(request: Request) -> bytes | None:
        return convert.read_json_body(request)

    # -- identity ------------------------------------------------------------------------

    def signature(self) -> str:
        """What generated binder code depends on, for the build fingerprint: sources, keys,
        requiredness, conversions and the calling convention (not types or defaults, which
        the binder reads from the plan at run time)."""
        parts = [
            f"{p.name}:{p.source}:{p.key}:{int(p.required)}{int(p.multiple)}{int(p.convert is not None)}"
            f"{int(p.keyword)}"
            for p in self.params
        ]
        return f"({','.join(parts)})"

    def __repr__(self) -> str:
        return f"<BinderPlan {getattr(self.handler, '__qualname__', self.handler)}{self.signature()}>"


def _loc(param: Parameter) -> list[Any]:
    """Where a problem is, as a 422 names it: the JSON body is ``["body"]``, a form part is a
    field of the body (``["body", "avatar"]``), any other source ``[source, key]``."""
    if param.source == BODY:
        return [BODY]
    if param.source in (FORM, FILE, FILES):
        return [BODY, param.key]
    return [param.source, param.key]


def is_legacy(handler: Callable[..., Any]) -> bool:
    """Whether ``handler`` takes the request the classic way (one positional parameter,
    unannotated or annotated ``Request``, ``Any`` or ``object``, or only ``*args``/``**kwargs``),
    so it needs no plan."""
    try:
        # Unevaluated first: a Request imported only under TYPE_CHECKING names no class here.
        signature = inspect.signature(handler)
    except (TypeError, ValueError):
        return True  # a builtin or an object inspect cannot read
    params = _bindable(signature)
    if not params:
        # No parameter at all is typed (nothing to bind); *args/**kwargs only is a wrapper.
        return len(signature.parameters) > 0
    if len(params) != 1 or params[0].kind is params[0].KEYWORD_ONLY:
        # A keyword-only request is planned, so that it is passed by name.
        return False
    annotation = params[0].annotation
    if isinstance(annotation, str):
        return annotation.rpartition(".")[2] == "Request" or _evaluates_to_request(handler)
    return annotation in (inspect.Parameter.empty, Any, object) or _is_request(annotation)


def _evaluates_to_request(handler: Callable[..., Any]) -> bool:
    try:
        signature = inspect.signature(handler, eval_str=True)
    except (NameError, SyntaxError, TypeError, ValueError):
        return False
    annotation = _bindable(signature)[0].annotation
    return annotation in (Any, object) or _is_request(annotation)


def plan_handler(
    handler: Callable[..., Any], pattern: Pattern, source: str, status: int | None = None, stream: bool = False
) -> BinderPlan | None:
    """The binder plan of ``handler`` served at ``pattern``, or None for a classic handler;
    ``stream``: the route does not receive the body before calling the handler.

    Raises RouteError, naming ``source`` (file:line), for a signature Cello cannot bind."""
    if is_legacy(handler):
        if status is None:
            return None
        # Only status= to apply: the handler is called as every classic one is, with the request
        # as its one positional argument (a *args wrapper too: it has no parameter to name it).
        request = Parameter("request", REQUEST, "", Request, True, None, False, None, False)
        return BinderPlan(handler, [request], ResultPlan(None, False, status, True))
    signature = _signature(handler, source)
    if signature is None:
        return None
    params = _bindable(signature)
    path_kinds = {segment.value: segment.kind for segment in pattern.segments if segment.is_param}
    try:
        planned = [_parameter(param, path_kinds, source) for param in params]
    except TypeError as exc:  # from msgspec: a type or constraint it cannot validate
        raise RouteError(f"{source}: {getattr(handler, '__qualname__', handler)}: {exc}") from None
    bodies = [p.name for p in planned if p.source == BODY]
    if len(bodies) > 1:
        raise RouteError(f"{source}: parameters {', '.join(bodies)} all read the JSON body; a handler takes one")
    if bodies and any(p.source in (FORM, FILE, FILES) for p in planned):
        raise RouteError(f"{source}: a handler reads either a JSON body or a form, not both")
    if stream:
        readers = [p.name for p in planned if p.source in (BODY, FORM, FILE, FILES)]
        if readers:
            # The body is not received before the call, so there would be nothing to bind.
            raise RouteError(
                f"{source}: parameter {readers[0]!r} reads the body, but the route has stream=True: "
                "drop stream=True, or take the request and read request.stream()"
            )
    return BinderPlan(handler, planned, _result(signature, status, True))


# -- reading the signature ------------------------------------------------------------------


def _signature(handler: Callable[..., Any], source: str) -> inspect.Signature | None:
    try:
        return inspect.signature(handler, eval_str=True)
    except (NameError, SyntaxError) as exc:
        raise RouteError(
            f"{source}: cannot resolve the annotations of {getattr(handler, '__qualname__', handler)!r}: {exc} "
            "(types named in annotations must be importable from the handler's module)"
        ) from None
    except (TypeError, ValueError):
        return None  # a builtin or an object inspect cannot read: called the classic way


def _bindable(signature: inspect.Signature) -> list[inspect.Parameter]:
    return [p for p in signature.parameters.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def _is_request(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, Request)


def _unwrap(annotation: Any) -> tuple[Any, Param | None, bool]:
    """(type with constraints, source marker, nullable) of an annotation: ``Annotated`` layers
    and ``| None`` peeled off in any order, every constraint kept, the innermost marker last."""
    marker: Param | None = None
    metadata: list[Any] = []
    nullable = False
    while True:
        if typing.get_origin(annotation) is Annotated:
            annotation, *extras = typing.get_args(annotation)
            for extra in extras:
                if isinstance(extra, Param):
                    marker = extra
                    if extra.meta is not None:
                        metadata.append(extra.meta)
                else:
                    metadata.append(extra)
            continue
        if _is_union(annotation):
            members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
            if len(members) < len(typing.get_args(annotation)):
                nullable = True
                annotation = members[0] if len(members) == 1 else Union[tuple(members)]  # noqa: UP007
                continue
        break
    if metadata:
        annotation = Annotated.__class_getitem__((annotation, *metadata))  # type: ignore[attr-defined]
    return annotation, marker, nullable


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) is Union or isinstance(annotation, types.UnionType)


def _bare(annotation: Any) -> Any:
    """The type without its Annotated constraints."""
    while typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _is_scalar(annotation: Any) -> bool:
    bare = _bare(annotation)
    if bare is Any:
        return True
    if typing.get_origin(bare) is Literal:
        return True
    if _is_union(bare):
        return all(_is_scalar(arg) for arg in typing.get_args(bare))
    return isinstance(bare, type) and (issubclass(bare, _SCALARS) or issubclass(bare, enum.Enum))


def _sequence_item(annotation: Any) -> Any | None:
    """The item type of ``list[X]`` (or tuple/set of X), else None."""
    bare = _bare(annotation)
    origin = typing.get_origin(bare)
    if origin is None or not (isinstance(origin, type) and issubclass(origin, _SEQUENCES)):
        return None
    args = typing.get_args(bare)
    if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
        return None
    return args[0] if args else Any


def _is_model(annotation: Any) -> bool:
    """A type decoded from a JSON body: a Struct, dataclass, TypedDict or pydantic model."""
    bare = _bare(annotation)
    if not isinstance(bare, type):
        return False
    if issubclass(bare, msgspec.Struct) or dataclasses.is_dataclass(bare) or typing.is_typeddict(bare):
        return True
    return convert.is_pydantic_model(bare)


def _is_body(annotation: Any) -> bool:
    bare = _bare(annotation)
    if _is_model(bare):
        return True
    origin = typing.get_origin(bare) or bare
    if isinstance(origin, type) and issubclass(origin, (dict, Mapping)):
        return True
    item = _sequence_item(bare)
    return item is not None and _is_body(item)


def _uploads(annotation: Any) -> str | None:
    bare = _bare(annotation)
    if bare is FormData:
        return FORM
    if bare is UploadedFile:
        return FILE
    item = _sequence_item(bare)
    if item is not None and _bare(item) is UploadedFile:
        return FILES
    return None


def _parameter(param: inspect.Parameter, path_kinds: dict[str, int], source: str) -> Parameter:
    annotation = param.annotation
    keyword = param.kind is param.KEYWORD_ONLY
    name = param.name
    has_default = param.default is not param.empty
    default = param.default if has_default else None
    if annotation is param.empty:
        if name not in path_kinds:
            # `def show(request, id: int)` would read ?request= and answer 422 on every call.
            raise RouteError(
                f"{source}: parameter {name!r} has no annotation, and a handler with typed parameters binds "
                f"each by its annotation: annotate it Request for the request, or str for a query parameter"
            )
        annotation = Any
    if _is_request(annotation):
        return Parameter(name, REQUEST, "", Request, True, None, False, None, keyword)
    type_, marker, nullable = _unwrap(annotation)
    required = not has_default
    description = marker.description if marker is not None else None
    deprecated = marker.deprecated if marker is not None else False

    def make(where: str, key: str, converter: Converter | None, multiple: bool = False) -> Parameter:
        return Parameter(
            name, where, key, type_, required, default, multiple, converter, keyword, description, deprecated, nullable
        )

    uploads = _uploads(type_)
    if uploads is not None:
        return make(uploads, name, None)
    where_marked = marker.source if marker is not None else None
    if where_marked is not None and name in path_kinds:
        # Query(ge=1) on a path parameter would read the query string and leave the path unused.
        raise RouteError(
            f"{source}: parameter {name!r} is the path parameter {{{name}}} but is marked {marker!r}; "
            f"rename it, or drop the marker (a path parameter's constraints go in msgspec.Meta: "
            f"Annotated[int, msgspec.Meta(ge=1)])"
        )
    if where_marked == BODY or (where_marked is None and name not in path_kinds and _is_body(type_)):
        return make(BODY, BODY, convert.body_decoder(type_, nullable))
    if where_marked is None and name in path_kinds:
        return make(PATH, name, _path_converter(name, type_, path_kinds[name], source))
    item = _sequence_item(type_)
    multiple = item is not None and where_marked != COOKIE
    if not (_is_scalar(type_) or (multiple and _is_scalar(item))):
        raise RouteError(
            f"{source}: cannot bind parameter {name!r} of type {describe_type(param.annotation)}: a query, header or "
            "cookie parameter is a scalar (str, int, float, bool, enum, Literal, UUID, date/time) or a list of "
            "them; a body is a msgspec.Struct, dataclass, TypedDict or pydantic model"
        )
    if where_marked == HEADER:
        key = (marker.name if marker is not None and marker.name else name.replace("_", "-")).lower()
    else:
        key = marker.name if marker is not None and marker.name else name
    where = where_marked or QUERY
    return make(where, key, convert.text_converter(type_, multiple), multiple)


def _path_converter(name: str, type_: Any, kind: int, source: str) -> Converter | None:
    """The conversion of a path value the router converted already (``kind``), checked against
    the annotation: one that contradicts the pattern's converter is a RouteError."""
    bare = _bare(type_)
    if bare is Any or bare is object:
        return None
    if kind in (STR, CATCHALL):
        if not _is_scalar(type_):
            raise RouteError(f"{source}: path parameter {name!r} cannot be of type {describe_type(type_)}")
        return convert.text_converter(type_, False)
    given = _PATH_TYPES[kind]
    accepted = bare is given or (given is int and bare is float)
    if not accepted:
        spelling = {INT: "int", FLOAT: "float", UUID: "uuid"}[kind]
        raise RouteError(
            f"{source}: parameter {name!r} is annotated {describe_type(type_)} but {{{name}:{spelling}}} gives "
            f"{given.__name__} values: annotate it {given.__name__}, or change the pattern's converter"
        )
    if bare is given and type_ is bare:
        return None  # the router's value is already what the handler declared
    return convert.value_converter(type_)


def describe_type(annotation: Any) -> str:
    """An annotation as a message or a generated comment names it."""
    if isinstance(annotation, type):
        return annotation.__name__
    return repr(annotation).replace("typing.", "")


# -- the result ----------------------------------------------------------------------------

_PASSTHROUGH: Final = (Response, SseStream)


def _result(signature: inspect.Signature, status: int | None, typed: bool) -> ResultPlan:
    annotation = signature.return_annotation
    explicit = status is not None
    if annotation is signature.empty or annotation is Any or annotation is object:
        return ResultPlan(None, False, status or 200, explicit)
    if annotation is None or annotation is type(None):
        return ResultPlan(None, False, status or 204, explicit)
    if _mentions(annotation, _PASSTHROUGH):
        return ResultPlan(None, False, status or 200, explicit)
    if _bare(annotation) in (str, bytes):
        # Text and bytes answer as they do from any handler (text/plain, octet-stream), not as
        # a JSON string: what a Cello (or Litestar) user expects of `-> str`.
        return ResultPlan(annotation, False, status or 200, explicit)
    return ResultPlan(annotation, typed, status or 200, explicit, _declares_tuples(annotation))


def _declares_tuples(annotation: Any) -> bool:
    bare = _bare(annotation)
    if _is_union(bare):
        return any(_declares_tuples(arg) for arg in typing.get_args(bare))
    origin = typing.get_origin(bare) or bare
    return isinstance(origin, type) and issubclass(origin, tuple)


def _mentions(annotation: Any, classes: tuple[type, ...]) -> bool:
    bare = _bare(annotation)
    if _is_union(bare):
        return any(_mentions(arg, classes) for arg in typing.get_args(bare))
    return isinstance(bare, type) and issubclass(bare, classes)


__all__ = [
    "BODY",
    "COOKIE",
    "FILE",
    "FILES",
    "FORM",
    "HEADER",
    "PATH",
    "QUERY",
    "REQUEST",
    "Binder",
    "BinderPlan",
    "Invalid",
    "Parameter",
    "ResultPlan",
    "is_legacy",
    "plan_handler",
]
