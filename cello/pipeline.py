"""Per-route handler chains, composed once when the router is built.

A chain runs ``use`` middleware (outermost first), then before-hooks (app, outer blueprint,
inner blueprint), guards, the handler, and after-hooks in the reverse order. Any exception
raised inside becomes a response through the error handlers of the route's scopes,
innermost first, so after-hooks and middleware see error responses too.

When every piece of a chain is synchronous the chain runs inline on the event loop and
returns a Response without creating a coroutine: the common case costs one call.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor
from contextvars import copy_context
from typing import TYPE_CHECKING, Any, Protocol, Union

from cello.binding.convert import encode
from cello.errors import HTTPException, body_too_large, report_unhandled
from cello.request import Request
from cello.response import JSON, Deferred, Renderer, Response, dumps, error_response, json_response, prepared_response
from cello.sse import SseStream

if TYPE_CHECKING:
    from cello.forms import FormLimits
    from cello.metrics import Metrics
    from cello.middleware.request_id import RequestIds
    from cello.ratelimit import RateLimit
    from cello.sessions.session import Session

Handler = Callable[[Request], Any]
CallNext = Callable[[Request], Awaitable[Response]]
Middleware = Callable[[Request, CallNext], Awaitable[Response]]
ErrorHandler = Callable[..., Any]
ErrorKey = Union[type[BaseException], int]

error_log = logging.getLogger("cello.error")


def is_async(fn: Callable[..., Any]) -> bool:
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)
    return call is not None and inspect.iscoroutinefunction(call)


def positional_arity(fn: Callable[..., Any]) -> int:
    """How many positional arguments ``fn`` takes, so hooks may omit the request."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return 1
    count = 0
    for param in signature.parameters.values():
        if param.kind is param.VAR_POSITIONAL:
            return 99
        if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            count += 1
    return count


def to_response(value: Any, sse_keepalive: float | None = None) -> Response:
    """Turn whatever a handler returned into a Response (see API.md's table)."""
    if isinstance(value, Response):
        return value
    if isinstance(value, dict):
        return prepared_response(200, dumps(value), JSON)
    if isinstance(value, str):
        return prepared_response(200, value.encode("utf-8"), "text/plain; charset=utf-8")
    if value is None:
        return Response(None, 204)
    if isinstance(value, tuple):
        return _from_tuple(value)
    if isinstance(value, (list, bytes, bytearray, memoryview)):
        return Response(value)  # type: ignore[arg-type]
    if isinstance(value, SseStream):
        return value.to_response(sse_keepalive)
    if inspect.isasyncgen(value) or inspect.isgenerator(value):
        return Response.stream(value)  # type: ignore[arg-type]
    if hasattr(value, "to_response"):
        return to_response(value.to_response())
    if hasattr(value, "__struct_fields__") or hasattr(value, "model_dump"):
        # A msgspec Struct or a pydantic model from a handler without a return annotation.
        return prepared_response(200, encode(value), JSON)
    if hasattr(value, "__dict__") or hasattr(value, "to_dict"):
        return Response(dumps(value), 200, None, JSON)
    raise TypeError(f"handler returned {type(value).__name__}, which Cello cannot turn into a response")


def _from_tuple(value: tuple[Any, ...]) -> Response:
    if not 2 <= len(value) <= 3 or not isinstance(value[1], int):
        raise TypeError("a tuple return must be (body, status) or (body, status, headers)")
    response = to_response(value[0])
    if response.status == 204 and value[0] is None:
        response = Response(None, value[1])
    response.status = value[1]
    if len(value) == 3 and value[2]:
        for key, val in dict(value[2]).items():
            response.set_header(key, val)
    return response


class CorsHooks(Protocol):
    """A before/after pair that the endpoints place around the other hooks (CORS)."""

    def before(self, request: Request) -> Response | None: ...

    def after(self, request: Request, response: Response) -> None: ...


class LimitHooks(Protocol):
    """A route's rate limits (cello.ratelimit): ``before`` counts the request or refuses it
    (sync, or async for a store across the network), ``after`` adds the RateLimit headers."""

    @property
    def before(self) -> Handler: ...

    def after(self, request: Request, response: Response) -> None: ...


