"""app.enable_security_headers(): over the network on every server variant, and under
TestClient for HTTPS (HSTS) and the settings."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from support.servers import RunningServer

from cello import App, Blueprint, Request, Response
from cello.testing import TestClient

APP = "tests/apps/sessions_app.py"
DEFAULTS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "strict-origin-when-cross-origin",
    "x-frame-options": "DENY",
}


def test_over_the_network(serve_app: Callable[..., RunningServer], variant: tuple[str, str]) -> None:
    with httpx.Client(base_url=serve_app(APP, *variant).url) as client:
        for path, status in (("/", 200), ("/nope", 404), ("/streamed/x", 200)):
            response = client.get(path)
            assert response.status_code == status
            for name, value in DEFAULTS.items():
                assert response.headers.get_list(name) == [value], (path, name)
            assert response.headers["content-security-policy"] == "default-src 'self'"
            assert "strict-transport-security" not in response.headers  # plain HTTP
            assert "permissions-policy" not in response.headers
        # What the handler set stays, once.
        framed = client.get("/framed")
        assert framed.headers.get_list("x-frame-options") == ["SAMEORIGIN"]


def app_with(**options: object) -> App:
    app = App()
    app.enable_security_headers(**options)  # type: ignore[arg-type]

    @app.get("/")
    def index(request: Request) -> str:
        return "ok"

    @app.get("/own")
    def own(request: Request) -> Response:
        response = Response(None, 204)
        response.set_header("Strict-Transport-Security", "max-age=60")
        response.set_header("Referrer-Policy", "no-referrer")
        return response

    return app


def test_the_defaults() -> None:
    # The documented defaults (docs/sessions.md), so that a change to them is a decision.
    names = (*DEFAULTS, "strict-transport-security", "content-security-policy", "permissions-policy")
    with TestClient(app_with(), base_url="https://testserver") as client:
        headers = client.get("/").headers
        assert {name: headers[name] for name in names if name in headers} == {
            **DEFAULTS,
            "strict-transport-security": "max-age=31536000; includeSubDomains",
        }


def test_hsts_only_on_https() -> None:
    app = app_with()
    with TestClient(app, base_url="https://testserver") as client:
        assert client.get("/").headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
        own = client.get("/own")
        assert own.headers.get_list("strict-transport-security") == ["max-age=60"]
        assert own.headers.get_list("referrer-policy") == ["no-referrer"]
        assert own.headers["x-frame-options"] == "DENY"
    with TestClient(app) as client:
        assert "strict-transport-security" not in client.get("/").headers


def test_settings() -> None:
    app = app_with(
        hsts="max-age=63072000; includeSubDomains; preload",
        content_type_options=None,
        referrer_policy="no-referrer",
        frame_options="sameorigin",
        csp="default-src 'none'",
        permissions_policy="camera=(), geolocation=()",
    )
    with TestClient(app, base_url="https://testserver") as client:
        headers = client.get("/").headers
        assert headers["strict-transport-security"] == "max-age=63072000; includeSubDomains; preload"
        assert "x-content-type-options" not in headers
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["x-frame-options"] == "SAMEORIGIN"
        assert headers["content-security-policy"] == "default-src 'none'"
        assert headers["permissions-policy"] == "camera=(), geolocation=()"
    with TestClient(app_with(hsts=False), base_url="https://testserver") as client:
        assert "strict-transport-security" not in client.get("/").headers


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"frame_options": "ALLOW-FROM https://x"}, "frame_options"),
        ({"csp": "default-src 'self'\r\nSet-Cookie: a=b"}, "content-security-policy"),
        ({"hsts": "max-age=1\n"}, "strict-transport-security"),
    ],
)
def test_bad_values_fail_at_start_up(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        App().enable_security_headers(**options)  # type: ignore[arg-type]


def test_per_blueprint_and_nothing_when_not_enabled() -> None:
    app = App()
    admin = Blueprint("/admin", name="admin")
    admin.enable_security_headers(frame_options="SAMEORIGIN")

    @admin.get("/page")
    def page(request: Request) -> str:
        return "admin"

    @app.get("/")
    def index(request: Request) -> str:
        return "ok"

    app.register_blueprint(admin)
    assert app.scope.after == []  # nothing installed on the app: nothing runs for its routes
    with TestClient(app) as client:
        plain = client.get("/").headers
        assert not any(name in plain for name in DEFAULTS)
        assert client.get("/admin/page").headers["x-frame-options"] == "SAMEORIGIN"
