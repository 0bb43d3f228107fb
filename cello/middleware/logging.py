"""The access log: one line per request, through stdlib ``logging`` or straight to a file.

``enable_logging()`` sends each line to the ``cello.access`` logger. ``enable_logging(file=...)``
appends lines to a file through a buffer that is written every half second, past 64 KiB, and
at shutdown: a busy server then pays one write per batch instead of one per request.

Both are a synchronous before/after hook pair, so routes keep the inline fast path.

``format="json"`` makes each line a JSON object (cello/logs.py): the logger's records carry the
fields as attributes for ``JsonFormatter`` (whenever the framework's logs are JSON: also with
``cello serve --log-format json``), the file gets the same object per line. The id of
the request (``app.enable_request_id``) is in both formats: a record's ``request_id``, a text
line's `` request_id=...`` suffix, a JSON line's ``request_id``.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import time
from collections.abc import Callable
from typing import Any

import orjson

from cello import logs as cello_logs
from cello.pipeline import Scope
from cello.request import Request
from cello.response import Response

access_log = logging.getLogger("cello.access")

FLUSH_INTERVAL = 0.5
FLUSH_SIZE = 64 * 1024


def start(request: Request) -> None:
    if not request.started:
        request.started = time.perf_counter()


def format_line(request: Request, response: Response) -> str:
    elapsed = (time.perf_counter() - request.started) * 1000 if request.started else 0.0
    client = request.client
    peer = f"{client[0]}:{client[1]}" if client else "-"
    query = f"?{request.query_string}" if request.query_string else ""
    return (
        f'{peer} - "{request.method} {request.raw_path}{query} HTTP/{request.http_version}" '
        f"{response.status} {elapsed:.2f}ms"
    )


def fields(request: Request, response: Response) -> dict[str, Any]:
    """What a JSON access line says besides the record's own fields (cello.logs.ACCESS_FIELDS)."""
    elapsed = (time.perf_counter() - request.started) * 1000 if request.started else 0.0
    client = request.client
    found: dict[str, Any] = {
        "route": request.route,
        "method": request.method,
        "path": request.raw_path,
        "status": response.status,
        "duration_ms": round(elapsed, 3),
        "client": f"{client[0]}:{client[1]}" if client else None,
    }
    if request.query_string:
        found["query"] = request.query_string
    return found


def to_logger(request: Request, response: Response) -> None:
    if not access_log.isEnabledFor(logging.INFO):
        return
    # A record made here rather than by Logger.info: that would walk the stack to find the
    # caller's file and line on every request, for a line that never shows them.
    record = logging.LogRecord(access_log.name, logging.INFO, "", 0, format_line(request, response), None, None)
    if cello_logs.structured:
        # JSON lines (enable_logging(format="json") or `cello serve --log-format json`): the
        # fields go with the record, for JsonFormatter.
        record.__dict__.update(fields(request, response))
    request_id = request.id
    if request_id is not None:
        # The request's own id: it is no longer the current one once its after-hooks are done.
        record.request_id = request_id
    access_log.handle(record)


class FileSink:
    """Buffered access-log lines for one file, prefixed with an ISO 8601 UTC timestamp."""

    def __init__(self, path: str, json: bool = False) -> None:
        self.path = path
        self.json = json
        self._lines: list[str] = []
        self._size = 0
        self._scheduled = False
        self._second = -1
        self._stamp = ""
        atexit.register(self.flush)

    def __call__(self, request: Request, response: Response) -> None:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        if self.json:
            line = self._json_line(request, response)
        else:
            line = f"{self._stamp} {format_line(request, response)}\n"
            if request.id is not None:
                line = f"{line[:-1]} request_id={request.id}\n"
        self._lines.append(line)
        self._size += len(line)
        if self._size >= FLUSH_SIZE:
            self.flush()
        elif not self._scheduled:
            self._schedule()

    def _json_line(self, request: Request, response: Response) -> str:
        line: dict[str, Any] = {
            "timestamp": cello_logs.iso_timestamp(time.time()),
            "level": "INFO",
            "logger": access_log.name,
            "message": format_line(request, response),
        }
        if request.id is not None:
            line["request_id"] = request.id
        line.update(fields(request, response))
        return orjson.dumps(line).decode() + "\n"

    def _schedule(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()  # not on a loop (a plain call in a test): write at once
            return
        self._scheduled = True
        loop.call_later(FLUSH_INTERVAL, self._timed_flush)

    def _timed_flush(self) -> None:
        self._scheduled = False
        self.flush()

    def flush(self) -> None:
        if not self._lines:
            return
        data = "".join(self._lines)
        self._lines.clear()
        self._size = 0
        with open(self.path, "a", encoding="utf-8") as out:
            out.write(data)


def install(scope: Scope, file: str | None = None, format: str = "text") -> Callable[[Request, Response], None]:
    """Add the access log to ``scope`` (an app's or a blueprint's); returns the line writer.
    The caller rebuilds its endpoints and, for a FileSink, flushes it at shutdown."""
    json = cello_logs.check_format(format) == "json"
    finish: Callable[[Request, Response], None] = to_logger if file is None else FileSink(file, json)
    scope.before.insert(0, start)
    # After-hooks run in reverse registration order: first in the list runs last, and the
    # access log must see the final status.
    scope.after.insert(0, finish)
    return finish
