"""CORS against the Fetch standard's checks, compression, timing and the access log."""

from __future__ import annotations

import gzip
from collections.abc import Callable

import httpx
import pytest
from support.servers import RunningServer

from cello.middleware.compression import choose_encoding, parse_accept_encoding

GOOD = "https://good.example"
BAD = "https://evil.example"


@pytest.fixture
def client(serve_app: Callable[..., RunningServer], variant: tuple[str, str]) -> httpx.Client:
    with httpx.Client(base_url=serve_app("tests/apps/middleware_app.py", *variant).url) as client:
        yield client  # type: ignore[misc]


def fetch_cors_check(response: httpx.Response, origin: str, credentials: bool) -> bool:
    """The Fetch standard's CORS check (https://fetch.spec.whatwg.org/#cors-check)."""
    allow_origin = response.headers.get("access-control-allow-origin")
    if allow_origin is None:
        return False
    if not credentials and allow_origin == "*":
        return True
    if allow_origin != origin:
        return False
    if not credentials:
        return True
    return response.headers.get("access-control-allow-credentials") == "true"


def fetch_preflight_ok(
    response: httpx.Response, origin: str, method: str, headers: list[str], credentials: bool
) -> bool:
    """CORS-preflight fetch: ok status, CORS check, method and header lists (Fetch 4.8)."""
    if not 200 <= response.status_code <= 299 or not fetch_cors_check(response, origin, credentials):
        return False
    methods = [m.strip() for m in response.headers.get("access-control-allow-methods", "").split(",") if m.strip()]
    allowed_headers = [h.strip().lower() for h in response.headers.get("access-control-allow-headers", "").split(",")]
    safelisted = {"GET", "HEAD", "POST"}
    if method not in methods and method not in safelisted and not ("*" in methods and not credentials):
        return False
    return all(h.lower() in allowed_headers or ("*" in allowed_headers and not credentials) for h in headers)


def vary(response: httpx.Response) -> list[str]:
    return [v.strip().lower() for v in response.headers.get("vary", "").split(",") if v.strip()]


@pytest.mark.parametrize(
    ("path", "origin", "credentials", "allowed"),
    [
        ("/data", GOOD, False, True),
        ("/data", BAD, False, False),
        ("/cred/me", GOOD, True, True),
        ("/cred/me", BAD, True, True),  # any origin, echoed, credentials allowed
    ],
)
def test_simple_requests(client: httpx.Client, path: str, origin: str, credentials: bool, allowed: bool) -> None:
    response = client.get(path, headers={"origin": origin})
    assert response.status_code == 200
    assert fetch_cors_check(response, origin, credentials) is allowed
    assert "origin" in vary(response)
    if credentials:
        assert response.headers["access-control-allow-origin"] != "*"
        assert response.headers["access-control-expose-headers"] == "x-total"


def test_no_origin_no_cors_headers(client: httpx.Client) -> None:
    response = client.get("/data")
    assert "access-control-allow-origin" not in response.headers


def test_wildcard_without_credentials(client: httpx.Client) -> None:
    response = client.post("/wild/open", headers={"origin": BAD})
    assert response.headers["access-control-allow-origin"] == "*"
    assert fetch_cors_check(response, BAD, credentials=False)
    assert not fetch_cors_check(response, BAD, credentials=True)


@pytest.mark.parametrize(
    ("path", "origin", "method", "headers", "credentials", "ok"),
    [
        ("/data", GOOD, "POST", ["X-Custom"], False, True),
        ("/data", GOOD, "POST", ["X-Other"], False, False),
        ("/data", GOOD, "DELETE", [], False, False),
        ("/data", BAD, "GET", [], False, False),
        ("/cred/me", GOOD, "GET", ["Authorization"], True, True),
        ("/wild/open", BAD, "POST", ["Content-Type"], False, True),
    ],
)
def test_preflight(
    client: httpx.Client, path: str, origin: str, method: str, headers: list[str], credentials: bool, ok: bool
) -> None:
    request_headers = {"origin": origin, "access-control-request-method": method}
    if headers:
        request_headers["access-control-request-headers"] = ", ".join(headers)
    response = client.options(path, headers=request_headers)
    assert fetch_preflight_ok(response, origin, method, headers, credentials) is ok
    if ok:
        assert response.status_code == 204
        assert response.headers["access-control-max-age"] == "86400"
    else:
        assert response.status_code == 403
        assert response.json()["status"] == 403


