"""The application: a registry of routes, blueprints, hooks and error handlers.

``App.resolve`` is what the server calls for every request head. It dispatches with the
router (compiled when a matching build exists, interpreted otherwise) and returns the
route's pre-composed :class:`~cello.pipeline.Endpoint`. The app never touches a socket.
"""

from __future__ import annotations

import inspect
import logging
import sys
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from cello.asgi import handle
from cello.binding.binder import bind as interpreted_bind
from cello.binding.plan import Binder, BinderPlan
from cello.blueprint import WEBSOCKET, Registrar, RouteSpec, plan_route
from cello.channels import Channels, configured_url
from cello.config import Config
from cello.endpoints import DispatchFn, EndpointBuilder, RouteEntry, RouterAnswers
from cello.forms import limits_from
from cello.metrics import Metrics
from cello.openapi import Info, build_document, render
from cello.openapi.site import ApiDocs
from cello.pipeline import Endpoint, Scope
from cello.ratelimit import RateLimitStores
from cello.request import Request
from cello.routing import InterpretedRouter, Plan, Route, RouteTable, build_plan, parse_pattern
from cello.routing.codes import FIRST_ROUTE
from cello.routing.urls import UrlMap
from cello.runner import RunOptions, run_app
from cello.server.http.forwarded import TrustedProxies
from cello.sessions import DEFAULT_MAX_AGE, SecretKey, SessionStore, create_store, template_context
from cello.templating import ContextProcessor, Templates

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

log = logging.getLogger("cello")

__version__ = "0.3.0"


@dataclass
class Compiled:
    """A loaded build: its fingerprint, dispatch function, file name and typed routes' binders."""

    fingerprint: str
    dispatch: DispatchFn
    origin: str
    binders: dict[int, Binder]


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
        multipart: list[Endpoint | None],
        answers: RouterAnswers,
        proxies: TrustedProxies | None,
    ) -> None:
        self.router = router
        self.dispatch = router.dispatch
        # Per route id, what resolve() reads, in one tuple: one lookup per request, not four.
        # multipart: the variant that parses a multipart body as it streams in, or None.
        self.routes = list(zip(endpoints, param_names, patterns, multipart))
        # What dispatch answers with no route (404, 405, OPTIONS, 426, 308).
        self.answers = answers
        # forwarded_allow_ips, for the ASGI adapter (the native server reads its own config).
        self.proxies = proxies


