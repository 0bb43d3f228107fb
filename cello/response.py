"""Responses and the normalisation of handler return values into them."""

from __future__ import annotations

import email.utils
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, Union
from urllib.parse import quote

import orjson
from mypy_extensions import mypyc_attr

from cello.concurrency import ChunkSource, as_byte_stream
from cello.errors import error_body
from cello.headers import MutableHeaders, check_cookie_attribute, check_cookie_name, check_header_value

if TYPE_CHECKING:
    from cello.server.interface import WebSocketSession

JSON = "application/json"
TEXT = "text/plain; charset=utf-8"
HTML = "text/html; charset=utf-8"
BINARY = "application/octet-stream"

Body = Union[bytes, str, Mapping[str, Any], list[Any], None]


def _json_default(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (set, frozenset)):
        return list(value)
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> bytes:
    """orjson, plus mappings (FormData, headers), sets and objects with ``to_dict()``."""
    return orjson.dumps(value, default=_json_default)


# Content types that passed check_header_value: the handful an app uses are not checked again
# on every response (bounded, so a client's own types cannot grow it).
_CHECKED_TYPES: set[str] = set()


def _encode(body: Body) -> tuple[bytes, str | None]:
    """Body bytes and the content type the body implies (None: none implied)."""
    if body is None:
        return b"", None
    if isinstance(body, bytes):
        return body, BINARY
    if isinstance(body, str):
        return body.encode("utf-8"), TEXT
    if isinstance(body, (bytearray, memoryview)):
        return bytes(body), BINARY
    return dumps(body), JSON


# Response.sse() and Response.file() build what cello.sse and cello.staticfiles define. Those
# modules build on Response, so they hand their builders in when imported (cello/__init__.py
# imports both, through the app) rather than this module importing them back.
_BUILDERS: dict[str, Callable[..., Response]] = {}


def register_builder(name: str, build: Callable[..., Response]) -> None:
    """Make ``build`` what ``Response.<name>(...)`` returns (``sse``, ``file``)."""
    _BUILDERS[name] = build


