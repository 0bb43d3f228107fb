"""In-process CPU instructions per request, counted by callgrind (the method of docs/compiler.md).

Wall-clock benchmarks on a shared 2-core machine move by several percent from run to run;
instruction counts do not. This feeds keep-alive requests to ``HttpProtocol`` through a fake
transport (no sockets, no kernel), once with ``--small`` and once with ``--large`` requests
under ``valgrind --tool=callgrind``, and divides the difference of the two totals by the
difference of the counts, so start-up and import costs cancel out.

    python benchmarks/instructions.py                      # GET / and GET /users/{id}, both routers
    python benchmarks/instructions.py --paths / --routers compiled
    python benchmarks/instructions.py --paths "/items/{id}?limit&q" "/items-untyped/{id}?limit&q"
    python benchmarks/instructions.py --paths / --app cello_sessions_app   # the same app with sessions on

The runtime is whatever ``cello --version`` says (compiled, or CELLO_PURE_PYTHON=1).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PATHS = {
    "/": "/",
    "/users/{id}": "/users/42",
    # The typed GET of run.py and the same handler written without typed binding.
    "/items/{id}?limit&q": "/items/42?limit=10&q=abc",
    "/items-untyped/{id}?limit&q": "/items-untyped/42?limit=10&q=abc",
}


class _Transport:
    """Just enough of an asyncio transport for HttpProtocol: writes are counted, not sent."""

    def __init__(self) -> None:
        self.written = 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def is_closing(self) -> bool:
        return False

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


def run_requests(path: str, count: int, build: str | None, module: str = "cello_app") -> None:
    """The measured program: ``count`` keep-alive GETs of ``path`` through one connection."""
    sys.path.insert(0, str(HERE / "apps"))
    import importlib

    app = importlib.import_module(module).app

    from cello.server.config import ServerConfig
    from cello.server.http.protocol import HttpProtocol, ServerState
    from cello.server.serve import new_event_loop

    if build is not None:
        from cello.build_artifacts import attach_build

        if not attach_build(app, Path(build), require=True):
            raise SystemExit("the compiled router is not in use")
    loop = new_event_loop()
    state = ServerState(app, ServerConfig.from_settings(app.config), loop)
    protocol = HttpProtocol(state)
    transport = _Transport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    data = f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()
    for _ in range(count):
        protocol.data_received(data)
    if transport.written < count * 40:
        raise SystemExit(f"only {transport.written} bytes written for {count} requests")
    loop.close()


def instructions(path: str, count: int, build: str | None, module: str = "cello_app") -> int:
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        __file__,
        "--inner",
        path,
        str(count),
        "--app",
        module,
    ]
    if build is not None:
        command += ["--build", build]
    env = dict(os.environ, PYTHONHASHSEED="0")
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    match = re.search(r"Collected : (\d+)", result.stderr)
    if result.returncode != 0 or match is None:
        raise SystemExit(f"callgrind run failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return int(match.group(1))


def build_app(out: Path, module: str = "cello_app") -> str:
    subprocess.run(
        [sys.executable, "-m", "cello", "build", f"{module}:app", "--out", str(out)],
        check=True,
        cwd=HERE / "apps",
        capture_output=True,
    )
    return str(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paths", nargs="+", default=list(PATHS)[:2], choices=list(PATHS))
    parser.add_argument(
        "--routers", nargs="+", default=["interpreted", "compiled"], choices=["interpreted", "compiled"]
    )
    parser.add_argument("--small", type=int, default=2000)
    parser.add_argument("--large", type=int, default=6000)
    parser.add_argument("--inner", nargs=2, metavar=("PATH", "COUNT"), help=argparse.SUPPRESS)
    parser.add_argument("--build", help=argparse.SUPPRESS)
    parser.add_argument("--app", default="cello_app", help="the module in benchmarks/apps whose `app` serves")
    args = parser.parse_args()
    if args.inner:
        run_requests(args.inner[0], int(args.inner[1]), args.build, args.app)
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is required: apt-get install valgrind")
    runtime = subprocess.run([sys.executable, "-m", "cello", "--version"], capture_output=True, text=True).stdout
    print(runtime.strip())
    print("| request | router | instructions / request |")
    print("|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        build = build_app(Path(tmp) / "build", args.app) if "compiled" in args.routers else None
        for name in args.paths:
            for router in args.routers:
                use = build if router == "compiled" else None
                small = instructions(PATHS[name], args.small, use, args.app)
                large = instructions(PATHS[name], args.large, use, args.app)
                per_request = (large - small) / (args.large - args.small)
                print(f"| GET {name} | {router} | {per_request:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
