"""Several worker processes on one port: fork, watch, replace, stop them gracefully.

Each worker binds its own SO_REUSEPORT socket, so the kernel spreads connections over them
(no shared accept lock). The supervisor itself holds the port with a bound socket that never
listens (it receives no connections) so that a taken port is reported once, up front.
Workers run in their own process group: a terminal's Ctrl-C reaches only the supervisor,
which forwards one SIGTERM to each worker (a second signal kills them).

A worker's event loop writes a heartbeat (the time, into memory shared with the supervisor)
about once a second. A worker whose heartbeat is older than ``worker_timeout`` (its loop is
blocked by a handler that never returns, or the process is stopped) is killed and replaced.
Its first heartbeat also says that it accepts connections.

When a worker's start-up hooks fail, every worker would fail the same way: the supervisor
stops and exits with the worker's status. Workers that keep dying right after they start are
restarted more and more slowly, and after ``_MAX_QUICK_DEATHS`` in a row the supervisor gives up.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import mmap
import os
import signal
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING

from cello.server.config import ServerConfig
from cello.server.serve import STARTUP_FAILED, BindError, Server, bind_socket, format_host

if TYPE_CHECKING:
    from cello.server.interface import Application

logger = logging.getLogger("cello.server")

# A worker dying before it accepted connections, or sooner than this after its start, counts
# as a failed start: restarts slow down (doubling up to _MAX_BACKOFF), and after
# _MAX_QUICK_DEATHS failed starts in a row the supervisor stops.
_QUICK_DEATH = 1.0
_MAX_BACKOFF = 10.0
_MAX_QUICK_DEATHS = 5
# Seconds a worker gets from its fork to its first heartbeat (start-up hooks included).
_READY_TIMEOUT = 60.0
# How often the supervisor looks at its workers.
_POLL = 0.1
# Seconds between heartbeats, at most (a short worker_timeout gets more frequent ones).
_BEAT = 1.0

_STAMP = struct.Struct("d")


class _Heartbeats:
    """One time.monotonic() stamp per worker slot, in anonymous memory shared across fork()
    (CLOCK_MONOTONIC is system-wide, so stamps of several processes compare)."""

    def __init__(self, slots: int) -> None:
        self.memory = mmap.mmap(-1, _STAMP.size * slots)

    def beat(self, slot: int) -> None:
        _STAMP.pack_into(self.memory, slot * _STAMP.size, time.monotonic())

    def last(self, slot: int) -> float:
        """The last stamp of ``slot``; 0.0 before its worker's first beat."""
        stamp: float = _STAMP.unpack_from(self.memory, slot * _STAMP.size)[0]
        return stamp

    def clear(self, slot: int) -> None:
        _STAMP.pack_into(self.memory, slot * _STAMP.size, 0.0)

    def close(self) -> None:
        self.memory.close()


@dataclasses.dataclass
class _Worker:
    slot: int
    started: float
    ready: bool = False
    killed: bool = False


