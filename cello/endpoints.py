"""Each route's endpoint, and the router's own answers.

An endpoint is the route's pre-composed chain (cello.pipeline.Endpoint): hooks, guards, the
handler and its error handlers. ``EndpointBuilder`` makes the ones of a route: the HTTP
endpoint, the variant that streams a multipart body into spooled files, and the WebSocket
endpoint, which answers the handshake with a ``WebSocketUpgrade`` carrying the handler's
runner. ``RouterAnswers`` makes the answers no route declares: 404, 405 with ``Allow``, the
automatic OPTIONS, 426 for a plain GET of a WebSocket route and the trailing-slash 308.

Built once per route table (``App`` rebuilds them when routes or hooks change); nothing here
runs per request but the endpoints themselves and the cache of the router's answers.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cello.binding.binder import bind as interpreted_bind
from cello.binding.plan import Binder, BinderPlan
from cello.binding.typed import typed_handler
from cello.blueprint import WEBSOCKET, RouteSpec
from cello.config import Config
from cello.errors import HTTPException
from cello.forms import DEFAULT_LIMITS, FormLimits, multipart_body_limit, receive_multipart
from cello.middleware.debug import WarnWhenSlow
from cello.pipeline import Endpoint, Handler, Scope, SessionHooks, is_async, with_timeout
from cello.request import Request
from cello.response import Renderer, Response, WebSocketUpgrade
from cello.routing import Plan
from cello.routing.codes import NOT_FOUND
from cello.sessions import csrf
from cello.websocket import WebSocket, run_handler

if TYPE_CHECKING:
    from cello.channels import Channels
    from cello.server.interface import WebSocketSession

logger = logging.getLogger("cello.websocket")
error_log = logging.getLogger("cello.error")

DispatchFn = Callable[[str, str], "tuple[int, tuple[object, ...]]"]


@dataclass
class RouteEntry:
    """One (method, full pattern) as the app serves it."""

    method: str
    path: str
    spec: RouteSpec
    scopes: list[Scope]
    blueprint: str
    # How a typed handler's parameters are bound and its result encoded; None: a classic handler.
    binding: BinderPlan | None = None


class EndpointBuilder:
    """Makes the endpoints of routes with the app's settings, executor, scope and channels
    (which its WebSocket handlers join)."""

    def __init__(
        self,
        config: Config,
        executor: Callable[[], Executor],
        app_scope: Scope,
        channels: Channels,
        csrf: bool = False,
        sessions: SessionHooks | None = None,
        renderer: Renderer | None = None,
    ) -> None:
        self.config = config
        self.executor = executor
        self.app_scope = app_scope
        self.channels = channels
        # app.enable_sessions(): every endpoint loads request.session on demand and saves it.
        self.sessions = sessions
        # app.enable_csrf(): unsafe routes get the CSRF check as their last guard.
        self.csrf = csrf
        # The app's templates: what renders the Response.template(...) its chains return.
        self.renderer = renderer

    def _csrf_checked(self, entry: RouteEntry) -> bool:
        return self.csrf and entry.method in csrf.UNSAFE_METHODS and entry.spec.options.get("csrf", True) is not False

    def route(self, entry: RouteEntry, limits: FormLimits, bind: Binder = interpreted_bind) -> Endpoint:
        """The route's endpoint: its HTTP chain (``limits`` for the forms its handler reads,
        ``bind`` the binder of a typed handler), or the WebSocket handshake's."""
        spec = entry.spec
        if entry.method == WEBSOCKET:
            return websocket_endpoint(self.config, self.executor, entry, self.channels, self.sessions)
        guards = spec.guards
        if self._csrf_checked(entry):
            guards = (*guards, csrf.check_header if spec.stream else csrf.check)
        return Endpoint(
            self.handler(entry, bind),
            entry.scopes,
            route_guards=guards,
            threaded=spec.threaded,
            stream_body=spec.stream,
            max_body_size=int(spec.options.get("max_body_size", self.config.max_body_size)),
            debug=self.config.debug,
            executor=self.executor,
            options=spec.options,
            sse_keepalive=self.config.sse_keepalive,
            timeout=self.config.handler_timeout,
            # Only limits other than the defaults need to reach request.form().
            form_limits=None if limits == DEFAULT_LIMITS else limits,
            sessions=self.sessions,
            renderer=self.renderer,
        )

    def handler(self, entry: RouteEntry, bind: Binder) -> Handler:
        """The route's handler (a typed one wrapped to bind its arguments and encode its
        result); in debug mode a sync one that runs on the event loop is timed (decided here,
        once per route: nothing is added outside debug mode)."""
        spec = entry.spec
        asynchronous = is_async(spec.handler)
        handler: Handler = spec.handler
        if entry.binding is not None:
            handler = typed_handler(entry.binding, bind, asynchronous)
        if not self.config.debug or spec.threaded or asynchronous:
            return handler
        return WarnWhenSlow(handler, f"{entry.method} {entry.path}")

    def multipart(self, entry: RouteEntry, limits: FormLimits, bind: Binder = interpreted_bind) -> Endpoint | None:
        """The route's chain with a handler that first streams a multipart body into
        spooled files, so an upload is never held whole in memory."""
        spec = entry.spec
        if entry.method not in FORM_METHODS or spec.stream:
            return None
        body_limit, body_limit_option = multipart_body_limit(self.config, limits, spec.options)
        guards = spec.guards
        check_form = None
        if self._csrf_checked(entry):
            guards, check_form = (*guards, csrf.check_before_upload), csrf.check_upload
        # The handler timeout starts once the upload is in (its pace is body_idle_timeout's).
        handler = _multipart_handler(
            self.handler(entry, bind), spec.threaded, limits, self.executor, self.config.handler_timeout, check_form
        )
        return Endpoint(
            handler,
            entry.scopes,
            route_guards=guards,
            stream_body=True,
            max_body_size=body_limit,
            body_limit_option=body_limit_option,
            debug=self.config.debug,
            executor=self.executor,
            options=spec.options,
            sse_keepalive=self.config.sse_keepalive,
            sessions=self.sessions,
            renderer=self.renderer,
        )

    def answer(self, handler: Handler, scopes: list[Scope] | None = None) -> Endpoint:
        """An endpoint for the router's own answers (404, 405, OPTIONS, 308, 426): it runs the
        hooks of the app, or of the blueprints of the routes the path matched."""
        return Endpoint(
            handler,
            scopes or [self.app_scope],
            # Guards protect routes; the router's own 405/OPTIONS answers reveal nothing.
            scope_guards=False,
            max_body_size=self.config.max_body_size,
            debug=self.config.debug,
            executor=self.executor,
            sessions=self.sessions,
            renderer=self.renderer,
        )


