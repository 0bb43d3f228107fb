"""Request ids: one per request, in ``request.id``, the response's ``X-Request-ID``, the log
lines written while the request is handled (cello/logs.py) and the body of a 5xx answer.

The id a trusted proxy (``forwarded_allow_ips``) sends in the header is kept, so a line of the
proxy's log and one of the app's can be matched; anyone else's is ignored, as is one too long or
with characters that do not belong in a log line or a header (a new id is made instead): a client
must not be able to choose the id that lands in the logs, nor inject text into them.

The endpoints call :meth:`RequestIds.before` first and :meth:`RequestIds.after` last
(cello/pipeline.py): the id is there for every hook, guard and error handler, and the
``X-Request-ID`` header is added to the final response. Compiled, and synchronous, so routes keep
the inline fast path; nothing runs until ``app.enable_request_id()``.

Where code that has no ``request`` at hand (a log filter) finds the id, :func:`current_request_id`:

* a request handled on the inline path (synchronous hooks and handler, called from the
  server's ``data_received``: nothing else runs on that thread until they return) has it in
  :data:`inline`, with the thread's ident: two attribute stores and one clear, where a context
  of its own and a ``ContextVar.set`` cost ~1,500 instructions (callgrind), a fifth of what
  a hello-world request costs in all;
* any other (a task, the thread of a ``threaded`` handler, which runs in a copy of the
  task's context) in a context variable, set in that task's context.
"""

from __future__ import annotations

import os
import re
import threading
from contextvars import ContextVar
from typing import Final

from cello.request import Request
from cello.response import Response

MAX_LENGTH: Final = 128
# What an incoming id may be made of: letters, digits and the punctuation of UUIDs, base64 and
# the ids proxies make (nginx's $request_id, AWS's Root=1-...), nothing a log or a header would
# need to escape.
_SANE: Final = re.compile(rf"[A-Za-z0-9._:+/=@-]{{1,{MAX_LENGTH}}}")
_TOKEN: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


class _IdPool:
    """New ids: 32 hex digits of randomness each (a uuid4's size), cut from one string of
    ``os.urandom`` made for _POOL_SIZE ids at a time: one system call per batch, and cheaper per
    id than ``random.getrandbits`` (whose generator costs more per bit) or ``uuid.uuid4()``."""

    __slots__ = ("digits", "next")

    def __init__(self) -> None:
        self.digits = ""
        self.next = 0

    def take(self) -> str:
        start = self.next
        if start >= len(self.digits):
            self.digits = os.urandom(16 * _POOL_SIZE).hex()
            start = 0
        self.next = start + 32
        return self.digits[start : start + 32]

    def forget(self) -> None:
        # A forked worker must not hand out the ids its parent had made.
        self.digits = ""
        self.next = 0


class _Inline:
    """The id of the request handled on the inline path now, and the thread handling it."""

    __slots__ = ("request_id", "thread")

    def __init__(self) -> None:
        self.request_id: str | None = None
        self.thread = 0


inline: Final = _Inline()
_context_id: ContextVar[str | None] = ContextVar("cello_request_id", default=None)
_get_ident: Final = threading.get_ident
_POOL_SIZE: Final = 64
_pool: Final = _IdPool()
os.register_at_fork(after_in_child=_pool.forget)


def current_request_id() -> str | None:
    """The id of the request whose code runs now (``app.enable_request_id``), or None."""
    slot = inline
    # The slot first: an inline request may run in another request's task context (a queued
    # pipelined request, answered when the one before it finishes in its task).
    if slot.request_id is not None and slot.thread == _get_ident():
        return slot.request_id
    return _context_id.get()


def new_id() -> str:
    """A new request id."""
    return _pool.take()


def sane(value: str) -> bool:
    """Whether an incoming id is kept: at most MAX_LENGTH of the characters ``_SANE`` allows."""
    return _SANE.fullmatch(value) is not None


class RequestIds:
    """Gives each request its id (``before``) and sends it back (``after``)."""

    __slots__ = ("header", "header_lower", "_lower")

    def __init__(self, header: str = "X-Request-ID") -> None:
        if not isinstance(header, str) or _TOKEN.fullmatch(header) is None:
            raise ValueError(f"enable_request_id: header must be a header name like 'X-Request-ID', not {header!r}")
        self.header = header
        self.header_lower = header.lower()
        self._lower = self.header_lower.encode("ascii")

    def before(self, request: Request, on_inline_path: bool) -> None:
        """Give ``request`` its id; on the inline path, :meth:`leave_inline` must follow."""
        request_id = None
        if request.via_trusted_proxy:
            incoming = request.header(self._lower)
            if incoming is not None and _SANE.fullmatch(incoming) is not None:
                request_id = incoming
        if request_id is None:
            request_id = new_id()
        request.id = request_id
        if on_inline_path:
            slot = inline
            slot.request_id = request_id
            slot.thread = _get_ident()
        else:
            _context_id.set(request_id)

    def leave_inline(self) -> None:
        """The inline path returned (its response, or an awaitable that :meth:`resume`s)."""
        inline.request_id = None

    def resume(self, request: Request) -> None:
        """The request goes on in a task of its own: its log lines keep the id."""
        _context_id.set(request.id)

    def after(self, request: Request, response: Response) -> None:
        request_id = request.id
        if request_id is not None:
            headers = response.raw_headers()
            lower = self.header_lower
            size = len(lower)
            for name, _ in headers:
                # Lengths first: most names are not that long, and lower() is the cost.
                if len(name) == size and name.lower() == lower:
                    break  # the handler set it: its value stands
            else:
                # Valid as a header value: made here, or matched _SANE.
                headers.append((self.header, request_id))
        # The id stays current until the pipeline calls leave_inline (the inline path), or
        # with the task's context, which ends with the request.
