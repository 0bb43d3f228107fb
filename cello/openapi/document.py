"""The OpenAPI 3.1 document of an app's route table.

Every HTTP route is an operation (WebSocket routes are not HTTP operations; the automatic HEAD
and OPTIONS answers are not routes). A typed route is described from its binder plan, the
same plan that binds its requests: parameters with their schemas and constraints, the JSON or
multipart body, the success response from the return annotation, and the 422 the binder answers
with. An untyped route gets a generic 200. Every operation also documents Cello's JSON error
body for 4XX answers (404 from ``HTTPException``, 405, 413...).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

import msgspec

from cello.binding.markers import BODY, COOKIE, HEADER, QUERY
from cello.binding.plan import FILE, FILES, FORM, PATH, REQUEST, BinderPlan, Parameter
from cello.blueprint import WEBSOCKET
from cello.endpoints import RouteEntry
from cello.errors import reason_phrase
from cello.openapi.schemas import SERIALIZATION, VALIDATION, Schema, Schemas, json_default
from cello.routing import Route
from cello.routing.converters import INT_MAX_DIGITS
from cello.routing.pattern import CATCHALL, FLOAT, INT, STATIC, UUID, Segment

OPENAPI_VERSION: Final = "3.1.0"
# The methods an OpenAPI path item has operations for.
_OPERATIONS: Final = ("GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE")
# Static text as Cello's shapes keep it readable; "{" and "}" are escaped so they never read as a parameter.
_PATH_SAFE: Final = "!$&'()*+,;=:@-._~"

JSON: Final = "application/json"
ERROR: Final = "ErrorResponse"
VALIDATION_ERROR: Final = "ValidationErrorResponse"

# Cello's one JSON error body (cello.errors.error_body), and the 422's with its problems.
_ERROR_SCHEMA: Final[Schema] = {
    "type": "object",
    "description": "Cello's error body (with a `detail` list when the error names several problems).",
    "properties": {"error": {"type": "string"}, "status": {"type": "integer"}},
    "required": ["error", "status"],
}
_VALIDATION_ERROR_SCHEMA: Final[Schema] = {
    "type": "object",
    "description": "Every problem found in the request, each where it is (`loc`) and what is wrong (`msg`).",
    "properties": {
        "error": {"type": "string", "const": "Validation failed"},
        "status": {"type": "integer", "const": 422},
        "detail": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
                    "msg": {"type": "string"},
                },
                "required": ["loc", "msg"],
            },
        },
    },
    "required": ["error", "status", "detail"],
}

# What each typed path converter matches (cello.routing.converters): the router answers 404
# for anything else, before a handler could.
_CONVERTER_SCHEMAS: Final[dict[int, Schema]] = {
    INT: {"type": "integer", "minimum": 0, "maximum": 10**INT_MAX_DIGITS - 1},
    FLOAT: {"type": "number", "minimum": 0},
    UUID: {"type": "string", "format": "uuid"},
}
_TEXT: Final[Schema] = {"type": "string", "minLength": 1}


@dataclass(frozen=True)
class Info:
    """The document's ``info`` and ``servers``: ``servers`` are URLs or OpenAPI server objects."""

    title: str = "API"
    version: str = "1.0"
    description: str | None = None
    servers: Sequence[str | Mapping[str, Any]] | None = None


def build_document(
    routes: Sequence[Route], info: Info, skip: Callable[[RouteEntry], bool] = lambda entry: False
) -> dict[str, Any]:
    """The OpenAPI document of ``routes`` (an app's ``routes()``), leaving out those ``skip`` names."""
    schemas = Schemas()
    documented = [(route, entry) for route, entry in _entries(routes) if not skip(entry)]
    operation_ids = _operation_ids([entry for _, entry in documented])
    paths: dict[str, dict[str, Any]] = {}
    tags: set[str] = set()
    for (route, entry), operation_id in zip(documented, operation_ids):
        segments = route.pattern.segments
        operation = _Operation(entry, segments, schemas).build(operation_id)
        paths.setdefault(_openapi_path(segments), {})[entry.method.lower()] = operation
        if entry.blueprint:
            tags.add(entry.blueprint)
    schemas.finish()
    document: dict[str, Any] = {"openapi": OPENAPI_VERSION, "info": _info(info), "paths": paths}
    if info.servers:
        document["servers"] = [{"url": server} if isinstance(server, str) else dict(server) for server in info.servers]
    document["components"] = {"schemas": schemas.components}
    if tags:
        document["tags"] = [{"name": tag} for tag in sorted(tags)]
    return document


