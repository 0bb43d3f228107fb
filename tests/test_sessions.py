"""Sessions: the signed-cookie and Redis stores over the network on every server variant, and
under TestClient: saved only when changed, cookie attributes, tampering, expiry, key rotation,
regeneration, flashed messages, and what a user sees when Redis is away."""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from support.redis import RedisServer
from support.servers import RunningServer

from cello import App, Request, Response
from cello.sessions import get_flashed_messages
from cello.sessions.cookie import CookieSessions, SessionCookie
from cello.sessions.signing import JsonCodec, Signer
from cello.testing import TestClient

APP = "tests/apps/sessions_app.py"
KEY = "sessions test key"


@pytest.fixture(params=["cookie", "redis"])
def store(request: pytest.FixtureRequest) -> str:
    if request.param == "cookie":
        return "cookie"
    server: RedisServer = request.getfixturevalue("redis_server")
    return server.url


@pytest.fixture
def client(serve_app: Callable[..., RunningServer], variant: tuple[str, str], store: str) -> Iterator[httpx.Client]:
    env = {} if store == "cookie" else {"CELLO_TEST_SESSION_STORE": store}
    with httpx.Client(base_url=serve_app(APP, *variant, env=env).url) as client:
        yield client


def set_cookies(response: httpx.Response) -> list[str]:
    return response.headers.get_list("set-cookie")


def session_cookie(response: httpx.Response) -> str:
    (header,) = [value for value in set_cookies(response) if value.startswith("session=")]
    return header


def cookie_value(response: httpx.Response) -> str:
    return session_cookie(response).split(";")[0].partition("=")[2]


def attributes(header: str) -> dict[str, str]:
    found = {}
    for part in header.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        found[name.lower()] = value
    return found


# -- over the network, both stores, every server variant -------------------------------------


def test_a_route_that_never_touches_the_session_sets_no_cookie(client: httpx.Client) -> None:
    response = client.get("/")
    assert response.json() == {"ok": True}
    assert set_cookies(response) == []
    assert "cookie" not in response.headers.get("vary", "").lower()


def test_reading_an_empty_session_sets_no_cookie(client: httpx.Client) -> None:
    response = client.get("/session")
    assert response.json() == {}
    assert set_cookies(response) == []


def test_a_changed_session_is_saved_and_an_unchanged_one_is_not(client: httpx.Client) -> None:
    first = client.get("/set/color/blue")
    assert first.json() == {"color": "blue"}
    header = session_cookie(first)
    attrs = attributes(header)
    assert "httponly" in attrs
    assert attrs["samesite"] == "Lax"
    assert attrs["path"] == "/"
    assert attrs["max-age"] == str(14 * 24 * 3600)
    assert "secure" not in attrs  # plain HTTP
    assert "cookie" in first.headers["vary"].lower()

    again = client.get("/session")
    assert again.json() == {"color": "blue"}
    assert set_cookies(again) == []  # read, not changed: nothing to send
    assert "cookie" in again.headers["vary"].lower()

    client.get("/set/size/large")
    assert client.get("/session").json() == {"color": "blue", "size": "large"}


@pytest.mark.parametrize("path", ["/async-set/a", "/threaded-set/t"])
def test_async_and_threaded_handlers(client: httpx.Client, path: str) -> None:
    response = client.get(path)
    assert set_cookies(response)
    assert client.get("/session").json() == response.json()


def test_a_streamed_response_carries_the_cookie_in_its_head(client: httpx.Client) -> None:
    response = client.get("/streamed/s1")
    assert response.text == "chunk 0\nchunk 1\nchunk 2\n"
    assert session_cookie(response)
    assert client.get("/session").json() == {"streamed": "s1"}


def test_a_change_made_by_an_after_hook_is_saved(client: httpx.Client) -> None:
    response = client.get("/hooked")
    assert session_cookie(response)
    assert client.get("/session").json() == {"hooked": True}


def test_mutating_a_value_in_place_needs_modified(client: httpx.Client) -> None:
    assert client.get("/cart/add/apple").json() == {"cart": ["apple"]}  # setdefault added the key
    unmarked = client.get("/cart/add/pear")
    assert set_cookies(unmarked) == []
    assert client.get("/session").json() == {"cart": ["apple"]}
    marked = client.get("/cart/add/plum", params={"mark": "1"})
    assert set_cookies(marked)
    assert client.get("/session").json() == {"cart": ["apple", "plum"]}


