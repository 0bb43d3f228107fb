"""Shared benchmark plumbing: a peers venv, servers, the benchmark loop, wrk runs, CPU
pinning, tables.

The server is pinned to CPU 0 and wrk to CPU 1 (`taskset`) so that they never compete
for a core; every figure is the median of several runs (``rounds``) after a warm-up.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PEERS_VENV = HERE / ".venv-peers"
# docs/benchmarks.md: the section between these markers is benchmarks/tfb/run.py's; the
# page's other writer (run.py --write) keeps it.
TFB_START, TFB_END = "<!-- tfb:start -->", "<!-- tfb:end -->"
# The tests' support package (importable as `support` once a script imported this module):
# the benchmarks use its free_port and its WebSocket frame encoder.
sys.path.insert(0, str(ROOT / "tests"))

from support.ports import free_port  # noqa: E402


def ensure_apt_tool(command: str, package: str | None = None) -> str:
    """The path of ``command``, installing Debian's ``package`` (default: the command's name)
    with apt-get when it is missing; SystemExit if it is still missing."""
    package = package or command
    path = shutil.which(command)
    if path is None:
        print(f"installing {package} (apt-get)...", flush=True)
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", package], check=True)
        path = shutil.which(command)
    if path is None:
        raise SystemExit(f"{command} is required: apt-get install {package}")
    return path


def ensure_peers(packages: list[str]) -> Path:
    """A separate venv for the peers, so their dependencies never touch Cello's."""
    python = PEERS_VENV / "bin" / "python"
    if not python.exists():
        print(f"creating {PEERS_VENV} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *packages], check=True)
    return python


def pinned(cpu: int, argv: list[str]) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", str(cpu), *argv]
    return argv


@dataclass
class Server:
    """A server command line; ``{port}`` in ``argv`` is replaced by the port at start.

    ``cpu`` is the CPU it is pinned to (None: not pinned). With ``log`` set, its stderr goes
    to that file (else to a pipe); a server that exits or never listens raises RuntimeError
    with the end of its stderr.
    """

    name: str
    argv: list[str]
    cwd: Path = ROOT
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    cpu: int | None = 0
    log: Path | None = None

    def start(self, port: int, timeout: float = 20.0) -> None:
        argv = [part.replace("{port}", str(port)) for part in self.argv]
        env = {**os.environ, **self.env}
        stderr = open(self.log, "wb") if self.log is not None else subprocess.PIPE  # noqa: SIM115
        try:
            self.process = subprocess.Popen(
                pinned(self.cpu, argv) if self.cpu is not None else argv,
                cwd=self.cwd,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        finally:
            if self.log is not None:
                stderr.close()  # type: ignore[union-attr]
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return
            except OSError:
                pass
            process = self.process
            exited = process.poll() is not None
            if exited or time.monotonic() > deadline:
                why = f"exited with code {process.returncode}" if exited else f"no listener after {timeout:.0f}s"
                self.stop()
                raise RuntimeError(f"{self.name}: {why}; stderr: {self.stderr_tail(process=process) or '(empty)'}")
            time.sleep(0.05)

    def stderr_tail(self, lines: int = 5, process: subprocess.Popen[bytes] | None = None) -> str:
        """The last lines of the server's stderr (from its log file, or its pipe once it has exited)."""
        process = process or self.process
        text = ""
        if self.log is not None and self.log.exists():
            text = self.log.read_text(errors="replace")
        elif process is not None and process.stderr is not None and process.poll() is not None:
            text = process.stderr.read().decode(errors="replace")
        return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])

    def stop(self) -> None:
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        self.process = None


def rounds(
    servers: list[Server],
    runs: int,
    measure: Callable[[int, Server, int], None],
    *,
    rotate: bool = False,
    timeout: float = 20.0,
) -> None:
    """The benchmark loop: ``runs`` times, start each server in turn on a free port, call
    ``measure(run, server, port)`` while it is up, then stop it (also when ``measure`` fails).

    With ``rotate`` the order shifts by one from run to run, so that no server always goes
    first (or right after the same neighbour). Figures are gathered by ``measure``; each
    report takes their median.
    """
    for run in range(runs):
        shift = run % len(servers) if rotate and servers else 0
        for server in servers[shift:] + servers[:shift]:
            port = free_port()
            server.start(port, timeout)
            try:
                measure(run, server, port)
            finally:
                server.stop()


