"""Serving the test apps with the real `cello serve` command in a subprocess.

Each (app, parser, router) server starts once per test session and is stopped with
SIGINT at the end, which also exercises graceful shutdown.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Compiled routers are ABI-specific: `make test-all` gives each Python its own root here, so
# that one version's run does not rebuild (and clobber) another's.
BUILD = ROOT / (os.environ.get("CELLO_TEST_BUILD") or "build/tests")
PARSERS = ("httptools", "h11")
ROUTERS = ("interpreted", "compiled")
# Third-party servers that run the same test apps through cello.asgi (tests/test_asgi_*.py).
ASGI_SERVERS = ("uvicorn", "hypercorn")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server on port {port} did not start within {timeout}s")


def build_dir(app_ref: str) -> Path:
    name = app_ref.replace("/", "_").replace(".py", "").replace(":", "_")
    return BUILD / name


def ensure_build(app_ref: str) -> Path:
    """Build the app's compiled router unless CI (or an earlier run) already did."""
    out = build_dir(app_ref)
    check = subprocess.run(
        [sys.executable, "-m", "cello", "build", app_ref, "--out", str(out), "--check"],
        cwd=ROOT,
        capture_output=True,
    )
    if check.returncode != 0:
        subprocess.run([sys.executable, "-m", "cello", "build", app_ref, "--out", str(out)], cwd=ROOT, check=True)
    return out


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


def start_server(app_ref: str, http: str = "httptools", router: str = "interpreted", *extra: str) -> RunningServer:
    port = free_port()
    argv = [sys.executable, "-m", "cello", "serve", app_ref, "--port", str(port), "--http", http, *extra]
    if router == "compiled":
        argv += ["--out", str(ensure_build(app_ref)), "--require-compiled"]
    else:
        argv += ["--out", str(BUILD / "none")]
    return _spawn(app_ref, http, router, port, argv)


def _spawn(app_ref: str, http: str, router: str, port: int, argv: list[str]) -> RunningServer:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
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


def start_asgi_server(app_ref: str, server: str) -> RunningServer:
    """`app_ref` served by uvicorn or hypercorn: `http` is the server's name, the router the
    interpreted one (the test apps do not call attach_build)."""
    port = free_port()
    return _spawn(app_ref, server, "interpreted", port, asgi_argv(app_ref, server, port))


# Every test app served with the compiled router. `make test` builds them before pytest
# (`python tests/apputil.py`): the documented way to produce compiled artifacts in CI.
TEST_APPS = [
    "tests/apps/basic.py",
    "tests/apps/debug_errors.py",
    "tests/apps/debug_errors.py:custom",
    "tests/apps/seed_blueprints.py",
    "tests/apps/layered.py",
    "tests/apps/middleware_app.py",
    "tests/apps/streams.py",
    "tests/apps/uploads.py",
    "tests/apps/ws.py",
    "examples/rest.py",
]


def build_all(app_refs: list[str] | None = None) -> None:
    for app_ref in app_refs or TEST_APPS:
        out = build_dir(app_ref)
        subprocess.run([sys.executable, "-m", "cello", "build", app_ref, "--out", str(out)], cwd=ROOT, check=True)


if __name__ == "__main__":
    build_all(sys.argv[1:] or None)