def test_login_regenerates_and_logout_deletes(client: httpx.Client) -> None:
    client.get("/set/theme/dark")
    before = client.cookies["session"]
    assert client.get("/login/ada").json() == {"theme": "dark", "user": "ada"}
    after = client.cookies["session"]
    assert after != before
    # The old cookie (an id planted before the login, with the Redis store) is worth nothing now
    # on the Redis store; the signed cookie store cannot revoke it (docs/sessions.md).
    logout = client.get("/logout")
    assert logout.json() == {}
    attrs = attributes(session_cookie(logout))
    assert attrs["max-age"] == "0"
    assert "session" not in client.cookies
    assert client.get("/session").json() == {}


def test_an_old_id_is_dead_after_regeneration_on_redis(
    serve_app: Callable[..., RunningServer], variant: tuple[str, str], redis_server: RedisServer
) -> None:
    url = serve_app(APP, *variant, env={"CELLO_TEST_SESSION_STORE": redis_server.url}).url
    with httpx.Client(base_url=url) as client:
        client.get("/set/cart/full")
        planted = client.cookies["session"]
        client.get("/login/ada")
        assert client.cookies["session"] != planted
    with httpx.Client(base_url=url, cookies={"session": planted}) as attacker:
        assert attacker.get("/session").json() == {}


def test_a_tampered_cookie_gives_an_empty_session(client: httpx.Client) -> None:
    client.get("/set/role/user")
    value = client.cookies["session"]
    payload, _, rest = value.partition(".")
    forged = JsonCodec.dumps({"role": "admin"}).encode()
    import base64

    forged_payload = base64.urlsafe_b64encode(forged).rstrip(b"=").decode()
    for bad in (forged_payload + "." + rest, value[:-3] + ("AAA" if value[-3:] != "AAA" else "BBB"), "garbage", ""):
        client.cookies.clear()
        client.cookies.set("session", bad)
        response = client.get("/session")
        assert response.status_code == 200
        assert response.json() == {}


def test_flashed_messages(client: httpx.Client) -> None:
    client.get("/flash/info/hello")
    client.get("/flash/error/oops")
    response = client.get("/flashes")
    assert response.json() == {"flashes": [["info", "hello"], ["error", "oops"]], "again": ["hello", "oops"]}
    assert client.get("/flashes").json() == {"flashes": [], "again": []}  # taken out by the first read


def test_flashed_messages_by_category(client: httpx.Client) -> None:
    client.get("/flash/info/hello")
    client.get("/flash/error/oops")
    response = client.get("/flashes", params={"category": "error"})
    assert response.json() == {"flashes": [["error", "oops"]], "again": ["oops"]}
    # Filtering reads them all out, as in Flask.
    assert client.get("/flashes").json()["flashes"] == []


# -- under TestClient ------------------------------------------------------------------------


def make_app(**options: Any) -> App:
    app = App(debug=True)
    app.enable_sessions(**{"secret_key": KEY, **options})

    @app.get("/set/{key}/{value}")
    def set_value(request: Request) -> dict[str, Any]:
        request.session[request.params["key"]] = request.params["value"]
        return dict(request.session)

    @app.get("/session")
    def show(request: Request) -> dict[str, Any]:
        return dict(request.session)

    @app.get("/big")
    def big(request: Request) -> dict[str, int]:
        request.session["blob"] = secrets.token_urlsafe(4000)  # random: zlib cannot shrink it
        return {"size": 5000}

    @app.get("/unjsonable")
    def unjsonable(request: Request) -> dict[str, int]:
        request.session["when"] = object()
        return {}

    @app.get("/")
    def index(request: Request) -> str:
        return "ok"

    return app


def test_cookies_persist_in_the_test_client() -> None:
    with TestClient(make_app()) as client:
        client.get("/set/a/1")
        client.get("/set/b/2")
        assert client.get("/session").json() == {"a": "1", "b": "2"}


def test_the_default_cookie() -> None:
    # The documented defaults (docs/sessions.md), so that a change to them is a decision.
    with TestClient(make_app()) as client:
        header = session_cookie(client.get("/set/a/1"))
        assert attributes(header) == {"httponly": "", "samesite": "Lax", "path": "/", "max-age": str(14 * 24 * 3600)}


def test_secure_is_automatic_on_https() -> None:
    app = make_app()
    with TestClient(app, base_url="https://testserver") as client:
        assert "secure" in attributes(session_cookie(client.get("/set/a/1")))
        assert client.get("/session").json() == {"a": "1"}
    with TestClient(app) as client:
        assert "secure" not in attributes(session_cookie(client.get("/set/a/1")))