class App(Registrar):
    """A Cello application. Also an ASGI 3 application (see ``cello.asgi``)."""

    _serves = True

    def __init__(self, **options: Any) -> None:
        super().__init__("")
        self.config = Config.from_kwargs(options)
        # An invalid forwarded_allow_ips entry fails here, not on the first request.
        TrustedProxies.parse(self.config.forwarded_allow_ips)
        self.name = "app"
        self._table = RouteTable()
        self._entries: dict[int, RouteEntry] = {}
        self._runtime: _Runtime | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._compiled: Compiled | None = None
        self._api_docs: ApiDocs | None = None
        self._sessions: SessionStore | None = None
        self._csrf = False
        # The rendered OpenAPI document, until the routes change.
        self._openapi_text: str | None = None
        # app.enable_metrics(): the Prometheus metrics and their hooks; None costs nothing.
        self.metrics: Metrics | None = None
        self.startup_handlers: list[Callable[[], Any]] = []
        self.shutdown_handlers: list[Callable[[], Any]] = []
        # Publish/subscribe between handlers (docs/channels.md); a bad URL fails here.
        self.channels = Channels(configured_url(self.config.channels), self.config.channel_max_queue)
        # Where rate limits count (cello.ratelimit); a bad store URL fails here.
        self.rate_limit_stores = RateLimitStores(self.config.rate_limit_store)
        # Where relative paths (the template directory) are taken from: the creator's module.
        self.root_path = _caller_directory()
        # Route name -> URL builders, for url_for (made as routes are added, never per call).
        self._urls = UrlMap()
        self.templates = Templates(self.config.templates, self.root_path, self.config.debug, self.url_for)

    @property
    def debug(self) -> bool:
        return self.config.debug

    @debug.setter
    def debug(self, value: bool) -> None:
        self.config.debug = value
        self.templates.set_debug(value)
        self._invalidate()

    # -- registration (called by Registrar) -----------------------------------------------

    def _check_routes(self, routes: list[tuple[RouteSpec, str, list[Scope]]]) -> None:
        """Raise RouteError if any of ``routes`` conflicts with the table or with another, or
        has a handler whose signature cannot be bound at its full path."""
        batch = RouteTable()
        names = UrlMap()
        for spec, full_path, scopes in routes:
            for method in spec.methods:
                self._table.check(method, full_path, spec.source)
                batch.add(method, full_path, None, spec.source)
            pattern = parse_pattern(full_path, spec.source)
            plan_route(spec, pattern)
            name = self._route_name(spec, scopes)
            if name:
                self._urls.check(name, pattern, spec.handler, spec.source)
                names.check(name, pattern, spec.handler, spec.source)
                names.add(name, pattern, spec.handler, spec.source)

    def _add_route(self, spec: RouteSpec, full_path: str, scopes: list[Scope]) -> None:
        blueprint = self._blueprint_name_for(scopes[-1]) if len(scopes) > 1 else ""
        pattern = parse_pattern(full_path, spec.source)
        binding = plan_route(spec, pattern)
        for method in spec.methods:
            entry = RouteEntry(method, full_path, spec, scopes, blueprint, binding)
            self._table.add(method, full_path, entry, spec.source, spec.name)
        name = self._route_name(spec, scopes)
        if name:
            self._urls.add(name, pattern, spec.handler, spec.source)
        self._invalidate()

    def _route_name(self, spec: RouteSpec, scopes: list[Scope]) -> str:
        """The route's url_for name: its own (the handler's name by default), after the names
        of the blueprints it is in, outermost first (``"admin.users.show"``). Empty for a
        lambda: such a route has no name unless given one."""
        if not spec.name or spec.name == "<lambda>":
            return ""
        blueprints = [self._blueprint_name_for(scope) for scope in scopes[1:]]
        return ".".join([*[name for name in blueprints if name], spec.name])

    def _blueprint_name_for(self, scope: Scope) -> str:
        for blueprint in self._walk():
            if blueprint.scope is scope:
                return blueprint.name
        return ""

    def _invalidate(self) -> None:
        self._runtime = None
        self._openapi_text = None

    async def startup(self) -> None:
        """Run the on_startup hooks (the server calls this before accepting connections)."""
        await _run_hooks(self.startup_handlers)

    async def shutdown(self) -> None:
        """Run the on_shutdown hooks (after the last connection closed), then close the
        channels' broker and the rate limits' Redis connections."""
        try:
            await _run_hooks(self.shutdown_handlers)
        finally:
            try:
                await self.channels.close()
            finally:
                await self.rate_limit_stores.close()

    def on_startup(self, fn: Callable[[], Any]) -> Callable[[], Any]:
        self.startup_handlers.append(fn)
        return fn

    def on_shutdown(self, fn: Callable[[], Any]) -> Callable[[], Any]:
        self.shutdown_handlers.append(fn)
        return fn

    def _at_shutdown(self, fn: Callable[[], Any]) -> None:
        self.shutdown_handlers.append(fn)

    # -- sessions and CSRF (docs/sessions.md) ----------------------------------------------

    def enable_sessions(
        self,
        secret_key: SecretKey,
        store: str = "cookie",
        cookie_name: str = "session",
        max_age: int = DEFAULT_MAX_AGE,
        same_site: str | None = "lax",
        secure: bool | None = None,
        http_only: bool = True,
        domain: str | None = None,
        path: str = "/",
    ) -> None:
        """``request.session``, saved when changed: signed into the cookie (``store="cookie"``)
        or kept in Redis (``store="redis://host:6379/0"``). ``secret_key`` may be a list: the
        first key signs, all verify (key rotation). ``secure=None`` marks the cookie ``Secure``
        on HTTPS requests."""
        if self._sessions is not None:
            raise RuntimeError("app.enable_sessions() was called already: an app has one session store")
        sessions = create_store(secret_key, store, cookie_name, max_age, same_site, secure, http_only, domain, path)
        # The endpoints hand the loader to each request and save a loaded session after the
        # after-hooks, before the response head is written. A store that must read before the
        # handler (Redis) does it in the first before-hook, so other hooks and guards can use it.
        preload = sessions.before_handler()
        if preload is not None:
            self.scope.before.insert(0, preload)
        self._at_shutdown(sessions.close)
        self._sessions = sessions
        # Templates see session, csrf_token() and get_flashed_messages() (docs/templates.md).
        self.templates.context_processor(template_context)
        self._invalidate()

    def enable_csrf(self) -> None:
        """Refuse (403) unsafe form posts without the session's CSRF token (``csrf_token(request)``)
        in the ``csrf_token`` field or the ``X-CSRF-Token`` header. ``csrf=False`` on a route exempts it."""
        if self._sessions is None:
            raise RuntimeError(
                "app.enable_csrf() keeps its token in the session: call app.enable_sessions(secret_key=...) first"
            )
        self._csrf = True
        self._invalidate()

    # -- tracing (OpenTelemetry) ------------------------------------------------------------

    def enable_tracing(self, tracer_provider: TracerProvider | None = None, response_traceparent: bool = True) -> None:
        """An OpenTelemetry SERVER span for every request and WebSocket session, named by the
        route template (``"GET /users/{id}"``), the parent taken from the request's W3C
        ``traceparent``; current while the handler runs. ``tracer_provider=None``: the global
        provider (the app configures the SDK and exporters). ``response_traceparent``: the
        response carries the server span's ``traceparent``. Needs ``cello-framework[tracing]``."""
        if self.scope.tracing is not None:
            raise RuntimeError("app.enable_tracing() was called already: an app has one tracer")
        # opentelemetry-api is optional (cello-framework[tracing]): only an app that traces imports it.
        try:
            from cello.middleware import tracing
        except ImportError as exc:
            if not (exc.name or "").startswith("opentelemetry"):
                raise
            raise ImportError(
                "app.enable_tracing() needs opentelemetry-api: pip install 'cello-framework[tracing]'"
            ) from None
        # Called by every endpoint around everything else (cello/pipeline.py, TracingHooks).
        self.scope.tracing = tracing.install(tracer_provider, __version__, response_traceparent)
        self._invalidate()

    # -- metrics (Prometheus) ----------------------------------------------------------

    def enable_metrics(self, path: str = "/metrics", buckets: Sequence[float] | None = None) -> None:
        """Prometheus metrics of every request (count, latency histogram, body bytes, by route
        template, method and status), requests in flight, open WebSockets and SSE streams and
        worker restarts, served in the text format at ``path`` (``cello-framework[metrics]``).
        ``buckets``: the latency histogram's upper bounds in seconds (prometheus-client's
        defaults otherwise). Under ``cello serve --workers N`` a scrape sums every worker."""
        if self.metrics is not None:
            raise RuntimeError("app.enable_metrics() was called already: an app has one set of metrics")
        metrics = Metrics(path, buckets)
        self.route(path, ["GET"], name="metrics")(metrics.scrape)
        self.metrics = self.scope.metrics = metrics
        self._invalidate()

    # -- the route table ------------------------------------------------------------------

    def route_table(self) -> RouteTable:
        return self._table

    def routes(self) -> list[Route]:
        """Every route in canonical order (the order of route ids)."""
        return self._table.routes()

    def fingerprint(self) -> str:
        """Identifies what a build is generated from: the routes, and the signature of each
        typed handler (its binder is generated too)."""
        return self._table.fingerprint(f"{__version__} {self._binder_signatures()}")

    def binder_plans(self) -> dict[int, BinderPlan]:
        """Route id -> binder plan, for the routes with typed handlers."""
        plans = {}
        for route_id, route in enumerate(self._table.routes()):
            binding = self._entry(route).binding
            if binding is not None:
                plans[route_id] = binding
        return plans

    def _binder_signatures(self) -> str:
        return " ".join(f"{route_id}{plan.signature()}" for route_id, plan in self.binder_plans().items())

    def use_compiled(
        self, fingerprint: str, dispatch: DispatchFn, origin: str, binders: Mapping[int, Binder] | None = None
    ) -> None:
        """Serve with a compiled dispatch function built for routes with ``fingerprint``, and
        the typed routes' compiled binders (route id -> binder).

        If the routes no longer match (a route was added since), the interpreted router is
        used instead, with a warning: a stale module would misroute.
        """
        self._compiled = Compiled(fingerprint, dispatch, origin, dict(binders or {}))
        self._invalidate()

    @property
    def trusted_proxies(self) -> TrustedProxies | None:
        """The peers whose proxy headers are believed (``forwarded_allow_ips``), or None."""
        return self._ensure_runtime().proxies

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
        binders: dict[int, Binder] = {}
        if compiled is not None and compiled.fingerprint == self.fingerprint():
            router = Router(plan, compiled.dispatch, f"compiled ({compiled.origin})")
            binders = compiled.binders
        else:
            if compiled is not None:
                log.warning("routes changed since %s was built; using the interpreted router", compiled.origin)
                self._compiled = None
            router = Router(plan, InterpretedRouter(plan).dispatch, "interpreted")
        entries = [self._entry(route) for route in routes]
        renderer = self.templates if self.config.templates is not None else None
        builder = EndpointBuilder(
            self.config,
            self._executor_factory,
            self.scope,
            self.channels,
            self._csrf,
            self._sessions,
            renderer,
            self.rate_limit_stores,
        )
        form_limits = [limits_from(self.config, entry.spec.options) for entry in entries]
        bind = [binders.get(route_id, interpreted_bind) for route_id in range(len(entries))]
        endpoints = [builder.route(*route) for route in zip(entries, form_limits, bind)]
        multipart = [builder.multipart(*route) for route in zip(entries, form_limits, bind)]
        return _Runtime(
            router,
            endpoints,
            [route.pattern.param_names for route in routes],
            [route.pattern.raw for route in routes],
            multipart,
            RouterAnswers(builder, plan, router.dispatch, [entry.scopes for entry in entries]),
            TrustedProxies.parse(self.config.forwarded_allow_ips),
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

    # -- URLs and templates -------------------------------------------------------------

    def url_for(self, name: str, /, _anchor: str | None = None, _base: Any = None, **params: Any) -> str:
        """The URL of the route named ``name`` (the handler's name, ``"blueprint.handler"``
        in a blueprint, or its ``name=``) with ``params`` in its path, each formatted by its
        converter; the other params go in the query string. ``_base`` (a request, or an
        origin such as ``"https://example.com"``) makes it absolute; ``_anchor`` adds
        ``#anchor``. UrlBuildError for an unknown name or a missing or unmatchable param."""
        url = self._urls.build(name, params)
        if _anchor is not None:
            url += "#" + quote(_anchor, safe="!$&'()*+,;=:@-._~/?")
        if _base is None:
            return url
        if isinstance(_base, str):
            return _base.rstrip("/") + url
        return f"{_base.scheme}://{_base.host}{url}"

    def context_processor(self, fn: ContextProcessor) -> ContextProcessor:
        """Decorate a function called at every template render, ``fn(request)`` or ``fn()``,
        whose returned mapping is added to the template's context (docs/templates.md)."""
        return self.templates.context_processor(fn)

    def render_template(self, name: str, /, **context: Any) -> str:
        """Render a template to a string (outside a response: an e-mail, a test). A
        ``request`` in ``context`` is the one the template and context processors see."""
        return self.templates.render(name, context, context.get("request"))

    async def render_template_async(self, name: str, /, **context: Any) -> str:
        """``render_template`` with Jinja2's async mode, for templates that await."""
        return await self.templates.render_async(name, context, context.get("request"))

    # -- OpenAPI --------------------------------------------------------------------------

    def openapi(
        self,
        title: str = "API",
        version: str = "1.0",
        path: str = "/openapi.json",
        docs: str | None = "/docs",
        description: str | None = None,
        servers: Sequence[str | Mapping[str, Any]] | None = None,
    ) -> None:
        """Serve the OpenAPI 3.1 document of this app's routes at ``path``, and Swagger UI at
        ``docs`` (None: no UI) with its assets served by the app (``cello-framework[openapi]``).
        ``servers`` are URLs or OpenAPI server objects. These routes are not in the document."""
        if self._api_docs is not None:
            raise RuntimeError("app.openapi() was called already: the documentation is served once")
        api_docs = ApiDocs(Info(title, version, description, servers), path, docs)
        api_docs.install(self, lambda: self.openapi_json().encode())
        self._api_docs = api_docs

    def openapi_document(self) -> dict[str, Any]:
        """The OpenAPI document of this app's HTTP routes (what ``cello openapi`` prints)."""
        api_docs = self._api_docs
        if api_docs is None:
            return build_document(self.routes(), Info())
        return build_document(self.routes(), api_docs.info, api_docs.owns)

    def openapi_json(self) -> str:
        """The document as JSON text (indented, keys sorted): built once per change of the routes."""
        text = self._openapi_text
        if text is None:
            text = self._openapi_text = render(self.openapi_document())
        return text

    # -- serving --------------------------------------------------------------------------

    def resolve(self, request: Request) -> Endpoint:
        runtime = self._runtime
        if runtime is None:
            runtime = self._ensure_runtime()
        # WebSocket handshakes are GET requests routed to the "WEBSOCKET" pseudo-method.
        method = WEBSOCKET if request.upgrade else request.method
        code, values = runtime.dispatch(method, request.raw_path)
        if code >= FIRST_ROUTE:
            endpoint, names, pattern, multipart = runtime.routes[code]
            if values:
                # One parameter is the common case; dict(zip()) costs several times as much.
                request.params = {names[0]: values[0]} if len(values) == 1 else dict(zip(names, values))
            request.route = pattern
            if multipart is not None:
                content_type = request.headers.get("content-type")
                if content_type is not None and content_type[:19].lower() == "multipart/form-data":
                    return multipart
            return endpoint
        return runtime.answers.endpoint(request, method, code)

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
        *,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
        ssl_keyfile_password: str | None = None,
        ssl_ca_certs: str | None = None,
        forwarded_allow_ips: Sequence[str] | None = None,
    ) -> None:
        """Serve this app. ``--host --port --env --debug --reload --workers --no-logs`` (and
        the ``--ssl-*`` and ``--forwarded-allow-ips`` flags) on the command line override the
        arguments given here. ``ssl_certfile`` serves HTTPS; options that cannot work (a missing
        certificate, a key that does not match it) raise ValueError before serving."""
        options = RunOptions(
            host,
            port,
            debug,
            env,
            1 if workers is None else workers,
            reload,
            logs,
            http,
            ssl_certfile=ssl_certfile,
            ssl_keyfile=ssl_keyfile,
            ssl_keyfile_password=ssl_keyfile_password,
            ssl_ca_certs=ssl_ca_certs,
            forwarded_allow_ips=forwarded_allow_ips,
            load_build=True,
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
        await handle(self, scope, receive, send)


def _caller_directory() -> Path:
    """The directory of the module that created the app (outside cello: an App subclass's
    ``__init__`` is skipped too), or the working directory when it has no file (a REPL)."""
    frame = sys._getframe(1)
    while frame is not None:
        module = str(frame.f_globals.get("__name__", ""))
        if module != "cello" and not module.startswith("cello."):
            break
        frame = frame.f_back  # type: ignore[assignment]
    filename = frame.f_globals.get("__file__") if frame is not None else None
    if not filename:
        return Path.cwd()
    return Path(str(filename)).resolve().parent


async def _run_hooks(hooks: list[Callable[[], Any]]) -> None:
    for hook in hooks:
        result = hook()
        if inspect.isawaitable(result):
            await result
