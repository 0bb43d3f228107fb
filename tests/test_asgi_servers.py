"""The same app under uvicorn (through cello.asgi) and under `cello serve` answers alike."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from support.servers import RunningServer, start_asgi_server

uvicorn = pytest.importorskip("uvicorn")

KEY = {"X-API-Key": "dev-key"}
ORIGIN = "http://localhost:3000"
# Headers whose values must agree; Date, Server and framing headers legitimately differ.
COMPARED = (
    "content-type",
    "allow",
    "location",
    "vary",
    "access-control-allow-origin",
    "access-control-allow-methods",
    "access-control-allow-headers",
)

SCRIPT: list[tuple[str, str, dict[str, str], object]] = [
    ("GET", "/", {}, None),
    ("GET", "/api/v1/users", {}, None),
    ("GET", "/api/v1/users/1", {}, None),
    ("GET", "/api/v1/users/999", {}, None),
    ("GET", "/api/v1/users/abc", {}, None),
    ("POST", "/api/v1/users", {}, {"name": "x", "email": "x@example.com"}),
    ("POST", "/api/v1/users", {"X-API-Key": "wrong"}, {"name": "x", "email": "x@example.com"}),
    ("POST", "/api/v1/users", KEY, {"name": "Eve", "email": "eve@example.com"}),
    ("POST", "/api/v1/users", KEY, {"name": ""}),
    ("PATCH", "/api/v1/users/1", KEY, {"name": "Ada L."}),
    ("DELETE", "/api/v1/users/2", KEY, None),
    ("GET", "/api/v1/users/2", {}, None),
    ("PUT", "/api/v1", KEY, None),
    ("HEAD", "/api/v1/users/1", {}, None),
    ("GET", "/api/v1/users/", {}, None),
    ("GET", "/nope", {}, None),
    (
        "OPTIONS",
        "/api/v1/users",
        {"Origin": ORIGIN, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x-api-key"},
        None,
    ),
    ("GET", "/api/v1/users/1", {"Origin": ORIGIN}, None),
]


@pytest.fixture(scope="module")
def uvicorn_url() -> Iterator[str]:
    # Its own server, not serve_app's shared one: the script writes to the app's in-memory store.
    server = start_asgi_server("examples/rest.py", "uvicorn")
    try:
        yield server.url
    finally:
        server.stop()


def run_script(base: str) -> list[tuple[int, dict[str, str], bytes]]:
    answers = []
    with httpx.Client(base_url=base, follow_redirects=False) as client:
        for method, path, headers, body in SCRIPT:
            response = client.request(method, path, headers=headers, json=body)
            kept = {name: response.headers[name] for name in COMPARED if name in response.headers}
            answers.append((response.status_code, kept, response.content))
    return answers


def test_uvicorn_and_cello_serve_answer_alike(uvicorn_url: str, serve_app: Callable[..., RunningServer]) -> None:
    # A fresh `cello serve` (its own in-memory store), not the shared one other tests write to.
    native = serve_app("examples/rest.py", "httptools", "interpreted", "--backlog", "2048")
    assert run_script(uvicorn_url) == run_script(native.url)
