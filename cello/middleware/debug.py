"""``--debug`` inspection: one log line per request with headers and truncated bodies."""

from __future__ import annotations

import logging

from cello.request import Request
from cello.response import Response

debug_log = logging.getLogger("cello.debug")

BODY_PREVIEW = 256


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


def install(registrar: object) -> None:
    from cello.blueprint import Registrar

    assert isinstance(registrar, Registrar)
    if _inspect not in registrar.scope.after:
        registrar.scope.after.insert(0, _inspect)
        registrar._changed()
