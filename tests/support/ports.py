"""Ports on 127.0.0.1: a free one to listen on, and waiting until a server listens there."""

from __future__ import annotations

import socket
import subprocess
import time


def free_port() -> int:
    """A port nobody listens on right now (the OS picks it; a race with other binders is possible)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes] | None = None, timeout: float = 30.0) -> None:
    """Return once 127.0.0.1:``port`` accepts a connection; RuntimeError if ``process`` exits
    first or nothing listens within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server on port {port} did not start within {timeout}s")
