"""Test clients for users' own tests: in-process, no sockets, through the ASGI adapter.

    from cello.testing import TestClient

    def test_index():
        with TestClient(app) as client:        # runs on_startup / on_shutdown hooks
            assert client.get("/").json() == {"message": "hi"}

``AsyncTestClient`` is the same as an ``httpx.AsyncClient`` for ``async def`` tests.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any, Coroutine, TypeVar

import httpx

if TYPE_CHECKING:
    from cello.app import App

T = TypeVar("T")

BASE_URL = "http://testserver"


class _LoopThread:
    """An event loop in a daemon thread: the sync client runs the app's coroutines there."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="cello-testclient", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class _SyncASGITransport(httpx.BaseTransport):
    def __init__(self, app: App, loop: _LoopThread, client: tuple[str, int]) -> None:
        self._inner = httpx.ASGITransport(app=app, client=client)
        self._loop = loop

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def call() -> httpx.Response:
            # Read the body on the client side of the thread hop: a sync stream cannot be
            # iterated from the loop's thread as an async one.
            request.read()
            response = await self._inner.handle_async_request(request)
            content = await response.aread()
            return httpx.Response(response.status_code, headers=response.headers, content=content, request=request)

        return self._loop.run(call())


async def _lifespan(app: App, phase: str) -> None:
    await (app.startup() if phase == "startup" else app.shutdown())


class TestClient(httpx.Client):
    """A synchronous httpx client that calls ``app`` in-process."""

    __test__ = False  # not a pytest test class

    def __init__(self, app: App, base_url: str = BASE_URL, client: tuple[str, int] = ("127.0.0.1", 50000), **kwargs: Any) -> None:
        self.app = app
        self._loop_thread = _LoopThread()
        self._started = False
        super().__init__(transport=_SyncASGITransport(app, self._loop_thread, client), base_url=base_url, **kwargs)

    def __enter__(self) -> TestClient:
        super().__enter__()
        self._loop_thread.run(_lifespan(self.app, "startup"))
        self._started = True
        return self

    def __exit__(self, *args: Any) -> None:
        if self._started:
            self._loop_thread.run(_lifespan(self.app, "shutdown"))
            self._started = False
        super().__exit__(*args)
        self._loop_thread.close()


class AsyncTestClient(httpx.AsyncClient):
    """An async httpx client that calls ``app`` in-process (for ``async def`` tests)."""

    __test__ = False

    def __init__(self, app: App, base_url: str = BASE_URL, client: tuple[str, int] = ("127.0.0.1", 50000), **kwargs: Any) -> None:
        self.app = app
        super().__init__(transport=httpx.ASGITransport(app=app, client=client), base_url=base_url, **kwargs)

    async def __aenter__(self) -> AsyncTestClient:
        await super().__aenter__()
        await _lifespan(self.app, "startup")
        return self

    async def __aexit__(self, *args: Any) -> None:
        await _lifespan(self.app, "shutdown")
        await super().__aexit__(*args)