# -- the router's own answers -----------------------------------------------------------------


class RouterAnswers:
    """The endpoints for what dispatch answers with no route: built once per answer and kept."""

    def __init__(self, builder: EndpointBuilder, plan: Plan, dispatch: DispatchFn, scopes: list[list[Scope]]) -> None:
        self.builder = builder
        self.plan = plan
        self.dispatch = dispatch
        # Per route id, the scopes of its app and blueprints.
        self.scopes = scopes
        self.redirect_slashes = builder.config.redirect_slashes
        self.cache: dict[tuple[int, str], Endpoint] = {}

    def endpoint(self, request: Request, method: str, code: int) -> Endpoint:
        """The endpoint for ``code``, a dispatch answer that is not a route id."""
        if code == NOT_FOUND:
            if self.redirect_slashes and method != WEBSOCKET:
                toggled = _toggle_slash(request.raw_path)
                if toggled and self.dispatch(method, toggled)[0] != NOT_FOUND:
                    return self._cached((0, "308"), _redirect_slash)
            return self._cached((0, "404"), _not_found)
        plan = self.plan
        # The path matched routes of some blueprint: its hooks (CORS preflights, say) and
        # error handlers apply to the automatic answer too.
        scopes = self._scopes_of(code)
        if method == "OPTIONS":
            allow = plan.allow(code)
            return self._cached((code, "OPTIONS"), lambda request: _options(allow), scopes)
        if method == "GET" and plan.allows_websocket(code):
            return self._cached((code, "426"), _upgrade_required, scopes)
        allow = plan.allow(code)
        return self._cached((code, "405"), lambda request: _not_allowed(request, allow), scopes)

    def _scopes_of(self, code: int) -> list[Scope] | None:
        for terminal in self.plan.terminals_of(code):
            for route_id in terminal.routes.values():
                return self.scopes[route_id]
        return None

    def _cached(self, key: tuple[int, str], handler: Handler, scopes: list[Scope] | None = None) -> Endpoint:
        endpoint = self.cache.get(key)
        if endpoint is None:
            endpoint = self.builder.answer(handler, scopes)
            # Distinct 405 codes are bounded by the route table, but stay safe anyway.
            if len(self.cache) < 4096:
                self.cache[key] = endpoint
        return endpoint


