"""CSRF protection of form posts: over the network on every server variant (urlencoded,
multipart uploads, text/plain, no body, the header, exempt and stream routes) and under
TestClient (the Redis store, settings)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from support.servers import RunningServer

from cello import App, Request
from cello.sessions import csrf_token
from cello.testing import TestClient

APP = "tests/apps/sessions_app.py"
FORBIDDEN = {"error": "Forbidden: CSRF token missing or invalid", "status": 403}


@pytest.fixture
def client(serve_app: Callable[..., RunningServer], variant: tuple[str, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=serve_app(APP, *variant).url) as client:
        yield client


def token_of(client: httpx.Client) -> str:
    token = client.get("/csrf").json()["token"]
    assert isinstance(token, str) and len(token) >= 32
    return token


def test_a_form_post_without_a_token_is_refused(client: httpx.Client) -> None:
    token_of(client)  # the session has a token: the post just does not carry it
    response = client.post("/form", data={"name": "ada"})
    assert response.status_code == 403
    assert response.json() == FORBIDDEN


def test_a_form_post_without_any_session_is_refused(client: httpx.Client) -> None:
    response = client.post("/form", data={"name": "ada", "csrf_token": "made-up"})
    assert response.status_code == 403
    assert response.json() == FORBIDDEN


def test_the_token_in_the_form_field(client: httpx.Client) -> None:
    token = token_of(client)
    response = client.post("/form", data={"name": "ada", "csrf_token": token})
    assert response.status_code == 200
    # The handler's own form() reads the form the check parsed.
    assert response.json() == {"name": "ada", "files": 0}
    middle = len(token) // 2
    flipped = token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]
    wrong = client.post("/form", data={"name": "ada", "csrf_token": flipped})
    assert wrong.status_code == 403


def test_each_token_is_masked_afresh_and_all_stay_valid(client: httpx.Client) -> None:
    tokens = [token_of(client) for _ in range(3)]
    assert len(set(tokens)) == 3  # never the same bytes twice on a page (BREACH)
    for token in tokens:
        assert client.post("/form", data={"name": "ada", "csrf_token": token}).status_code == 200


def test_a_token_of_another_session_is_refused(client: httpx.Client) -> None:
    with httpx.Client(base_url=str(client.base_url)) as other:
        theirs = token_of(other)
    token_of(client)
    assert client.post("/form", data={"name": "ada", "csrf_token": theirs}).status_code == 403


def test_the_token_in_the_header(client: httpx.Client) -> None:
    token = token_of(client)
    ok = client.post("/form", data={"name": "ada"}, headers={"X-CSRF-Token": token})
    assert ok.json() == {"name": "ada", "files": 0}
    # A wrong header is not rescued by a right field.
    bad = client.post("/form", data={"name": "ada", "csrf_token": token}, headers={"X-CSRF-Token": "nope"})
    assert bad.status_code == 403


def test_uploads(client: httpx.Client) -> None:
    token = token_of(client)
    files = {"upload": ("notes.txt", b"x" * 200_000, "text/plain")}
    ok = client.post("/form", data={"name": "ada", "csrf_token": token}, files=files)
    assert ok.status_code == 200
    assert ok.json() == {"name": "ada", "files": 1}
    header = client.post("/form", data={"name": "ada"}, files=files, headers={"X-CSRF-Token": token})
    assert header.json() == {"name": "ada", "files": 1}
    for data in ({"name": "ada"}, {"name": "ada", "csrf_token": "forged"}):
        refused = client.post("/form", data=data, files=files)
        assert refused.status_code == 403
        assert refused.json() == FORBIDDEN


@pytest.mark.parametrize("content_type", ["text/plain", None])
def test_bodies_a_page_can_send_without_preflight_are_checked(client: httpx.Client, content_type: str | None) -> None:
    token = token_of(client)
    headers = {"content-type": content_type} if content_type else {}
    assert client.post("/stream", content=b"abc", headers=headers).status_code == 403
    ok = client.post("/stream", content=b"abc", headers={**headers, "X-CSRF-Token": token})
    assert ok.json() == {"size": 3}


def test_delete_without_a_body_needs_the_header(client: httpx.Client) -> None:
    token = token_of(client)
    assert client.delete("/thing").status_code == 403
    assert client.delete("/thing", headers={"X-CSRF-Token": token}).json() == {"deleted": True}


def test_json_requests_are_not_checked(client: httpx.Client) -> None:
    response = client.put("/session", json={"theme": "dark"})
    assert response.status_code == 200
    assert response.json() == {"theme": "dark"}


def test_safe_methods_and_exempt_routes_are_not_checked(client: httpx.Client) -> None:
    assert client.get("/session").status_code == 200
    assert client.head("/session").status_code == 200
    assert client.post("/exempt", data={"name": "hook"}).json() == {"name": "hook"}


def test_a_new_token_after_login(client: httpx.Client) -> None:
    before = token_of(client)
    client.get("/login/ada")
    after = token_of(client)
    assert after != before
    assert client.post("/form", data={"name": "x", "csrf_token": before}).status_code == 403
    assert client.post("/form", data={"name": "x", "csrf_token": after}).status_code == 200


# -- under TestClient ------------------------------------------------------------------------


def test_enable_csrf_needs_sessions() -> None:
    with pytest.raises(RuntimeError, match=r"call app.enable_sessions\(secret_key=...\) first"):
        App().enable_csrf()


def test_unknown_route_options_are_still_refused() -> None:
    from cello import RouteError

    app = App()
    with pytest.raises(RouteError, match="did you mean 'csrf'"):
        app.post("/x", csrfs=False)(lambda request: None)  # type: ignore[call-arg]


def csrf_app(store: str) -> App:
    app = App()
    app.enable_sessions(secret_key="k", store=store)
    app.enable_csrf()

    @app.get("/token")
    def token(request: Request) -> dict[str, str]:
        return {"token": csrf_token(request)}

    @app.post("/post")
    def post(request: Request) -> dict[str, Any]:
        return {"name": request.form().get("name")}

    return app


@pytest.mark.parametrize("store", ["cookie", "redis"])
def test_under_the_test_client(store: str, request: pytest.FixtureRequest) -> None:
    url = "cookie" if store == "cookie" else request.getfixturevalue("redis_server").url
    with TestClient(csrf_app(url)) as client:
        assert client.post("/post", data={"name": "a"}).status_code == 403
        token = client.get("/token").json()["token"]
        assert client.post("/post", data={"name": "a", "csrf_token": token}).json() == {"name": "a"}


def test_no_guard_is_added_when_csrf_is_off() -> None:
    app = App()
    app.enable_sessions(secret_key="k")

    @app.post("/post")
    def post(request: Request) -> dict[str, Any]:
        return {"name": request.form().get("name")}

    with TestClient(app) as client:
        assert client.post("/post", data={"name": "a"}).json() == {"name": "a"}