def _info(info: Info) -> dict[str, Any]:
    result: dict[str, Any] = {"title": info.title, "version": info.version}
    if info.description:
        result["description"] = info.description
    return result


def _entries(routes: Sequence[Route]) -> list[tuple[Route, RouteEntry]]:
    entries = []
    for route in routes:
        entry = route.endpoint
        if isinstance(entry, RouteEntry) and entry.method != WEBSOCKET and entry.method in _OPERATIONS:
            entries.append((route, entry))
    return entries


def _openapi_path(segments: Sequence[Segment]) -> str:
    """``/notes/{id}`` for ``/notes/{id:int}``: OpenAPI names a parameter, its schema says the rest."""
    parts = [quote(s.value, safe=_PATH_SAFE) if s.kind == STATIC else "{" + s.value + "}" for s in segments]
    return "/" + "/".join(parts)


def _operation_ids(entries: Sequence[RouteEntry]) -> list[str]:
    """The route name, made unique: with the method when one name serves several methods,
    then with the blueprint, then numbered (in route order, so the ids are stable)."""
    names = [entry.spec.name or getattr(entry.spec.handler, "__name__", "operation") for entry in entries]
    counts = _count(names)
    names = [f"{name}_{entry.method.lower()}" if counts[name] > 1 else name for name, entry in zip(names, entries)]
    counts = _count(names)
    names = [
        f"{entry.blueprint}_{name}" if counts[name] > 1 and entry.blueprint else name
        for name, entry in zip(names, entries)
    ]
    counts = _count(names)
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        if counts[name] > 1:
            seen[name] = seen.get(name, 0) + 1
            name = f"{name}_{seen[name]}"
        unique.append(name)
    return unique


