"""Shared test set-up: `async def` tests run on a fresh event loop (uvloop when present); the
test apps' servers are started once per session (``serve_app``); a test that asks for
``variant`` runs on every server variant (tests/support/variants.py)."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    kwargs: dict[str, Any] = {name: pyfuncitem.funcargs[name] for name in names}
    asyncio.run(pyfuncitem.obj(**kwargs))
    return True


# -- servers of the test apps, one per (app, parser, router), shared by the session -------

from collections.abc import Callable, Iterator, Mapping  # noqa: E402

from support.servers import RunningServer, start_asgi_server, start_server  # noqa: E402
from support.variants import ASGI_SERVERS, variant_params  # noqa: E402

_servers: dict[tuple[str, str, str, tuple[str, ...], tuple[tuple[str, str], ...]], RunningServer] = {}


@pytest.fixture(scope="session")
def serve_app() -> Iterator[Callable[..., RunningServer]]:
    """``serve_app("tests/apps/basic.py", http, router)`` -> a running server (started once).

    ``http`` is a parser of `cello serve`, or an ASGI server's name (uvicorn, hypercorn); ``env``
    adds environment variables (``CELLO_CHANNELS``, say) for the server process."""

    def get(
        app_ref: str,
        http: str = "httptools",
        router: str = "interpreted",
        *extra: str,
        env: Mapping[str, str] | None = None,
    ) -> RunningServer:
        key = (app_ref, http, router, tuple(extra), tuple(sorted((env or {}).items())))
        server = _servers.get(key)
        if server is None or server.process.poll() is not None:
            if http in ASGI_SERVERS:
                # `cello serve` options mean nothing to another server: refuse rather than ignore.
                assert not extra and router == "interpreted", (router, extra)
                server = start_asgi_server(app_ref, http, env)
            else:
                server = start_server(app_ref, http, router, *extra, env=env)
            _servers[key] = server
        return server

    yield get
    for server in _servers.values():
        server.stop()
    _servers.clear()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every behaviour test that asks for ``variant`` runs on every server variant
    (support/variants.py), or on `cello serve`'s four only when marked ``native_only``."""
    if "variant" in metafunc.fixturenames:
        native_only = metafunc.definition.get_closest_marker("native_only") is not None
        metafunc.parametrize("variant", variant_params(metafunc.function.__name__, native_only))


# -- a real Redis for the channel tests ---------------------------------------------------

from support.redis import RedisServer  # noqa: E402


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One ``redis-server`` for the session; tests that stop Redis start their own instead."""
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture(params=["memory", "redis"])
def broker_url(request: pytest.FixtureRequest) -> str:
    """The URL of each broker: the same behaviour is expected of both."""
    if request.param == "memory":
        return "memory://"
    server: RedisServer = request.getfixturevalue("redis_server")
    return server.url
