"""Work that runs once a response has been written: ``request.after_response(fn, *args)``.

A request that registers work gets one :class:`AfterResponse` (``request.after_write``),
which collects the calls in order. Whoever writes the response (the server, or the ASGI
adapter) calls it once the response is out, or has failed to go out, and awaits what it
returns; the server counts the running ones as in-flight work at shutdown. A request that
registers nothing never creates one.

Each call runs after the one before it has finished. An ``async def`` function is awaited
on the event loop; a plain function runs in a worker thread of the loop's default executor,
not on the loop (background work is typically slow: mail, a remote log) and not in the app's
``threadpool_workers`` pool (a burst of it must not keep ``threaded=True`` handlers, whose
clients are waiting, from getting a thread). A failure is logged with the route and
traceback and the next call runs: the response is long gone and cannot be changed.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

logger = logging.getLogger("cello.error")

_Call = tuple[Callable[..., Any], tuple[Any, ...], Mapping[str, Any]]


class AfterResponse:
    """The calls one request registered, run in order by ``await after_response()``."""

    __slots__ = ("_route", "_calls", "_done")

    def __init__(self, route: str) -> None:
        # "POST /orders/{id}": what a failure is logged with. A string, not the request, so
        # that the request and its work do not keep each other alive.
        self._route = route
        self._calls: list[_Call] = []
        self._done = 0

    def add(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
        if not callable(fn):
            raise TypeError(f"after_response needs a function to call, not {type(fn).__name__}")
        self._calls.append((fn, args, kwargs))

    def __len__(self) -> int:
        """How many calls have not finished (what a shutdown that cuts them off reports)."""
        return len(self._calls) - self._done

    def __call__(self) -> Coroutine[Any, Any, None]:
        return self._run()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        calls = self._calls
        # By index: a call may register more work on the same request, which then runs too.
        while self._done < len(calls):
            fn, args, kwargs = calls[self._done]
            try:
                if _is_async(fn):
                    await fn(*args, **kwargs)
                else:
                    result = await loop.run_in_executor(None, functools.partial(fn, *args, **kwargs))
                    if inspect.isawaitable(result):
                        await result  # a plain function that handed back a coroutine
            except Exception:
                logger.exception("after_response task %s of %s failed", _name(fn), self._route)
            self._done += 1

    def __repr__(self) -> str:
        names = ", ".join(_name(fn) for fn, _, _ in self._calls)
        return f"<AfterResponse of {self._route}: {names}>"


def _is_async(fn: Callable[..., Any]) -> bool:
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004 - an object whose __call__ is async
    return call is not None and inspect.iscoroutinefunction(call)


def _name(fn: Callable[..., Any]) -> str:
    if isinstance(fn, functools.partial):
        return _name(fn.func)
    name = getattr(fn, "__name__", None)
    return name if isinstance(name, str) else type(fn).__name__