def _count(names: Sequence[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    return counts


def _docstring(handler: Any) -> tuple[str | None, str | None]:
    """(summary, description) from a handler function's docstring: first line, and the rest."""
    if not (inspect.isfunction(handler) or inspect.ismethod(handler)):
        return None, None  # an object's docstring describes its class, not this route
    doc = inspect.getdoc(handler)
    if not doc:
        return None, None
    first, _, rest = doc.partition("\n")
    return first.strip() or None, rest.strip() or None


class _Operation:
    """One route's operation object."""

    def __init__(self, entry: RouteEntry, segments: Sequence[Segment], schemas: Schemas) -> None:
        self.entry = entry
        self.segments = segments
        self.plan: BinderPlan | None = entry.binding
        self.schemas = schemas

    def build(self, operation_id: str) -> dict[str, Any]:
        operation: dict[str, Any] = {"operationId": operation_id}
        summary, description = _docstring(self.entry.spec.handler)
        if summary:
            operation["summary"] = summary
        if description:
            operation["description"] = description
        if self.entry.blueprint:
            operation["tags"] = [self.entry.blueprint]
        parameters = self._parameters()
        if parameters:
            operation["parameters"] = parameters
        body = self._request_body()
        if body is not None:
            operation["requestBody"] = body
        operation["responses"] = self._responses()
        return operation

    # -- parameters ---------------------------------------------------------------------

    def _typed(self) -> tuple[Parameter, ...]:
        return self.plan.params if self.plan is not None else ()

    def _parameters(self) -> list[dict[str, Any]]:
        typed_path = {p.key: p for p in self._typed() if p.source == PATH}
        parameters = [self._path_parameter(s, typed_path.get(s.value)) for s in self.segments if s.is_param]
        for param in self._typed():
            if param.source in (QUERY, HEADER, COOKIE):
                parameters.append(self._parameter(param))
        return parameters

    def _path_parameter(self, segment: Segment, param: Parameter | None) -> dict[str, Any]:
        converted = _CONVERTER_SCHEMAS.get(segment.kind)
        if param is None:
            schema = dict(converted or ({"type": "string"} if segment.kind == CATCHALL else _TEXT))
        else:
            schema = self.schemas.of(param.type, VALIDATION, _path_refine(segment.kind))
        result: dict[str, Any] = {"name": segment.value, "in": PATH, "required": True, "schema": schema}
        if param is not None:
            _describe(result, param)
        return result

    def _parameter(self, param: Parameter) -> dict[str, Any]:
        item_type = param.type
        schema = self.schemas.of(item_type, VALIDATION, _with_default(param))
        result: dict[str, Any] = {"name": param.key, "in": param.source, "required": param.required, "schema": schema}
        if param.multiple:
            # A list takes every value: ?tag=a&tag=b (a header: one line per value).
            result["style"] = "form" if param.source == QUERY else "simple"
            result["explode"] = True
        _describe(result, param)
        return result

    # -- the body -------------------------------------------------------------------------

    def _request_body(self) -> dict[str, Any] | None:
        typed = self._typed()
        body = next((p for p in typed if p.source == BODY), None)
        if body is not None:
            schema = self.schemas.of(body.type, VALIDATION)
            result: dict[str, Any] = {"required": body.required, "content": {JSON: {"schema": schema}}}
            if body.description:
                result["description"] = body.description
            return result
        parts = [p for p in typed if p.source in (FORM, FILE, FILES)]
        if not parts:
            return None
        return {"required": any(p.required for p in parts), "content": _form_content(parts)}

    # -- responses ------------------------------------------------------------------------

    def _responses(self) -> dict[str, Any]:
        plan = self.plan
        responses: dict[str, Any] = {}
        if plan is None:
            responses["200"] = {"description": "OK"}
        else:
            status = plan.result.status
            success: dict[str, Any] = {"description": reason_phrase(status) or "Success"}
            result = plan.result.type
            if result is not None and status not in (204, 304):
                if plan.result.encode:
                    success["content"] = {JSON: {"schema": self.schemas.of(result, SERIALIZATION)}}
                elif result in (str, bytes):  # answered as from any handler, not as JSON
                    media = "text/plain; charset=utf-8" if result is str else "application/octet-stream"
                    success["content"] = {media: {"schema": {"type": "string"}}}
            responses[str(status)] = success
            if any(p.source == BODY for p in plan.params):
                responses["400"] = self._error("The body is not valid JSON")
                responses["415"] = self._error("The body is not JSON (Content-Type)")
            if any(_can_fail(p) for p in plan.params):
                ref = self.schemas.add_component(VALIDATION_ERROR, _VALIDATION_ERROR_SCHEMA)
                responses["422"] = {"description": "Validation failed", "content": {JSON: {"schema": {"$ref": ref}}}}
        responses["4XX"] = self._error("Client error (404 from HTTPException, 405, 413...)")
        return responses

    def _error(self, description: str) -> dict[str, Any]:
        ref = self.schemas.add_component(ERROR, _ERROR_SCHEMA)
        return {"description": description, "content": {JSON: {"schema": {"$ref": ref}}}}


def _can_fail(param: Parameter) -> bool:
    """Whether binding ``param`` can answer 422: a whole form never does, a path value the
    router converted already only when its annotation adds constraints."""
    if param.source in (REQUEST, FORM):
        return False
    if param.source == PATH:
        return param.convert is not None
    return True


def _describe(result: dict[str, Any], param: Parameter) -> None:
    if param.description:
        result["description"] = param.description
    if param.deprecated:
        result["deprecated"] = True


def _with_default(param: Parameter) -> Callable[[Schema], Schema] | None:
    if param.required or param.default is None:
        return None
    default = json_default(param.default)
    if default is msgspec.UNSET:
        return None
    return lambda schema: {**schema, "default": default}


def _path_refine(kind: int) -> Callable[[Schema], Schema]:
    """A typed path parameter's schema: the annotation's (constraints and all), but a typed
    converter decides the JSON type, since the router matches nothing else."""
    converted = _CONVERTER_SCHEMAS.get(kind)

    def refine(schema: Schema) -> Schema:
        if converted is None:
            if not schema:
                return dict(_TEXT)
            if kind == CATCHALL or schema.get("type") != "string":
                return schema
            return {**schema, "minLength": max(1, schema.get("minLength", 0))}  # a segment is never empty
        merged = dict(schema)
        for key, value in converted.items():
            if key in ("type", "format") or key not in merged:
                merged[key] = value
        return merged

    return refine


def _form_content(parts: Sequence[Parameter]) -> dict[str, Any]:
    """multipart/form-data (and urlencoded when no file is read) for FormData/UploadedFile parameters."""
    binary = {"type": "string", "contentMediaType": "application/octet-stream"}
    properties: dict[str, Any] = {}
    required: list[str] = []
    for part in parts:
        if part.source == FILE:
            properties[part.key] = dict(binary)
        elif part.source == FILES:
            properties[part.key] = {"type": "array", "items": dict(binary)}
        if part.source != FORM and part.required:
            required.append(part.key)
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    content = {"multipart/form-data": {"schema": schema}}
    if all(part.source == FORM for part in parts):
        content["application/x-www-form-urlencoded"] = {"schema": dict(schema)}
    return content
