"""The `variant` fixture of the tests/test_asgi_*.py modules: uvicorn and hypercorn, not the
native server's parsers and routers.

Those modules import test functions from the native suites together with the fixtures the
tests ask for; pytest then collects the tests again there and resolves `variant` (which the
suites' `server`/`client` fixtures pass to `serve_app`) with the definition below.
"""

from __future__ import annotations

from importlib.util import find_spec

import pytest
from apputil import ASGI_SERVERS

# Where a server itself breaks a test, known and reported upstream. Strict: the day the server
# is fixed the test passes, the xfail fails, and the entry goes.
SERVER_BUGS: dict[tuple[str, str], str] = {
    # Hypercorn answers the client's close frame but tells the app 1006 (or 1000) whatever code
    # the client sent: pgjones/hypercorn issue 127.
    ("hypercorn", "test_client_close_code_reaches_the_handler"): "hypercorn reports a client's close code as 1006",
    ("hypercorn", "test_client_close_without_code"): "hypercorn reports a client's close code as 1006",
}


@pytest.fixture(
    params=[
        pytest.param(
            (name, "interpreted"),
            id=name,
            marks=pytest.mark.skipif(
                find_spec(name) is None, reason=f"{name} is in the test extra: pip install -e '.[test]'"
            ),
        )
        for name in ASGI_SERVERS
    ]
)
def variant(request: pytest.FixtureRequest) -> tuple[str, str]:
    server, router = request.param
    bug = SERVER_BUGS.get((server, request.function.__name__))
    if bug is not None:
        request.node.add_marker(pytest.mark.xfail(reason=bug, strict=True))
    return server, router
