"""The Python field for TechEmpower's test types: each peer app of this directory, the packages
it needs in the peers venv and the command serving it with a number of workers.

    for peer in PEERS:
        argv = [arg.replace("{port}", str(port)) for arg in peer.argv(venv / "bin", workers)]
        subprocess.Popen(argv, cwd=peer.cwd, env={**os.environ, "TFB_DSN": dsn})

The ASGI apps run under Granian as benchmarks/run.py runs them; Sanic runs its own server
(in single-process mode for one worker).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from common import granian_argv

HERE = Path(__file__).resolve().parent

# What every peer app needs besides its framework and server.
COMMON = ["asyncpg", "jinja2", "uvloop"]


@dataclass(frozen=True)
class Peer:
    key: str
    name: str
    packages: list[str]  # pip packages for the peers venv
    argv: Callable[[Path, int], list[str]]  # (the venv's bin directory, workers) -> argv, "{port}" to fill in
    cwd: Path = HERE


def _granian(module: str) -> Callable[[Path, int], list[str]]:
    def argv(bin: Path, workers: int) -> list[str]:
        return granian_argv(str(bin / "python"), f"{module}:app", workers)

    return argv


def _sanic(bin: Path, workers: int) -> list[str]:
    return [
        str(bin / "sanic"),
        "sanic_app:app",
        *(["--single-process"] if workers == 1 else ["--workers", str(workers)]),
        "--no-access-logs",
        "--no-motd",
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
    ]


PEERS: list[Peer] = [
    Peer("blacksheep", "BlackSheep + Granian", ["blacksheep", "granian", *COMMON], _granian("blacksheep_app")),
    Peer("falcon", "Falcon + Granian", ["falcon", "granian", *COMMON], _granian("falcon_app")),
    Peer("starlette", "Starlette + Granian", ["starlette", "granian", *COMMON], _granian("starlette_app")),
    Peer("fastapi", "FastAPI + Granian", ["fastapi", "granian", *COMMON], _granian("fastapi_app")),
    Peer("litestar", "Litestar + Granian", ["litestar", "granian", "msgspec", *COMMON], _granian("litestar_app")),
    Peer("sanic", "Sanic", ["sanic", *COMMON], _sanic),
]
