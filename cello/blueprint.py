"""Route registration shared by App and Blueprint, and Blueprint itself.

Registration is live: a blueprint forwards each route it receives to the app it is
(transitively) attached to, so routes added after ``register_blueprint`` are served, and a
conflict raises at the decorator that caused it, naming both handlers' file:line.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar

from cello import logs as cello_logs
from cello.binding.plan import BinderPlan, plan_handler
from cello.errors import RouteError
from cello.middleware import logging as logging_middleware
from cello.middleware import timing
from cello.middleware.compression import CompressionPolicy
from cello.middleware.cors import CorsPolicy
from cello.middleware.request_id import RequestIds
from cello.middleware.security import SecurityHeaders
from cello.pipeline import ErrorKey, Handler, Middleware, Scope
from cello.ratelimit import KeyFunction, RateLimit
from cello.routing import parse_pattern
from cello.routing.pattern import Pattern
from cello.staticfiles import StaticFiles

if TYPE_CHECKING:
    from typing_extensions import Unpack

F = TypeVar("F", bound=Callable[..., Any])

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
WEBSOCKET = "WEBSOCKET"


def source_of(fn: Callable[..., Any]) -> str:
    """``file:line`` of a handler's definition, for error messages."""
    code = getattr(fn, "__code__", None)
    if code is None:
        code = getattr(getattr(fn, "__call__", None), "__code__", None)
    if code is None:
        return repr(fn)
    return f"{code.co_filename}:{code.co_firstlineno}"


def join_path(prefix: str, path: str) -> str:
    """Join a blueprint prefix and a route path without doubling or dropping slashes."""
    prefix = prefix.rstrip("/")
    if not path:
        return prefix or "/"
    if not path.startswith("/"):
        path = "/" + path
    return prefix + path


class _CommonOptions(TypedDict, total=False):
    guards: Sequence[Handler] | None
    """Run after the app's and the blueprints' guards; one returning False denies with 403."""
    name: str | None
    """The route's name in ``cello routes``; defaults to the handler's ``__name__``."""


class RouteOptions(_CommonOptions, total=False):
    """Keyword arguments of the HTTP route decorators (``route``, ``get``, ``post``, ...)."""

    threaded: bool
    """Run a blocking sync handler in the thread pool instead of on the event loop."""
    status: int
    """The status of a successful answer (what a handler's result would otherwise answer 200)."""
    stream: bool
    """Do not receive the body first: the handler reads it with ``request.stream()``."""
    csrf: bool
    """False: no CSRF token is asked of this route's form posts (``app.enable_csrf()``)."""
    rate_limit: str | RateLimit
    """This route's own limit, ``"10/second"`` (or a ``RateLimit`` with its key, store, strategy)."""
    # Per-route values of the App options of the same names (docs/security.md).
    max_body_size: int
    max_file_size: int
    max_form_field_size: int
    max_form_parts: int
    max_part_header_size: int
    max_part_headers: int


class WebSocketOptions(_CommonOptions, total=False):
    """Keyword arguments of ``websocket``."""

    subprotocols: Sequence[str]
    """Subprotocols this route speaks, best first: the implicit accept picks the first the client offered."""


ROUTE_OPTIONS = frozenset(RouteOptions.__optional_keys__)
WEBSOCKET_OPTIONS = frozenset(WebSocketOptions.__optional_keys__)


def _check_options(options: Mapping[str, Any], websocket: bool, where: str) -> None:
    """Refuse, at the decorator, an option that would otherwise be silently ignored."""
    known, other, kind = (
        (WEBSOCKET_OPTIONS, ROUTE_OPTIONS, "a websocket")
        if websocket
        else (ROUTE_OPTIONS, WEBSOCKET_OPTIONS, "an HTTP")
    )
    for key in options:
        if key in known:
            continue
        if key in other:
            raise RouteError(f"{where}: option {key!r} does not apply to {kind} route")
        close = difflib.get_close_matches(key, known, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(sorted(known))}"
        raise RouteError(f"{where}: unknown route option {key!r}; {hint}")
    if isinstance(options.get("subprotocols"), str):
        raise RouteError(f"{where}: subprotocols takes a list of names, not one string")
    status = options.get("status")
    if status is not None and (type(status) is not int or not 200 <= status <= 599):
        raise RouteError(f"{where}: status must be an int from 200 to 599, got {status!r}")


