"""`Server-Timing` and `X-Response-Time` headers: time spent in the app for the request."""

from __future__ import annotations

import time

from cello.request import Request
from cello.response import Response


def start(request: Request) -> None:
    if not request.started:
        request.started = time.perf_counter()


def finish(request: Request, response: Response) -> None:
    started = request.started
    if not started:
        return
    elapsed = (time.perf_counter() - started) * 1000
    response.headers.add("server-timing", f"app;dur={elapsed:.3f}")
    response.set_header("x-response-time", f"{elapsed:.3f}ms")
