"""Exceptions users raise or catch, and the JSON shape of error responses."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

import orjson

# What is told of each exception Cello answers with a 500 (or a WebSocket close 1011) because
# no error handler took it: a handler's, a hook's, a WebSocket handler's. Called where it is
# logged, on that request's task, so the request's context is current: app.enable_tracing()
# records it on the request's span. Empty unless a feature needs it (the error path only).
unhandled_observers: list[Callable[[BaseException], None]] = []


def report_unhandled(exc: BaseException) -> None:
    for observer in unhandled_observers:
        try:
            observer(exc)
        except Exception:  # noqa: BLE001, S110 - an observer must not turn one error into two
            pass


class RouteError(ValueError):
    """A route that cannot be registered: malformed pattern, conflict, bad converter."""


class UrlBuildError(LookupError):
    """``url_for`` cannot build a URL: no route has that name, or a parameter is missing or
    is not what the route's converter matches."""


def reason_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def error_body(
    status: int, message: str, details: Sequence[Mapping[str, Any]] | None = None, request_id: str | None = None
) -> bytes:
    """The JSON body of every error response Cello writes: ``{"error": message, "status": status}``,
    plus ``"detail"``, a list of problems, when there are several to name (a 422's ``loc``/``msg``),
    and ``"request_id"`` when given (a 5xx with request ids on: the id to quote in a report)."""
    if details is None and request_id is None:
        return orjson.dumps({"error": message, "status": status})
    body: dict[str, Any] = {"error": message, "status": status}
    if details is not None:
        body["detail"] = list(details)
    if request_id is not None:
        body["request_id"] = request_id
    return orjson.dumps(body)


class HTTPException(Exception):
    """Raise anywhere in a handler, hook or guard to answer with an error response.

    The response body is ``{"error": detail, "status": status}``, with ``"detail": details``
    when ``details`` (a list of JSON-able problems) is given.
    """

    def __init__(
        self,
        status: int,
        detail: str | None = None,
        headers: Mapping[str, str] | None = None,
        details: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        if detail is None:
            detail = reason_phrase(status) or "Error"
        super().__init__(status, detail)
        self.status = status
        self.status_code = status
        self.detail = detail
        self.headers: dict[str, str] = dict(headers) if headers else {}
        self.details = details

    def __str__(self) -> str:
        return f"{self.status}: {self.detail}"

    def __repr__(self) -> str:
        return f"HTTPException({self.status!r}, {self.detail!r})"


def format_size(size: int) -> str:
    """A byte count as a limit is usually written: ``16 MiB``, ``64 KiB``, ``1500 bytes``."""
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} bytes"


def too_large(what: str, option: str, limit: str) -> str:
    """The message of every 413: what went past which option, and that option's value.

    ``too_large("body", "max_body_size", "16 MiB")`` ->
    ``"Payload Too Large: body exceeds max_body_size (16 MiB)"``.
    """
    return f"Payload Too Large: {what} exceeds {option} ({limit})"


def body_too_large(limit: int, option: str = "max_body_size") -> str:
    """The 413 message of a body over ``limit`` bytes, whoever counts it (the server, the
    ASGI adapter, a streamed body): endpoints carry it, so every runtime says the same."""
    return too_large("body", option, format_size(limit))