# Options RouteSpec keeps as fields; the others stay in RouteSpec.options for the endpoints.
_SPEC_FIELDS = frozenset({"guards", "threaded", "stream", "name"})


@dataclass
class RouteSpec:
    """A route as declared, before prefixes are applied."""

    methods: tuple[str, ...]
    path: str
    handler: Callable[..., Any]
    source: str
    guards: tuple[Handler, ...] = ()
    threaded: bool = False
    stream: bool = False
    name: str = ""
    options: dict[str, Any] = field(default_factory=dict)


def plan_route(spec: RouteSpec, pattern: Pattern) -> BinderPlan | None:
    """The binder plan of ``spec`` served at ``pattern`` (None: a classic handler, or a
    WebSocket route); RouteError for a signature that cannot be bound."""
    if WEBSOCKET in spec.methods:
        return None
    return plan_handler(spec.handler, pattern, spec.source, spec.options.get("status"), spec.stream)


class Registrar:
    """Everything that declares routes, hooks, guards and error handlers.

    An app is the registrar that serves routes (``_serves``): a blueprint forwards its routes
    to the apps above it through the hooks at the end of this class, which ``App`` overrides.
    This module never imports ``App``.
    """

    _serves: bool = False

    def __init__(self, prefix: str = "", guards: Sequence[Handler] | None = None) -> None:
        self.prefix = prefix
        self.scope = Scope()
        self.scope.guards.extend(guards or ())
        self._specs: list[RouteSpec] = []
        self._children: list[Blueprint] = []
        # A blueprint may be registered in several places (Flask allows it too); each
        # registration mounts all of its routes once more under that parent's prefix.
        self._parents: list[Registrar] = []

    # -- where this registrar sits --------------------------------------------------------

    def _chains(self) -> list[list[Registrar]]:
        """Every path of registrars from a root down to this one."""
        if not self._parents:
            return [[self]]
        return [chain + [self] for parent in self._parents for chain in parent._chains()]

    def _roots(self) -> list[Registrar]:
        """The apps this registrar's routes are served by."""
        roots: list[Registrar] = []
        for chain in self._chains():
            root = chain[0]
            if root._serves and root not in roots:
                roots.append(root)
        return roots

    @staticmethod
    def _join(chain: Sequence[Registrar], path: str) -> str:
        full = path
        for registrar in reversed(chain):
            full = join_path(registrar.prefix, full) if registrar.prefix else full
        return full if full.startswith("/") else "/" + full

    def _full_path(self, path: str) -> str:
        return self._join(self._chains()[0], path)

    def _publish(self, spec: RouteSpec) -> None:
        _commit(self._publish_along(self._chains(), [spec], []))

    def _publish_along(
        self, chains: list[list[Registrar]], specs: list[RouteSpec], pending: list[PendingRoute]
    ) -> list[PendingRoute]:
        """Add ``specs`` of this registrar as mounted by ``chains``, all or nothing."""
        for chain in chains:
            root = chain[0]
            if root._serves:
                for spec in specs:
                    pending.append((root, spec, self._join(chain, spec.path), [r.scope for r in chain]))
        return pending

    # -- routes -------------------------------------------------------------------------

    def route(
        self, path: str, methods: Iterable[str] | None = None, **options: Unpack[RouteOptions]
    ) -> Callable[[F], F]:
        """Route ``methods`` (default GET) of ``path`` to the decorated handler."""
        return self._route(path, tuple(m.upper() for m in (methods or ("GET",))), options)

    def _route(self, path: str, methods: tuple[str, ...], options: Mapping[str, Any]) -> Callable[[F], F]:
        def decorator(fn: F) -> F:
            if not callable(fn):
                raise RouteError(f"route {path!r}: handler must be callable, got {fn!r}")
            source = source_of(fn)
            where = f"route {path!r} (at {source})"
            _check_options(options, WEBSOCKET in methods, where)
            spec = RouteSpec(
                methods,
                path,
                fn,
                source,
                tuple(options.get("guards") or ()),
                bool(options.get("threaded", False)),
                bool(options.get("stream", False)),
                options.get("name") or str(getattr(fn, "__name__", "")),
                {key: value for key, value in options.items() if key not in _SPEC_FIELDS},
            )
            if "rate_limit" in spec.options:
                # Parsed here: a bad limit fails at the decorator, not at the first request.
                try:
                    spec.options["rate_limit"] = RateLimit.of(spec.options["rate_limit"])
                except (TypeError, ValueError) as exc:
                    raise RouteError(f"{where}: {exc}") from None
            self._add_spec(spec)
            return fn

        return decorator

    def _add_spec(self, spec: RouteSpec) -> None:
        # A route's own path is a pattern too, so "users" is refused as in Flask rather than
        # read as "/users"; only a blueprint's "" (its prefix itself) is relative.
        if spec.path or not isinstance(self, Blueprint):
            parse_pattern(spec.path, spec.source)
        # Validate the whole pattern, and the handler's signature against it, at the decorator
        # even when not attached to an app yet.
        pattern = parse_pattern(self._full_path(spec.path), spec.source)
        plan_route(spec, pattern)
        self._publish(spec)
        self._specs.append(spec)

    def get(self, path: str, **options: Unpack[RouteOptions]) -> Callable[[F], F]:
        return self._route(path, ("GET",), options)

    def post(self, path: str, **options: Unpack[RouteOptions]) -> Callable[[F], F]:
        return self._route(path, ("POST",), options)

    def put(self, path: str, **options: Unpack[RouteOptions]) -> Callable[[F], F]:
        return self._route(path, ("PUT",), options)

    def patch(self, path: str, **options: Unpack[RouteOptions]) -> Callable[[F], F]:
        return self._route(path, ("PATCH",), options)

    def delete(self, path: str, **options: Unpack[RouteOptions]) -> Callable[[F], F]:
        return self._route(path, ("DELETE",), options)

    def head(self, path: str, **options: Unpack[RouteOptions]) -> Callable[[F], F]:
        return self._route(path, ("HEAD",), options)

    def options(self, path: str, **options: Unpack[RouteOptions]) -> Callable[[F], F]:
        return self._route(path, ("OPTIONS",), options)

    def websocket(self, path: str, **options: Unpack[WebSocketOptions]) -> Callable[[F], F]:
        return self._route(path, (WEBSOCKET,), options)

    # -- hooks, guards, error handlers ----------------------------------------------------

    def before_request(self, fn: F) -> F:
        self.scope.before.append(fn)
        self._changed()
        return fn

    def after_request(self, fn: F) -> F:
        self.scope.after.append(fn)
        self._changed()
        return fn

    def use(self, middleware: Middleware) -> Middleware:
        self.scope.middleware.append(middleware)
        self._changed()
        return middleware

    def add_guard(self, guard: Handler) -> Handler:
        self.scope.guards.append(guard)
        self._changed()
        return guard

    def error_handler(self, key: ErrorKey) -> Callable[[F], F]:
        if not (isinstance(key, int) or (isinstance(key, type) and issubclass(key, BaseException))):
            raise TypeError("error_handler takes an exception class or an HTTP status code")

        def decorator(fn: F) -> F:
            self.scope.error_handlers[key] = fn
            self._changed()
            return fn

        return decorator

    def enable_logging(self, file: str | None = None, format: str = "text") -> None:
        """Log one access line per request of this app or blueprint: to the ``cello.access``
        logger, or with ``file=`` appended to that file in buffered batches. ``format="json"``:
        one JSON object per line, for the access log and the framework's own logs (cello/logs.py)."""
        finish = logging_middleware.install(self.scope, file, format)
        if format == "json":
            cello_logs.use_format("json")
        if isinstance(finish, logging_middleware.FileSink):
            self._at_shutdown(finish.flush)
        self._changed()

    def enable_request_id(self, header: str = "X-Request-ID") -> None:
        """Give each request an id: ``request.id``, sent back in ``header``, on the log lines
        written while the request is handled and in the body of a 5xx answer. The id a trusted
        proxy (``forwarded_allow_ips``) sends in ``header`` is kept when sane (at most 128
        letters, digits or ``._:+/=@-``); otherwise, and for everyone else, a new one is made."""
        # Like CORS, the innermost scope's governs a route, and only one pair runs per request.
        self.scope.request_ids = RequestIds(header)
        self._changed()

    def enable_cors(
        self,
        origins: Iterable[str] | str | None = None,
        methods: Iterable[str] | None = None,
        headers: Iterable[str] | str | None = None,
        credentials: bool = False,
        max_age: int = 86400,
        expose_headers: Iterable[str] | None = None,
    ) -> None:
        """Answer CORS preflights and add CORS headers (Fetch standard). ``origins=None``
        allows any origin; with ``credentials=True`` the origin is echoed, never ``*``."""
        # The innermost policy governs a route: a blueprint's CORS replaces the app's for
        # its routes instead of stacking a second set of headers on them.
        self.scope.cors = CorsPolicy.create(origins, methods, headers, credentials, max_age, expose_headers)
        self._changed()

    def enable_compression(self, min_size: int = 1024, level: int = 6, brotli: bool = True) -> None:
        """gzip (and brotli when installed) for compressible responses of ``min_size`` bytes or more."""
        self.scope.after.insert(0, CompressionPolicy(min_size, level, brotli).after)
        self._changed()

    def enable_timing(self) -> None:
        """``Server-Timing`` and ``X-Response-Time`` on every response."""
        self.scope.before.insert(0, timing.start)
        self.scope.after.insert(0, timing.finish)
        self._changed()

    def enable_security_headers(
        self,
        hsts: bool | str = True,
        content_type_options: str | None = "nosniff",
        referrer_policy: str | None = "strict-origin-when-cross-origin",
        frame_options: str | None = "DENY",
        csp: str | None = None,
        permissions_policy: str | None = None,
    ) -> None:
        """Security headers on every response of this app or blueprint, unless the handler set
        them: ``Strict-Transport-Security`` on HTTPS requests (``hsts=True``: one year,
        ``includeSubDomains``; a string is sent as written; False: none), ``X-Content-Type-Options``,
        ``Referrer-Policy``, ``X-Frame-Options`` and, when given, ``Content-Security-Policy``
        and ``Permissions-Policy``. None leaves a header out."""
        policy = SecurityHeaders.create(
            hsts, content_type_options, referrer_policy, frame_options, csp, permissions_policy
        )
        self.scope.after.insert(0, policy.after)
        self._changed()

    def enable_rate_limit(
        self,
        limit: str,
        key: KeyFunction | None = None,
        store: str | None = None,
        strategy: str = "fixed",
    ) -> None:
        """Limit each client to ``limit`` requests (``"100/minute"``, ``"10/second"``,
        ``"5/10seconds"``) to the routes of this app or blueprint together; more get 429 with
        ``Retry-After``. ``key(request)`` names the client (default: its address; None: not
        limited); ``store``: ``"memory://"`` or ``"redis://host:6379/0"`` (default: the app's
        ``rate_limit_store``); ``strategy``: ``"fixed"`` or ``"sliding"`` windows. A bad
        ``limit`` raises ValueError here."""
        rate_limit = RateLimit(limit, key, store, strategy)
        # The name its counters go by in a shared store: the same in every worker and instance
        # running this code (a blueprint's name is unique in its app).
        owner = f"blueprint:{self.name}" if isinstance(self, Blueprint) else "app"
        self.scope.rate_limits.append((f"{owner}#{len(self.scope.rate_limits)}", rate_limit))
        self._changed()

    def static(self, prefix: str, directory: str, index: str = "index.html", dotfiles: bool = False) -> None:
        """Serve the files below ``directory`` at ``prefix`` (``index.html`` for directories).

        Paths that would leave the directory (``..``, absolute, NUL, symlinks out) get 404, and
        so do hidden files (``.env``, ``.git/``) unless ``dotfiles=True``.
        """
        handler = StaticFiles(directory, index, dotfiles)
        # A prefix is lenient like a blueprint's: "static" is "/static".
        self.route(join_path("/" + prefix.lstrip("/"), "{*path}"), ["GET"], name=f"static:{prefix}")(handler)

    def _changed(self) -> None:
        for root in self._roots():
            root._invalidate()

    # -- blueprints -----------------------------------------------------------------------

    def register_blueprint(self, blueprint: Blueprint) -> Blueprint:
        if blueprint is self or blueprint in self._ancestors():
            raise RouteError(f"blueprint {blueprint.name!r} cannot be registered inside itself")
        for root in self._roots():
            root._check_blueprint_names(blueprint)
        chains = [chain + [blueprint] for chain in self._chains()]
        pending = blueprint._subtree_routes(chains, [])
        blueprint._parents.append(self)
        self._children.append(blueprint)
        try:
            _commit(pending)
        except RouteError:
            blueprint._parents.remove(self)
            self._children.remove(blueprint)
            raise
        for root in self._roots():
            root._invalidate()
        return blueprint

    register = register_blueprint

    def _ancestors(self) -> list[Registrar]:
        return [node for chain in self._chains() for node in chain[:-1]]

    def _subtree_routes(self, chains: list[list[Registrar]], pending: list[PendingRoute]) -> list[PendingRoute]:
        self._publish_along(chains, self._specs, pending)
        for child in self._children:
            child._subtree_routes([chain + [child] for chain in chains], pending)
        return pending

    def _walk(self) -> list[Blueprint]:
        found: list[Blueprint] = []
        for child in self._children:
            found.append(child)
            found.extend(child._walk())
        return found

    def get_all_routes(self) -> list[tuple[str, str, Callable[..., Any]]]:
        """``(method, full_path, handler)`` for this registrar's routes and its children's."""
        found: list[tuple[str, str, Callable[..., Any]]] = []
        self._collect_routes(self._chains()[0], found)
        return found

    def _collect_routes(self, chain: list[Registrar], found: list[tuple[str, str, Callable[..., Any]]]) -> None:
        found.extend((m, self._join(chain, s.path), s.handler) for s in self._specs for m in s.methods)
        for child in self._children:
            child._collect_routes(chain + [child], found)

    def _check_blueprint_names(self, blueprint: Blueprint) -> None:
        """Raise RouteError if ``blueprint`` or one below it takes a name already taken."""
        taken = {bp.name: bp for bp in self._walk()}
        for candidate in [blueprint, *blueprint._walk()]:
            other = taken.get(candidate.name)
            if other is not None and other is not candidate:
                raise RouteError(
                    f"duplicate blueprint name {candidate.name!r} (prefixes {other.prefix!r} and "
                    f"{candidate.prefix!r}); pass name=... to tell them apart"
                )

    # -- what an app does with the routes of its subtree (App overrides these) -----------

    def _check_routes(self, routes: list[tuple[RouteSpec, str, list[Scope]]]) -> None:
        """Raise RouteError if any of ``routes`` conflicts with the routes served."""

    def _add_route(self, spec: RouteSpec, full_path: str, scopes: list[Scope]) -> None:
        """Serve ``spec`` at ``full_path`` with the hooks of ``scopes``."""

    def _invalidate(self) -> None:
        """Routes or hooks changed: endpoints are to be built again."""

    def _at_shutdown(self, fn: Callable[[], Any]) -> None:
        """Call ``fn`` when the server stops (only an app is ever started and stopped)."""


PendingRoute = tuple[Registrar, RouteSpec, str, list[Scope]]


def _commit(pending: list[PendingRoute]) -> None:
    """Check every pending route of every app first, then add them: a conflict changes nothing."""
    by_app: dict[int, tuple[Registrar, list[tuple[RouteSpec, str, list[Scope]]]]] = {}
    for app, spec, full_path, scopes in pending:
        by_app.setdefault(id(app), (app, []))[1].append((spec, full_path, scopes))
    for app, routes in by_app.values():
        app._check_routes(routes)
    for app, routes in by_app.values():
        for spec, full_path, scopes in routes:
            app._add_route(spec, full_path, scopes)


class Blueprint(Registrar):
    """A group of routes under a prefix, with its own hooks, guards and error handlers."""

    def __init__(self, prefix: str = "", name: str | None = None, guards: Sequence[Handler] | None = None) -> None:
        if prefix and not prefix.startswith("/"):
            prefix = "/" + prefix
        super().__init__(prefix, guards)
        self.name = name or prefix or "blueprint"

    def __repr__(self) -> str:
        return f"<Blueprint {self.name!r} prefix={self.prefix!r}>"
