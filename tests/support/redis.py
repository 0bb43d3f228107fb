"""A real Redis for the tests: Debian's ``redis-server`` on a free loopback port, nothing saved.

``make test`` and ``.ci/run`` install the package when it is missing. A test that needs Redis
to go away and come back (the fault tests) gets its own server, so stopping it disturbs no other
test; the others share one per session.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import redis

from support.ports import free_port, wait_for_port

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


class RedisServer:
    """One ``redis-server`` process; ``kill()`` and ``start()`` again keep its port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir = tempfile.mkdtemp(prefix="cello-redis-")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        if not Path(REDIS_SERVER).exists():
            raise RuntimeError("redis-server is not installed: `apt-get install redis-server` (make test does it)")
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", self._dir,
                "--daemonize", "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for_port(self.port, self.process, timeout=10)
        return self

    def kill(self) -> None:
        """Stop it the hard way, as a crash would: clients see their connections drop."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self.process = None

    def pause(self) -> None:
        """Freeze it (SIGSTOP): connections stay open but nothing answers, as in a network partition."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # a paused server cannot act on SIGTERM
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None
        shutil.rmtree(self._dir, ignore_errors=True)

    def subscribers(self, channel: str) -> int:
        """How many connections Redis has subscribed to ``channel`` (PUBSUB NUMSUB)."""
        with redis.Redis.from_url(self.url) as client:
            return int(client.pubsub_numsub(channel)[0][1])

    def channels(self) -> list[str]:
        """Every channel some connection is subscribed to (PUBSUB CHANNELS)."""
        with redis.Redis.from_url(self.url) as client:
            return sorted(name.decode() for name in client.pubsub_channels())
