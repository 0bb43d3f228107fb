"""A typed route's handler as the pipeline calls it: bind, call, encode.

The pipeline calls every handler with the request; a typed handler is wrapped once, when the
route's endpoint is built, in one of these. The binder is the route's compiled one when a
matching build is loaded, else the interpreted ``cello.binding.binder.bind``.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from typing import Annotated, Any, Union

from cello.binding.convert import encode
from cello.binding.plan import Binder, BinderPlan
from cello.request import Request
from cello.response import JSON, Response, prepared_response
from cello.sse import SseStream

# Results the return annotation does not encode: they are responses already, or say their own
# status ((body, status) tuples; unless the annotation declares tuples, see _declares_tuples).
_AS_RETURNED = (Response, SseStream, tuple)
_RESPONSES = (Response, SseStream)


def _declares_tuples(annotation: Any) -> bool:
    """Whether results of ``annotation`` may be tuples (``-> tuple[float, float]``, a
    NamedTuple), which are then the body, not ``(body, status)``."""
    while typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) is Union or isinstance(annotation, types.UnionType):
        return any(_declares_tuples(arg) for arg in typing.get_args(annotation))
    origin = typing.get_origin(annotation) or annotation
    return isinstance(origin, type) and issubclass(origin, tuple)


class _Typed:
    __slots__ = (
        "fn",
        "plan",
        "bind",
        "status",
        "encodes",
        "explicit_status",
        "positional",
        "keywords",
        "as_returned",
    )

    def __init__(self, plan: BinderPlan, bind: Binder) -> None:
        self.fn: Callable[..., Any] = plan.handler
        self.plan = plan
        self.bind = bind
        self.status = plan.result.status
        self.encodes = plan.result.encode
        self.explicit_status = plan.result.explicit_status
        self.positional = plan.positional
        self.keywords = plan.keywords
        self.as_returned = _RESPONSES if self.encodes and _declares_tuples(plan.result.type) else _AS_RETURNED

    def call(self, request: Request) -> Any:
        args = self.bind(request, self.plan)
        if self.keywords:
            split = self.positional
            return self.fn(*args[:split], **dict(zip(self.keywords, args[split:])))
        return self.fn(*args)

    def finish(self, result: Any) -> Any:
        """The response of ``result``: encoded by the return annotation, else left to the
        pipeline's normalisation (with ``status=`` applied to what it would answer 200)."""
        if self.encodes and not isinstance(result, self.as_returned):
            return prepared_response(self.status, encode(result), JSON)
        if not self.explicit_status or isinstance(result, _AS_RETURNED):
            return result
        if result is None:
            return Response(None, self.status)
        return (result, self.status)


class SyncTypedHandler(_Typed):
    __slots__ = ()

    def __call__(self, request: Request) -> Any:
        return self.finish(self.call(request))


class AsyncTypedHandler(_Typed):
    __slots__ = ()

    async def __call__(self, request: Request) -> Any:
        return self.finish(await self.call(request))


def typed_handler(plan: BinderPlan, bind: Binder, is_async: bool) -> Callable[[Request], Any]:
    return AsyncTypedHandler(plan, bind) if is_async else SyncTypedHandler(plan, bind)
