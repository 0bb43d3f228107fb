"""Exceptions users raise or catch, and the JSON shape of error responses."""

from __future__ import annotations

from http import HTTPStatus
from typing import Mapping


class RouteError(ValueError):
    """A route that cannot be registered: malformed pattern, conflict, bad converter."""


def reason_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


class HTTPException(Exception):
    """Raise anywhere in a handler, hook or guard to answer with an error response.

    The response body is ``{"error": detail, "status": status}``.
    """

    def __init__(
        self,
        status: int,
        detail: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if detail is None:
            detail = reason_phrase(status) or "Error"
        super().__init__(status, detail)
        self.status = status
        self.status_code = status
        self.detail = detail
        self.headers: dict[str, str] = dict(headers) if headers else {}

    def __str__(self) -> str:
        return f"{self.status}: {self.detail}"

    def __repr__(self) -> str:
        return f"HTTPException({self.status!r}, {self.detail!r})"