class TracingHooks(Protocol):
    """``app.enable_tracing()`` (cello/middleware/tracing.py): a span around the whole chain,
    ``use`` middleware included. ``start`` makes it current in the running context; the
    inline path, which runs in a context it does not own, ``leave``s it when it returns, and
    a request that goes on in a task of its own ``resume``s it there. ``finish`` ends it with
    the final response (a WebSocket session's span ends with the session); ``fail`` with an
    exception no one answered (the task cancelled: the client left)."""

    def start(self, request: Request) -> None: ...

    def leave(self, request: Request) -> None: ...

    def resume(self, request: Request) -> None: ...

    def finish(self, request: Request, response: Response) -> None: ...

    def fail(self, request: Request, exc: BaseException) -> None: ...


class SessionHooks(Protocol):
    """A session store (cello.sessions): ``load`` is what ``request.session`` calls on first
    use; ``save`` runs after the after-hooks when the session was loaded (None, or an awaitable
    for a store that saves asynchronously)."""

    def load(self, request: Request) -> Session: ...

    def save(self, request: Request, response: Response) -> Any: ...


class Scope:
    """What one App or Blueprint contributes to the chains of its routes."""

    def __init__(self) -> None:
        self.before: list[Handler] = []
        self.after: list[Callable[..., Any]] = []
        self.middleware: list[Middleware] = []
        self.guards: list[Handler] = []
        self.error_handlers: dict[ErrorKey, ErrorHandler] = {}
        # A CORS policy is not stacked like other hooks: the innermost one governs a route.
        self.cors: CorsHooks | None = None
        # enable_rate_limit(): (name of its counters, limit); cello.endpoints composes them.
        self.rate_limits: list[tuple[str, RateLimit]] = []
        # Request ids (app.enable_request_id) and the app's metrics (app.enable_metrics): not
        # stacked either; called first and last by every endpoint
        # (Endpoint._around_before/_around_after).
        self.request_ids: RequestIds | None = None
        self.metrics: Metrics | None = None
        # app.enable_tracing(): around everything else, middleware included.
        self.tracing: TracingHooks | None = None

    def find_error_handler(self, exc: BaseException, status: int) -> ErrorHandler | None:
        for cls in type(exc).__mro__:
            handler = self.error_handlers.get(cls)
            if handler is not None:
                return handler
        return self.error_handlers.get(status)