def _toggle_slash(path: str) -> str | None:
    if path == "/":
        return None
    return path[:-1] if path.endswith("/") else path + "/"


def _not_found(request: Request) -> Response:
    raise HTTPException(404, f"Not Found: {request.method} {request.path}")


def _not_allowed(request: Request, allow: str) -> Response:
    raise HTTPException(405, f"Method Not Allowed: {request.method} {request.path}", {"Allow": allow})


def _options(allow: str) -> Response:
    response = Response(None, 204)
    response.set_header("allow", allow)
    return response


def _upgrade_required(request: Request) -> Response:
    raise HTTPException(426, f"Upgrade Required: {request.path} is a WebSocket endpoint", {"Upgrade": "websocket"})


def _redirect_slash(request: Request) -> Response:
    target = _toggle_slash(request.raw_path) or "/"
    if request.query_string:
        target += "?" + request.query_string
    # A path starting with "//" would be read as a network-path reference by the client.
    if target.startswith("//"):
        target = "/" + target.lstrip("/")
    return Response.redirect(target, status=308)


# -- multipart uploads ---------------------------------------------------------------------

FORM_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _multipart_handler(
    handler: Callable[..., Any],
    threaded: bool,
    limits: FormLimits,
    executor: Callable[[], Executor],
    timeout: float | None = None,
    check_form: Handler | None = None,
) -> Callable[[Request], Awaitable[Any]]:
    async def run(request: Request) -> Any:
        form = await receive_multipart(request.headers.get("content-type") or "", request.stream(), limits)
        request.form_data = form
        try:
            if check_form is not None:
                # The CSRF token of an upload is a form field: checked now that the form is in.
                check_form(request)
            if threaded:
                context = contextvars.copy_context()  # as for other threaded handlers (pipeline.py)
                pending = asyncio.get_running_loop().run_in_executor(executor(), context.run, handler, request)
                return await with_timeout(pending, timeout, request)
            result = handler(request)
            if inspect.isawaitable(result):
                result = await with_timeout(result, timeout, request)
            return result
        finally:
            # The handler is done with the uploads. Their temporary files go right after the
            # response is written (the server writes it in this same step of the task), not
            # before: freeing a large file's pages takes time the client need not wait for.
            asyncio.get_running_loop().call_soon(form.close)

    return run


# -- WebSocket routes ------------------------------------------------------------------------

# -- the endpoint: hooks, guards, Origin, then the handler ------------------------------------


def websocket_endpoint(
    config: Config,
    executor: Callable[[], Executor],
    entry: RouteEntry,
    channels: Channels,
    sessions: SessionHooks | None = None,
) -> Endpoint:
    """The chain of a ``@websocket`` route. It answers the handshake request with a
    WebSocketUpgrade (or with the refusal a hook, guard or the Origin check produced), whose
    handler gets a WebSocket that can join ``channels``."""
    spec = entry.spec
    handler = spec.handler
    run_sync = not is_async(handler)
    subprotocols = tuple(spec.options.get("subprotocols", ()))
    allowed = _allowed_origins(config.ws_allowed_origins)
    debug = config.debug
    route = entry.path

    def upgrade(request: Request) -> Response:
        if allowed is not None:
            origin = request.headers.get("origin")
            if origin is not None and origin.lower() not in allowed and "*" not in allowed:
                raise HTTPException(403, f"Forbidden: origin {origin} is not allowed")
        return WebSocketUpgrade(_runner(handler, run_sync, request, subprotocols, debug, route, channels))

    return Endpoint(
        upgrade,
        entry.scopes,
        route_guards=spec.guards,
        # A handshake has no body; one that declares one is refused (413).
        max_body_size=0,
        debug=debug,
        executor=executor,
        options=spec.options,
        sessions=sessions,
    )


def _allowed_origins(origins: Sequence[str] | None) -> frozenset[str] | None:
    if origins is None:
        return None
    return frozenset(origin.rstrip("/").lower() for origin in origins)


def _runner(
    handler: Callable[..., Any],
    run_sync: bool,
    request: Request,
    subprotocols: Sequence[str],
    debug: bool,
    route: str,
    channels: Channels,
) -> Callable[[WebSocketSession], Awaitable[None]]:
    async def run(session: WebSocketSession) -> None:
        await run_handler(WebSocket(session, request, subprotocols, channels), handler, run_sync, debug, route)

    return run
