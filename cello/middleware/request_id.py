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
"""

from __future__ import annotations

import os
import re
from typing import Final

from cello import logs
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


# Set per request: held where compiled code reaches it without a module-dict lookup.
_current_id: Final = logs.current_request_id
_POOL_SIZE: Final = 64
_pool: Final = _IdPool()
os.register_at_fork(after_in_child=_pool.forget)


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

    def before(self, request: Request) -> None:
        request_id = None
        if request.via_trusted_proxy:
            incoming = request.header(self._lower)
            if incoming is not None and _SANE.fullmatch(incoming) is not None:
                request_id = incoming
        if request_id is None:
            request_id = new_id()
        request.id = request_id
        _current_id.set(request_id)

    def resume(self, request: Request) -> None:
        """The request goes on in another context (a task): its log lines keep the id."""
        _current_id.set(request.id)

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
        # logs.current_request_id is left as it is: the endpoint ran the request in a context of its
        # own (cello/pipeline.py), which ends with it.
