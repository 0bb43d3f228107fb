"""Rate limits, for tests/test_rate_limit.py: route, blueprint and app limits, fixed and sliding
windows, custom keys. Counters are in memory, or in the Redis at CELLO_TEST_RATE_LIMIT_STORE.

Most limits are keyed by the ``X-Client`` header (a request without it is not limited), so
each test spends a budget of its own on a server shared by the whole session."""

from __future__ import annotations

import os
from typing import Any

from cello import App, Blueprint, HTTPException, Request
from cello.ratelimit import RateLimit

app = App(rate_limit_store=os.environ.get("CELLO_TEST_RATE_LIMIT_STORE", "memory://"))


def by_client(request: Request) -> str | None:
    return request.headers.get("x-client")


def by_app_client(request: Request) -> str | None:
    return request.headers.get("x-app-client")


# The app's limit: only requests that carry X-App-Client spend it (404s too).
app.enable_rate_limit("3/5seconds", key=by_app_client)


@app.get("/free")
def free(request: Request) -> dict[str, Any]:
    return {"pid": os.getpid()}


@app.get("/fixed", rate_limit=RateLimit("3/2seconds", key=by_client))
def fixed(request: Request) -> dict[str, Any]:
    info = request.state.get("rate_limit")  # None for a request without X-Client
    return {"pid": os.getpid(), "remaining": info.remaining if info is not None else None}


@app.get("/sliding", rate_limit=RateLimit("4/2seconds", key=by_client, strategy="sliding"))
def sliding(request: Request) -> dict[str, Any]:
    return {"pid": os.getpid()}


@app.get("/by-address", rate_limit="2/second")
async def by_address(request: Request) -> dict[str, Any]:
    return {"client": request.client_ip()}


@app.route("/form", methods=["GET", "POST"], rate_limit=RateLimit("2/10seconds", key=by_client))
def form(request: Request) -> dict[str, Any]:
    return {"method": request.method}


@app.get("/shared", rate_limit=RateLimit("10/hour", key=by_client))
def shared(request: Request) -> dict[str, Any]:
    return {"pid": os.getpid()}


@app.get("/teapot", rate_limit=RateLimit("1/10seconds", key=by_client))
def teapot(request: Request) -> dict[str, Any]:
    raise HTTPException(418, "I'm a teapot")


api = Blueprint("/api", name="api")
api.enable_rate_limit("4/10seconds", key=by_client)


@api.get("/a")
def api_a(request: Request) -> dict[str, str]:
    return {"route": "a"}


@api.get("/b")
async def api_b(request: Request) -> dict[str, str]:
    return {"route": "b"}


@api.get("/own", rate_limit=RateLimit("1/10seconds", key=by_client))
def api_own(request: Request) -> dict[str, str]:
    return {"route": "own"}


app.register_blueprint(api)


@app.error_handler(429)
def too_many(request: Request, exc: HTTPException) -> Any:
    # Only for the teapot test's budget: the others keep the framework's JSON error.
    if request.path == "/teapot":
        return {"custom": True}, 429
    raise exc
