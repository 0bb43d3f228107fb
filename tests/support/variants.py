"""The server variants a behaviour test runs on, by default all of them:

- `cello serve` with each HTTP parser (httptools, h11) and each router (interpreted, compiled);
- uvicorn and hypercorn serving the same test app through cello.asgi.

A test asks for the ``variant`` argument (a ``(server_or_parser, router)`` pair that the
conftest's ``serve_app`` fixture takes) and the conftest parametrizes it with ``variant_params``.
A test that only makes sense on `cello serve` (raw framing, the server's limits, ping/pong,
its access log...) says so with ``@pytest.mark.native_only(reason=...)`` and runs on the four
native variants only.
"""

from __future__ import annotations

from importlib.util import find_spec
from typing import Any

import pytest

PARSERS = ("httptools", "h11")
ROUTERS = ("interpreted", "compiled")
# Third-party servers that run the same test apps through cello.asgi.
ASGI_SERVERS = ("uvicorn", "hypercorn")

# Where a server itself breaks a test, known and reported upstream. Strict: the day the server
# is fixed the test passes, the xfail fails, and the entry goes.
SERVER_BUGS: dict[tuple[str, str], str] = {
    # Hypercorn answers the client's close frame but tells the app 1006 (or 1000) whatever code
    # the client sent: pgjones/hypercorn issue 127.
    ("hypercorn", "test_client_close_code_reaches_the_handler"): "hypercorn reports a client's close code as 1006",
    ("hypercorn", "test_client_close_without_code"): "hypercorn reports a client's close code as 1006",
    # Not reported yet: its ws_stream.app_send returns quietly once the client has gone, where the
    # ASGI spec asks for an OSError, so only a receive (or the handler's end) can tell the app.
    ("hypercorn", "test_forwarding_to_a_client_that_has_gone_ends_quietly"): (
        "hypercorn drops a WebSocket send to a client that has gone without raising"
    ),
}


def variant_params(test_name: str, native_only: bool = False) -> list[Any]:
    """The ``variant`` parameters of one test: native ones, then (unless ``native_only``) the
    ASGI servers, skipped where not installed and xfailed where the server has a known bug."""
    params = [pytest.param((p, r), id=f"{p}-{r}") for p in PARSERS for r in ROUTERS]
    if native_only:
        return params
    for name in ASGI_SERVERS:
        marks = [
            pytest.mark.skipif(find_spec(name) is None, reason=f"{name} is in the test extra: pip install -e '.[test]'")
        ]
        bug = SERVER_BUGS.get((name, test_name))
        if bug is not None:
            marks.append(pytest.mark.xfail(reason=bug, strict=True))
        params.append(pytest.param((name, "interpreted"), id=name, marks=marks))
    return params