def test_explicit_cookie_attributes() -> None:
    app = make_app(secure=True, same_site="strict", cookie_name="sid", max_age=60, domain="testserver.local", path="/")
    with TestClient(app) as client:
        response = client.get("/set/a/1")
        (header,) = set_cookies(response)
        assert header.startswith("sid=")
        attrs = attributes(header)
        assert "secure" in attrs
        assert attrs["samesite"] == "Strict"
        assert attrs["max-age"] == "60"
        assert attrs["domain"] == "testserver.local"
    with TestClient(make_app(http_only=False, same_site=None)) as client:
        attrs = attributes(session_cookie(client.get("/set/a/1")))
        assert "httponly" not in attrs
        assert "samesite" not in attrs


def test_key_rotation() -> None:
    with TestClient(make_app(secret_key="old key")) as client:
        client.get("/set/user/ada")
        signed_with_old = client.cookies["session"]
    rotated = make_app(secret_key=["new key", "old key"])
    with TestClient(rotated, cookies={"session": signed_with_old}) as client:
        response = client.get("/session")
        assert response.json() == {"user": "ada"}  # still accepted
        assert set_cookies(response) == []  # unchanged: not re-signed
        resigned = cookie_value(client.get("/set/theme/dark"))
    assert Signer(["new key"], "cello.session", 60).loads(resigned) == {"user": "ada", "theme": "dark"}
    assert Signer(["old key"], "cello.session", 60).loads(resigned) is None
    # Once the old key is dropped, its cookies are worth nothing.
    with TestClient(make_app(secret_key="new key"), cookies={"session": signed_with_old}) as client:
        assert client.get("/session").json() == {}


class _AnHourAgo(TimestampSigner):
    def get_timestamp(self) -> int:
        return int(time.time()) - 3600


def test_an_expired_cookie_gives_an_empty_session() -> None:
    old = URLSafeTimedSerializer(KEY.encode(), salt="cello.session", serializer=JsonCodec, signer=_AnHourAgo)
    with TestClient(make_app(max_age=60), cookies={"session": old.dumps({"user": "ada"})}) as client:
        assert client.get("/session").json() == {}
    with TestClient(make_app(max_age=7200), cookies={"session": old.dumps({"user": "ada"})}) as client:
        assert client.get("/session").json() == {"user": "ada"}


def test_max_age_passes_in_real_time() -> None:
    with TestClient(make_app(max_age=1)) as client:
        client.get("/set/a/1")
        assert client.get("/session").json() == {"a": "1"}
        time.sleep(2.1)
        assert client.get("/session").json() == {}


def test_a_cookie_too_large_is_not_sent_and_says_why(caplog: pytest.LogCaptureFixture) -> None:
    with TestClient(make_app()) as client:
        client.get("/set/a/1")
        with caplog.at_level(logging.ERROR, logger="cello.sessions"):
            response = client.get("/big")
        assert response.status_code == 200
        assert set_cookies(response) == []
        assert "session not saved" in caplog.text and "blob" in caplog.text and "Redis store" in caplog.text
        assert client.get("/session").json() == {"a": "1"}  # the previous session is still there


def test_a_value_that_is_not_json_is_a_clear_500() -> None:
    with TestClient(make_app()) as client:
        response = client.get("/unjsonable")
        assert response.status_code == 500
        assert "not JSON-serialisable" in response.json()["error"]


def test_session_without_enable_sessions_says_what_to_call() -> None:
    app = App(debug=True)

    @app.get("/")
    def index(request: Request) -> dict[str, Any]:
        return dict(request.session)

    with TestClient(app) as client:
        response = client.get("/")
        assert response.status_code == 500
        assert "app.enable_sessions(secret_key=...)" in response.json()["error"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"secret_key": ""}, "secret_key must be a non-empty string"),
        ({"secret_key": []}, "secret_key must be a non-empty string"),
        ({"secret_key": KEY, "max_age": 0}, "max_age"),
        ({"secret_key": KEY, "same_site": "sideways"}, "same_site"),
        ({"secret_key": KEY, "same_site": "none", "secure": False}, "Secure"),
        ({"secret_key": KEY, "cookie_name": "bad;name"}, "invalid cookie name"),
        ({"secret_key": KEY, "path": "/a;b"}, "invalid character"),
        ({"secret_key": KEY, "store": "memcached://x"}, "store must be 'cookie' or a redis:// URL"),
        ({"secret_key": KEY, "store": "redis://:secret@127.0.0.1:6379/zero"}, "database is a number"),
    ],
)
def test_bad_settings_fail_at_start_up(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        App().enable_sessions(**options)
    assert "secret" not in str(info.value).replace("secret_key", "")


def test_sessions_are_enabled_once() -> None:
    app = make_app()
    with pytest.raises(RuntimeError, match="called already"):
        app.enable_sessions(secret_key=KEY)


def test_get_flashed_messages_outside_a_route() -> None:
    request = Request("GET", "/")
    request.session_loader = CookieSessions(Signer([KEY], "cello.session", 60), _COOKIE).load
    request.flash("saved")
    request.flash("careful", "warning")
    assert get_flashed_messages(request, with_categories=True) == [("message", "saved"), ("warning", "careful")]
    assert get_flashed_messages(request, category_filter=["warning"]) == ["careful"]


# -- properties of the cookie store ----------------------------------------------------------

_COOKIE = SessionCookie("session", 3600, "lax", None, True, None, "/")
_STORE = CookieSessions(Signer([KEY], "cello.session", 3600), _COOKIE)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
sessions = st.dictionaries(st.text(min_size=1, max_size=12), json_values, min_size=1, max_size=6)


def _save(data: dict[str, Any]) -> str | None:
    request = Request("GET", "/")
    request.session_loader = _STORE.load
    request.session.update(data)
    response = Response(None, 204)
    _STORE.save(request, response)
    cookies = [value for name, value in response.raw_headers() if name == "set-cookie"]
    if not cookies:
        return None
    return cookies[0].split(";")[0].partition("=")[2]


def _load(value: str) -> dict[str, Any]:
    request = Request("GET", "/", headers={"cookie": f"session={value}"})
    request.session_loader = _STORE.load
    return request.session.to_dict()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sessions)
