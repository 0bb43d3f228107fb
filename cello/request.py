"""The request a handler receives. Everything beyond method and path is parsed on first use."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from http.cookies import SimpleCookie
from typing import TYPE_CHECKING, Any, ParamSpec, Union
from urllib.parse import unquote

import orjson
from mypy_extensions import mypyc_attr

from cello.background import AfterResponse
from cello.datastructures import QueryParams, QuerySource
from cello.errors import HTTPException
from cello.forms import FormData, FormLimits, UploadedFiles, parse_form
from cello.headers import Headers, HeaderSource

if TYPE_CHECKING:
    from cello.sessions.session import Session

BodySource = Union[bytes, str, Mapping[str, Any], list[Any], None]
P = ParamSpec("P")


@mypyc_attr(native_class=False)
class State:
    """Per-request (or per-connection) scratch space: ``request.state.user = ...``."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)

    def __setattr__(self, name: str, value: Any) -> None:
        self.__dict__[name] = value

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"request state has no attribute {name!r}")

    def get(self, name: str, default: Any = None) -> Any:
        return self.__dict__.get(name, default)

    def __contains__(self, name: str) -> bool:
        return name in self.__dict__

    def __repr__(self) -> str:
        return f"State({self.__dict__!r})"


def _encode_body(body: BodySource) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    return orjson.dumps(body)