def side_by_side(
    servers: list[Server], runs: int, measure: Callable[[int, Server, int], None], *, timeout: float = 20.0
) -> None:
    """Like :func:`rounds`, but every server is started once, first, and waits idle while the
    others are measured; the order rotates from run to run. For small differences on a
    machine whose speed drifts: the figures being compared are taken seconds apart, each on a
    warm server, with no start-up between them. ``measure`` is called with run -1 once per
    server before the runs (to warm it up)."""
    ports: list[tuple[Server, int]] = []
    try:
        for server in servers:
            port = free_port()
            server.start(port, timeout)
            ports.append((server, port))
        for server, port in ports:
            measure(-1, server, port)
        for run in range(runs):
            shift = run % len(ports)
            for server, port in ports[shift:] + ports[:shift]:
                measure(run, server, port)
    finally:
        for server, _ in ports:
            server.stop()


@dataclass
class WrkResult:
    rps: float
    p99_ms: float
    errors: int


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def run_wrk(
    wrk: str,
    url: str,
    seconds: float,
    connections: int = 64,
    script: str | None = None,
    cpu: int | None = 1,
    threads: int = 1,
    script_args: tuple[str, ...] = (),
) -> WrkResult:
    """wrk against ``url``, pinned to ``cpu`` (None: not pinned); wrk's duration is whole seconds.
    ``script_args`` reach the Lua script's ``init``."""
    argv = [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", url]
    if script:
        argv[1:1] = ["-s", script]
    if script_args:
        argv += ["--", *script_args]
    argv = pinned(cpu, argv) if cpu is not None else argv
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    match = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    p99 = float(match.group(1)) * _UNITS[match.group(2)] if match else float("nan")
    errors = 0
    for found in re.finditer(r"(?:Non-2xx or 3xx responses|Socket errors:.*?timeout)\s*:?\s*(\d+)", out):
        errors += int(found.group(1))
    return WrkResult(rps, p99, errors)


def wrk_figure(wrk: str, url: str, seconds: float, warmup: float = 0.0, **options: Any) -> WrkResult:
    """One measured wrk run, after a ``warmup``-second run whose figures are dropped (0: none)."""
    if warmup > 0:
        run_wrk(wrk, url, warmup, **options)
    return run_wrk(wrk, url, seconds, **options)


def median_result(results: list[WrkResult]) -> WrkResult:
    return WrkResult(
        statistics.median(r.rps for r in results),
        statistics.median(r.p99_ms for r in results),
        sum(r.errors for r in results),
    )


def machine_facts() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {sys.version.split()[0]}"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def proc_status_mib(pid: int, field: str) -> float:
    """A memory field of /proc/<pid>/status (``VmRSS``, ``VmHWM``...) in MiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


STREAM_PEERS = ["uvicorn", "starlette", "sse-starlette", "httptools", "uvloop", "python-multipart"]


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants (a server's master and its workers)."""
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        try:
            for task in Path(f"/proc/{pid}/task").iterdir():
                todo += [int(child) for child in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return pids


def tree_rss_kib(root: int) -> int:
    """VmRSS of ``root`` and all its descendants, KiB."""
    total = 0
    for pid in process_tree(root):
        try:
            with open(f"/proc/{pid}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU time used so far by ``root`` and its live descendants. Time the
    hypervisor stole is not in it: on a shared machine it is steadier than a throughput."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in process_tree(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def uvicorn_argv(python: str, app: str, *extra: str) -> list[str]:
    """uvicorn as every benchmark runs it: httptools, uvloop, no access log ("{port}" filled in)."""
    return [python, "-m", "uvicorn", app, "--port", "{port}", "--http", "httptools", "--loop", "uvloop",
            "--no-access-log", "--log-level", "warning", *extra]  # fmt: skip


def granian_argv(python: str, app: str, workers: int = 1) -> list[str]:
    """Granian as every benchmark runs an ASGI peer on it: uvloop, HTTP/1, no WebSocket, no
    access log, 127.0.0.1 ("{port}" filled in)."""
    return [python, "-m", "granian", "--interface", "asgi", "--workers", str(workers), "--loop", "uvloop",
            "--http", "1", "--no-ws", "--no-access-log", "--log-level", "warning", "--host", "127.0.0.1",
            "--port", "{port}", app]  # fmt: skip


def stream_servers(peer_python: str, starlette_name: str) -> list[Server]:
    """Cello and Starlette serving the SSE and upload benchmark apps (apps/*_streams.py)."""
    cello = str(ROOT / ".venv" / "bin" / "cello")
    return [
        Server("cello", [cello, "serve", "benchmarks/apps/cello_streams.py", "--port", "{port}", "--no-logs"]),
        Server(
            starlette_name,
            uvicorn_argv(peer_python, "starlette_streams:app"),
            cwd=HERE / "apps",
        ),
    ]