def test_any_json_session_round_trips(data: dict[str, Any]) -> None:
    value = _save(data)
    if value is None:
        assert len(json.dumps(data)) > 2000  # only a session too large for a cookie is refused
        return
    assert _load(value) == json.loads(json.dumps(data))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sessions, st.data())
def test_any_tampering_gives_the_original_or_nothing(data: dict[str, Any], draw: st.DataObject) -> None:
    value = _save(data)
    if value is None:
        return
    index = draw.draw(st.integers(0, len(value) - 1))
    replacement = draw.draw(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."))
    tampered = value[:index] + replacement + value[index + 1 :]
    # Never an error, never other data. (A changed character can decode to the same bytes when
    # it only differs in the unused low bits of the last base64 digit: then the data is intact.)
    assert _load(tampered) in ({}, json.loads(json.dumps(data)))


# -- the Redis store under TestClient ---------------------------------------------------------


def test_redis_keeps_json_under_a_prefix_with_an_expiry(redis_server: RedisServer) -> None:
    app = make_app(store=redis_server.url, max_age=300)
    with TestClient(app) as client, redis.Redis.from_url(redis_server.url) as inspect:
        client.get("/set/user/ada")
        signed = client.cookies["session"]
        sid = Signer([KEY], "cello.session.id", 300).loads(signed)
        assert isinstance(sid, str) and len(sid) >= 43
        raw = inspect.get(f"cello:session:{sid}")
        assert raw is not None and json.loads(raw) == {"user": "ada"}
        assert 290 <= inspect.ttl(f"cello:session:{sid}") <= 300
        # The cookie holds the id only, never the data.
        assert "ada" not in signed
        # Gone from Redis (expired, evicted): a new, empty session.
        inspect.delete(f"cello:session:{sid}")
        assert client.get("/session").json() == {}


def test_redis_logout_deletes_the_key(redis_server: RedisServer) -> None:
    app = make_app(store=redis_server.url)

    @app.get("/logout")
    def logout(request: Request) -> dict[str, Any]:
        request.session.clear()
        return {}

    with TestClient(app) as client, redis.Redis.from_url(redis_server.url) as inspect:
        client.get("/set/user/ada")
        sid = Signer([KEY], "cello.session.id", 3600).loads(client.cookies["session"])
        assert inspect.exists(f"cello:session:{sid}")
        client.get("/logout")
        assert not inspect.exists(f"cello:session:{sid}")


def test_redis_down_answers_503_and_leaks_nothing(caplog: pytest.LogCaptureFixture) -> None:
    server = RedisServer().start()
    try:
        app = make_app(store=server.url)
        with TestClient(app) as client:
            client.get("/set/user/ada")
            server.kill()
            with caplog.at_level(logging.ERROR, logger="cello.sessions"):
                read = client.get("/session")
                changed = client.get("/set/user/bob")
            for response in (read, changed):
                assert response.status_code == 503
                assert response.json() == {
                    "error": "Service Unavailable: the session store cannot be reached",
                    "status": 503,
                }
            assert str(server.port) not in read.text
            assert "Redis at" in caplog.text and "unreachable" in caplog.text
            # A route that does not use the session still works.
            assert client.get("/").text == "ok"
            server.start()
            assert client.get("/session").json() == {}  # the data went with the killed Redis
            client.get("/set/user/cy")
            assert client.get("/session").json() == {"user": "cy"}
    finally:
        server.stop()