class Endpoint:
    """A composed chain for one route (or for the router's own 404/405/308 answers)."""

    __slots__ = (
        "handler",
        "_scopes",
        "_before",
        "_after",
        "_guards",
        "_middleware",
        "_sync",
        "_threaded",
        "_debug",
        "_executor",
        "_entry",
        "stream_body",
        "max_body_size",
        "body_too_large",
        "options",
        "_sse_keepalive",
        "_timeout",
        "_form_limits",
        "_session_load",
        "_session_save",
        "_renderer",
        "_request_ids",
        "_metrics",
        "_tracing",
        "_has_after",
    )

    def __init__(
        self,
        handler: Handler,
        scopes: Sequence[Scope],
        *,
        route_guards: Sequence[Handler] = (),
        threaded: bool = False,
        stream_body: bool = False,
        max_body_size: int,
        debug: bool,
        executor: Callable[[], Executor],
        options: dict[str, Any] | None = None,
        sse_keepalive: float | None = None,
        scope_guards: bool = True,
        timeout: float | None = None,
        body_limit_option: str = "max_body_size",
        form_limits: FormLimits | None = None,
        sessions: SessionHooks | None = None,
        renderer: Renderer | None = None,
        rate_limit: LimitHooks | None = None,
    ) -> None:
        self.handler = handler
        # The app's templates, for the Response.template(...) results of this chain.
        self._renderer = renderer
        # The route's own form limits, for request.form(); None: the defaults.
        self._form_limits = form_limits
        # app.enable_sessions(): how request.session loads, handed to each request here, and
        # what saves it once loaded, after the after-hooks. Not hooks: a route that never
        # touches the session pays an attribute store and a None check, not two calls.
        self._session_load: Callable[[Request], Session] | None = None
        self._session_save: Callable[[Request, Response], Any] | None = None
        if sessions is not None:
            self._session_load = sessions.load
            self._session_save = sessions.save
        self._timeout = timeout
        self._sse_keepalive = sse_keepalive
        self._scopes = tuple(reversed(scopes))  # innermost first, for error handlers
        before: list[Handler] = [hook for scope in scopes for hook in scope.before]
        after: list[Callable[..., Any]] = []
        for scope in reversed(scopes):
            after.extend(reversed(scope.after))
        if rate_limit is not None:
            # Counted before any other hook or guard spends work on the request; the headers
            # go on whatever response comes out, a 429 included.
            before.insert(0, rate_limit.before)
            after.append(rate_limit.after)
        cors = next((scope.cors for scope in reversed(scopes) if scope.cors is not None), None)
        if cors is not None:
            # First in, last out: preflights are answered before anything else runs (a rate
            # limit too: a refused preflight would read as a CORS failure), and
            # the CORS headers go on the final response.
            before.insert(0, cors.before)
            after.append(cors.after)
        # Around everything, CORS included, and called directly rather than as hooks (compiled
        # classes: native calls): the request's id first, for every hook, guard, error handler
        # and log line of the request, and last, on the final response; the metrics inside it,
        # timing all the rest and seeing the final status.
        ids = [scope.request_ids for scope in scopes if scope.request_ids is not None]
        self._request_ids = ids[-1] if ids else None  # the innermost scope's
        self._metrics = next((scope.metrics for scope in scopes if scope.metrics is not None), None)
        self._tracing = next((scope.tracing for scope in scopes if scope.tracing is not None), None)
        self._before = tuple(before)
        self._after = tuple((hook, positional_arity(hook) >= 2) for hook in after)
        self._has_after = bool(after) or self._request_ids is not None or self._metrics is not None
        guards = [guard for scope in scopes for guard in scope.guards] if scope_guards else []
        self._guards = tuple(guards + list(route_guards))
        self._middleware = tuple(mw for scope in scopes for mw in scope.middleware)
        self._threaded = threaded
        self._debug = debug
        self._executor = executor
        self.stream_body = stream_body
        self.max_body_size = max_body_size
        # The 413 answer for a body over max_body_size, naming the option(s) it came from.
        self.body_too_large = body_too_large(max_body_size, body_limit_option)
        self.options = options or {}
        pieces: list[Callable[..., Any]] = [handler, *self._before, *self._guards]
        pieces += [hook for hook, _ in self._after]
        pieces += [h for scope in scopes for h in scope.error_handlers.values()]
        self._sync = not threaded and not self._middleware and not any(is_async(p) for p in pieces)
        entry: Callable[[Request], Awaitable[Response]] = self._core_async
        for mw in reversed(self._middleware):
            entry = _wrap(mw, entry)
        self._entry = entry

    def __call__(self, request: Request) -> Response | Awaitable[Response]:
        # Set here rather than in App.resolve: compiled code stores a native attribute in a few
        # instructions, interpreted code needed hundreds (measured per request with callgrind).
        limits = self._form_limits
        if limits is not None:
            request.form_limits = limits
        loader = self._session_load
        if loader is not None:
            request.session_loader = loader
        if self._sync:
            if self._request_ids is None and self._tracing is None:
                return self._run_sync(request)
            return self._run_inline(request)
        if self._tracing is not None:
            return self._run_traced(request)
        return self._run_async(request)

    # -- the synchronous fast path ------------------------------------------------------

    def _run_inline(self, request: Request) -> Response | Awaitable[Response]:
        """The synchronous path with what it must undo when it returns, since it runs in a
        context it does not own: the request's id in its slot, the span made current."""
        tracing = self._tracing
        request_ids = self._request_ids
        if tracing is not None:
            tracing.start(request)
        try:
            result = self._run_sync(request)
            if tracing is not None:
                if not isinstance(result, Response):
                    return self._finish_traced(request, result)
                tracing.finish(request, result)
            return result
        finally:
            if tracing is not None:
                tracing.leave(request)
            if request_ids is not None:
                request_ids.leave_inline()

    async def _finish_traced(self, request: Request, pending: Awaitable[Response]) -> Response:
        """End the span once ``pending`` answers: the async path, or the inline path gone on
        asynchronously (which resumes the span)."""
        tracing = self._tracing
        assert tracing is not None
        try:
            response = await pending
        except BaseException as exc:
            tracing.fail(request, exc)
            raise
        tracing.finish(request, response)
        return response

    def _run_sync(self, request: Request) -> Response | Awaitable[Response]:
        try:
            response: Response | Awaitable[Any] = self._before_and_handler_sync(request)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a response
            response = self._handle_error_sync(request, exc)
        if not isinstance(response, Response):
            # A "sync" function returned an awaitable: finish on the slow path. (An isinstance
            # check first: inspect.isawaitable falls back to a slow ABC check for Responses.)
            return self._finish_async(request, response)
        if self._has_after:
            try:
                response = self._after_sync(request, response)
            except Exception as exc:  # noqa: BLE001
                response = self._handle_error_sync(request, exc)
        save = self._session_save
        if save is not None and request.loaded_session is not None:
            try:
                pending = save(request, response)
            except Exception as exc:  # noqa: BLE001
                return self._handle_error_sync(request, exc)
            if pending is not None:
                return self._finish_save(request, response, pending)
        return response

    def _before_and_handler_sync(self, request: Request) -> Response | Awaitable[Any]:
        self._around_before(request, True)
        for hook in self._before:
            early = hook(request)
            if early is not None:
                return _finish(request, to_response(early), self._renderer)
        for guard in self._guards:
            if guard(request) is False:
                raise HTTPException(403, "Forbidden")
        result = self.handler(request)
        if type(result) is dict:
            return json_response(dumps(result))
        if isinstance(result, Response):
            # What typed handlers return: ahead of isawaitable, whose ABC check is slow for it.
            return _finish(request, result, self._renderer)
        if inspect.isawaitable(result):
            pending: Awaitable[Any] = result
            return pending
        return _finish(request, to_response(result, self._sse_keepalive), self._renderer)

    def _after_sync(self, request: Request, response: Response) -> Response:
        for hook, wants_request in self._after:
            result = hook(request, response) if wants_request else hook(response)
            if result is not None:
                response = _finish(request, to_response(result), self._renderer)
        self._around_after(request, response)
        return response

    def _around_before(self, request: Request, on_inline_path: bool) -> None:
        request_ids = self._request_ids
        if request_ids is not None:
            request_ids.before(request, on_inline_path)
        metrics = self._metrics
        if metrics is not None:
            metrics.before(request)

    def _resume(self, request: Request) -> None:
        """The synchronous path went on asynchronously: its span and request id into the new
        context."""
        tracing = self._tracing
        if tracing is not None:
            tracing.resume(request)
        request_ids = self._request_ids
        if request_ids is not None:
            request_ids.resume(request)

    def _around_after(self, request: Request, response: Response) -> None:
        metrics = self._metrics
        if metrics is not None:
            metrics.after(request, response)
        request_ids = self._request_ids
        if request_ids is not None:
            request_ids.after(request, response)

    def _handle_error_sync(self, request: Request, exc: Exception) -> Response:
        handler, status = self._error_handler_for(exc)
        if handler is not None:
            try:
                result = _call_error_handler(handler, request, exc)
                return _finish(request, to_response(result), self._renderer)
            except Exception as second:  # noqa: BLE001
                return self._default_error(request, second, 500)
        return self._default_error(request, exc, status)

    async def _finish_async(self, request: Request, pending: Awaitable[Any]) -> Response:
        # In the task the server runs this in, not the context the chain began in.
        self._resume(request)
        try:
            result = await with_timeout(pending, self._timeout, request)
            response = _finish(request, to_response(result, self._sse_keepalive), self._renderer)
        except Exception as exc:  # noqa: BLE001
            response = await self._handle_error(request, exc)
        return await self._after_async(request, response)

    # -- the general path ---------------------------------------------------------------

    async def _run_traced(self, request: Request) -> Response:
        tracing = self._tracing
        assert tracing is not None
        # In the request's task: the span stays current until the task ends.
        tracing.start(request)
        return await self._finish_traced(request, self._run_async(request))

    async def _run_async(self, request: Request) -> Response:
        try:
            response = await self._entry(request)
            if self._middleware:
                # A page a middleware answered with itself (the core finished the handler's).
                response = _finish(request, response, self._renderer)
            return response
        except Exception as exc:  # noqa: BLE001 - a middleware failed outside the core
            return await self._handle_error(request, exc)

    async def _core_async(self, request: Request) -> Response:
        try:
            response = await self._before_and_handler(request)
        except Exception as exc:  # noqa: BLE001
            response = await self._handle_error(request, exc)
        return await self._after_async(request, response)

    async def _before_and_handler(self, request: Request) -> Response:
        self._around_before(request, False)
        for hook in self._before:
            early = await _maybe_await(hook(request))
            if early is not None:
                return _finish(request, to_response(early), self._renderer)
        for guard in self._guards:
            if await _maybe_await(guard(request)) is False:
                raise HTTPException(403, "Forbidden")
        if self._threaded:
            loop = asyncio.get_running_loop()
            # In the request's context, as asyncio.to_thread does: its context variables (the
            # current trace span, the request's id for its log lines) are the handler's too.
            run = copy_context().run
            pending: Awaitable[Any] = loop.run_in_executor(self._executor(), run, self.handler, request)
            result = await with_timeout(pending, self._timeout, request)
        else:
            result = self.handler(request)
            if inspect.isawaitable(result):
                result = await with_timeout(result, self._timeout, request)
        return _finish(request, to_response(result, self._sse_keepalive), self._renderer)

    async def _after_async(self, request: Request, response: Response) -> Response:
        for hook, wants_request in self._after:
            try:
                result = await _maybe_await(hook(request, response) if wants_request else hook(response))
            except Exception as exc:  # noqa: BLE001
                return await self._handle_error(request, exc)
            if result is not None:
                response = _finish(request, to_response(result), self._renderer)
        try:
            self._around_after(request, response)
        except Exception as exc:  # noqa: BLE001
            return await self._handle_error(request, exc)
        save = self._session_save
        if save is not None and request.loaded_session is not None:
            try:
                await _maybe_await(save(request, response))
            except Exception as exc:  # noqa: BLE001
                return await self._handle_error(request, exc)
        return response

    async def _finish_save(self, request: Request, response: Response, pending: Awaitable[Any]) -> Response:
        """A store that saves asynchronously, reached from the synchronous path."""
        self._resume(request)
        try:
            await pending
        except Exception as exc:  # noqa: BLE001
            return await self._handle_error(request, exc)
        return response

    async def _handle_error(self, request: Request, exc: Exception) -> Response:
        handler, status = self._error_handler_for(exc)
        if handler is not None:
            try:
                result = await _maybe_await(_call_error_handler(handler, request, exc))
                return _finish(request, to_response(result), self._renderer)
            except Exception as second:  # noqa: BLE001
                return self._default_error(request, second, 500)
        return self._default_error(request, exc, status)

    # -- errors -------------------------------------------------------------------------

    def _error_handler_for(self, exc: Exception) -> tuple[ErrorHandler | None, int]:
        status = exc.status if isinstance(exc, HTTPException) else 500
        for scope in self._scopes:
            handler = scope.find_error_handler(exc, status)
            if handler is not None:
                return handler, status
        return None, status

    def _default_error(self, request: Request, exc: Exception, status: int) -> Response:
        # A 5xx body names the request's id (app.enable_request_id), for the user to quote.
        if isinstance(exc, HTTPException):
            request_id = request.id if exc.status >= 500 else None
            return error_response(exc.status, exc.detail, exc.headers, exc.details, request_id)
        error_log.error("unhandled error in %s %s", request.method, request.raw_path, exc_info=exc)
        report_unhandled(exc)
        if self._debug:
            return error_response(500, f"Handler error: {type(exc).__name__}: {exc}", request_id=request.id)
        return error_response(500, "Internal Server Error", request_id=request.id)


