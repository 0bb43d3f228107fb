"""Test clients for users' own tests: in-process, no sockets, through the ASGI adapter.

    from cello.testing import TestClient

    def test_index():
        with TestClient(app) as client:        # runs on_startup / on_shutdown hooks
            assert client.get("/").json() == {"message": "hi"}

``AsyncTestClient`` is the same as an ``httpx.AsyncClient`` for ``async def`` tests.

WebSocket routes, as with Starlette's TestClient:

        with client.websocket_connect("/ws/chat") as ws:
            ws.send_text("hello")
            assert ws.receive_text() == "Echo: hello"
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Coroutine, Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote, urlsplit

import httpx
import orjson
from websockets.frames import CloseCode

from cello.websocket import WebSocketDisconnect

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

    def __init__(
        self, app: App, base_url: str = BASE_URL, client: tuple[str, int] = ("127.0.0.1", 50000), **kwargs: Any
    ) -> None:
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

    def websocket_connect(
        self, path: str, subprotocols: Sequence[str] | None = None, headers: Mapping[str, str] | None = None
    ) -> WebSocketTestSession:
        """Open a WebSocket to ``path``; raises WebSocketDenied if the app refuses it."""
        session = WebSocketTestSession(self.app, self._loop_thread, path, subprotocols, headers)
        session.connect()
        return session


class WebSocketDenied(Exception):
    """The app refused the WebSocket handshake with this HTTP response."""

    def __init__(self, status_code: int, headers: list[tuple[bytes, bytes]], content: bytes) -> None:
        super().__init__(f"WebSocket handshake refused with HTTP {status_code}")
        self.status_code = status_code
        self.headers = httpx.Headers(headers)
        self.content = content

    def json(self) -> Any:
        return orjson.loads(self.content)


class WebSocketTestSession:
    """One in-process WebSocket: the app runs on the client's loop thread; this side blocks."""

    __test__ = False

    def __init__(
        self,
        app: App,
        loop: _LoopThread,
        path: str,
        subprotocols: Sequence[str] | None,
        headers: Mapping[str, str] | None,
        timeout: float = 10.0,
    ) -> None:
        self._app = app
        self._loop = loop
        self.timeout = timeout
        url = urlsplit(path)
        fields = [(b"host", b"testserver"), (b"sec-websocket-version", b"13")]
        if subprotocols:
            fields.append((b"sec-websocket-protocol", ", ".join(subprotocols).encode("latin-1")))
        fields += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
        self._scope: dict[str, Any] = {
            "type": "websocket",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "scheme": "ws",
            "path": unquote(url.path),
            "raw_path": url.path.encode("latin-1"),
            "query_string": url.query.encode("latin-1"),
            "headers": fields,
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
            "subprotocols": list(subprotocols or ()),
            "extensions": {"websocket.http.response": {}},
        }
        self._from_app: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._to_app: asyncio.Queue[dict[str, Any]] | None = None
        self._closed = False
        self.subprotocol: str | None = None
        self.accept_headers: httpx.Headers = httpx.Headers()

    def connect(self) -> None:
        async def make_queue() -> asyncio.Queue[dict[str, Any]]:
            return asyncio.Queue()

        to_app = self._to_app = self._loop.run(make_queue())
        from_app = self._from_app

        async def receive() -> dict[str, Any]:
            return await to_app.get()

        async def send(message: MutableMapping[str, Any]) -> None:
            from_app.put(dict(message))

        to_app.put_nowait({"type": "websocket.connect"})  # not running yet: no thread hop needed
        self._task = asyncio.run_coroutine_threadsafe(self._app(self._scope, receive, send), self._loop.loop)
        self._task.add_done_callback(lambda _: from_app.put(None))
        message = self._next()
        if message["type"] == "websocket.accept":
            self.subprotocol = message.get("subprotocol")
            self.accept_headers = httpx.Headers(message.get("headers") or [])
            return
        self._closed = True
        if message["type"] == "websocket.http.response.start":
            body = b""
            while True:
                part = self._next()
                body += part.get("body", b"")
                if not part.get("more_body", False):
                    break
            raise WebSocketDenied(message["status"], message.get("headers", []), body)
        raise WebSocketDisconnect(int(message.get("code", CloseCode.NORMAL_CLOSURE)), str(message.get("reason") or ""))

    def _next(self) -> dict[str, Any]:
        try:
            message = self._from_app.get(timeout=self.timeout)
        except queue.Empty:
            raise TimeoutError(f"the app sent nothing within {self.timeout}s") from None
        if message is None:
            self._from_app.put(None)  # stays finished for the next call
            self._task.result()  # the app's own exception, if it raised one
            raise WebSocketDisconnect(CloseCode.ABNORMAL_CLOSURE, "the app returned")
        return message

    def _put(self, message: dict[str, Any]) -> None:
        to_app = self._to_app
        assert to_app is not None
        self._loop.loop.call_soon_threadsafe(to_app.put_nowait, message)

    # -- what a client does ----------------------------------------------------------------

    def send_text(self, data: str) -> None:
        self._put({"type": "websocket.receive", "text": data})

    def send_bytes(self, data: bytes) -> None:
        self._put({"type": "websocket.receive", "bytes": data})

    def send_json(self, data: Any, mode: str = "text") -> None:
        encoded = orjson.dumps(data)
        if mode == "text":
            self.send_text(encoded.decode("utf-8"))
        else:
            self.send_bytes(encoded)

    def receive(self) -> str | bytes:
        """The next message; WebSocketDisconnect (with the app's code) once the app closed."""
        if self._closed:
            raise WebSocketDisconnect(CloseCode.ABNORMAL_CLOSURE, "already closed")
        message = self._next()
        if message["type"] == "websocket.close":
            self._closed = True
            raise WebSocketDisconnect(
                int(message.get("code", CloseCode.NORMAL_CLOSURE)), str(message.get("reason") or "")
            )
        text = message.get("text")
        return text if text is not None else bytes(message.get("bytes") or b"")

    def receive_text(self) -> str:
        data = self.receive()
        if not isinstance(data, str):
            raise TypeError("expected a text message, got a binary one")
        return data

    def receive_bytes(self) -> bytes:
        data = self.receive()
        if not isinstance(data, bytes):
            raise TypeError("expected a binary message, got a text one")
        return data

    def receive_json(self) -> Any:
        return orjson.loads(self.receive())

    def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Close from the client side and wait for the handler to finish."""
        if not self._closed:
            self._closed = True
            self._put({"type": "websocket.disconnect", "code": code, "reason": reason})
        self._task.result(self.timeout)

    def __enter__(self) -> WebSocketTestSession:
        return self

    def __exit__(self, *args: Any) -> None:
        self.close()


class AsyncTestClient(httpx.AsyncClient):
    """An async httpx client that calls ``app`` in-process (for ``async def`` tests)."""

    __test__ = False

    def __init__(
        self, app: App, base_url: str = BASE_URL, client: tuple[str, int] = ("127.0.0.1", 50000), **kwargs: Any
    ) -> None:
        self.app = app
        super().__init__(transport=httpx.ASGITransport(app=app, client=client), base_url=base_url, **kwargs)

    async def __aenter__(self) -> AsyncTestClient:
        await super().__aenter__()
        await _lifespan(self.app, "startup")
        return self

    async def __aexit__(self, *args: Any) -> None:
        await _lifespan(self.app, "shutdown")
        await super().__aexit__(*args)
