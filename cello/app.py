"""The application: a registry of routes, blueprints, hooks and error handlers.

``App.resolve`` is what the server calls for every request head. It dispatches with the
router (compiled when a matching build exists, interpreted otherwise) and returns the
route's pre-composed :class:`~cello.pipeline.Endpoint`. The app never touches a socket.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import sys
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from cello.blueprint import WEBSOCKET, Blueprint, Registrar, RouteSpec
from cello.config import Config
from cello.errors import HTTPException, RouteError
from cello.forms import FormLimits, limits_from, multipart_body_limit, receive_multipart
from cello.pipeline import Endpoint, Handler, Scope, is_async, with_timeout
from cello.request import Request
from cello.response import Response
from cello.routing import InterpretedRouter, Plan, Route, RouteTable, build_plan

log = logging.getLogger("cello")

__version__ = "0.3.0"


@dataclass
class RouteEntry:
    """One (method, full pattern) as the app serves it."""

    method: str
    path: str
    spec: RouteSpec
    scopes: list[Scope]
    blueprint: str


DispatchFn = Callable[[str, str], "tuple[int, tuple[object, ...]]"]


@dataclass
class Router:
    """The dispatch function in use plus the plan that decodes its 405 answers."""

    plan: Plan
    dispatch: DispatchFn
    kind: str


class _Runtime:
    """Everything resolve() needs, rebuilt whenever routes or hooks change."""

    def __init__(
        self,
        router: Router,
        endpoints: list[Endpoint],
        param_names: list[tuple[str, ...]],
        patterns: list[str],
        scopes: list[list[Scope]],
        multipart: list[Endpoint | None],
        form_limits: list[FormLimits],
    ) -> None:
        self.router = router
        self.scopes = scopes
        self.dispatch = router.dispatch
        # Per route id, what resolve() reads, in one tuple: one lookup per request, not four.
        # multipart: the variant that parses a multipart body as it streams in, or None;
        # form_limits: what request.form() applies to the route's buffered bodies.
        self.routes = list(zip(endpoints, param_names, patterns, multipart, form_limits))
        self.miss_cache: dict[tuple[int, str], Endpoint] = {}


class App(Registrar):
    """A Cello application. Also an ASGI 3 application (see ``cello.asgi``)."""

    def __init__(self, **options: Any) -> None:
        super().__init__("")
        self.config = Config.from_kwargs(options)
        self.name = "app"
        self._table = RouteTable()
        self._entries: dict[int, RouteEntry] = {}
        self._runtime: _Runtime | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._compiled: tuple[str, DispatchFn, str] | None = None
        self.startup_handlers: list[Callable[[], Any]] = []
        self.shutdown_handlers: list[Callable[[], Any]] = []

    @property
    def debug(self) -> bool:
        return self.config.debug

    @debug.setter
    def debug(self, value: bool) -> None:
        self.config.debug = value
        self._invalidate()

    # -- registration (called by Registrar) -----------------------------------------------

    def _check_routes(self, routes: list[tuple[RouteSpec, str, list[Scope]]]) -> None:
        """Raise RouteError if any of ``routes`` conflicts with the table or with another."""
        batch = RouteTable()
        for spec, full_path, _ in routes:
            for method in spec.methods:
                self._table.check(method, full_path, spec.source)
                batch.add(method, full_path, None, spec.source)

    def _add_route(self, spec: RouteSpec, full_path: str, scopes: list[Scope]) -> None:
        blueprint = self._blueprint_name_for(scopes[-1]) if len(scopes) > 1 else ""
        for method in spec.methods:
            entry = RouteEntry(method, full_path, spec, scopes, blueprint)
            self._table.add(method, full_path, entry, spec.source, spec.name)
        self._invalidate()

    def _blueprint_name_for(self, scope: Scope) -> str:
        for blueprint in self._walk():
            if blueprint.scope is scope:
                return blueprint.name
        return ""

    def _check_blueprint_names(self, blueprint: Blueprint) -> None:
        taken = {bp.name: bp for bp in self._walk()}
        for candidate in [blueprint, *blueprint._walk()]:
            other = taken.get(candidate.name)
            if other is not None and other is not candidate:
                raise RouteError(
                    f"duplicate blueprint name {candidate.name!r} (prefixes {other.prefix!r} and "
                    f"{candidate.prefix!r}); pass name=... to tell them apart"
                )

    def _invalidate(self) -> None:
        self._runtime = None

    async def startup(self) -> None:
        """Run the on_startup hooks (the server calls this before accepting connections)."""
        await _run_hooks(self.startup_handlers)

    async def shutdown(self) -> None:
        """Run the on_shutdown hooks (after the last connection closed)."""
        await _run_hooks(self.shutdown_handlers)

    def on_startup(self, fn: Callable[[], Any]) -> Callable[[], Any]:
        self.startup_handlers.append(fn)
        return fn

    def on_shutdown(self, fn: Callable[[], Any]) -> Callable[[], Any]:
        self.shutdown_handlers.append(fn)
        return fn

    # -- the route table ------------------------------------------------------------------

    def route_table(self) -> RouteTable:
        return self._table

    def routes(self) -> list[Route]:
        """Every route in canonical order (the order of route ids)."""
        return self._table.routes()

    def fingerprint(self) -> str:
        return self._table.fingerprint(__version__)

    def use_compiled(self, fingerprint: str, dispatch: DispatchFn, origin: str) -> None:
        """Serve with a compiled dispatch function built for routes with ``fingerprint``.

        If the routes no longer match (a route was added since), the interpreted router is
        used instead, with a warning: a stale module would misroute.
        """
        self._compiled = (fingerprint, dispatch, origin)
        self._invalidate()

    @property
    def router_kind(self) -> str:
        return self._ensure_runtime().router.kind

    def _ensure_runtime(self) -> _Runtime:
        runtime = self._runtime
        if runtime is None:
            runtime = self._build_runtime()
            self._runtime = runtime
        return runtime

    def _build_runtime(self) -> _Runtime:
        routes = self._table.routes()
        plan = build_plan(routes)
        compiled = self._compiled
        if compiled is not None and compiled[0] == self.fingerprint():
            router = Router(plan, compiled[1], f"compiled ({compiled[2]})")
        else:
            if compiled is not None:
                log.warning("routes changed since %s was built; using the interpreted router", compiled[2])
                self._compiled = None
            router = Router(plan, InterpretedRouter(plan).dispatch, "interpreted")
        entries = [self._entry(route) for route in routes]
        endpoints = [self._endpoint_for(entry) for entry in entries]
        form_limits = [limits_from(self.config, entry.spec.options) for entry in entries]
        multipart = [self._multipart_endpoint_for(entry, limits) for entry, limits in zip(entries, form_limits)]
        return _Runtime(
            router,
            endpoints,
            [route.pattern.param_names for route in routes],
            [route.pattern.raw for route in routes],
            [entry.scopes for entry in entries],
            multipart,
            form_limits,
        )

    @staticmethod
    def _entry(route: Route) -> RouteEntry:
        entry = route.endpoint
        assert isinstance(entry, RouteEntry)
        return entry

    def _executor_factory(self) -> Executor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.config.threadpool_workers, thread_name_prefix="cello-worker")
        return self._executor

    def _endpoint_for(self, entry: RouteEntry) -> Endpoint:
        spec = entry.spec
        if entry.method == WEBSOCKET:
            from cello.websocket import websocket_endpoint

            return websocket_endpoint(self, entry)
        return Endpoint(
            self._handler_for(entry),
            entry.scopes,
            route_guards=spec.guards,
            threaded=spec.threaded,
            stream_body=spec.stream,
            max_body_size=int(spec.options.get("max_body_size", self.config.max_body_size)),
            debug=self.config.debug,
            executor=self._executor_factory,
            options=spec.options,
            sse_keepalive=self.config.sse_keepalive,
            timeout=self.config.handler_timeout,
        )

    def _handler_for(self, entry: RouteEntry) -> Handler:
        """The route's handler; in debug mode a sync one that runs on the event loop is timed
        (decided here, once per route: nothing is added outside debug mode)."""
        spec = entry.spec
        if not self.config.debug or spec.threaded or is_async(spec.handler):
            return spec.handler
        from cello.middleware.debug import WarnWhenSlow

        return WarnWhenSlow(spec.handler, f"{entry.method} {entry.path}")

    def _multipart_endpoint_for(self, entry: RouteEntry, limits: FormLimits) -> Endpoint | None:
        """The route's chain with a handler that first streams a multipart body into
        spooled files, so an upload is never held whole in memory."""
        spec = entry.spec
        if entry.method not in FORM_METHODS or spec.stream:
            return None
        body_limit, body_limit_option = multipart_body_limit(self.config, limits, spec.options)
        # The handler timeout starts once the upload is in (its pace is body_idle_timeout's).
        handler = _multipart_handler(
            self._handler_for(entry), spec.threaded, limits, self._executor_factory, self.config.handler_timeout
        )
        return Endpoint(
            handler,
            entry.scopes,
            route_guards=spec.guards,
            stream_body=True,
            max_body_size=body_limit,
            body_limit_option=body_limit_option,
            debug=self.config.debug,
            executor=self._executor_factory,
            options=spec.options,
            sse_keepalive=self.config.sse_keepalive,
        )

    def _app_endpoint(self, handler: Handler, scopes: list[Scope] | None = None) -> Endpoint:
        """An endpoint for the router's own answers (404, 405, OPTIONS, 308, 426): it runs the
        hooks of the app, or of the blueprints of the routes the path matched."""
        return Endpoint(
            handler,
            scopes or [self.scope],
            # Guards protect routes; the router's own 405/OPTIONS answers reveal nothing.
            scope_guards=False,
            max_body_size=self.config.max_body_size,
            debug=self.config.debug,
            executor=self._executor_factory,
        )

    # -- serving --------------------------------------------------------------------------

    def resolve(self, request: Request) -> Endpoint:
        runtime = self._runtime
        if runtime is None:
            runtime = self._ensure_runtime()
        # WebSocket handshakes are GET requests routed to the "WEBSOCKET" pseudo-method.
        method = WEBSOCKET if request.upgrade else request.method
        code, values = runtime.dispatch(method, request.raw_path)
        if code >= 0:
            endpoint, names, pattern, multipart, form_limits = runtime.routes[code]
            if values:
                # One parameter is the common case; dict(zip()) costs several times as much.
                request.params = {names[0]: values[0]} if len(values) == 1 else dict(zip(names, values))
            request.route = pattern
            request._form_limits = form_limits
            if multipart is not None:
                content_type = request.headers.get("content-type")
                if content_type is not None and content_type[:19].lower() == "multipart/form-data":
                    return multipart
            return endpoint
        return self._resolve_miss(runtime, request, method, code)

    def _resolve_miss(self, runtime: _Runtime, request: Request, method: str, code: int) -> Endpoint:
        if code == -1:
            if self.config.redirect_slashes and method != WEBSOCKET:
                toggled = _toggle_slash(request.raw_path)
                if toggled and runtime.dispatch(method, toggled)[0] != -1:
                    return self._miss_endpoint(runtime, (0, "308"), _redirect_slash)
            return self._miss_endpoint(runtime, (0, "404"), _not_found)
        plan = runtime.router.plan
        # The path matched routes of some blueprint: its hooks (CORS preflights, say) and
        # error handlers apply to the automatic answer too.
        scopes = self._scopes_of(runtime, code)
        if method == "OPTIONS":
            allow = plan.allow(code)
            return self._miss_endpoint(runtime, (code, "OPTIONS"), lambda request: _options(allow), scopes)
        if method == "GET" and plan.allows_websocket(code):
            return self._miss_endpoint(runtime, (code, "426"), _upgrade_required, scopes)
        allow = plan.allow(code)
        return self._miss_endpoint(runtime, (code, "405"), lambda request: _not_allowed(request, allow), scopes)

    @staticmethod
    def _scopes_of(runtime: _Runtime, code: int) -> list[Scope] | None:
        for terminal in runtime.router.plan.terminals_of(code):
            for route_id in terminal.routes.values():
                return runtime.scopes[route_id]
        return None

    def _miss_endpoint(
        self, runtime: _Runtime, key: tuple[int, str], handler: Handler, scopes: list[Scope] | None = None
    ) -> Endpoint:
        endpoint = runtime.miss_cache.get(key)
        if endpoint is None:
            endpoint = self._app_endpoint(handler, scopes)
            # Distinct 405 codes are bounded by the route table, but stay safe anyway.
            if len(runtime.miss_cache) < 4096:
                runtime.miss_cache[key] = endpoint
        return endpoint

    # -- running --------------------------------------------------------------------------

    def run(
        self,
        host: str = "127.0.0.1",
        port: int = 8000,
        debug: bool | None = None,
        env: str | None = None,
        workers: int | None = None,
        reload: bool = False,
        logs: bool | None = None,
        http: str | None = None,
        argv: Sequence[str] | None = None,
    ) -> None:
        """Serve this app. ``--host --port --env --debug --reload --workers --no-logs``
        on the command line override the arguments given here."""
        from cello.runner import RunOptions, run_app

        options = RunOptions(
            host, port, debug, env, 1 if workers is None else workers, reload, logs, http, load_build=True
        )
        options = options.with_argv(sys.argv[1:] if argv is None else list(argv))
        code = run_app(self, options)
        if code:
            raise SystemExit(code)

    # -- ASGI -----------------------------------------------------------------------------

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
        send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ) -> None:
        from cello.asgi import handle

        await handle(self, scope, receive, send)


async def _run_hooks(hooks: list[Callable[[], Any]]) -> None:
    for hook in hooks:
        result = hook()
        if inspect.isawaitable(result):
            await result


FORM_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _multipart_handler(
    handler: Callable[..., Any],
    threaded: bool,
    limits: FormLimits,
    executor: Callable[[], Executor],
    timeout: float | None = None,
) -> Callable[[Request], Awaitable[Any]]:
    async def run(request: Request) -> Any:
        form = await receive_multipart(request.headers.get("content-type") or "", request.stream(), limits)
        request._form = form
        try:
            if threaded:
                pending = asyncio.get_running_loop().run_in_executor(executor(), handler, request)
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
