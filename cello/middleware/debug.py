"""``--debug`` inspection: one log line per request with headers and truncated bodies, and a
warning when a sync handler holds the event loop."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from cello.pipeline import Scope
from cello.request import Request
from cello.response import Response

debug_log = logging.getLogger("cello.debug")

BODY_PREVIEW = 256
# Seconds a sync handler may run inline on the event loop before debug mode warns: meanwhile
# every other connection of the process waits.
SLOW_SYNC_HANDLER = 0.1


class WarnWhenSlow:
    """A sync handler, timed: the first call over SLOW_SYNC_HANDLER logs a warning naming the
    route. Only debug mode composes it in (App decides when it builds the route's chain)."""

    __slots__ = ("handler", "route", "warned")

    def __init__(self, handler: Callable[[Request], Any], route: str) -> None:
        self.handler = handler
        self.route = route
        self.warned = False

    def __call__(self, request: Request) -> Any:
        started = time.perf_counter()
        try:
            return self.handler(request)
        finally:
            elapsed = time.perf_counter() - started
            if elapsed > SLOW_SYNC_HANDLER and not self.warned:
                self.warned = True
                name = getattr(self.handler, "__qualname__", repr(self.handler))
                debug_log.warning(
                    "%s: the sync handler %s blocked the event loop for %.0f ms (every other request "
                    "of this process waited); declare the route with threaded=True or make it `async def`",
                    self.route,
                    name,
                    elapsed * 1000,
                )


def _preview(body: bytes) -> str:
    text = body[:BODY_PREVIEW].decode("utf-8", "replace")
    return text + (f"... ({len(body)} bytes)" if len(body) > BODY_PREVIEW else "")


def _inspect(request: Request, response: Response) -> None:
    if not debug_log.isEnabledFor(logging.DEBUG):
        return
    body = "<stream>" if response.is_streaming else _preview(response.body())
    debug_log.debug(
        "%s %s -> %d\n  request headers: %s\n  request body: %s\n  response headers: %s\n  response body: %s",
        request.method,
        request.raw_path,
        response.status,
        dict(request.headers.items()),
        _preview(request.body()),
        response.raw_headers(),
        body,
    )


def install(scope: Scope) -> None:
    """Add the request/response log to ``scope`` (once); the caller rebuilds its endpoints."""
    if _inspect not in scope.after:
        scope.after.insert(0, _inspect)