@mypyc_attr(allow_interpreted_subclasses=True)
class Request:
    __slots__ = (
        "method",
        "raw_path",
        "_path",
        "params",
        "_query_string",
        "_query",
        "_raw_headers",
        "_headers",
        "_cookies",
        "body_bytes",
        "body_stream",
        "form_data",
        "form_limits",
        "client",
        "scheme",
        "_host",
        "http_version",
        "_state",
        "route",
        "upgrade",
        "started",
        "after_write",
        "session_loader",
        "loaded_session",
        "id",
        "via_trusted_proxy",
        "trace",
    )

    def __init__(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        query: QuerySource = None,
        headers: HeaderSource = None,
        body: BodySource = None,
    ) -> None:
        if query is None and "?" in path:
            path, query = path.split("?", 1)
        self.method = method.upper()
        self.raw_path = path
        self._path: str | None = None
        self.params: dict[str, Any] = dict(params) if params else {}
        self._query_string = query if isinstance(query, str) else ""
        self._query: QueryParams | None = None if isinstance(query, str) else QueryParams.parse(query)
        self._raw_headers: list[tuple[bytes, bytes]] | None = None
        self._headers: Headers | None = Headers(headers)
        self._cookies: dict[str, str] | None = None
        # The server's interface (cello/server/interface.py): the server (or the ASGI adapter)
        # sets the buffered body, or for stream_body endpoints the body's iterator.
        self.body_bytes = _encode_body(body)
        if isinstance(body, (dict, list)) and "content-type" not in self._headers:
            self._headers = Headers([*self._headers.items(), ("content-type", "application/json")])
        self.body_stream: AsyncIterator[bytes] | None = None
        # The framework's interface: the parsed form (the multipart endpoint sets it as the
        # upload streams in; form() parses a buffered body into it otherwise) and the route's
        # form limits (its Endpoint sets them when they are not the defaults).
        self.form_data: FormData | None = None
        self.form_limits: FormLimits | None = None
        self.client: tuple[str, int] | None = None
        self.scheme = "http"
        # Set when a trusted proxy names the host the client asked for (X-Forwarded-Host).
        self._host: str | None = None
        self.http_version = "1.1"
        self._state: State | None = None
        self.route: str | None = None
        # A WebSocket opening handshake: the app dispatches it to its ``@websocket`` routes.
        self.upgrade = False
        # When a timing hook (access log, Server-Timing) saw the request start; 0.0 if none.
        self.started = 0.0
        # The server's interface: work to run once the response is written; created by the
        # first after_response(), so a request without any costs one None.
        self.after_write: AfterResponse | None = None
        # The sessions' interface (cello/sessions): the route's endpoint sets the loader,
        # which request.session calls on first use; loaded_session is what it loaded.
        self.session_loader: Callable[[Request], Session] | None = None
        self.loaded_session: Session | None = None
        # The request's id (app.enable_request_id, cello/middleware/request_id.py); None when
        # request ids are off.
        self.id: str | None = None
        # The peer is a trusted proxy (forwarded_allow_ips): TrustedProxies.apply sets it, so
        # what such a peer says about the request (X-Request-ID) may be believed.
        self.via_trusted_proxy = False
        # The request's span while app.enable_tracing() traces it (cello/middleware/tracing.py).
        self.trace: object | None = None

    # -- the request line -------------------------------------------------------------

    @property
    def path(self) -> str:
        """The percent-decoded path, without the query string."""
        path = self._path
        if path is None:
            raw = self.raw_path
            path = unquote(raw) if "%" in raw else raw
            self._path = path
        return path

    @property
    def query_string(self) -> str:
        return self._query_string

    @property
    def query(self) -> QueryParams:
        query = self._query
        if query is None:
            query = QueryParams.parse(self._query_string)
            self._query = query
        return query

    @property
    def headers(self) -> Headers:
        headers = self._headers
        if headers is None:
            headers = Headers.from_raw(self._raw_headers or [])
            self._headers = headers
        return headers

    @property
    def cookies(self) -> dict[str, str]:
        cookies = self._cookies
        if cookies is None:
            cookies = {}
            for header in self.headers.get_all("cookie"):
                jar: SimpleCookie = SimpleCookie()
                jar.load(header)
                for key, morsel in jar.items():
                    cookies[key] = morsel.value
            self._cookies = cookies
        return cookies

    @property
    def state(self) -> State:
        state = self._state
        if state is None:
            state = State()
            self._state = state
        return state

    @property
    def session(self) -> Session:
        """The session (``app.enable_sessions``): a dict, loaded on first use, saved when changed."""
        session = self.loaded_session
        if session is None:
            loader = self.session_loader
            if loader is None:
                raise RuntimeError(
                    "request.session: sessions are not enabled; call app.enable_sessions(secret_key=...)"
                )
            session = loader(self)
            self.loaded_session = session
        return session

    def flash(self, message: str, category: str = "message") -> None:
        """Keep ``message`` in the session for ``get_flashed_messages()`` of a later request."""
        self.session.flash(message, category)

    # -- the body ---------------------------------------------------------------------

    def body(self) -> bytes:
        return self.body_bytes

    def text(self) -> str:
        charset = "utf-8"
        content_type = self.headers.get("content-type", "") or ""
        for part in content_type.split(";")[1:]:
            key, _, value = part.strip().partition("=")
            if key.lower() == "charset" and value:
                charset = value.strip('"')
        return self.body_bytes.decode(charset, errors="replace")

    def json(self) -> Any:
        if not self.body_bytes:
            raise HTTPException(400, "Request body is empty, expected JSON")
        try:
            return orjson.loads(self.body_bytes)
        except orjson.JSONDecodeError as exc:
            raise HTTPException(400, f"Invalid JSON body: {exc}") from None

    def form(self) -> FormData:
        """The parsed form; works as ``request.form()`` and ``await request.form()``."""
        form = self.form_data
        if form is None:
            form = parse_form(self.headers.get("content-type") or "", self.body_bytes, self.form_limits)
            self.form_data = form
        return form

    def files(self) -> UploadedFiles:
        """Every uploaded file, in order; works as ``request.files()`` and ``await request.files()``."""
        return self.form().all_files()

    def stream(self) -> AsyncIterator[bytes]:
        """The raw body in chunks as they arrive (for routes declared with ``stream=True``)."""
        if self.body_stream is not None:
            return self.body_stream
        return _BufferedBody(self.body_bytes)

    # -- after the response -----------------------------------------------------------

    def after_response(self, fn: Callable[P, object], /, *args: P.args, **kwargs: P.kwargs) -> None:
        """Call ``fn(*args, **kwargs)`` once the response has been written (docs/background.md).

        Calls run in the order registered, each after the previous one: ``async def``
        functions on the event loop, plain ones in a worker thread. An exception is logged
        with the route; the response, already sent, is not affected. Graceful shutdown waits
        for pending calls within its grace period.
        """
        work = self.after_write
        if work is None:
            work = AfterResponse(f"{self.method} {self.route or self.raw_path}")
            self.after_write = work
        work.add(fn, args, kwargs)

    # -- helpers ----------------------------------------------------------------------

    def content_type(self) -> str:
        """The media type without parameters, lower-cased (``"application/json"``)."""
        value = self.headers.get("content-type") or ""
        return value.split(";", 1)[0].strip().lower()

    def is_json(self) -> bool:
        media = self.content_type()
        return media == "application/json" or media.endswith("+json")

    def is_form(self) -> bool:
        return self.content_type() in ("application/x-www-form-urlencoded", "multipart/form-data")

    def is_multipart(self) -> bool:
        return self.content_type().startswith("multipart/")

    def get_param(self, key: str, default: Any = None) -> Any:
        return self.params.get(key, default)

    def get_query_param(self, key: str, default: str | None = None) -> str | None:
        return self.query.get(key, default)

    def get_header(self, key: str, default: str | None = None) -> str | None:
        return self.headers.get(key, default)

    def header(self, lower_name: bytes) -> str | None:
        """The last value of one header, by its lower-case name, without building the
        whole header mapping: what per-request middleware (CORS, compression) uses."""
        if self._headers is not None or self._raw_headers is None:
            return self.headers.get(lower_name.decode("latin-1"))
        found: bytes | None = None
        for name, value in self._raw_headers:
            if len(name) == len(lower_name) and name.lower() == lower_name:
                found = value
        return None if found is None else found.decode("latin-1")

    def header_values(self, lower_name: bytes) -> list[str]:
        """Every value of one header, by its lower-case name, in order, without building the
        whole header mapping (what a trace propagator reads: ``tracestate`` may be split)."""
        if self._headers is not None or self._raw_headers is None:
            return self.headers.get_all(lower_name.decode("latin-1"))
        return [
            value.decode("latin-1")
            for name, value in self._raw_headers
            if len(name) == len(lower_name) and name.lower() == lower_name
        ]

    def client_ip(self) -> str | None:
        """The client's address: the peer's, or the one a trusted proxy names
        (``forwarded_allow_ips``; proxy headers from other peers are ignored, anyone can forge them)."""
        return self.client[0] if self.client else None

    def user_agent(self) -> str | None:
        return self.header(b"user-agent")

    @property
    def host(self) -> str:
        """The Host header, or the host a trusted proxy says the client asked for."""
        host = self._host
        if host is None:
            return self.header(b"host") or "localhost"
        return host

    @host.setter
    def host(self, value: str) -> None:
        self._host = value

    @property
    def url(self) -> str:
        query = f"?{self._query_string}" if self._query_string else ""
        return f"{self.scheme}://{self.host}{self.raw_path}{query}"

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.raw_path}>"


