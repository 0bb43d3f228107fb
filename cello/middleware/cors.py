"""CORS per the Fetch standard: echo an allowed Origin, `Vary: Origin`, answer preflights.

Installed as a synchronous before-hook (preflights are answered there, without reaching
the handler) and after-hook (headers on actual responses), so routes keep the inline path.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cello.request import Request
from cello.response import Response, error_response

SAFE_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def add_vary(response: Response, value: str) -> None:
    """Add ``value`` (a constant header name) to ``Vary`` once, keeping what is there."""
    merge_vary(response.raw_headers(), response.find_header("vary"), value)


def merge_vary(headers: list[tuple[str, str]], index: int, value: str) -> None:
    """``add_vary`` for a caller that already knows the index of ``Vary`` (-1: none)."""
    if index < 0:
        headers.append(("vary", value))
        return
    existing = headers[index][1]
    merged = _MERGED.get((existing, value))
    if merged is None:
        parts = [part.strip().lower() for part in existing.split(",")]
        merged = existing if "*" in parts or value.lower() in parts else f"{existing}, {value}"
        if len(_MERGED) < 256:
            _MERGED[(existing, value)] = merged
    if merged is not existing:
        headers[index] = (headers[index][0], merged)


# (Vary so far, name to add) -> the merged value: the same few pairs recur on every response.
_MERGED: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class CorsPolicy:
    origins: frozenset[str] | None  # None: any origin
    methods: tuple[str, ...]
    headers: frozenset[str] | None  # None: any request header
    credentials: bool
    max_age: int
    expose_headers: tuple[str, ...]

    @classmethod
    def create(
        cls,
        origins: Iterable[str] | str | None = None,
        methods: Iterable[str] | None = None,
        headers: Iterable[str] | str | None = None,
        credentials: bool = False,
        max_age: int = 86400,
        expose_headers: Iterable[str] | None = None,
    ) -> CorsPolicy:
        if isinstance(origins, str):
            origins = [origins]
        origin_set = None if origins is None or "*" in origins else frozenset(o.rstrip("/") for o in origins)
        if isinstance(headers, str):
            headers = [headers]
        header_set = None if headers is None or "*" in headers else frozenset(h.lower() for h in headers)
        return cls(
            origin_set,
            tuple(m.upper() for m in (methods or SAFE_METHODS)),
            header_set,
            credentials,
            int(max_age),
            tuple(expose_headers or ()),
        )

    def allows(self, origin: str) -> bool:
        return self.origins is None or origin in self.origins

    def allow_origin_value(self, origin: str) -> str:
        # With credentials the Fetch standard refuses "*": the exact origin must be echoed.
        if self.origins is None and not self.credentials:
            return "*"
        return origin

    def before(self, request: Request) -> Response | None:
        if request.method != "OPTIONS":
            return None
        origin = request.header(b"origin")
        requested = request.header(b"access-control-request-method")
        if origin is None or requested is None:
            return None  # a plain OPTIONS request: the route (or the automatic answer) handles it
        return self.preflight(origin, requested.upper(), request.header(b"access-control-request-headers"))

    def preflight(self, origin: str, method: str, request_headers: str | None) -> Response:
        if not self.allows(origin):
            response = error_response(403, f"CORS preflight rejected: origin {origin} is not allowed")
        elif method not in self.methods:
            response = error_response(403, f"CORS preflight rejected: method {method} is not allowed")
        else:
            asked = [h.strip().lower() for h in (request_headers or "").split(",") if h.strip()]
            refused = [h for h in asked if self.headers is not None and h not in self.headers]
            if refused:
                response = error_response(403, f"CORS preflight rejected: header(s) {', '.join(refused)} not allowed")
            else:
                response = Response(None, 204)
                response.set_header("access-control-allow-origin", self.allow_origin_value(origin))
                response.set_header("access-control-allow-methods", ", ".join(self.methods))
                if asked:
                    response.set_header("access-control-allow-headers", ", ".join(asked))
                response.set_header("access-control-max-age", str(self.max_age))
                if self.credentials:
                    response.set_header("access-control-allow-credentials", "true")
        add_vary(response, "Origin")
        if request_headers is not None:
            add_vary(response, "Access-Control-Request-Headers")
        return response

    def after(self, request: Request, response: Response) -> None:
        headers = response.raw_headers()
        # One pass over the response headers: this runs on every response.
        vary = -1
        for i in range(len(headers)):
            name = headers[i][0]
            size = len(name)
            if size == 4 and name.lower() == "vary":
                vary = i
            elif size == 27 and name.lower() == "access-control-allow-origin":
                return  # a preflight answered by before(), or the handler set it itself
        if self.origins is not None or self.credentials:
            merge_vary(headers, vary, "Origin")
        origin = request.header(b"origin")
        if origin is None or not self.allows(origin):
            return
        # Appended directly: the origin came through the request parser, which refuses
        # CR, LF and NUL in header values, and the other values are our own.
        headers.append(("access-control-allow-origin", self.allow_origin_value(origin)))
        if self.credentials:
            headers.append(("access-control-allow-credentials", "true"))
        if self.expose_headers:
            headers.append(("access-control-expose-headers", ", ".join(self.expose_headers)))
