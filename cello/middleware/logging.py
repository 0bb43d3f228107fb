"""The access log: one line per request through stdlib ``logging`` (logger ``cello.access``).

Implemented as a synchronous before/after hook pair so that routes keep the inline fast path.
"""

from __future__ import annotations

import logging
import time

from cello.request import Request
from cello.response import Response

access_log = logging.getLogger("cello.access")


def _start(request: Request) -> None:
    request.state.cello_started = time.perf_counter()


def _finish(request: Request, response: Response) -> None:
    if not access_log.isEnabledFor(logging.INFO):
        return
    started = request.state.get("cello_started")
    elapsed = (time.perf_counter() - started) * 1000 if started is not None else 0.0
    client = request.client
    peer = f"{client[0]}:{client[1]}" if client else "-"
    query = f"?{request.query_string}" if request.query_string else ""
    access_log.info(
        '%s - "%s %s%s HTTP/%s" %d %.2fms',
        peer,
        request.method,
        request.raw_path,
        query,
        request.http_version,
        response.status,
        elapsed,
    )


def install(registrar: object) -> None:
    from cello.blueprint import Registrar

    assert isinstance(registrar, Registrar)
    registrar.scope.before.insert(0, _start)
    # After-hooks run in reverse registration order: first in the list runs last, and the
    # access log must see the final status.
    registrar.scope.after.insert(0, _finish)
    registrar._changed()