def test_preflight_does_not_reach_handler(client: httpx.Client) -> None:
    before = client.get("/hits").json()["options"]
    response = client.options("/preflighted", headers={"origin": GOOD, "access-control-request-method": "GET"})
    assert response.status_code == 204
    assert client.get("/hits").json()["options"] == before
    # A plain OPTIONS (no preflight headers) still reaches the declared route.
    assert client.options("/preflighted").text == "handler reached"


def test_gzip_large_json(client: httpx.Client) -> None:
    response = client.get("/z/big", headers={"accept-encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip"
    assert "accept-encoding" in vary(response)
    assert response.json() == {"text": "cello " * 500}  # httpx decodes
    with client.stream("GET", "/z/big", headers={"accept-encoding": "gzip"}) as streamed:
        raw = b"".join(streamed.iter_raw())
    assert len(raw) < 200
    assert gzip.decompress(raw) == b'{"text":"' + b"cello " * 500 + b'"}'
    assert int(streamed.headers["content-length"]) == len(raw)


def test_gzip_respects_q_zero_and_identity(client: httpx.Client) -> None:
    response = client.get("/z/big", headers={"accept-encoding": "gzip;q=0, identity"})
    assert "content-encoding" not in response.headers
    assert "accept-encoding" in vary(response)


@pytest.mark.parametrize("path", ["/z/small", "/z/png"])
def test_not_compressed(client: httpx.Client, path: str) -> None:
    response = client.get(path, headers={"accept-encoding": "gzip"})
    assert "content-encoding" not in response.headers


def test_never_double_compressed(client: httpx.Client) -> None:
    response = client.get("/z/encoded", headers={"accept-encoding": "gzip"})
    assert response.headers["content-encoding"] == "identity-ish"


def test_streaming_compressed_per_chunk(client: httpx.Client) -> None:
    with client.stream("GET", "/z/stream", headers={"accept-encoding": "gzip"}) as response:
        assert response.headers["content-encoding"] == "gzip"
        raw = b"".join(response.iter_raw())
    assert gzip.decompress(raw).decode() == "".join(f"line {i} " * 50 + "\n" for i in range(5))


def test_timing_headers(client: httpx.Client) -> None:
    response = client.get("/z/small")
    assert response.headers["server-timing"].startswith("app;dur=")
    assert response.headers["x-response-time"].endswith("ms")


@pytest.mark.native_only(reason="the access log is written by `cello serve`")
def test_access_log_line(serve_app: Callable[..., RunningServer], variant: tuple[str, str]) -> None:
    server = serve_app("tests/apps/middleware_app.py", *variant)
    httpx.get(server.url + "/logged/x?a=1")
    import time

    deadline = time.monotonic() + 5
    while '"GET /logged/x?a=1 HTTP/1.1" 200' not in server.output() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert '"GET /logged/x?a=1 HTTP/1.1" 200' in server.output()


def test_accept_encoding_parsing() -> None:
    assert parse_accept_encoding("gzip;q=0.5, br, *;q=0") == {"gzip": 0.5, "br": 1.0, "*": 0.0}
    assert choose_encoding("gzip;q=0.5, br", ("br", "gzip")) == "br"
    assert choose_encoding("gzip;q=0.5, br;q=0.4", ("br", "gzip")) == "gzip"
    assert choose_encoding("*", ("br", "gzip")) == "br"
    assert choose_encoding("identity", ("br", "gzip")) is None
    assert choose_encoding("gzip;q=bogus", ("gzip",)) is None
