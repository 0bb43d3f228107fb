"""The apps of the worker-supervision tests (tests/test_faults.py): a worker whose event loop
is blocked for good, and workers that die as they start."""

from __future__ import annotations

import os
import time

from cello import App, Request

app = App(graceful_timeout=2.0)


@app.get("/pid")
def pid(request: Request) -> str:
    return str(os.getpid())


@app.get("/block")
def block(request: Request) -> str:
    while True:  # a sync handler that never returns: its worker's event loop is stuck
        time.sleep(1.0)


crashing = App()


@crashing.on_startup
def die() -> None:
    os._exit(1)  # not a failing hook (that stops the supervisor at once): a crash


@crashing.get("/")
def never(request: Request) -> str:
    return "unreachable"