class _Supervisor:
    def __init__(self, app: Application, host: str, port: int, config: ServerConfig) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.config = config
        self.worker_config = dataclasses.replace(config, workers=1, reuse_port=True, announce=False)
        self.children: dict[int, _Worker] = {}
        self.pending: list[tuple[float, int]] = []  # (when, slot): restarts waiting out a backoff
        self.heartbeats = _Heartbeats(config.workers)
        self.stopping = False
        self.killing = False
        self.announced = False
        self.status = 0
        self.backoff = 0.0
        self.quick_deaths = 0
        self.last_quick_death = 0.0

    def spawn(self, slot: int) -> None:
        self.heartbeats.clear(slot)
        pid = os.fork()
        if pid == 0:
            self._worker(slot)  # never returns
        self.children[pid] = _Worker(slot, time.monotonic())

    def _worker(self, slot: int) -> None:
        code = 1
        try:
            os.setpgid(0, 0)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            sock = bind_socket(self.host, self.port, reuse_port=True, backlog=self.config.backlog)
            server = Server(self.app, self.worker_config)
            _watch_parent(os.getppid(), server)
            heartbeats = self.heartbeats
            interval = min(_BEAT, self.config.worker_timeout / 4)

            def ready(url: str) -> None:
                # Called on the worker's event loop: the beats stop whenever the loop does.
                loop = asyncio.get_running_loop()

                def beat() -> None:
                    heartbeats.beat(slot)
                    loop.call_later(interval, beat)

                beat()

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
            logger.info("stopping %d worker(s)", len(self.children))
            self.stop()
        elif not self.killing:
            self.killing = True
            self.signal_all(signal.SIGKILL)

    def stop(self, status: int = 0) -> None:
        """Stop every worker gracefully; the supervisor then exits with ``status``."""
        self.stopping = True
        self.status = self.status or status
        self.pending.clear()
        self.signal_all(signal.SIGTERM)

    def _reap(self) -> None:
        """Collect exited workers and decide what replaces them."""
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.children.clear()
                return
            if pid == 0:
                return
            worker = self.children.pop(pid, None)
            if worker is not None and not self.stopping:
                self._replace(pid, status, worker)
            if worker is not None:
                self._report_exit(pid)

    def _report_exit(self, pid: int) -> None:
        hook = self.config.on_worker_exit
        if hook is None:
            return
        try:
            # Replaced unless the supervisor is stopping (asked to, or giving up on this exit).
            hook(pid, not self.stopping)
        except Exception:
            logger.exception("on_worker_exit hook failed for worker %d", pid)

    def _replace(self, pid: int, status: int, worker: _Worker) -> None:
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == STARTUP_FAILED:
            logger.error("worker %d could not start (its start-up hooks failed); stopping", pid)
            self.stop(STARTUP_FAILED)
            return
        now = time.monotonic()
        if worker.ready and now - worker.started >= _QUICK_DEATH:
            logger.error("worker %d exited (%s); starting another", pid, _describe(status))
            self.quick_deaths = 0
            self.backoff = 0.0
            self.spawn(worker.slot)
            return
        self.quick_deaths += 1
        self.last_quick_death = now
        if self.quick_deaths >= _MAX_QUICK_DEATHS:
            logger.error(
                "worker %d exited (%s); workers died right after starting %d times in a row: giving up",
                pid,
                _describe(status),
                self.quick_deaths,
            )
            self.stop(1)
            return
        self.backoff = min(_MAX_BACKOFF, max(0.1, self.backoff * 2))
        logger.error(
            "worker %d exited (%s) right after starting; starting another in %.1fs",
            pid,
            _describe(status),
            self.backoff,
        )
        self.pending.append((now + self.backoff, worker.slot))

    def _start_pending(self) -> None:
        now = time.monotonic()
        due = [slot for when, slot in self.pending if when <= now]
        self.pending = [(when, slot) for when, slot in self.pending if when > now]
        for slot in due:
            self.spawn(slot)

    def _check_heartbeats(self) -> None:
        now = time.monotonic()
        timeout = self.config.worker_timeout
        for pid, worker in list(self.children.items()):
            if worker.killed:
                continue
            last = self.heartbeats.last(worker.slot)
            if last == 0.0:
                if now - worker.started > _READY_TIMEOUT:
                    logger.error("worker %d did not start within %gs; killing it", pid, _READY_TIMEOUT)
                    self._kill(pid, worker)
                    if not self.announced:
                        self.stop(1)
                continue
            worker.ready = True
            if self.quick_deaths and worker.started > self.last_quick_death and now - worker.started >= _QUICK_DEATH:
                # A worker started since the last failure stayed up: the failures in a row end.
                self.quick_deaths = 0
                self.backoff = 0.0
            if now - last > timeout:
                logger.error(
                    "worker %d did not answer its heartbeat for %.1fs (worker_timeout: %gs): its event "
                    "loop is blocked (a handler that never returns?) or the process is stopped; "
                    "killing it",
                    pid,
                    now - last,
                    timeout,
                )
                self._kill(pid, worker)

    def _kill(self, pid: int, worker: _Worker) -> None:
        worker.killed = True
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def _announce(self, on_ready: Callable[[str], None] | None) -> None:
        self.announced = True
        scheme = "http" if self.config.ssl_context is None else "https"
        url = f"{scheme}://{format_host(self.host)}:{self.port}"
        line = f"Cello serving on {url} (parser: {self.config.http}, workers: {self.config.workers})"
        logger.info(line)
        if self.config.announce:
            print(line, flush=True)
        if on_ready is not None:
            on_ready(url)

    def run(self, on_ready: Callable[[str], None] | None) -> int:
        previous = {signum: signal.signal(signum, self.on_signal) for signum in (signal.SIGINT, signal.SIGTERM)}
        try:
            for slot in range(self.config.workers):
                self.spawn(slot)
            while self.children or self.pending:
                self._reap()
                self._start_pending()
                self._check_heartbeats()
                if not self.announced and not self.stopping:
                    if len(self.children) == self.config.workers and all(
                        worker.ready for worker in self.children.values()
                    ):
                        self._announce(on_ready)
                time.sleep(_POLL)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            self.heartbeats.close()
        return self.status or (1 if self.killing else 0)


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


def serve(
    app: Application,
    host: str,
    port: int,
    config: ServerConfig,
    *,
    on_ready: Callable[[str], None] | None = None,
) -> int:
    """Serve ``app`` until SIGINT/SIGTERM; the process exit status (0 after a clean stop).

    ``port`` 0 picks a free port; ``on_ready`` receives the URL once the socket accepts.
    With ``config.workers > 1`` the supervisor forks that many worker processes.
    """
    if config.workers > 1:
        return supervise(app, host, port, config, on_ready=on_ready)
    try:
        sock = bind_socket(host, port, reuse_port=config.reuse_port, backlog=config.backlog)
    except BindError as exc:
        print(f"error: {exc.message}", file=sys.stderr, flush=True)
        return 1
    return Server(app, config).run(sock, on_ready=on_ready)
