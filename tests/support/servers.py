"""Running servers for tests.

    with running_server(app, http="h11") as url:          # url = "http://127.0.0.1:PORT"
        ...
    server = start_server("tests/apps/basic.py", "h11", "compiled")    # `cello serve`
    server = start_asgi_server("tests/apps/basic.py", "uvicorn")        # through cello.asgi

``running_server`` runs ``cello.server.Server`` in a background thread on a free port and
stops it gracefully on exit. ``running_server_process`` runs a program that calls ``serve()``
in a subprocess (for signal tests). ``start_server`` runs the real `cello serve` command on a
test app, ``start_asgi_server`` runs uvicorn or hypercorn on it; the conftest's ``serve_app``
fixture starts each once per session and stops it with SIGINT at the end, which also exercises
graceful shutdown.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cello.server import Server, ServerConfig, bind_socket
from support.artifacts import BUILD, ROOT, ensure_build
from support.http import TIMEOUT
from support.ports import free_port, wait_for_port
from support.variants import ASGI_SERVERS

# -- in this process ----------------------------------------------------------------------


@contextlib.contextmanager
def running_server(app: Any, http: str = "httptools", **settings: Any) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 (free port) in a thread; yields the base URL."""
    settings.setdefault("announce", False)
    config = ServerConfig(http=http, **settings)
    sock = bind_socket("127.0.0.1", 0)
    server = Server(app, config)
    ready = threading.Event()
    urls: list[str] = []
    result: list[int] = []

    def on_ready(url: str) -> None:
        urls.append(url)
        ready.set()

    def target() -> None:
        result.append(server.run(sock, on_ready=on_ready, handle_signals=False))
        ready.set()

    thread = threading.Thread(target=target, name="cello-test-server", daemon=True)
    thread.start()
    if not ready.wait(TIMEOUT) or not urls:
        raise RuntimeError("test server did not start")
    try:
        yield urls[0]
    finally:
        server.shutdown()
        thread.join(TIMEOUT + config.graceful_timeout)
        if thread.is_alive():
            server.force_exit()
            thread.join(TIMEOUT)


# -- a program of the test's own in a subprocess -----------------------------------------


@contextlib.contextmanager
def running_server_process(code: str, **env: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Run ``code`` (a Python program that calls serve() with on_ready printing ``READY <url>``)
    in a subprocess; yields the process and the URL. The process is killed on exit if alive."""
    environment = dict(os.environ, **env)
    environment["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )
    try:
        url = ""
        deadline = time.monotonic() + TIMEOUT * 3
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            if line.startswith("READY "):
                url = line.split()[1]
                break
        if not url:
            proc.kill()
            out, err = proc.communicate(timeout=TIMEOUT)
            raise RuntimeError(f"server process did not start:\n{out}\n{err}")
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=TIMEOUT)


# -- `cello serve`, uvicorn or hypercorn on a test app --------------------------------------


@dataclass
class RunningServer:
    app_ref: str
    http: str
    router: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_server(
    app_ref: str,
    http: str = "httptools",
    router: str = "interpreted",
    *extra: str,
    env: Mapping[str, str] | None = None,
) -> RunningServer:
    port = free_port()
    argv = [sys.executable, "-m", "cello", "serve", app_ref, "--port", str(port), "--http", http, *extra]
    if router == "compiled":
        argv += ["--out", str(ensure_build(app_ref)), "--require-compiled"]
    else:
        argv += ["--out", str(BUILD / "none")]
    return _spawn(app_ref, http, router, port, argv, env)


def _spawn(
    app_ref: str, http: str, router: str, port: int, argv: list[str], extra_env: Mapping[str, str] | None = None
) -> RunningServer:
    env = {**os.environ, **(extra_env or {}), "PYTHONUNBUFFERED": "1"}
    log = BUILD / "logs" / f"{port}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    # A file, not a pipe: nobody reads a pipe while tests run, and a full one would block the server.
    with log.open("wb") as sink:
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, process)
    except RuntimeError as exc:
        raise RuntimeError(f"{exc}\n{log.read_text(errors='replace')}") from None
    return RunningServer(app_ref, http, router, port, process, log)


def asgi_argv(app_ref: str, server: str, port: int) -> list[str]:
    """The command line that serves `path/to/app.py[:name]` with an ASGI server on `port`."""
    path, _, name = app_ref.partition(":")
    target = f"{Path(path).stem}:{name or 'app'}"
    if server == "uvicorn":
        return [
            sys.executable,
            "-m",
            "uvicorn",
            target,
            "--app-dir",
            str(Path(path).parent),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            # Cello applies its own forwarded_allow_ips (docs/deploying.md); uvicorn's rewriting,
            # on by default for 127.0.0.1, would apply another rule first.
            "--no-proxy-headers",
        ]
    if server == "hypercorn":
        # Hypercorn puts the parent folder of a file path on sys.path itself.
        return [
            sys.executable,
            "-m",
            "hypercorn",
            f"{path}:{name or 'app'}",
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ]
    raise ValueError(f"unknown ASGI server {server!r}; known: {', '.join(ASGI_SERVERS)}")


def start_asgi_server(app_ref: str, server: str, env: Mapping[str, str] | None = None) -> RunningServer:
    """`app_ref` served by uvicorn or hypercorn: `http` is the server's name, the router the
    interpreted one (the test apps do not call attach_build)."""
    port = free_port()
    return _spawn(app_ref, server, "interpreted", port, asgi_argv(app_ref, server, port), env)
