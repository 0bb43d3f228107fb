"""The framework's log output: text or JSON lines, with the id of the request being handled.

``current_request_id()`` is the id of the request whose code runs now (``app.enable_request_id``
gives each request one when it starts; cello/middleware/request_id.py). ``RequestIdFilter`` copies
it onto log records as ``record.request_id``; the handler Cello installs (``cello serve``) has it,
and any handler of the user's may add it so that ``%(request_id)s`` works in its format and the
user's own log calls inside handlers carry the id. A filter rather than a log record factory: a
factory adding ``request_id`` to every record would make ``logger.info(..., extra={"request_id":
...})`` raise KeyError (the logging module refuses extras that overwrite a record attribute).

``JsonFormatter`` writes one JSON object per line: timestamp (ISO 8601, UTC), level, logger,
message, request_id when known, the access log's fields (route, method, path, status,
duration_ms, client) on its records, and the traceback as ``exception``. ``enable_logging(
format="json")`` and ``cello serve --log-format json`` choose it for the handler Cello installs.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, Final

import orjson

# Re-exported: the name users know it by (docs/operations.md).
from cello.middleware.request_id import current_request_id as current_request_id

FORMATS: Final = ("text", "json")

# Attributes of an access-log record (cello/middleware/logging.py) that a JSON line carries.
ACCESS_FIELDS: Final = ("route", "method", "path", "query", "status", "duration_ms", "client")

TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
TEXT_DATE_FORMAT: Final = "%H:%M:%S"

_format = "text"
# Whether the format is "json": access-log records then carry their fields (read per request).
structured = False
# The handler configure() installed on the "cello" logger, if any: its formatter follows the format.
_handler: logging.Handler | None = None


def check_format(format: str) -> str:
    if format not in FORMATS:
        raise ValueError(f"log format is 'text' or 'json', not {format!r}")
    return format


def iso_timestamp(created: float) -> str:
    """``2026-12-03T01:02:03.456Z``: a record's time in UTC, to the millisecond."""
    seconds = int(created)
    millis = int((created - seconds) * 1000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(seconds))}.{millis:03d}Z"


def _request_id_of(record: logging.LogRecord) -> str | None:
    request_id = record.__dict__.get("request_id")
    if request_id is None:
        # Without the filter: formatting runs in the thread that logged (a StreamHandler), so
        # the request being handled is still the current one.
        request_id = current_request_id()
    return request_id if isinstance(request_id, str) and request_id != "-" else None


class RequestIdFilter(logging.Filter):
    """Sets ``record.request_id`` to the id of the request being handled ("-" outside one),
    unless the record has one already (the access log's, or a caller's ``extra``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "request_id" not in record.__dict__:
            record.request_id = current_request_id() or "-"
        return True


class TextFormatter(logging.Formatter):
    """The text format, with `` request_id=...`` at the end of the lines logged for a request."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = _request_id_of(record)
        if request_id is None:
            return line
        # After the message, before a traceback: the id stays on the line a reader scans.
        first, newline, rest = line.partition("\n")
        return f"{first} request_id={request_id}{newline}{rest}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line (see the module's docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "timestamp": iso_timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = _request_id_of(record)
        if request_id is not None:
            line["request_id"] = request_id
        fields = record.__dict__
        for key in ACCESS_FIELDS:
            if key in fields:
                line[key] = fields[key]
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        # default=str: a value logging would have printed must not make the line fail.
        return orjson.dumps(line, default=str).decode()


def formatter(format: str | None = None) -> logging.Formatter:
    """The formatter of ``format`` (None: the one chosen last, "text" by default)."""
    if (format or _format) == "json":
        return JsonFormatter()
    return TextFormatter(TEXT_FORMAT, TEXT_DATE_FORMAT)


def use_format(format: str) -> None:
    """Make the framework's log output ``format`` ("text" or "json"): the handler installed by
    ``configure`` now, or later. Process-wide, as the "cello" logger is."""
    global _format, structured
    _format = check_format(format)
    structured = _format == "json"
    if _handler is not None:
        _handler.setFormatter(formatter())


def configure(level: int, format: str | None = None) -> None:
    """Set the "cello" loggers' level and, unless the process has configured logging itself
    (a handler on the root or the "cello" logger), write their lines to stderr in ``format``
    (None: the one chosen by ``use_format``)."""
    global _handler
    if format is not None:
        use_format(format)
    root = logging.getLogger("cello")
    root.setLevel(level)
    if not logging.getLogger().handlers and not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(formatter())
        handler.addFilter(RequestIdFilter())
        root.addHandler(handler)
        _handler = handler
