"""Several worker processes on one port: fork, restart the dead, stop them gracefully.

Each worker binds its own SO_REUSEPORT socket, so the kernel spreads connections over them
(no shared accept lock). The supervisor itself holds the port with a bound socket that never
listens (it receives no connections) so that a taken port is reported once, up front.
Workers run in their own process group: a terminal's Ctrl-C reaches only the supervisor,
which forwards one SIGTERM to each worker (a second signal kills them).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import sys
import threading
import time
import traceback
from types import FrameType
from typing import TYPE_CHECKING, Callable

from cello.server.config import ServerConfig
from cello.server.serve import BindError, Server, bind_socket, format_host

if TYPE_CHECKING:
    from cello.server.interface import Application

logger = logging.getLogger("cello.server")

# A worker dying sooner than this after its start counts as a crash loop: restarts slow down.
_QUICK_DEATH = 1.0
_MAX_BACKOFF = 10.0
_READY_TIMEOUT = 60.0


class _Supervisor:
    def __init__(self, app: Application, host: str, port: int, config: ServerConfig) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.config = config
        self.worker_config = dataclasses.replace(config, workers=1, reuse_port=True, announce=False)
        self.children: dict[int, float] = {}  # pid -> start time
        self.stopping = False
        self.killing = False
        self.backoff = 0.0
        self.ready_read, self.ready_write = os.pipe()

    def spawn(self) -> None:
        pid = os.fork()
        if pid == 0:
            self._worker()  # never returns
        self.children[pid] = time.monotonic()

    def _worker(self) -> None:
        code = 1
        try:
            os.setpgid(0, 0)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.close(self.ready_read)
            sock = bind_socket(self.host, self.port, reuse_port=True, backlog=self.config.backlog)
            server = Server(self.app, self.worker_config)
            _watch_parent(os.getppid(), server)
            ready_write = self.ready_write

            def ready(url: str) -> None:
                os.write(ready_write, b"r")

            code = server.run(sock, on_ready=ready)
        except BindError as exc:
            print(f"error: {exc.message}", file=sys.stderr, flush=True)
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)

    def signal_all(self, signum: int) -> None:
        for pid in list(self.children):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        if not self.stopping:
            self.stopping = True
            logger.info("stopping %d worker(s)", len(self.children))
            self.signal_all(signal.SIGTERM)
        elif not self.killing:
            self.killing = True
            self.signal_all(signal.SIGKILL)

    def wait_ready(self) -> bool:
        """Whether every worker said it accepts connections."""
        expected = self.config.workers
        deadline = time.monotonic() + _READY_TIMEOUT
        os.set_blocking(self.ready_read, False)
        while expected > 0 and time.monotonic() < deadline and not self.stopping:
            try:
                expected -= len(os.read(self.ready_read, expected))
            except BlockingIOError:
                pass
            if self._reap(block=False) and not self.children:
                return False
            if expected > 0:
                time.sleep(0.02)
        return expected <= 0

    def _reap(self, block: bool) -> bool:
        """Collect exited workers (restarting them unless stopping); whether any exited."""
        reaped = False
        while self.children:
            try:
                pid, status = os.waitpid(-1, 0 if block else os.WNOHANG)
            except ChildProcessError:
                self.children.clear()
                return True
            if pid == 0:
                return reaped
            reaped = True
            started = self.children.pop(pid, None)
            if started is None:
                continue
            if not self.stopping:
                self._restart(pid, status, started)
            block = False
        return reaped

    def _restart(self, pid: int, status: int, started: float) -> None:
        logger.error("worker %d exited (%s); starting another", pid, _describe(status))
        if time.monotonic() - started < _QUICK_DEATH:
            self.backoff = min(_MAX_BACKOFF, max(0.1, self.backoff * 2))
            time.sleep(self.backoff)
        else:
            self.backoff = 0.0
        if not self.stopping:
            self.spawn()

    def run(self, on_ready: Callable[[str], None] | None) -> int:
        previous = {
            signum: signal.signal(signum, self.on_signal) for signum in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            for _ in range(self.config.workers):
                self.spawn()
            if self.wait_ready():
                url = f"http://{format_host(self.host)}:{self.port}"
                line = f"Cello serving on {url} (parser: {self.config.http}, workers: {self.config.workers})"
                logger.info(line)
                if self.config.announce:
                    print(line, flush=True)
                if on_ready is not None:
                    on_ready(url)
            elif not self.stopping:
                logger.error("workers did not start")
                self.stopping = True
                self.signal_all(signal.SIGTERM)
            while self.children:
                self._reap(block=True)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            os.close(self.ready_read)
            os.close(self.ready_write)
        return 0 if not self.killing else 1


def _watch_parent(parent: int, server: Server) -> None:
    """A worker whose supervisor died (SIGKILL) stops by itself instead of serving on orphaned."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        server.shutdown()

    threading.Thread(target=watch, name="cello-parent-watch", daemon=True).start()


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"status {os.waitstatus_to_exitcode(status)}"


def supervise(
    app: Application,
    host: str,
    port: int,
    config: ServerConfig,
    *,
    on_ready: Callable[[str], None] | None = None,
) -> int:
    """Run ``config.workers`` worker processes serving ``app`` until SIGINT/SIGTERM."""
    try:
        guard = bind_socket(host, port, reuse_port=True, listen=False)
    except BindError as exc:
        print(f"error: {exc.message}", file=sys.stderr, flush=True)
        return 1
    try:
        # Port 0: the workers share whichever port the guard got.
        port = int(guard.getsockname()[1])
        return _Supervisor(app, host, port, config).run(on_ready)
    finally:
        guard.close()