class WireRequest(Request):
    """A request as a server read it (ours, or an ASGI server's): raw parts, nothing decoded
    until a handler asks. Its own class because the public constructor takes decoded parts."""

    __slots__ = ()

    def __init__(
        self,
        method: str,
        raw_path: str,
        query_string: str,
        raw_headers: list[tuple[bytes, bytes]],
        client: tuple[str, int] | None,
        scheme: str,
        http_version: str,
        upgrade: bool = False,
    ) -> None:
        self.method = method
        self.raw_path = raw_path
        self._path = None
        self.params = {}
        self._query_string = query_string
        self._query = None
        self._raw_headers = raw_headers
        self._headers = None
        self._cookies = None
        self.body_bytes = b""
        self.body_stream = None
        self.form_data = None
        self.form_limits = None
        self.client = client
        self.scheme = scheme
        self._host = None
        self.http_version = http_version
        self._state = None
        self.route = None
        self.upgrade = upgrade
        self.started = 0.0
        self.after_write = None
        self.session_loader = None
        self.loaded_session = None
        self.id = None
        self.via_trusted_proxy = False
        self.trace = None


class _BufferedBody:
    """A body already in memory as an async iterator: one chunk, none if it is empty."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def __aiter__(self) -> _BufferedBody:
        return self

    async def __anext__(self) -> bytes:
        body = self._body
        if not body:
            raise StopAsyncIteration
        self._body = b""
        return body