@mypyc_attr(allow_interpreted_subclasses=True)
class Response:
    """An HTTP response. The server writes ``status``, the header list and the body.

    The server's interface (cello/server/interface.py; also what the ASGI adapter, the
    middleware and the response factories use), plain attributes because they are read for
    every response and an attribute of the compiled class costs nothing to read:

    * ``body_bytes`` — the whole body (ignored when ``body_chunks`` is set);
    * ``body_chunks`` — a streamed body, written chunk by chunk as the iterator yields;
    * ``idle_filler`` — for streams: ``(seconds, bytes)`` written after that long without a
      chunk (SSE keep-alive comments).
    """

    __slots__ = ("status", "_headers", "body_bytes", "body_chunks", "idle_filler")

    def __init__(
        self,
        body: Body = None,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        content_type: str | None = None,
    ) -> None:
        data, implied = _encode(body)
        self.status = status
        self.body_bytes = data
        self.body_chunks: AsyncIterator[bytes] | None = None
        self.idle_filler: tuple[float, bytes] | None = None
        pairs: list[tuple[str, str]] = []
        if content_type is not None and content_type not in _CHECKED_TYPES:
            # Often the client's own words (an upload's type): no CR/LF into the head.
            check_header_value("content-type", content_type)
            if len(_CHECKED_TYPES) < 64:
                _CHECKED_TYPES.add(content_type)  # an app's own few types: checked once
        kind = content_type or implied
        if kind is not None and (data or content_type is not None):
            pairs.append(("content-type", kind))
        self._headers = pairs
        if headers:
            view = MutableHeaders(pairs)
            for key, value in headers.items():
                view[key] = value

    # -- factories --------------------------------------------------------------------

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
        return cls(dumps(data), status, headers, JSON)

    @classmethod
    def text(cls, content: str, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
        return cls(content.encode("utf-8"), status, headers, TEXT)

    @classmethod
    def html(cls, content: str, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
        return cls(content.encode("utf-8"), status, headers, HTML)

    @classmethod
    def binary(cls, data: bytes, content_type: str | None = None, status: int = 200) -> Response:
        return cls(bytes(data), status, None, content_type or BINARY)

    @classmethod
    def redirect(cls, url: str, permanent: bool = False, status: int | None = None) -> Response:
        """302 Found, or 301 when ``permanent``, as Flask answers; ``status=307``/``308``
        (or 303) when the client must keep (or drop) the method and body."""
        if status is None:
            status = 301 if permanent else 302
        response = cls(None, status)
        response.set_header("location", url)
        return response

    @classmethod
    def no_content(cls) -> Response:
        return cls(None, 204)

    @classmethod
    def created(cls, data: Any = None, location: str | None = None) -> Response:
        response = cls(dumps(data), 201, None, JSON) if data is not None else cls(None, 201)
        if location is not None:
            response.set_header("location", location)
        return response

    @classmethod
    def stream(
        cls,
        chunks: ChunkSource,
        content_type: str = BINARY,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """Send chunks as they are produced (chunked encoding). Sync iterables are advanced
        in a worker thread so that a slow producer cannot block the event loop."""
        response = cls(None, status, headers, content_type)
        response.body_chunks = as_byte_stream(chunks)
        return response

    @classmethod
    def template(cls, template_name: str, status: int = 200, **context: Any) -> Response:
        """The HTML page ``template_name`` rendered with ``context`` by the app that serves the
        request (``App(templates=...)``, docs/templates.md). Rendered when the handler's chain
        finishes it, before after-hooks see it: context processors see the request.

        (Not positional-only: mypyc does not honour ``/``, so ``name`` stays free for the
        context in both runtimes.)"""
        return TemplateResponse(template_name, status, context)

    @classmethod
    def sse(cls, stream: Any) -> Response:
        """A Server-Sent Events response: ``stream`` is an SseStream, or what SseStream takes."""
        return _BUILDERS["sse"](stream)

    @classmethod
    def file(
        cls,
        path: str | os.PathLike[str],
        filename: str | None = None,
        content_type: str | None = None,
    ) -> Response:
        """Stream a file from disk with ``Content-Length``, ``Last-Modified`` and ``ETag``;
        conditional and range requests are answered (304, 206, 416)."""
        return _BUILDERS["file"](path, filename, content_type)

    # -- instance API -----------------------------------------------------------------

    @property
    def headers(self) -> MutableHeaders:
        return MutableHeaders(self._headers)

    def raw_headers(self) -> list[tuple[str, str]]:
        return self._headers

    def set_header(self, key: str, value: str) -> Response:
        MutableHeaders(self._headers)[key] = value
        return self

    def set_cookie(
        self,
        key: str,
        value: str = "",
        max_age: int | None = None,
        expires: datetime | str | None = None,
        path: str = "/",
        domain: str | None = None,
        secure: bool = False,
        httponly: bool = False,
        samesite: str | None = "lax",
    ) -> Response:
        # The value is percent-encoded, so any string is safe; the name and the attributes are
        # taken as written and must not carry ';' or controls that would forge attributes.
        check_cookie_name(key)
        parts = [f"{key}={quote(value, safe='')}"]
        if max_age is not None:
            parts.append(f"Max-Age={int(max_age)}")
        if expires is not None:
            if isinstance(expires, datetime):
                expires = email.utils.format_datetime(expires, usegmt=expires.tzinfo is not None)
            check_cookie_attribute("expires", expires)
            parts.append(f"Expires={expires}")
        if path:
            check_cookie_attribute("path", path)
            parts.append(f"Path={path}")
        if domain:
            check_cookie_attribute("domain", domain)
            parts.append(f"Domain={domain}")
        if secure:
            parts.append("Secure")
        if httponly:
            parts.append("HttpOnly")
        if samesite:
            if samesite.lower() not in ("lax", "strict", "none"):
                raise ValueError(f"samesite must be 'lax', 'strict' or 'none', not {samesite!r}")
            parts.append(f"SameSite={samesite.capitalize()}")
        self._headers.append(("set-cookie", "; ".join(parts)))
        return self

    def delete_cookie(self, key: str, path: str = "/", domain: str | None = None) -> Response:
        return self.set_cookie(key, "", max_age=0, path=path, domain=domain)

    def find_header(self, lower_name: str) -> int:
        """Index of the last ``lower_name`` header in ``raw_headers()``, or -1 (no copies)."""
        found = -1
        size = len(lower_name)
        headers = self._headers
        for i in range(len(headers)):
            name = headers[i][0]
            if len(name) == size and name.lower() == lower_name:
                found = i
        return found

    def body(self) -> bytes:
        return self.body_bytes

    def content_type(self) -> str | None:
        for name, value in self._headers:
            if name.lower() == "content-type":
                return value
        return None

    @property
    def is_streaming(self) -> bool:
        return self.body_chunks is not None

    def json_body(self) -> Any:
        return orjson.loads(self.body_bytes)

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.content_type() or ''}>"


class Renderer(Protocol):
    """What finishes a TemplateResponse: the serving app's templates (cello.templating)."""

    def render(self, name: str, context: dict[str, Any], request: Any) -> str: ...


@mypyc_attr(allow_interpreted_subclasses=True)
class Deferred(Response):
    """A response the handler chain finishes for the request it answers, before after-hooks
    and middleware see it: a file answers conditional and range requests, a template is
    rendered with the serving app's environment. One class, so the chain checks once."""

    __slots__ = ()

    def finish(self, request: Any, renderer: Renderer | None) -> Response:
        return self


class TemplateResponse(Deferred):
    """``Response.template(...)``: a page to render once the serving app is known."""

    __slots__ = ("template_name", "context", "rendered")

    def __init__(self, name: str, status: int, context: dict[str, Any]) -> None:
        self.status = status
        self.body_bytes = b""
        self.body_chunks = None
        self.idle_filler = None
        self._headers = [("content-type", HTML)]
        self.template_name = name
        self.context = context
        self.rendered = False

    def finish(self, request: Any, renderer: Renderer | None) -> Response:
        if self.rendered:
            return self  # passed back through a middleware: rendered once
        if renderer is None:
            raise RuntimeError(
                f"Response.template({self.template_name!r}): this app has no templates (App(templates=None))"
            )
        self.body_bytes = renderer.render(self.template_name, self.context, request).encode("utf-8")
        self.rendered = True
        return self

    def __repr__(self) -> str:
        return f"<TemplateResponse {self.status} {self.template_name!r}>"


# One tuple for every JSON response's header (the server caches its rendering by it).
_JSON_FIELD = ("content-type", JSON)


class _Prepared(Response):
    """A response whose body and headers the framework built itself: nothing to check."""

    __slots__ = ()

    def __init__(self, status: int, body: bytes, headers: list[tuple[str, str]]) -> None:
        self.status = status
        self.body_bytes = body
        self.body_chunks = None
        self.idle_filler = None
        self._headers = headers


def json_response(body: bytes) -> Response:
    """A 200 with JSON already serialised: the common handler's dict return."""
    return _Prepared(200, body, [_JSON_FIELD])


class WebSocketUpgrade(Response):
    """What a WebSocket endpoint answers when its hooks and guards let the handshake through.

    Not sent as such: the server (or the ASGI adapter) recognises it, hands ``run`` a session
    for the connection and performs the handshake when the handler accepts (see
    ``cello.server.interface``). Headers set on it (by after-hooks, say) go on the 101.
    """

    __slots__ = ("run",)

    def __init__(self, run: Callable[[WebSocketSession], Awaitable[None]]) -> None:
        super().__init__(None, 101)
        self.run = run

    def __repr__(self) -> str:
        return "<WebSocketUpgrade>"


def error_response(
    status: int,
    message: str,
    headers: Mapping[str, str] | None = None,
    details: Sequence[Mapping[str, Any]] | None = None,
    request_id: str | None = None,
) -> Response:
    """An error response with the one JSON error body (cello.errors.error_body)."""
    response = prepared_response(status, error_body(status, message, details, request_id), JSON)
    if headers:
        for key, value in headers.items():
            response.set_header(key, value)
    return response


def prepared_response(status: int, body: bytes, content_type: str) -> Response:
    """The framework's hot-path constructor (the pipeline's dict/str results, error answers):
    the body is bytes already and the one header is known to be valid, so nothing is checked."""
    return _Prepared(status, body, [("content-type", content_type)])
