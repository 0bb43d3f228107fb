"""Running a server: socket, event loop, signals, graceful shutdown."""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import socket
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from cello.config import Config
from cello.server.config import ServerConfig
from cello.server.http.protocol import HttpProtocol, ServerState

if TYPE_CHECKING:
    from cello.server.interface import Application

logger = logging.getLogger("cello.server")

# The exit status of a server whose on_startup hooks failed (the supervisor stops on it).
STARTUP_FAILED = 3


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed (it is a dependency except on Windows), else asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class BindError(OSError):
    def __init__(self, host: str, port: int, cause: OSError) -> None:
        if cause.errno == errno.EADDRINUSE:
            reason = "address already in use"
        else:
            reason = (cause.strerror or str(cause)).lower()
        self.message = f"cannot bind {format_host(host)}:{port}: {reason}"
        super().__init__(cause.errno, self.message)


def format_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def bind_socket(
    host: str, port: int, *, reuse_port: bool = False, backlog: int = Config.backlog, listen: bool = True
) -> socket.socket:
    """A bound, listening, non-blocking TCP socket; BindError says why not."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise BindError(host, port, exc) from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        if listen:
            sock.listen(backlog)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise BindError(host, port, exc) from None
    return sock


def socket_url(sock: socket.socket, tls: bool = False) -> str:
    address = sock.getsockname()
    return f"{'https' if tls else 'http'}://{format_host(str(address[0]))}:{address[1]}"


class Server:
    """One process serving an Application on a socket until asked to stop.

    ``run`` blocks; ``shutdown`` (thread-safe, also what SIGINT/SIGTERM do) stops accepting,
    closes idle connections and lets in-flight requests finish within ``graceful_timeout``;
    a second request (or ``force_exit``) closes everything at once.
    """

    def __init__(self, app: Application, config: ServerConfig) -> None:
        self.app = app
        self.config = config
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._state: ServerState | None = None
        self._stopping = False
        self._forced = False
        self._lock = threading.Lock()
        self._pending_stop = False

    def run(
        self,
        sock: socket.socket,
        *,
        on_ready: Callable[[str], None] | None = None,
        handle_signals: bool = True,
    ) -> int:
        loop = new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            return loop.run_until_complete(self._serve(sock, on_ready, handle_signals))
        finally:
            _cancel_remaining(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            asyncio.set_event_loop(None)
            loop.close()

    def shutdown(self) -> None:
        """Begin a graceful shutdown (a second call forces it). Safe from any thread."""
        with self._lock:
            loop = self._loop
            if loop is None:
                self._pending_stop = True
                return
        loop.call_soon_threadsafe(self._on_stop_request)

    def force_exit(self) -> None:
        with self._lock:
            loop = self._loop
            if loop is None:
                self._pending_stop = True
                self._forced = True
                return
        loop.call_soon_threadsafe(self._force)

    # -- inside the loop ----------------------------------------------------------------

    async def _serve(
        self,
        sock: socket.socket,
        on_ready: Callable[[str], None] | None,
        handle_signals: bool,
    ) -> int:
        loop = asyncio.get_running_loop()
        config = self.config
        failure = await _lifespan(self.app, "startup")
        if failure is not None:
            print(f"error: startup failed: {failure}", file=sys.stderr, flush=True)
            return STARTUP_FAILED
        state = ServerState(self.app, config, loop)
        self._state = state
        self._stop = asyncio.Event()
        if config.ssl_context is None:
            server = await loop.create_server(lambda: HttpProtocol(state), sock=sock, backlog=config.backlog)
        else:
            # The handshake comes before the first request head and under the same timeout:
            # HttpProtocol's own clock starts once the handshake is done.
            server = await loop.create_server(
                lambda: HttpProtocol(state),
                sock=sock,
                backlog=config.backlog,
                ssl=config.ssl_context,
                ssl_handshake_timeout=config.request_head_timeout,
            )
        state.start()
        signals = _install_signals(loop, self._on_stop_request) if handle_signals else []
        with self._lock:
            self._loop = loop
            pending = self._pending_stop
        url = socket_url(sock, config.ssl_context is not None)
        line = f"Cello serving on {url} (parser: {config.http})"
        logger.info(line)
        if config.announce:
            print(line, flush=True)
        if on_ready is not None:
            on_ready(url)
        if pending:
            self._on_stop_request()
        try:
            await self._stop.wait()
            server.close()
            state.begin_shutdown()
            await self._wait_for_work(state)
            if state.connections:
                logger.warning("closing %d connection(s) still busy", len(state.connections))
                state.abort_all()
                await asyncio.sleep(0)
            await self._cut_off(state)
        finally:
            for signum in signals:
                loop.remove_signal_handler(signum)
            state.stop()
            server.close()
        failure = await _lifespan(self.app, "shutdown")
        if failure is not None:
            logger.error("shutdown hook failed: %s", failure)
        return 1 if self._forced else 0

    async def _wait_for_work(self, state: ServerState) -> None:
        """Until the connections have closed and the work requests left for after their
        response (request.after_response) has finished, within the grace period. A response
        still being written may leave more work: it gets what remains of the period."""
        deadline = state.loop.time() + self.config.graceful_timeout
        while (state.connections or state.after_writes) and not self._forced:
            remaining = deadline - state.loop.time()
            if remaining <= 0:
                return
            await asyncio.sleep(min(0.05, remaining))

    async def _cut_off(self, state: ServerState) -> None:
        """Cancel the after-response work the grace period did not see finish. A plain
        function already running in its worker thread cannot be stopped: the process exits
        once it returns."""
        if not state.after_writes:
            return
        pending = sum(len(work) for work in state.after_writes.values())
        tasks = list(state.after_writes)
        if self._forced:
            logger.warning("shutdown: %d after_response task(s) cut off by a forced stop", pending)
        else:
            logger.warning(
                "shutdown: %d after_response task(s) cut off after %gs", pending, self.config.graceful_timeout
            )
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks)

    def _on_stop_request(self) -> None:
        if self._stopping:
            logger.warning("second stop request: closing all connections now")
            self._force()
            return
        self._stopping = True
        logger.info("shutting down (in-flight requests and after_response work get %ss)", self.config.graceful_timeout)
        if self._stop is not None:
            self._stop.set()

    def _force(self) -> None:
        self._forced = True
        self._stopping = True
        if self._state is not None:
            self._state.abort_all()
        if self._stop is not None:
            self._stop.set()


async def _lifespan(app: Application, phase: str) -> str | None:
    """Run the application's startup or shutdown hooks, if it has any; why they failed."""
    hook = getattr(app, phase, None)
    if hook is None:
        return None
    try:
        await hook()
    except Exception as exc:
        logger.exception("%s hook failed", phase)
        return f"{type(exc).__name__}: {exc}"
    return None


def _install_signals(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> list[int]:
    if threading.current_thread() is not threading.main_thread():
        return []
    installed: list[int] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, callback)
        except (NotImplementedError, RuntimeError, ValueError):
            continue  # Windows, or a loop that cannot
        installed.append(signum)
    return installed


def _cancel_remaining(loop: asyncio.AbstractEventLoop) -> None:
    tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