async def with_timeout(pending: Awaitable[Any], timeout: float | None, request: Request) -> Any:
    """Await a handler's result, or raise 503 after ``timeout`` seconds (None: no limit).

    On timeout a coroutine is cancelled; a thread cannot be, and runs on to its end with its
    result dropped. Only awaitables are covered: a sync handler running inline on the event
    loop has returned before anything could time it out.
    """
    if timeout is None:
        return await pending
    task = asyncio.ensure_future(pending)
    # Our own timer rather than asyncio.wait_for: its TimeoutError cannot be told apart from
    # one the handler raised itself, and comparing clocks afterwards is off by a timer tick.
    expiry = _Expiry(task)
    timer = asyncio.get_running_loop().call_later(timeout, expiry.fire)
    try:
        return await task
    except asyncio.CancelledError:
        if not expiry.fired:
            task.cancel()  # we were cancelled (the client left): the handler goes too
            raise
        error_log.warning("handler of %s %s timed out after %gs", request.method, request.raw_path, timeout)
        raise HTTPException(503, f"Service Unavailable: the handler took longer than {timeout:g}s") from None
    finally:
        timer.cancel()


class _Expiry:
    __slots__ = ("task", "fired")

    def __init__(self, task: asyncio.Future[Any]) -> None:
        self.task = task
        self.fired = False

    def fire(self) -> None:
        self.fired = True
        self.task.cancel()


def _finish(request: Request, response: Response, renderer: Renderer | None) -> Response:
    """Let a file answer conditional and range requests, and a template render, before
    after-hooks see the response (one isinstance check for every other response)."""
    if isinstance(response, Deferred):
        return response.finish(request, renderer)
    return response


def _call_error_handler(handler: ErrorHandler, request: Request, exc: Exception) -> Any:
    if positional_arity(handler) >= 2:
        return handler(request, exc)
    return handler(exc)


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


def _wrap(mw: Middleware, inner: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    async def call(request: Request) -> Response:
        return to_response(await _maybe_await(mw(request, inner)))

    return call
