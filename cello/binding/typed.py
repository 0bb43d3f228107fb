"""A typed route's handler as the pipeline calls it: bind, call, encode.

The pipeline calls every handler with the request; a typed handler is wrapped once, when the
route's endpoint is built, in one of these. The binder is the route's compiled one when a
matching build is loaded, else the interpreted ``cello.binding.binder.bind``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cello.binding.convert import encode
from cello.binding.plan import Binder, BinderPlan
from cello.request import Request
from cello.response import JSON, Response, prepared_response
from cello.sse import SseStream

# Results the return annotation does not encode: they are responses already, or say their own
# status ((body, status) tuples; unless the annotation declares tuples: ResultPlan.tuples).
_AS_RETURNED = (Response, SseStream, tuple)
_RESPONSES = (Response, SseStream)


def typed_handler(plan: BinderPlan, bind: Binder, is_async: bool) -> Callable[[Request], Any]:
    """The function the pipeline calls for a typed route: bind, call, encode.

    A closure rather than an object with ``__call__``: calling a function costs measurably less
    than calling an instance, and this runs on every request of the route
    (benchmarks/instructions.py)."""
    fn: Callable[..., Any] = plan.handler
    status = plan.result.status
    encodes = plan.result.encode
    explicit_status = plan.result.explicit_status
    as_returned = _RESPONSES if encodes and plan.result.tuples else _AS_RETURNED
    split = plan.positional
    keywords = plan.keywords

    def call(args: list[Any]) -> Any:
        return fn(*args[:split], **dict(zip(keywords, args[split:])))

    def other(result: Any) -> Any:
        """A result the annotation does not encode: left to the pipeline's normalisation,
        with ``status=`` applied to what it would answer 200."""
        if not explicit_status or isinstance(result, _AS_RETURNED):
            return result
        if result is None:
            return Response(None, status)
        return (result, status)

    if is_async:

        async def handle_async(request: Request) -> Any:
            args = bind(request, plan)
            result = await (call(args) if keywords else fn(*args))
            if encodes and not isinstance(result, as_returned):
                return prepared_response(status, encode(result), JSON)
            return other(result)

        return handle_async

    def handle(request: Request) -> Any:
        args = bind(request, plan)
        result = call(args) if keywords else fn(*args)
        if encodes and not isinstance(result, as_returned):
            return prepared_response(status, encode(result), JSON)
        return other(result)

    return handle
