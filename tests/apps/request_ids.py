"""The app behind tests/test_request_id.py: request ids on, the access log and the framework's
own logs as JSON lines.

It trusts the proxy at 127.0.0.1; the tests reach it from 127.0.0.1 (a trusted proxy, whose
X-Request-ID is kept) and from 127.0.0.2 (a peer whose X-Request-ID is ignored).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from typing import Any

from cello import App, HTTPException, Request
from cello.logs import JsonFormatter, RequestIdFilter, current_request_id

app = App(forwarded_allow_ips=["127.0.0.1"])
app.enable_request_id()
app.enable_logging(format="json")

# `cello serve` installs the handler of Cello's loggers; under uvicorn or hypercorn nobody does,
# so the app does what docs/operations.md shows for another server.
if "uvicorn" in sys.modules or "hypercorn" in sys.modules:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    cello_log = logging.getLogger("cello")
    cello_log.addHandler(handler)
    cello_log.setLevel(logging.INFO)


class Kept(logging.Handler):
    """The records of the app's own logger, as a user's handler with the filter sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.addFilter(RequestIdFilter())
        self.request_ids: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.request_ids.append(record.request_id)


kept = Kept()
user_log = logging.getLogger("request_ids_app")
user_log.addHandler(kept)
user_log.setLevel(logging.INFO)
user_log.propagate = False


@app.get("/id")
def show_id(request: Request) -> dict[str, Any]:
    return {"id": request.id, "current": current_request_id()}


@app.get("/async-id")
async def show_id_async(request: Request) -> dict[str, Any]:
    await asyncio.sleep(0)
    return {"id": request.id, "current": current_request_id()}


@app.get("/threaded-id", threaded=True)
def show_id_threaded(request: Request) -> dict[str, Any]:
    return {"id": request.id, "current": current_request_id()}


@app.get("/user-log")
def log_something(request: Request) -> dict[str, Any]:
    user_log.info("handling %s", request.raw_path)
    return {"id": request.id, "logged": kept.request_ids[-1]}


@app.get("/thread-log")
def log_from_another_thread(request: Request) -> dict[str, Any]:
    # A thread of the user's, logging while the request is handled on the inline path: its line
    # is not the request's.
    other = threading.Thread(target=user_log.info, args=("from another thread",))
    other.start()
    other.join()
    user_log.info("from the handler")
    return {"id": request.id, "logged": kept.request_ids[-2:]}


@app.get("/boom")
def boom(request: Request) -> str:
    raise RuntimeError("boom")


@app.get("/unavailable")
def unavailable(request: Request) -> str:
    raise HTTPException(503)


@app.get("/teapot")
def teapot(request: Request) -> str:
    raise HTTPException(418)
